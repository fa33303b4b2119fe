"""The batched simulator (mujoco.rollout) against the single-robot reference: same physics, contacts, MDP, rewards."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rsl_rl.env import VecEnv

from rwm_core.config import PPOConfig
from rwm_core.sim.batch import BatchedQuadruped
from rwm_core.sim.env import SimEnv
from rwm_core.sim.robot import QuadrupedSim
from rwm_core.sim.vec_env import SimVecEnv
from rwm_core.tasks import anymal_d_flat as task
from rwm_core.tasks.anymal_d_flat.rewards import TERM_NAMES

LAY = task.LAYOUT


@pytest.mark.parametrize("n", [1, 4])
def test_batched_physics_equals_the_single_robot(n):
    """Same resets and actions: the same rows (state, torque, action, contacts) at every step, falls included."""
    rng = np.random.default_rng(n)
    yaw = rng.uniform(-np.pi, np.pi, n)
    actions = rng.normal(0.0, 0.8, (150, n, 12))  # strong enough to fall, kneel and hit the trunk
    sims = [QuadrupedSim() for _ in range(n)]
    for s, y in zip(sims, yaw, strict=True):
        s.reset(yaw=float(y))
    with BatchedQuadruped(n) as b:
        b.reset(np.arange(n), yaw)
        np.testing.assert_allclose(b.rows(), np.stack([s.row() for s in sims]), rtol=0, atol=1e-12)
        seen = np.zeros(LAY.n_columns)
        for t in range(len(actions)):
            b.step(actions[t])
            for s, a in zip(sims, actions[t], strict=True):
                s.step(a)
            ref = np.stack([s.row() for s in sims])
            got = b.rows()
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-8, err_msg=f"step {t + 1}")
            assert np.array_equal(got[:, LAY.contacts], ref[:, LAY.contacts])
            assert np.array_equal(b.trunk_contact, [s.trunk_contact for s in sims])
            np.testing.assert_allclose(b.base_height(), [s.base_height for s in sims], rtol=0, atol=1e-8)
            seen = np.maximum(seen, np.abs(got).max(axis=0))
        # the rollout exercised what the comparison is about: foot and thigh contacts, saturated torques
        assert seen[LAY.block("foot_contact")].min() == 1.0
        assert seen[LAY.block("joint_torque")].max() == pytest.approx(80.0)
        if n == 4:
            assert seen[LAY.block("thigh_contact")].max() == 1.0 and any(s.trunk_contact for s in sims)


def test_reset_contacts_copied_from_the_first_reset_equal_a_measurement_at_any_yaw():
    """Resets copy the reset pose's contacts instead of measuring them; a measurement at random yaws agrees."""
    with BatchedQuadruped(64) as b:
        b.step(np.random.default_rng(0).normal(0.0, 1.0, (64, 12)))  # leave the reset state first
        ids = np.arange(0, 64, 3)
        b.reset(ids, np.random.default_rng(1).uniform(-np.pi, np.pi, ids.size))
        copied = (b.trunk_contact[ids].copy(), b.foot_contact[ids].copy(), b.thigh_contact[ids].copy())
        b._sense(ids, b._pd(ids))  # measure: one forward pass at the reset states
        measured = (b.trunk_contact[ids], b.foot_contact[ids], b.thigh_contact[ids])
        for c, m in zip(copied, measured, strict=True):
            assert np.array_equal(c, m)
        assert copied[1].all() and not copied[0].any() and not copied[2].any()


def _yaw(sim: QuadrupedSim) -> float:
    w, _, _, z = sim.data.qpos[3:7]
    return float(2 * np.arctan2(z, w))


@pytest.mark.parametrize("n", [1, 4])
def test_batched_env_equals_the_single_robot_env(n):
    """Observation, reward terms and falls of SimVecEnv equal SimEnv's, for the same start, command and actions."""
    refs = [SimEnv(seed=10 + i, observation_noise=False, pushes=False) for i in range(n)]
    ref_obs = np.stack([r.reset() for r in refs])
    env = SimVecEnv(PPOConfig(num_envs=n, observation_noise=False, pushes=False, record_envs=0))
    try:
        ids = np.arange(n)
        env.sim.reset(ids, np.array([_yaw(r.sim) for r in refs]))
        env.commands[:] = torch.tensor(np.stack([r.command for r in refs]), dtype=torch.float32)
        env.rewards.reset()
        np.testing.assert_allclose(env.get_observations()["policy"].numpy(), ref_obs, atol=1e-6)
        rng = np.random.default_rng(0)
        alive = np.ones(n, dtype=bool)
        falls = 0
        for _ in range(90):  # shorter than the command interval: no resampling on either side
            a = rng.normal(0.0, 1.5, (n, 12)).astype(np.float32)  # what a torch policy hands over
            obs, reward, dones, extras = env.step(torch.from_numpy(a))
            for i, r in enumerate(refs):
                if not alive[i]:
                    continue
                o, rew, terms, fell = r.step(a[i].astype(np.float64))
                # the task reward is the single robot's; PPO's reward also carries the one-off fall cost
                assert extras["step"]["reward"][i].item() == pytest.approx(rew, abs=1e-6)
                cost = env.termination_penalty if fell else 0.0
                assert reward[i].item() == pytest.approx(rew - cost, abs=1e-6)
                assert bool(dones[i]) == fell
                if fell:
                    alive[i] = False
                    falls += 1
                    continue
                np.testing.assert_allclose(obs["policy"][i].numpy(), o, atol=1e-5)
        assert falls >= 1  # a fall was compared, not only steps
    finally:
        env.close()


def test_vec_env_interface_time_outs_and_logs():
    env = SimVecEnv(PPOConfig(num_envs=3, episode_length=5, record_envs=2), seed=0)
    try:
        assert isinstance(env, VecEnv)
        obs = env.get_observations()
        assert obs["policy"].shape == (3, task.OBS_DIM)
        for _ in range(5):
            obs, reward, dones, extras = env.step(torch.zeros(3, 12))
            assert reward.shape == (3,) and dones.shape == (3,)
            rec = extras["record"]
            assert rec["rows"].shape == (2, LAY.n_columns)
        assert bool(dones.all()) and bool(extras["time_outs"].all())  # standing: every episode times out
        assert np.all(rec["rows"][:, LAY.termination] == 0.0)  # a time-out is not a fall
        log = extras["log"]
        assert log["/episode/length"] == 5 and log["/episode/fall"] == 0
        for name in (*TERM_NAMES, "termination"):
            assert f"/episode_reward/{name}" in log
        assert list(rec["reset_ids"]) == [0, 1] and np.all(rec["reset_rows"][:, LAY.action] == 0.0)
        assert torch.all(env.episode_length_buf == 0)
    finally:
        env.close()


def test_vec_env_is_deterministic():
    def run() -> list[float]:
        env = SimVecEnv(PPOConfig(num_envs=4, record_envs=0), seed=3)
        gen = torch.Generator().manual_seed(0)
        out = []
        for _ in range(30):
            _, r, _, _ = env.step(torch.randn(4, 12, generator=gen))
            out.extend(r.tolist())
        env.close()
        return out

    assert run() == run()
