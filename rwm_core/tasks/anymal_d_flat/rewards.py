"""Reward terms of the ANYmal-D flat velocity task, batched in torch.

Why one module: the imagination environment (predicted states) and the simulator evaluation (true states) must score
a policy with exactly the same functions, otherwise imagined and true returns are not comparable. Nothing here knows
about MuJoCo or the world model: inputs are de-normalised state blocks as tensors of shape (N, ...), on any device.

Each ``<term>`` function returns the UNWEIGHTED per-env term, shape (N,). :class:`RewardComputer` keeps what terms
need across steps and returns ``weight * term * dt`` per term and their sum, as upstream's reward manager does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rwm_core.tasks import anymal_d_flat as task

Tensor = torch.Tensor


def track_lin_vel_xy_exp(lin_vel: Tensor, command: Tensor, sigma_sq: float = task.TRACKING_SIGMA_SQ) -> Tensor:
    """exp(-|cmd_xy - v_xy|^2 / sigma^2): planar velocity tracking in the base frame."""
    err = torch.sum(torch.square(command[:, :2] - lin_vel[:, :2]), dim=1)
    return torch.exp(-err / sigma_sq)


def track_ang_vel_z_exp(ang_vel: Tensor, command: Tensor, sigma_sq: float = task.TRACKING_SIGMA_SQ) -> Tensor:
    """exp(-(cmd_yaw - w_z)^2 / sigma^2): yaw-rate tracking."""
    return torch.exp(-torch.square(command[:, 2] - ang_vel[:, 2]) / sigma_sq)


def lin_vel_z_l2(lin_vel: Tensor) -> Tensor:
    """v_z^2: vertical bouncing of the base."""
    return torch.square(lin_vel[:, 2])


def ang_vel_xy_l2(ang_vel: Tensor) -> Tensor:
    """|w_xy|^2: roll and pitch rates."""
    return torch.sum(torch.square(ang_vel[:, :2]), dim=1)


def dof_torques_l2(torque: Tensor) -> Tensor:
    """sum tau^2 over the 12 joints."""
    return torch.sum(torch.square(torque), dim=1)


def dof_acc_l2(joint_vel: Tensor, prev_joint_vel: Tensor, dt: float = task.STEP_DT) -> Tensor:
    """sum ((qd - qd_prev) / dt)^2: joint accelerations by finite differences over one control step."""
    return torch.sum(torch.square((joint_vel - prev_joint_vel) / dt), dim=1)


def action_rate_l2(action: Tensor, prev_action: Tensor) -> Tensor:
    """sum (a - a_prev)^2."""
    return torch.sum(torch.square(action - prev_action), dim=1)


def feet_air_time(
    first_contact: Tensor,
    last_air_time: Tensor,
    command: Tensor,
    threshold: float = task.FEET_AIR_TIME_THRESHOLD,
    min_command: float = task.FEET_AIR_TIME_MIN_COMMAND,
) -> Tensor:
    """sum over feet of (last air time - threshold) at the step a foot touches down; only when |cmd_xy| > min.

    ``first_contact`` (N, 4) is 1 where a foot is in contact now after having been in the air; ``last_air_time``
    (N, 4) holds the duration of the flight that just ended (see :class:`RewardComputer`).
    """
    reward = torch.sum((last_air_time - threshold) * first_contact, dim=1)
    return reward * (torch.norm(command[:, :2], dim=1) > min_command)


def undesired_contacts(thigh_contact: Tensor) -> Tensor:
    """Number of thighs (incl. upper shanks) touching the ground."""
    return torch.sum(thigh_contact, dim=1)


def stand_still(joint_pos_rel: Tensor, command: Tensor, max_command: float = task.STAND_STILL_MAX_COMMAND) -> Tensor:
    """sum |q - q_default| when the planar command is below ``max_command``.

    As in Isaac Lab's ``stand_still_joint_deviation_l1`` the gate uses the norm of the planar command (vx, vy), so a
    pure yaw command of a standing robot is gated as 'standing'.
    """
    dev = torch.sum(torch.abs(joint_pos_rel), dim=1)
    return dev * (torch.norm(command[:, :2], dim=1) < max_command)


def flat_orientation_l2(projected_gravity: Tensor) -> Tensor:
    """|g_xy|^2: tilt of the base."""
    return torch.sum(torch.square(projected_gravity[:, :2]), dim=1)


def dof_pos_limits(joint_pos_rel: Tensor, lower: Tensor | None = None, upper: Tensor | None = None) -> Tensor:
    """sum of how far joints are outside their soft limits (relative to the default pose).

    Weight 0 in this task (SPEC §4); without limits it returns zeros, since the task module defines none.
    """
    if lower is None or upper is None:
        return torch.zeros(joint_pos_rel.shape[0], dtype=joint_pos_rel.dtype, device=joint_pos_rel.device)
    below = -(joint_pos_rel - lower).clamp(max=0.0)
    above = (joint_pos_rel - upper).clamp(min=0.0)
    return torch.sum(below + above, dim=1)


TERM_NAMES: tuple[str, ...] = tuple(task.REWARD_WEIGHTS)


class RewardComputer:
    """Stateful reward for N envs: keeps the previous joint velocity and action and the feet air times.

    ``compute`` returns (total (N,), {term: weight * term * dt (N,)}); ``reset(env_ids)`` forgets the history of
    the given envs (the next step then sees zero action rate w.r.t. a zero previous action, zero joint acceleration
    and feet that were not in the air), as a freshly reset upstream environment does.
    """

    def __init__(
        self,
        num_envs: int,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        weights: dict[str, float] | None = None,
        dt: float = task.STEP_DT,
        soft_limits: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.dtype = dtype
        self.weights = dict(task.REWARD_WEIGHTS if weights is None else weights)
        unknown = set(self.weights) - set(TERM_NAMES)
        if unknown:
            raise KeyError(f"unknown reward terms {sorted(unknown)}; known: {TERM_NAMES}")
        self.dt = dt
        self.soft_limits = (
            None if soft_limits is None else tuple(t.to(device=self.device, dtype=dtype) for t in soft_limits)
        )
        z = lambda *shape: torch.zeros(*shape, device=self.device, dtype=dtype)  # noqa: E731
        self.prev_joint_vel = z(num_envs, 12)
        self.prev_action = z(num_envs, 12)
        self.has_prev_joint_vel = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self.air_time = z(num_envs, 4)
        self.last_air_time = z(num_envs, 4)

    def reset(self, env_ids: Sequence[int] | Tensor | None = None) -> None:
        ids = slice(None) if env_ids is None else torch.as_tensor(env_ids, device=self.device, dtype=torch.long)
        self.prev_joint_vel[ids] = 0.0
        self.prev_action[ids] = 0.0
        self.has_prev_joint_vel[ids] = False
        self.air_time[ids] = 0.0
        self.last_air_time[ids] = 0.0

    def prime(
        self,
        env_ids: Sequence[int] | Tensor | None = None,
        joint_vel: Tensor | None = None,
        action: Tensor | None = None,
    ) -> None:
        """Set the previous joint velocity / action of envs that start from a known history (imagination)."""
        ids = slice(None) if env_ids is None else torch.as_tensor(env_ids, device=self.device, dtype=torch.long)
        if joint_vel is not None:
            self.prev_joint_vel[ids] = joint_vel.to(self.prev_joint_vel)
            self.has_prev_joint_vel[ids] = True
        if action is not None:
            self.prev_action[ids] = action.to(self.prev_action)

    def compute(
        self,
        lin_vel: Tensor,
        ang_vel: Tensor,
        projected_gravity: Tensor,
        joint_pos_rel: Tensor,
        joint_vel: Tensor,
        torque: Tensor,
        action: Tensor,
        foot_contact: Tensor,
        thigh_contact: Tensor,
        command: Tensor,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Score one step for all envs and advance the history."""
        dt = self.dt
        foot = foot_contact.to(self.dtype) > 0.5
        # air time = number of control steps a foot was seen off the ground, times dt; at the first step it is seen
        # in contact again that flight's duration becomes last_air_time (Isaac Lab's contact sensor does the same
        # at physics-step resolution)
        first_contact = foot & (self.air_time > 0.0)
        self.last_air_time = torch.where(first_contact, self.air_time, self.last_air_time)
        self.air_time = torch.where(foot, torch.zeros_like(self.air_time), self.air_time + dt)

        prev_qd = torch.where(self.has_prev_joint_vel[:, None], self.prev_joint_vel, joint_vel)
        lower, upper = self.soft_limits if self.soft_limits is not None else (None, None)
        raw = {
            "track_lin_vel_xy_exp": track_lin_vel_xy_exp(lin_vel, command),
            "track_ang_vel_z_exp": track_ang_vel_z_exp(ang_vel, command),
            "lin_vel_z_l2": lin_vel_z_l2(lin_vel),
            "ang_vel_xy_l2": ang_vel_xy_l2(ang_vel),
            "dof_torques_l2": dof_torques_l2(torque),
            "dof_acc_l2": dof_acc_l2(joint_vel, prev_qd, dt),
            "action_rate_l2": action_rate_l2(action, self.prev_action),
            "feet_air_time": feet_air_time(first_contact.to(self.dtype), self.last_air_time, command),
            "undesired_contacts": undesired_contacts(thigh_contact.to(self.dtype)),
            "stand_still": stand_still(joint_pos_rel, command),
            "flat_orientation_l2": flat_orientation_l2(projected_gravity),
            "dof_pos_limits": dof_pos_limits(joint_pos_rel, lower, upper),
        }
        terms = {k: raw[k] * (w * dt) for k, w in self.weights.items()}
        total = torch.stack(list(terms.values())).sum(0)
        self.prev_joint_vel = joint_vel.detach().clone().to(self.dtype)
        self.has_prev_joint_vel[:] = True
        self.prev_action = action.detach().clone().to(self.dtype)
        return total, terms
