"""MuJoCo wrapper for the package's quadruped: PD actuation, termination checks and rows in the 66-column layout.

Why this shape: the data-collection loop has to run at several thousand control steps per second in one Python
process, so the PD law runs inside MuJoCo (position actuators with kp, kv and a force range, Euler integration so the
actuator force is applied explicitly) and the four physics substeps are one ``mj_step(..., nstep=4)`` call.

Conventions (SPEC §1, pinned by tests/sim/test_robot.py):

* row t holds the state s_t measured after the control step that produced it;
* the action column of row t is the action applied between s_{t-1} and s_t (zero on an episode's first row);
* the torque column is the torque applied during the LAST physics substep of that control step,
  i.e. ``clip(kp (q* - q) - kd q', lo, hi)`` evaluated on the state at the start of that substep, with (lo, hi)
  the torque-speed limits fixed at the start of the control step (see :meth:`QuadrupedSim.torque_limits`);
  on an episode's first row it is the PD torque at the reset state with target = default pose;
* contacts are measured at s_t (a forward pass after the last substep), force threshold 1 N.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import mujoco
import numpy as np

from rwm_core.tasks import anymal_d_flat as task

XML_PATH = Path(str(resources.files("rwm_core.sim").joinpath("quadruped.xml")))

KP = 80.0
KD = 2.0
EFFORT_LIMIT = 80.0
# Torque-speed curve in the style of a DC motor (ANYdrive-like numbers, a little more permissive on speed):
# the torque available in the direction of motion falls linearly to zero at VELOCITY_LIMIT.
SATURATION_EFFORT = 120.0
VELOCITY_LIMIT = 10.0
CONTACT_FORCE_THRESHOLD = 1.0
MAX_TILT_COS = task.TILT_TERMINATION_COS  # gravity z in the base frame above -cos(60 deg) terminates
MIN_BASE_HEIGHT = task.MIN_BASE_HEIGHT
RESET_PENETRATION = 0.001  # reset: feet 1 mm into the floor, so the first row already stands on its feet

N_COLS = task.LAYOUT.n_columns
_S = {name: task.LAYOUT.block(name) for name, _, _ in task.LAYOUT.blocks}

# geom classes for contact bookkeeping
_TRUNK = 1  # class 0: not tracked (floor, lower shank)
_FOOT0 = 2  # 2..5: foot of leg i
_THIGH0 = 6  # 6..9: thigh / upper shank of leg i
_EDGES = np.arange(4)


def torque_limits(joint_vel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Torque-speed curve: (lo, hi) available torque for the given joint velocities (any shape)."""
    sv = joint_vel * (SATURATION_EFFORT / VELOCITY_LIMIT)
    hi = np.minimum(np.maximum(SATURATION_EFFORT - sv, 0.0), EFFORT_LIMIT)
    lo = np.maximum(np.minimum(-SATURATION_EFFORT - sv, 0.0), -EFFORT_LIMIT)
    return lo, hi


class QuadrupedSim:
    """One simulated robot. Not thread-safe; one instance per process."""

    def __init__(self, xml_path: str | Path | None = None) -> None:
        self.model = mujoco.MjModel.from_xml_path(str(xml_path or XML_PATH))
        self.data = mujoco.MjData(self.model)
        m = self.model
        if abs(m.opt.timestep - task.PHYSICS_DT) > 1e-12:
            raise ValueError(f"model timestep {m.opt.timestep} != task physics dt {task.PHYSICS_DT}")
        jids = [m.joint(n).id for n in task.JOINT_NAMES]
        self.qadr = np.array([m.jnt_qposadr[j] for j in jids])
        self.dadr = np.array([m.jnt_dofadr[j] for j in jids])
        act_joints = [m.actuator_trnid[i, 0] for i in range(m.nu)]
        if act_joints != jids:
            raise ValueError("actuators must be declared in task JOINT_NAMES order")
        self.default_q = task.DEFAULT_JOINT_POS.astype(np.float64)
        self.joint_range = np.array([m.jnt_range[j] for j in jids])  # absolute, (12, 2)
        self.trunk_id = m.body("trunk").id
        self.total_mass = float(m.body_mass.sum())
        self.gravity = float(-m.opt.gravity[2])
        gclass = np.zeros(m.ngeom, dtype=np.int64)
        gclass[m.geom("trunk").id] = _TRUNK
        for i, leg in enumerate(task.LEGS):
            gclass[m.geom(f"{leg}_hip").id] = _TRUNK  # the hip housing is bolted to the trunk
            gclass[m.geom(f"{leg}_foot").id] = _FOOT0 + i
            gclass[m.geom(f"{leg}_thigh").id] = _THIGH0 + i
            gclass[m.geom(f"{leg}_shank_upper").id] = _THIGH0 + i
        self._gclass = gclass
        if np.any(m.geom_condim[gclass > 0] != 3):
            raise ValueError("contact flags assume condim 3 (pyramidal cone, four edges) on robot geoms")
        # base height that puts the feet of the default pose on the floor
        d = self.data
        d.qpos[:] = m.qpos0
        d.qpos[self.qadr] = self.default_q
        mujoco.mj_kinematics(m, d)
        feet = [m.geom(f"{leg}_foot").id for leg in task.LEGS]
        lowest = min(float(d.geom_xpos[g][2] - m.geom_size[g][0]) for g in feet)
        self.reset_height = float(d.qpos[2] - lowest - RESET_PENETRATION)
        self.last_action = np.zeros(12)
        self.last_torque = np.zeros(12)
        self.target = self.default_q.copy()
        self.thigh_contact = np.zeros(4)
        self.foot_contact = np.zeros(4)
        self.trunk_contact = False
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(
        self,
        rng: np.random.Generator | None = None,
        joint_noise: float = 0.0,
        yaw: float = 0.0,
        xy: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """Put the robot in the default pose, feet on the floor, at rest."""
        d, m = self.data, self.model
        mujoco.mj_resetData(m, d)
        d.qpos[0:3] = (xy[0], xy[1], self.reset_height)
        d.qpos[3:7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
        q = self.default_q.copy()
        if rng is not None and joint_noise > 0:
            q += rng.uniform(-joint_noise, joint_noise, 12)
        d.qpos[self.qadr] = q
        self.target = self.default_q.copy()
        d.ctrl[:] = self.target
        m.actuator_forcerange[:] = (-EFFORT_LIMIT, EFFORT_LIMIT)
        self.last_action = np.zeros(12)
        mujoco.mj_forward(m, d)
        self.last_torque = d.actuator_force.copy()
        self._measure_contacts()

    def torque_limits(self, joint_vel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Torque-speed curve: (lo, hi) available torque for the given joint velocities."""
        return torque_limits(joint_vel)

    def step(self, action: np.ndarray) -> None:
        """Apply one control step: target = default + scale * action, 4 physics substeps, then measure s_t."""
        m, d = self.model, self.data
        action = np.asarray(action, dtype=np.float64)
        self.target = self.default_q + task.ACTION_SCALE * action
        d.ctrl[:] = self.target
        lo, hi = self.torque_limits(d.qvel[self.dadr])
        fr = m.actuator_forcerange
        fr[:, 0] = lo
        fr[:, 1] = hi
        mujoco.mj_step(m, d, task.DECIMATION)
        # mj_step leaves actuator_force of its last forward pass = the torque of the last substep
        self.last_torque = d.actuator_force.copy()
        self.last_action = action.copy()
        mujoco.mj_forward(m, d)  # kinematics + contacts at s_t
        self._measure_contacts()

    def _measure_contacts(self) -> None:
        """Contact flags at the current state: normal force above the threshold on a foot / thigh / trunk geom.

        With pyramidal friction cones the normal force of a contact is the sum of its pyramid-edge forces
        (equal to what ``mj_contactForce`` returns); summing them vectorised avoids a Python loop per contact.
        """
        d = self.data
        flags = np.zeros(10)
        if d.ncon and d.nefc:
            con = d.contact
            cls = self._gclass[con.geom1] + self._gclass[con.geom2]  # the floor is class 0
            adr = con.efc_address
            # all robot geoms use condim 3: four pyramid edges per contact
            normal = d.efc_force[adr[:, None] + _EDGES].sum(axis=1)
            hit = (cls > 0) & (adr >= 0) & (normal > CONTACT_FORCE_THRESHOLD)
            flags[cls[hit]] = 1.0
        self.trunk_contact = bool(flags[_TRUNK])
        self.foot_contact = flags[_FOOT0 : _FOOT0 + 4]
        self.thigh_contact = flags[_THIGH0 : _THIGH0 + 4]

    # ----------------------------------------------------------- read-outs
    @property
    def rotation(self) -> np.ndarray:
        """Base-to-world rotation matrix (3, 3)."""
        return self.data.xmat[self.trunk_id].reshape(3, 3)

    @property
    def base_height(self) -> float:
        return float(self.data.qpos[2])

    def base_lin_vel(self) -> np.ndarray:
        """Linear velocity of the base in the base frame (MuJoCo's free-joint linear velocity is in world)."""
        return self.rotation.T @ self.data.qvel[0:3]

    def base_ang_vel(self) -> np.ndarray:
        """Angular velocity in the base frame (MuJoCo's free-joint angular velocity is already local)."""
        return self.data.qvel[3:6].copy()

    def projected_gravity(self) -> np.ndarray:
        return -self.rotation[2, :].copy()

    def joint_pos(self) -> np.ndarray:
        """Absolute joint positions in JOINT_NAMES order."""
        return self.data.qpos[self.qadr].copy()

    def joint_vel(self) -> np.ndarray:
        return self.data.qvel[self.dadr].copy()

    def fallen(self) -> bool:
        """Termination: trunk (or hip housing) touches the floor, tilt beyond 60 deg, or base too low."""
        return bool(task.mdp.fallen(np.float64(self.trunk_contact), self.projected_gravity(), self.data.qpos[2]))

    def row(self, termination: bool = False, out: np.ndarray | None = None) -> np.ndarray:
        """The current state s_t as one 66-column row."""
        r = np.empty(N_COLS) if out is None else out
        d = self.data
        rot = self.rotation
        r[_S["base_lin_vel"]] = rot.T @ d.qvel[0:3]
        r[_S["base_ang_vel"]] = d.qvel[3:6]
        r[_S["projected_gravity"]] = -rot[2, :]
        r[_S["joint_pos"]] = d.qpos[self.qadr] - self.default_q
        r[_S["joint_vel"]] = d.qvel[self.dadr]
        r[_S["joint_torque"]] = self.last_torque
        r[_S["action"]] = self.last_action
        r[_S["thigh_contact"]] = self.thigh_contact
        r[_S["foot_contact"]] = self.foot_contact
        r[_S["termination"]] = 1.0 if termination else 0.0
        return r
