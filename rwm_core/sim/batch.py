"""N robots of the package's quadruped stepped together through MuJoCo's threaded ``mujoco.rollout``.

Why this shape: model-free PPO needs millions of simulator steps, and one robot stepped from Python
(:class:`rwm_core.sim.robot.QuadrupedSim`) manages about 4,000 a second. Here the state of all robots is one array
``(N, nstate)`` and every physics substep is one ``rollout`` call over the whole batch on a persistent thread pool,
so no Python loop runs over robots.

Physics equal to :class:`QuadrupedSim` (pinned by tests/sim/test_batch.py):

* the PD law and the torque-speed curve are the same. ``QuadrupedSim`` lets MuJoCo's position actuators compute
  ``kp (q* - q) - kd q'`` and rewrites their force range every control step; a shared model cannot hold one force
  range per robot, so here the actuators are plain motors and the same law, with the same operation order and the
  same limits fixed at the start of the control step, is evaluated in numpy before each of the 4 substeps;
* contacts are read in bulk from MuJoCo contact sensors (largest-force contact of each tracked geom with the floor,
  normal force above 1 N), measured at s_t by one extra forward pass with the step's last control, exactly where
  ``QuadrupedSim`` measures them; the torque column is the torque of the last substep.
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

from rwm_core.sim import robot
from rwm_core.sim.robot import QuadrupedSim
from rwm_core.tasks import anymal_d_flat as task

_STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS  # time, qpos, qvel (no activations or plugins in this model)
_S = {name: task.LAYOUT.block(name) for name, _, _ in task.LAYOUT.blocks}
# contact sensors, one per tracked geom: (geom name, class) with class 0 trunk/hip, 1 foot, 2 thigh/upper shank
_TRACKED = (
    [("trunk", 0)]
    + [(f"{leg}_hip", 0) for leg in task.LEGS]
    + [(f"{leg}_foot", 1) for leg in task.LEGS]
    + [(f"{leg}_thigh", 2) for leg in task.LEGS]
    + [(f"{leg}_shank_upper", 2) for leg in task.LEGS]
)


def batch_model(xml_path: str | Path | None = None) -> mujoco.MjModel:
    """The quadruped with motor actuators (torque = control) and a contact sensor per tracked geom."""
    spec = mujoco.MjSpec.from_file(str(xml_path or robot.XML_PATH))
    for act in spec.actuators:
        act.gainprm[:] = 0.0
        act.gainprm[0] = 1.0
        act.biasprm[:] = 0.0
        act.forcelimited = 0  # the torque-speed limits are applied before the control is handed over
        act.ctrllimited = 0
    force_field = 1 << int(mujoco.mjtConDataField.mjCONDATA_FORCE)
    for geom, _ in _TRACKED:
        s = spec.add_sensor()
        s.name = f"contact_{geom}"
        s.type = mujoco.mjtSensor.mjSENS_CONTACT
        s.objtype = mujoco.mjtObj.mjOBJ_GEOM
        s.objname = geom
        s.reftype = mujoco.mjtObj.mjOBJ_GEOM
        s.refname = "floor"
        s.intprm[0] = force_field  # data: the contact force in the contact frame (normal first)
        s.intprm[1] = 2  # reduce: the contact with the largest force
        s.intprm[2] = 1  # one contact
    return spec.compile()


def quat_to_mat(quat: np.ndarray) -> np.ndarray:
    """Rotation matrices (N, 3, 3) of unit-normalised quaternions (w, x, y, z), as MuJoCo's mju_quat2Mat."""
    q = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    ww, xx, yy, zz = w * w, x * x, y * y, z * z
    m = np.empty((len(q), 3, 3))
    m[:, 0, 0] = ww + xx - yy - zz
    m[:, 1, 1] = ww - xx + yy - zz
    m[:, 2, 2] = ww - xx - yy + zz
    m[:, 0, 1] = 2 * (x * y - w * z)
    m[:, 0, 2] = 2 * (x * z + w * y)
    m[:, 1, 0] = 2 * (x * y + w * z)
    m[:, 1, 2] = 2 * (y * z - w * x)
    m[:, 2, 0] = 2 * (x * z - w * y)
    m[:, 2, 1] = 2 * (y * z + w * x)
    return m


class BatchedQuadruped:
    """N independent robots (no interaction) with :class:`QuadrupedSim`'s physics and read-outs, as arrays.

    Call :meth:`close` (or use it as a context manager) to stop the thread pool.
    """

    def __init__(self, num_envs: int, threads: int = 2, xml_path: str | Path | None = None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        ref = QuadrupedSim(xml_path)  # geometry, addresses and the reset height, computed once
        self.num_envs = n = int(num_envs)
        self.model = batch_model(xml_path)
        m = self.model
        self.nstate = mujoco.mj_stateSize(m, _STATE_SPEC)
        self._q = 1 + ref.qadr  # joint positions in the state vector (after time)
        self._qd = 1 + m.nq + ref.dadr
        self._base_pos = slice(1, 4)
        self._base_quat = slice(4, 8)
        self._base_vel = slice(1 + m.nq, 4 + m.nq)  # world frame
        self._base_angvel = slice(4 + m.nq, 7 + m.nq)  # base frame
        self.default_q = ref.default_q.copy()
        # the reset state: default pose, feet on the floor, at rest
        reset = np.zeros(self.nstate)
        reset[1 : 1 + m.nq] = m.qpos0
        reset[3] = ref.reset_height
        reset[self._q] = self.default_q
        self._reset_state = reset
        self._ref_kp, self._ref_kd = robot.KP, robot.KD
        self.threads = max(1, int(threads))
        self._pool = mj_rollout.Rollout(nthread=self.threads)
        self._datas = [mujoco.MjData(m) for _ in range(self.threads)]
        self._models = [m] * n
        # the advancing substeps step a copy without sensors: they do not act on the dynamics (states bit-identical)
        # and only the contact pass reads them
        quiet = batch_model(xml_path)
        quiet.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_SENSOR)
        self._quiet_models = [quiet] * n
        self._out = np.empty((n, 1, self.nstate))
        self._sens = np.empty((n, 1, m.nsensordata))
        classes = np.array([c for _, c in _TRACKED])
        self._normal_cols = 3 * np.arange(len(_TRACKED))  # the normal force of each sensor
        self._trunk_sensors = np.flatnonzero(classes == 0)
        self._foot_sensors = np.flatnonzero(classes == 1)
        self._thigh_sensors = np.flatnonzero(classes == 2).reshape(2, 4)  # thighs, then upper shanks, leg order

        self.state = np.tile(reset, (n, 1))
        self.target = np.tile(self.default_q, (n, 1))
        self.last_action = np.zeros((n, 12))
        self.last_torque = np.zeros((n, 12))
        self.lo = np.full((n, 12), -robot.EFFORT_LIMIT)
        self.hi = np.full((n, 12), robot.EFFORT_LIMIT)
        self.foot_contact = np.zeros((n, 4))
        self.thigh_contact = np.zeros((n, 4))
        self.trunk_contact = np.zeros(n, dtype=bool)
        # the contacts of the reset pose, measured once on robot 0: every reset is that pose up to a yaw about the
        # vertical, which a flat floor does not see (feet ~60 N, nothing else touching), so resets copy them
        # instead of paying a rollout call each (tests/sim/test_batch.py checks them against a measurement)
        first = np.zeros(1, dtype=np.int64)
        self._sense(first, self._pd(first))
        self._reset_contacts = (self.trunk_contact[0], self.foot_contact[0].copy(), self.thigh_contact[0].copy())
        self.reset(np.arange(n))

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> BatchedQuadruped:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ physics
    def _pd(self, ids: np.ndarray | slice) -> np.ndarray:
        """The actuator torque at the current state, as MuJoCo's position actuator computes it, then clipped."""
        st = self.state[ids]
        q, qd = st[:, self._q], st[:, self._qd]
        force = self._ref_kp * self.target[ids] + (-self._ref_kp * q + -self._ref_kd * qd)
        return np.minimum(np.maximum(force, self.lo[ids]), self.hi[ids])

    def _advance(self, torque: np.ndarray) -> None:
        """One physics substep for every robot, on the sensorless model copy."""
        ctrl = np.ascontiguousarray(torque[:, None, :])
        self._pool.rollout(
            self._quiet_models, self._datas, self.state, ctrl, nstep=1, skip_checks=True, state=self._out
        )
        self.state[:] = self._out[:, 0]

    def _sense(self, ids: np.ndarray | None, torque: np.ndarray) -> None:
        """Contacts of robots ``ids`` (all when None) at their current state: one forward pass, state kept."""
        if ids is None:
            state, out, sens, models = self.state, self._out, self._sens, self._models
        else:
            k = len(ids)
            state, models = self.state[ids], self._models[:k]
            out, sens = np.empty((k, 1, self.nstate)), np.empty((k, 1, self.model.nsensordata))
        ctrl = np.ascontiguousarray(torque[:, None, :])
        self._pool.rollout(models, self._datas, state, ctrl, nstep=1, skip_checks=True, state=out, sensordata=sens)
        normal = sens[:, 0, self._normal_cols]
        hit = normal > robot.CONTACT_FORCE_THRESHOLD
        sel = slice(None) if ids is None else ids
        self.trunk_contact[sel] = hit[:, self._trunk_sensors].any(axis=1)
        self.foot_contact[sel] = hit[:, self._foot_sensors]
        self.thigh_contact[sel] = hit[:, self._thigh_sensors[0]] | hit[:, self._thigh_sensors[1]]

    def step(self, actions: np.ndarray) -> None:
        """One control step for all robots: target = default + scale * action, 4 substeps, contacts at s_t."""
        a = np.asarray(actions, dtype=np.float64)
        if a.shape != (self.num_envs, 12):
            raise ValueError(f"actions must have shape ({self.num_envs}, 12), got {a.shape}")
        self.target = self.default_q + task.ACTION_SCALE * a
        self.lo, self.hi = robot.torque_limits(self.state[:, self._qd])
        for _ in range(task.DECIMATION):
            torque = self._pd(slice(None))
            self._advance(torque)
        self.last_torque = torque
        self.last_action = a.copy()
        self._sense(None, self._pd(slice(None)))  # the forward pass at s_t: contacts

    def reset(self, ids: np.ndarray, yaw: np.ndarray | None = None) -> None:
        """Put robots ``ids`` in the default pose with the given yaw (rad), feet on the floor, at rest."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            return
        yaw = np.zeros(ids.size) if yaw is None else np.asarray(yaw, dtype=np.float64).reshape(-1)
        st = np.tile(self._reset_state, (ids.size, 1))
        st[:, 4] = np.cos(yaw / 2)
        st[:, 7] = np.sin(yaw / 2)
        self.state[ids] = st
        self.target[ids] = self.default_q
        self.last_action[ids] = 0.0
        self.lo[ids] = -robot.EFFORT_LIMIT
        self.hi[ids] = robot.EFFORT_LIMIT
        torque = self._pd(ids)
        self.last_torque[ids] = torque
        trunk, foot, thigh = self._reset_contacts
        self.trunk_contact[ids], self.foot_contact[ids], self.thigh_contact[ids] = trunk, foot, thigh

    # ------------------------------------------------------------------ read-outs (physical units, float64)
    def rotation(self) -> np.ndarray:
        """Base-to-world rotation matrices (N, 3, 3)."""
        return quat_to_mat(self.state[:, self._base_quat])

    def base_height(self) -> np.ndarray:
        return self.state[:, 3].copy()

    def base_lin_vel(self, rot: np.ndarray | None = None) -> np.ndarray:
        """Linear velocity of the base in the base frame (N, 3)."""
        rot = self.rotation() if rot is None else rot
        return np.einsum("nji,nj->ni", rot, self.state[:, self._base_vel])

    def base_ang_vel(self) -> np.ndarray:
        return self.state[:, self._base_angvel].copy()

    def projected_gravity(self, rot: np.ndarray | None = None) -> np.ndarray:
        rot = self.rotation() if rot is None else rot
        return -rot[:, 2, :]

    def joint_pos_rel(self) -> np.ndarray:
        return self.state[:, self._q] - self.default_q

    def joint_vel(self) -> np.ndarray:
        return self.state[:, self._qd].copy()

    def push(self, ids: np.ndarray, kick_xy: np.ndarray) -> None:
        """Add a planar velocity (world frame, m/s) to the base of robots ``ids``, as Isaac Lab's push event."""
        vel = self.state[:, self._base_vel]
        vel[ids, :2] += kick_xy
        self.state[:, self._base_vel] = vel

    def rows(self, ids: np.ndarray | None = None, termination: np.ndarray | None = None) -> np.ndarray:
        """The current states of robots ``ids`` (all when None) as rows of the 66-column layout, (k, 66)."""
        sel = slice(None) if ids is None else np.asarray(ids, dtype=np.int64)
        st = self.state[sel]
        rot = quat_to_mat(st[:, self._base_quat])
        r = np.empty((len(st), task.LAYOUT.n_columns))
        r[:, _S["base_lin_vel"]] = np.einsum("nji,nj->ni", rot, st[:, self._base_vel])
        r[:, _S["base_ang_vel"]] = st[:, self._base_angvel]
        r[:, _S["projected_gravity"]] = -rot[:, 2, :]
        r[:, _S["joint_pos"]] = st[:, self._q] - self.default_q
        r[:, _S["joint_vel"]] = st[:, self._qd]
        r[:, _S["joint_torque"]] = self.last_torque[sel]
        r[:, _S["action"]] = self.last_action[sel]
        r[:, _S["thigh_contact"]] = self.thigh_contact[sel]
        r[:, _S["foot_contact"]] = self.foot_contact[sel]
        r[:, _S["termination"]] = 0.0 if termination is None else np.asarray(termination, dtype=np.float64)[:, None]
        return r
