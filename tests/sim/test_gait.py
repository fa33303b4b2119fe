"""Trotting controller: kinematics and that it really walks where it is told to."""

from __future__ import annotations

import mujoco
import numpy as np

from rwm_core.sim.gait import TrotController
from rwm_core.sim.robot import QuadrupedSim
from rwm_core.tasks import anymal_d_flat as task


def test_kinematics_match_mujoco():
    sim = QuadrupedSim()
    ctl = TrotController(sim)
    m, d = sim.model, sim.data
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = sim.default_q + rng.uniform(-0.4, 0.4, 12)
        d.qpos[:7] = [0, 0, 0, 1, 0, 0, 0]
        d.qpos[sim.qadr] = q
        mujoco.mj_kinematics(m, d)
        p, jac = ctl.forward_kinematics(q)
        for i, leg in enumerate(task.LEGS):
            assert np.allclose(d.geom(f"{leg}_foot").xpos, p[i] + ctl.hip[i], atol=1e-12)
        assert np.allclose(ctl.inverse_kinematics(p), q, atol=1e-9)
        for j in range(3):
            dq = np.zeros(12)
            dq[4 * j : 4 * j + 4] = 1e-6
            p2, _ = ctl.forward_kinematics(q + dq)
            assert np.allclose((p2 - p) / 1e-6, jac[:, :, j], atol=1e-5)


def test_walks_forward_sideways_and_turns():
    sim = QuadrupedSim()
    ctl = TrotController(sim)
    for cmd in ([0.8, 0.0, 0.0], [0.0, -0.5, 0.0], [0.0, 0.0, 0.8]):
        sim.reset()
        ctl.reset()
        ctl.set_command(np.array(cmd), standing=False)
        meas, feet = [], []
        for k in range(200):
            sim.step(ctl.act())
            assert not sim.fallen()
            if k >= 100:
                meas.append(np.r_[sim.base_lin_vel()[:2], sim.base_ang_vel()[2]])
                feet.append(sim.foot_contact.copy())
        mean = np.mean(meas, axis=0)
        assert np.allclose(mean, cmd, atol=0.2), (cmd, mean)
        duty = np.mean(feet)
        assert 0.35 < duty < 0.7  # a trot, not a stand


def test_standing_command_stops_stepping():
    sim = QuadrupedSim()
    ctl = TrotController(sim)
    ctl.set_command(np.array([0.5, 0.0, 0.0]), standing=False)
    for _ in range(100):
        sim.step(ctl.act())
    ctl.set_command(np.zeros(3), standing=True)
    for _ in range(150):
        sim.step(ctl.act())
    feet = []
    for _ in range(20):
        sim.step(ctl.act())
        feet.append(sim.foot_contact.copy())
    assert np.mean(feet) == 1.0
    assert np.linalg.norm(sim.base_lin_vel()[:2]) < 0.1
