"""The MuJoCo robot: model facts and the row conventions of SPEC §1 (torque, action, contacts, termination)."""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import pytest

from rwm_core.sim.gait import TrotController
from rwm_core.sim.robot import KD, KP, QuadrupedSim
from rwm_core.tasks import anymal_d_flat as task

L = task.LAYOUT


@pytest.fixture(scope="module")
def sim() -> QuadrupedSim:
    return QuadrupedSim()


def test_model_facts(sim: QuadrupedSim):
    m = sim.model
    assert 38.0 < sim.total_mass < 46.0
    assert m.opt.timestep == task.PHYSICS_DT
    assert np.allclose(m.geom("trunk").size, [0.3, 0.15, 0.075])
    assert m.nu == 12
    for i, name in enumerate(task.JOINT_NAMES):
        jid = m.actuator_trnid[i, 0]
        assert m.joint(jid).name == name
        assert m.jnt_limited[jid] and m.dof_armature[m.jnt_dofadr[jid]] > 0 and m.dof_damping[m.jnt_dofadr[jid]] > 0
    assert np.allclose(m.actuator_gainprm[:, 0], KP) and np.allclose(m.actuator_biasprm[:, 2], -KD)
    for leg in task.LEGS:
        assert -m.body(f"{leg}_SHANK").pos[2] == pytest.approx(0.285)
        assert -m.geom(f"{leg}_foot").pos[2] == pytest.approx(0.30)


def test_reset_row(sim: QuadrupedSim):
    sim.reset()
    row = sim.row()
    assert row.shape == (66,)
    assert np.allclose(row[L.block("projected_gravity")], [0, 0, -1])
    assert np.allclose(row[L.block("joint_pos")], 0.0)
    assert np.all(row[L.block("action")] == 0.0)
    assert np.all(row[L.block("foot_contact")] == 1.0) and np.all(row[L.block("thigh_contact")] == 0.0)
    assert not sim.fallen()


def _walk(sim: QuadrupedSim, steps: int, cmd=(0.6, 0.2, 0.4), seed: int = 0):
    sim.reset()
    ctl = TrotController(sim, rng=np.random.default_rng(seed), noise_level=0.2)
    ctl.set_command(np.array(cmd), standing=False)
    for _ in range(steps):
        sim.step(ctl.act())
    return ctl


def test_action_column_is_last_applied_action(sim: QuadrupedSim):
    ctl = _walk(sim, 50)
    for _ in range(5):
        a = ctl.act()
        sim.step(a)
        row = sim.row()
        assert np.array_equal(row[L.action], a)
        assert np.allclose(sim.data.ctrl, task.DEFAULT_JOINT_POS + task.ACTION_SCALE * a)


def test_torque_is_pd_of_last_substep(sim: QuadrupedSim):
    """Logged torque = clip(kp (target - q) - kd qd) on the state at the start of the 4th substep, with the
    torque-speed limits set from the joint velocities at the start of the control step."""
    ctl = _walk(sim, 60)
    for _ in range(4):
        a = ctl.act()
        replay = copy.copy(sim.data)  # MjData copy
        q0 = replay.qvel[sim.dadr].copy()
        lo, hi = sim.torque_limits(q0)
        sim.step(a)
        target = task.DEFAULT_JOINT_POS + task.ACTION_SCALE * a
        replay.ctrl[:] = target
        sim.model.actuator_forcerange[:, 0], sim.model.actuator_forcerange[:, 1] = lo, hi
        mujoco.mj_step(sim.model, replay, task.DECIMATION - 1)
        q, qd = replay.qpos[sim.qadr], replay.qvel[sim.dadr]
        expected = np.clip(KP * (target - q) - KD * qd, lo, hi)
        logged = sim.row()[L.block("joint_torque")]
        assert np.allclose(logged, expected, atol=1e-8)
        # and it is close to the PD law on the logged state itself (one substep later)
        row = sim.row()
        approx = np.clip(
            KP * (target - (row[L.block("joint_pos")] + task.DEFAULT_JOINT_POS)) - KD * row[L.block("joint_vel")],
            -80,
            80,
        )
        assert np.abs(approx - logged).mean() < 10.0
    assert np.all(np.abs(sim.last_torque) <= 80.0 + 1e-9)


def test_base_velocity_frames(sim: QuadrupedSim):
    _walk(sim, 40)
    res = np.zeros(6)
    mujoco.mj_objectVelocity(sim.model, sim.data, mujoco.mjtObj.mjOBJ_BODY, sim.trunk_id, res, 1)
    row = sim.row()
    assert np.allclose(row[L.block("base_ang_vel")], res[0:3], atol=1e-9)
    assert np.allclose(row[L.block("base_lin_vel")], res[3:6], atol=1e-9)
    assert np.allclose(row[L.block("projected_gravity")], sim.rotation.T @ [0, 0, -1])


def test_contacts_measured_at_state(sim: QuadrupedSim):
    _walk(sim, 45)
    flags = sim.foot_contact.copy()
    mujoco.mj_forward(sim.model, sim.data)
    sim._measure_contacts()
    assert np.array_equal(flags, sim.foot_contact)
    # contact flags agree with mj_contactForce on the feet
    f = np.zeros(6)
    expect = np.zeros(4)
    for i in range(sim.data.ncon):
        c = sim.data.contact[i]
        for k, leg in enumerate(task.LEGS):
            if sim.model.geom(f"{leg}_foot").id in (c.geom1, c.geom2):
                mujoco.mj_contactForce(sim.model, sim.data, i, f)
                expect[k] = max(expect[k], float(f[0] > 1.0))
    assert np.array_equal(expect, sim.foot_contact)


def test_termination_when_trunk_touches_ground(sim: QuadrupedSim):
    sim.reset()
    sim.data.qpos[2] = 0.3
    sim.data.qpos[3:7] = [np.cos(0.6), np.sin(0.6), 0, 0]  # rolled by 1.2 rad
    mujoco.mj_forward(sim.model, sim.data)
    for _ in range(30):
        sim.step(np.zeros(12))
        if sim.fallen():
            break
    assert sim.fallen()
    assert sim.row(termination=True)[L.termination_column] == 1.0


def test_ground_clearance_from_leg_kinematics_matches_mujoco() -> None:
    """The task's kinematic base height and thigh gaps (used to end crouched imagined episodes and to flag thigh
    contacts) equal MuJoCo's geometry: the base over its lowest foot, shank or thigh surface, and each leg's thigh /
    upper-shank capsule over the floor, for random joint angles and base orientations."""
    import mujoco
    import torch

    from rwm_core.sim.robot import QuadrupedSim
    from rwm_core.tasks import anymal_d_flat as task

    sim = QuadrupedSim()
    m, d = sim.model, sim.data
    parts = ("foot", "shank_lower", "shank_upper", "thigh")

    def lowest(gid: int) -> float:
        """Lowest surface point (world z) of a sphere or capsule geom."""
        z, r = d.geom_xpos[gid][2], m.geom_size[gid][0]
        if m.geom_type[gid] == mujoco.mjtGeom.mjGEOM_CAPSULE:
            half = abs(d.geom_xmat[gid].reshape(3, 3)[2, 2] * m.geom_size[gid][1])
            z = z - half
        return z - r

    rng = np.random.default_rng(0)
    est_h, true_h, est_gap, true_gap, knee_lowest = [], [], [], [], 0
    for _ in range(50):
        lo, hi = sim.joint_range[:, 0], sim.joint_range[:, 1]
        q = rng.uniform(lo, hi)
        quat = rng.normal(size=4) * [1, 0.3, 0.3, 0.3] + [3, 0, 0, 0]  # tilted, mostly upright
        d.qpos[:] = m.qpos0
        d.qpos[2] = 1.0
        d.qpos[3:7] = quat / np.linalg.norm(quat)
        d.qpos[sim.qadr] = q
        mujoco.mj_kinematics(m, d)
        rot = d.xmat[sim.trunk_id].reshape(3, 3)
        gravity_base = rot.T @ np.array([0.0, 0.0, -1.0])
        low = {(leg, p): lowest(m.geom(f"{leg}_{p}").id) for leg in task.LEGS for p in parts}
        floor = min(low.values())
        true_h.append(d.qpos[2] - floor)
        thigh_low = [min(low[(leg, "thigh")], low[(leg, "shank_upper")]) for leg in task.LEGS]
        true_gap.append([z - floor for z in thigh_low])
        knee_lowest += int(min(thigh_low) < min(low[(leg, "foot")] for leg in task.LEGS))
        h, gap = task.ground_clearance(
            torch.tensor(q - task.DEFAULT_JOINT_POS, dtype=torch.float64),
            torch.tensor(gravity_base, dtype=torch.float64),
        )
        est_h.append(float(h))
        est_gap.append(gap.tolist())
    np.testing.assert_allclose(est_h, true_h, atol=1e-6)
    np.testing.assert_allclose(est_gap, true_gap, atol=1e-6)
    assert np.ptp(true_h) > 0.2  # the poses cover crouched and stretched legs
    assert 0 < knee_lowest < 50  # and kneeling as well as standing on the feet


def test_trunk_gap_from_leg_kinematics_matches_mujoco() -> None:
    """The task's kinematic trunk gap (used to end imagined episodes that sit or kneel on the trunk) equals MuJoCo's
    geometry: the lowest point of the trunk box and the hip housings over the lowest leg surface, for random joint
    angles and base orientations."""
    import mujoco
    import torch

    from rwm_core.sim.robot import QuadrupedSim
    from rwm_core.tasks import anymal_d_flat as task

    sim = QuadrupedSim()
    m, d = sim.model, sim.data

    def lowest(gid: int) -> float:
        """Lowest surface point (world z) of a box, sphere or capsule geom."""
        z, size, rot = d.geom_xpos[gid][2], m.geom_size[gid], d.geom_xmat[gid].reshape(3, 3)
        if m.geom_type[gid] == mujoco.mjtGeom.mjGEOM_BOX:
            return z - float(np.abs(rot[2]) @ size)
        if m.geom_type[gid] == mujoco.mjtGeom.mjGEOM_CAPSULE:
            z = z - abs(rot[2, 2] * size[1])
        return z - size[0]

    legs = [m.geom(f"{leg}_{p}").id for leg in task.LEGS for p in ("foot", "shank_lower", "shank_upper", "thigh")]
    trunk = [m.geom("trunk").id] + [m.geom(f"{leg}_hip").id for leg in task.LEGS]
    rng = np.random.default_rng(1)
    est, true = [], []
    for _ in range(50):
        q = rng.uniform(sim.joint_range[:, 0], sim.joint_range[:, 1])
        quat = rng.normal(size=4) * [1, 0.5, 0.5, 0.3] + [2, 0, 0, 0]  # tilted, up to a sit
        d.qpos[:] = m.qpos0
        d.qpos[2] = 1.0
        d.qpos[3:7] = quat / np.linalg.norm(quat)
        d.qpos[sim.qadr] = q
        mujoco.mj_kinematics(m, d)
        gravity_base = d.xmat[sim.trunk_id].reshape(3, 3).T @ np.array([0.0, 0.0, -1.0])
        true.append(min(lowest(g) for g in trunk) - min(lowest(g) for g in legs))
        est.append(
            float(
                task.trunk_gap(
                    torch.tensor(q - task.DEFAULT_JOINT_POS, dtype=torch.float64),
                    torch.tensor(gravity_base, dtype=torch.float64),
                )
            )
        )
    np.testing.assert_allclose(est, true, atol=1e-6)
    assert min(true) < 0 < max(true)  # the poses cover the trunk below and above the legs' lowest point


def test_a_sit_is_a_trunk_contact_fall_and_the_trunk_gap_sees_it() -> None:
    """Folding the hind legs sits the robot on its hip housings: the simulator ends the episode on a trunk contact
    with the tilt and height limits unmet, and the kinematic trunk gap on the recorded state says so too."""
    import torch

    from rwm_core.evaluation.policy import evaluate_policy
    from rwm_core.tasks import anymal_d_flat as task

    lay = task.LAYOUT
    sit = np.zeros(12)
    sit[[5, 7]], sit[[9, 11]] = -4.0, 6.0  # hind HFE and KFE targets: thighs back, knees folded
    out = evaluate_policy(lambda obs: sit, 2, 200, seed=0, observation_noise=False, pushes=False, record_rows=True)
    assert out["falls"] == [True, True]
    assert out["fall_causes"] == {"trunk_contact": 2, "tilt": 0, "low_base": 0}
    for rows in out["rows"]:
        r = torch.from_numpy(rows).float()
        gap = task.trunk_gap(r[:, lay.block("joint_pos")], r[:, lay.block("projected_gravity")])
        assert float(gap[0]) > 0.3  # the reset pose stands
        assert float(gap[-1]) < task.TRUNK_CONTACT_GAP
