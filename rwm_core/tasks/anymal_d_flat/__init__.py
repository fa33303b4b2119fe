"""ANYmal-D on flat ground: the 66-column layout, default normalisation, observation and reward constants.

Everything task-specific lives here so that a user porting the pipeline to a new robot writes one such module.
Joint order in every 12-wide block: all HAA, then all HFE, then all KFE, each in leg order LF, LH, RF, RH.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rwm_core.data.layout import ColumnLayout

NAME = "anymal_d_flat"
STEP_DT = 0.02  # 50 Hz control
PHYSICS_DT = 0.005
DECIMATION = 4
ACTION_SCALE = 0.5

LEGS = ("LF", "LH", "RF", "RH")
JOINT_TYPES = ("HAA", "HFE", "KFE")
JOINT_NAMES = tuple(f"{leg}_{jt}" for jt in JOINT_TYPES for leg in LEGS)

# Default joint positions (rad) in JOINT_NAMES order: HAA 0, HFE +-0.4, KFE -+0.8 (front/hind as ANYmal-D).
DEFAULT_JOINT_POS = np.array([0.0, 0.0, 0.0, 0.0, 0.4, -0.4, 0.4, -0.4, -0.8, 0.8, -0.8, 0.8], dtype=np.float32)

LAYOUT = ColumnLayout(
    blocks=(
        ("base_lin_vel", 3, "m/s"),
        ("base_ang_vel", 3, "rad/s"),
        ("projected_gravity", 3, "1"),
        ("joint_pos", 12, "rad"),
        ("joint_vel", 12, "rad/s"),
        ("joint_torque", 12, "Nm"),
        ("action", 12, "1"),
        ("thigh_contact", 4, "0/1"),
        ("foot_contact", 4, "0/1"),
        ("termination", 1, "0/1"),
    ),
    state_blocks=(
        "base_lin_vel",
        "base_ang_vel",
        "projected_gravity",
        "joint_pos",
        "joint_vel",
        "joint_torque",
    ),
    action_block="action",
    contact_blocks=("thigh_contact", "foot_contact"),
    termination_block="termination",
    binary_blocks=("thigh_contact", "foot_contact", "termination"),
)

ELEMENT_NAMES: dict[str, list[str]] = {
    "base_lin_vel": ["x", "y", "z"],
    "base_ang_vel": ["x", "y", "z"],
    "projected_gravity": ["x", "y", "z"],
    "joint_pos": list(JOINT_NAMES),
    "joint_vel": list(JOINT_NAMES),
    "joint_torque": list(JOINT_NAMES),
    "action": list(JOINT_NAMES),
    "thigh_contact": list(LEGS),
    "foot_contact": list(LEGS),
}
COLUMN_NAMES = LAYOUT.column_names(ELEMENT_NAMES)

# Upstream's fixed normalisation constants for this task (SPEC §1).
STATE_MEAN = np.zeros(45, dtype=np.float32)
STATE_MEAN[8] = -1.0
STATE_MEAN[33:45] = [-2, -2, 2, 2, -6, 8, -6, 8, 12, -12, 12, -12]
STATE_STD = np.concatenate(
    [
        [0.5, 0.5, 0.1],
        [0.3, 0.3, 0.5],
        [0.02, 0.02, 0.04],
        np.full(12, 0.15),
        [1, 1, 1, 1, 1.5, 1.5, 1.5, 1.5, 2.5, 2.5, 2.5, 2.5],
        np.full(12, 15.0),
    ]
).astype(np.float32)
ACTION_MEAN = np.zeros(12, dtype=np.float32)
ACTION_STD = np.ones(12, dtype=np.float32)

# Policy observation (48): lin vel, ang vel, gravity, command, joint pos, joint vel, last action.
OBS_BLOCKS: tuple[tuple[str, int], ...] = (
    ("base_lin_vel", 3),
    ("base_ang_vel", 3),
    ("projected_gravity", 3),
    ("velocity_command", 3),
    ("joint_pos", 12),
    ("joint_vel", 12),
    ("last_action", 12),
)
OBS_DIM = sum(w for _, w in OBS_BLOCKS)
# Uniform observation noise half-widths when noise is on.
OBS_NOISE = {
    "base_lin_vel": 0.1,
    "base_ang_vel": 0.2,
    "projected_gravity": 0.05,
    "joint_pos": 0.01,
    "joint_vel": 1.5,
}

# Command sampling and episode structure (SPEC §4).
COMMAND_RANGE = {"lin_vel_x": (-1.0, 1.0), "lin_vel_y": (-1.0, 1.0), "ang_vel_z": (-1.0, 1.0)}
STANDING_ENV_FRACTION = 0.02
COMMAND_RESAMPLE_STEPS = (100, 120)
PUSH_INTERVAL_STEPS = (48, 96)
PUSH_VELOCITY_RANGE = (-0.5, 0.5)
EPISODE_LENGTH_STEPS = 256
TILT_TERMINATION_COS = 0.5  # a fall: projected gravity z above -cos(60 deg)
MIN_BASE_HEIGHT = 0.2  # the simulator also ends an episode when the base (trunk origin) is lower than this (m)

# Leg geometry of rwm_core/sim/quadruped.xml (LEGS order; a test checks it against MuJoCo's kinematics): hip joint
# (HAA, about x) at HIP_POS in the base frame, thigh joint (HFE, about y) offset THIGH_OFFSET_Y along y, knee (KFE,
# about y) SHANK_OFFSET below it, foot sphere centre FOOT_OFFSET below the knee.
HIP_POS = np.array([[0.3, 0.1, 0.0], [-0.3, 0.1, 0.0], [0.3, -0.1, 0.0], [-0.3, -0.1, 0.0]], dtype=np.float32)
THIGH_OFFSET_Y = np.array([0.08, 0.08, -0.08, -0.08], dtype=np.float32)
SHANK_OFFSET = 0.285
FOOT_OFFSET = 0.3
FOOT_RADIUS = 0.03
KNEE_RADIUS = 0.03  # the upper shank capsule at the knee joint


# Capsules of the thigh contact class (the simulator's undesired contacts): the thigh from THIGH_ENDS[0] to
# THIGH_ENDS[1] below the HFE joint, the upper shank from the knee to SHANK_UPPER_END below it; the lower shank
# (not a tracked contact) ends SHANK_LOWER_END below the knee.
THIGH_ENDS = (0.03, 0.25)
THIGH_RADIUS = 0.04
SHANK_UPPER_END = 0.12
SHANK_LOWER_END = 0.24
SHANK_LOWER_RADIUS = 0.02
THIGH_CONTACT_GAP = 0.01  # m: a thigh or upper shank this close to the floor counts as touching it


def ground_clearance(joint_pos_rel: Any, projected_gravity: Any) -> tuple[Any, Any]:
    """Base height over flat ground, resting on its lowest point, and each leg's thigh-class gap to the floor.

    Why: neither base height nor a reliable thigh contact is in what a world model learns from locomotion data
    (the data hold a thigh contact in 1-2 rows per 10,000), yet the simulator ends an episode on a low base and
    penalises thigh contacts; leg kinematics recover both from the predicted joint positions and gravity.
    ``joint_pos_rel`` (..., 12) relative to the default pose, ``projected_gravity`` (..., 3) unit gravity in the
    base frame; torch tensors. Returns ``height`` (...) and ``thigh_gap`` (..., 4), both in metres.
    """
    import torch

    q = joint_pos_rel + torch.as_tensor(DEFAULT_JOINT_POS, dtype=joint_pos_rel.dtype, device=joint_pos_rel.device)
    haa, hfe, kfe = q[..., 0:4], q[..., 4:8], q[..., 8:12]
    ty = torch.as_tensor(THIGH_OFFSET_Y, dtype=q.dtype, device=q.device)
    hip = torch.as_tensor(HIP_POS, dtype=q.dtype, device=q.device)
    g = projected_gravity
    c1, s1 = torch.cos(hfe), torch.sin(hfe)
    c0, s0 = torch.cos(haa), torch.sin(haa)
    sk, ck = torch.sin(kfe), torch.cos(kfe)

    def depth(vx: Any, vz: Any, radius: float) -> Any:
        """Depth under the base of the lowest surface point of a sphere at (vx, 0, vz) of the thigh frame."""
        wx = vx * c1 + vz * s1  # Ry(hfe)
        wz = -vx * s1 + vz * c1
        px = wx + hip[:, 0]  # Rx(haa) of (wx, ty, wz), then the hip's position in the base frame
        py = ty * c0 - wz * s0 + hip[:, 1]
        pz = ty * s0 + wz * c0 + hip[:, 2]
        return g[..., 0:1] * px + g[..., 1:2] * py + g[..., 2:3] * pz + radius

    def on_shank(d: float, radius: float) -> Any:
        """A point d below the knee along the shank: (0, 0, -SHANK) + Ry(kfe) (0, 0, -d)."""
        return depth(-d * sk, -d * ck - SHANK_OFFSET, radius)

    zero = torch.zeros_like(kfe)
    thigh_class = torch.stack(
        [
            depth(zero, zero - THIGH_ENDS[0], THIGH_RADIUS),
            depth(zero, zero - THIGH_ENDS[1], THIGH_RADIUS),
            on_shank(0.0, KNEE_RADIUS),
            on_shank(SHANK_UPPER_END, KNEE_RADIUS),
        ]
    ).amax(0)
    others = torch.stack([on_shank(FOOT_OFFSET, FOOT_RADIUS), on_shank(SHANK_LOWER_END, SHANK_LOWER_RADIUS)])
    height = torch.maximum(thigh_class.amax(-1), others.amax(0).amax(-1))
    return height, height.unsqueeze(-1) - thigh_class


# The trunk-contact class (the simulator ends an episode when it touches the floor): the trunk box (half-sizes, centred
# on the base origin) and each hip housing, a capsule on the HAA body from x = ±HIP_HOUSING_HALF_X at
# y = ±HIP_HOUSING_Y (outwards), radius HIP_HOUSING_RADIUS.
TRUNK_HALF_SIZE = (0.3, 0.15, 0.075)
HIP_HOUSING_HALF_X = 0.04
HIP_HOUSING_Y = 0.05
HIP_HOUSING_RADIUS = 0.05
TRUNK_CONTACT_GAP = 0.01  # m: the trunk or a hip housing this close to the floor counts as touching it


def trunk_depth(joint_pos_rel: Any, projected_gravity: Any) -> Any:
    """Depth under the base origin of the lowest point of the trunk box or a hip housing (metres, (...)).

    Minus the resting height of :func:`ground_clearance` it gives :func:`trunk_gap`; callers that already have that
    height (the imagination env) subtract it themselves instead of computing the leg kinematics twice.
    """
    import torch

    g = projected_gravity
    half = torch.as_tensor(TRUNK_HALF_SIZE, dtype=g.dtype, device=g.device)
    box = (g.abs() * half).sum(-1)  # depth of the box's lowest corner under the base origin
    haa = joint_pos_rel[..., 0:4] + torch.as_tensor(DEFAULT_JOINT_POS[0:4], dtype=g.dtype, device=g.device)
    hip = torch.as_tensor(HIP_POS, dtype=g.dtype, device=g.device)
    y = HIP_HOUSING_Y * torch.sign(hip[:, 1])  # outwards on each side
    py = hip[:, 1] + y * torch.cos(haa)  # Rx(haa) of (x, y, 0), then the hip's position
    pz = hip[:, 2] + y * torch.sin(haa)
    ends = [
        g[..., 0:1] * (hip[:, 0] + dx) + g[..., 1:2] * py + g[..., 2:3] * pz
        for dx in (-HIP_HOUSING_HALF_X, HIP_HOUSING_HALF_X)
    ]
    hips = torch.maximum(*ends).amax(-1) + HIP_HOUSING_RADIUS
    return torch.maximum(box, hips)


def trunk_gap(joint_pos_rel: Any, projected_gravity: Any) -> Any:
    """Gap between the floor and the lowest point of the trunk or a hip housing, the robot resting on its lowest point.

    Why: the simulator ends most falls of imagination-trained policies on a trunk or hip-housing contact (a sit or a
    kneel) with the base neither tilted past the limit nor below the height limit, and no such contact is in the
    data a world model learns from; leg kinematics recover it from the predicted joint positions and gravity.
    Arguments as :func:`ground_clearance`; returns metres (...), <= 0 when the trunk class is the lowest point.
    """
    height, _ = ground_clearance(joint_pos_rel, projected_gravity)
    return height - trunk_depth(joint_pos_rel, projected_gravity)


def base_height(joint_pos_rel: Any, projected_gravity: Any) -> Any:
    """Height of the base over flat ground when its lowest point touches it (see :func:`ground_clearance`)."""
    return ground_clearance(joint_pos_rel, projected_gravity)[0]


# Reward term weights (SPEC §4); reward = sum(weight * term * dt).
REWARD_WEIGHTS: dict[str, float] = {
    "track_lin_vel_xy_exp": 1.0,
    "track_ang_vel_z_exp": 0.5,
    "lin_vel_z_l2": -2.0,
    "ang_vel_xy_l2": -0.05,
    "dof_torques_l2": -2.5e-5,
    "dof_acc_l2": -2.5e-7,
    "action_rate_l2": -0.01,
    "feet_air_time": 0.5,
    "undesired_contacts": -1.0,
    "stand_still": -1.0,
    "flat_orientation_l2": -5.0,
    "dof_pos_limits": 0.0,
}
TRACKING_SIGMA_SQ = 0.25
FEET_AIR_TIME_THRESHOLD = 0.5
FEET_AIR_TIME_MIN_COMMAND = 0.1
STAND_STILL_MAX_COMMAND = 0.05


# The MDP around the state, as batched functions every env calls (imagination, single-robot and batched simulator).
from rwm_core.tasks.anymal_d_flat import mdp, rewards  # noqa: E402

__all__ = ["mdp", "rewards"]
