"""The MDP around the robot state: policy observation and its noise, commands, pushes and terminations.

Why here: the imagination env (predicted states), the single-robot simulator env and the batched simulator env must
build the same observation, draw commands and pushes the same way and end episodes on the same rule, or a policy
trained in one is not judged by the rules of another. Every function is batched over envs (leading dimension N)
and takes torch tensors in physical units (the termination rules take numpy arrays too). Random draws are the
caller's (each env owns its generator and its stream order); these functions turn uniform draws in [0, 1) into the
task's quantities, so the envs share the rule, not the generator.
"""

from __future__ import annotations

import torch

from rwm_core.tasks import anymal_d_flat as task

Tensor = torch.Tensor

OBS_SLICES: dict[str, slice] = {}
_start = 0
for _name, _width in task.OBS_BLOCKS:
    OBS_SLICES[_name] = slice(_start, _start + _width)
    _start += _width
del _start, _name, _width


def observation(
    lin_vel: Tensor,
    ang_vel: Tensor,
    projected_gravity: Tensor,
    command: Tensor,
    joint_pos_rel: Tensor,
    joint_vel: Tensor,
    last_action: Tensor,
) -> Tensor:
    """The 48-dim policy observation (task.OBS_BLOCKS order), shape (N, 48)."""
    return torch.cat([lin_vel, ang_vel, projected_gravity, command, joint_pos_rel, joint_vel, last_action], dim=-1)


def observation_noise_scale(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
    """Half-widths of the uniform observation noise in observation layout, shape (48,); the command is never noised."""
    scale = torch.zeros(task.OBS_DIM, dtype=dtype, device=device)
    for name, half_width in task.OBS_NOISE.items():
        scale[OBS_SLICES[name]] = float(half_width)
    return scale


def add_observation_noise(obs: Tensor, uniform: Tensor, scale: Tensor) -> Tensor:
    """``obs`` plus uniform noise in [-scale, scale), from draws ``uniform`` in [0, 1) of the same shape."""
    return obs + (uniform * 2 - 1) * scale


def commands_from_uniform(uniform_xyz: Tensor, uniform_standing: Tensor) -> Tensor:
    """Velocity commands (vx, vy, yaw rate) from draws in [0, 1): (N, 3) for the ranges, (N,) for standing envs.

    A fraction task.STANDING_ENV_FRACTION of envs gets the zero (standing) command.
    """
    r = task.COMMAND_RANGE
    lo = torch.tensor([r[k][0] for k in ("lin_vel_x", "lin_vel_y", "ang_vel_z")], dtype=uniform_xyz.dtype)
    hi = torch.tensor([r[k][1] for k in ("lin_vel_x", "lin_vel_y", "ang_vel_z")], dtype=uniform_xyz.dtype)
    lo, hi = lo.to(uniform_xyz.device), hi.to(uniform_xyz.device)
    cmd = uniform_xyz * (hi - lo) + lo
    standing = uniform_standing < task.STANDING_ENV_FRACTION
    return torch.where(standing[:, None], torch.zeros_like(cmd), cmd)


def push_from_uniform(uniform: Tensor) -> Tensor:
    """The planar base-velocity kick of a push (m/s, added to vx, vy) from draws in [0, 1), shape (N, 2)."""
    lo, hi = task.PUSH_VELOCITY_RANGE
    return uniform * (hi - lo) + lo


def tilted(projected_gravity: Tensor) -> Tensor:
    """The base is tilted past the task's limit (60 deg): gravity z in the base frame above -cos(limit)."""
    return projected_gravity[..., 2] > -task.TILT_TERMINATION_COS


def too_low(base_height: Tensor) -> Tensor:
    """The base is below the simulator's minimum height (a crouch or a collapse)."""
    return base_height < task.MIN_BASE_HEIGHT


def fallen(trunk_contact: Tensor, projected_gravity: Tensor, base_height: Tensor) -> Tensor:
    """The simulator's termination: trunk (or hip housing) on the floor, tilted past the limit, or base too low.

    Also takes numpy arrays (the data-collection loop steps one robot without torch).
    """
    return (trunk_contact > 0) | tilted(projected_gravity) | too_low(base_height)
