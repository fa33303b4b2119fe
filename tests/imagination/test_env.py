"""Imagination env: reset alignment with training, penalty accounting, time-outs, commands, determinism."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from helpers import tiny_world

from rwm_core.config import PolicyConfig
from rwm_core.data.dataset import Dataset
from rwm_core.dynamics.model import SystemDynamicsEnsemble
from rwm_core.dynamics.rollout import EnsembleRollout
from rwm_core.imagination.env import ImaginationEnv

H = 6


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[SystemDynamicsEnsemble, Dataset]:
    tmp = tmp_path_factory.mktemp("imag")
    model, ds = tiny_world(tmp, 2000, rows_seed=2, history=H, model_seed=0)
    model.eval()
    return model, ds


def make_env(
    world,
    n: int = 8,
    penalty: float = 0.0,
    noise: bool = False,
    length: int = 256,
    seed: int = 0,
    never_terminate: bool = True,
    uncertainty_offset: float = 0.0,
) -> ImaginationEnv:
    model, ds = world
    if never_terminate:
        with torch.no_grad():
            for head in model.auxiliary_heads:
                head.termination_layers[2].bias.fill_(-50.0)
    cfg = PolicyConfig(
        num_envs=n, observation_noise=noise, tilt_termination=not never_terminate, uncertainty_offset=uncertainty_offset
    )
    return ImaginationEnv(model, ds.normalizer, ds, cfg, episode_length=length, penalty=penalty, seed=seed)


def test_reset_continues_from_the_window_and_matches_training_alignment(world) -> None:
    model, ds = world
    env = make_env(world)
    lay = ds.layout
    starts = env.episode_starts.numpy()
    rows = ds.data
    # the current state and last action are the window's last row
    np.testing.assert_allclose(env.state.numpy(), rows[starts + H - 1][:, lay.state], rtol=1e-6)
    np.testing.assert_allclose(env.last_action.numpy(), rows[starts + H - 1][:, lay.action], rtol=1e-6)
    # stepping with the dataset's next action predicts row H exactly as the training-time warm-up does
    actions = torch.from_numpy(rows[starts + H][:, lay.action])
    with torch.inference_mode():
        env.step(actions)
        batch = ds.batch(starts, H + 1)
        ref = EnsembleRollout(model, env.member_ids.clone()).warmup(batch.states[:, :H], batch.actions[:, 1 : H + 1])
    np.testing.assert_allclose(env.state_n.numpy(), ref.state.numpy(), rtol=1e-4, atol=1e-5)


def test_penalty_is_lambda_u_dt(world) -> None:
    env = make_env(world, penalty=2.5)
    with torch.inference_mode():
        _, rew, _, extras = env.step(torch.zeros(8, 12))
    st = extras["step"]
    expected = st["reward_unpenalised"] - 2.5 * st["uncertainty"] * 0.02
    torch.testing.assert_close(rew, expected)
    assert (st["uncertainty"] > 0).all()


def test_uncertainty_offset_prices_only_the_excess(world) -> None:
    """With u0 the penalty is λ·max(u - u0, 0)·dt: envs below u0 pay nothing, the others pay for the excess."""
    base = make_env(world, penalty=2.5)
    with torch.inference_mode():
        _, _, _, extras = base.step(torch.zeros(8, 12))
    u = extras["step"]["uncertainty"]
    u0 = float(u.median())  # some envs below, some above
    env = make_env(world, penalty=2.5, uncertainty_offset=u0)
    with torch.inference_mode():
        _, rew, _, extras = env.step(torch.zeros(8, 12))
    st = extras["step"]
    torch.testing.assert_close(st["uncertainty"], u)
    expected = st["reward_unpenalised"] - 2.5 * (u - u0).clamp_min(0.0) * 0.02
    torch.testing.assert_close(rew, expected)
    below = u <= u0
    assert below.any() and (~below).any()
    torch.testing.assert_close(rew[below], st["reward_unpenalised"][below])


def test_time_outs_end_episodes_and_are_flagged(world) -> None:
    env = make_env(world, length=5)
    first_starts = env.episode_starts.clone()
    with torch.inference_mode():
        for i in range(5):
            _, _, dones, extras = env.step(torch.zeros(8, 12))
            if i < 4:
                assert not dones.any()
    assert dones.all() and extras["time_outs"].all()
    assert "/episode/length" in extras["log"] and float(extras["log"]["/episode/length"]) == 5.0
    assert (env.episode_length_buf == 0).all()
    assert not torch.equal(env.episode_starts, first_starts)


def test_observation_layout_and_noise(world) -> None:
    env = make_env(world, n=4)
    obs = env.get_observations()["policy"]
    assert obs.shape == (4, 48)
    torch.testing.assert_close(obs[:, 9:12], env.commands)
    torch.testing.assert_close(obs[:, :9], env.state[:, :9])
    torch.testing.assert_close(obs[:, 12:36], env.state[:, 9:33])
    torch.testing.assert_close(obs[:, 36:48], env.last_action)
    noisy = make_env(world, n=4, noise=True).get_observations()["policy"]
    clean = torch.cat([env.state[:, :9], env.commands, env.state[:, 9:33], env.last_action], 1)
    diff = (noisy - clean).abs()  # same seed -> same windows and commands; only the noise differs
    assert diff[:, :3].max() <= 0.1 + 1e-6 and diff[:, 3:6].max() <= 0.2 + 1e-6
    assert diff[:, 24:36].max() <= 1.5 + 1e-6 and diff[:, 24:36].max() > 0.1
    assert diff[:, 9:12].max() == 0 and diff[:, 36:].max() == 0


def test_commands_members_and_determinism(world) -> None:
    a, b = make_env(world, n=64, seed=3), make_env(world, n=64, seed=3)
    assert set(a.member_ids.tolist()) == {0, 1, 2}
    assert a.commands.abs().max() <= 1.0
    with torch.inference_mode():
        for _ in range(3):
            oa, ra, _, _ = a.step(torch.ones(64, 12) * 0.1)
            ob, rb, _, _ = b.step(torch.ones(64, 12) * 0.1)
    torch.testing.assert_close(oa["policy"], ob["policy"])
    torch.testing.assert_close(ra, rb)


def test_member_sampling_per_step_predicts_each_step_with_a_new_member(world) -> None:
    """member_sampling: step draws the members anew before every step; the prediction is that member's mean."""
    model, ds = world
    make_env(world)  # fixes the termination heads as every other env here
    cfg = PolicyConfig(num_envs=64, observation_noise=False, tilt_termination=False, member_sampling="step")
    env = ImaginationEnv(model, ds.normalizer, ds, cfg, episode_length=256, seed=4)
    twin = ImaginationEnv(model, ds.normalizer, ds, cfg, episode_length=256, seed=4)
    seen = []
    with torch.inference_mode():
        for _ in range(3):
            before = env.state_n.clone()
            h = env.rollout.h.clone()
            _, rew, _, _ = env.step(torch.full((64, 12), 0.1))
            _, rew_twin, _, _ = twin.step(torch.full((64, 12), 0.1))
            torch.testing.assert_close(rew, rew_twin)  # seeded: the same draws
            ids = env.member_ids.clone()
            seen.append(ids)
            # the slow reference: all members from the same hidden state, then each row's drawn member
            ref = EnsembleRollout(model, None)
            ref.h = h
            res = ref.step(before, ds.normalizer.normalize_action(torch.full((64, 12), 0.1)), lean=True)
            expected = res.member_means[ids, torch.arange(64)]
            torch.testing.assert_close(env.state_n, expected, rtol=1e-4, atol=1e-5)
    assert all(not torch.equal(seen[0], other) for other in seen[1:])
    episode = make_env(world, n=64, seed=4)
    fixed = episode.member_ids.clone()
    with torch.inference_mode():
        episode.step(torch.full((64, 12), 0.1))
    assert torch.equal(episode.member_ids, fixed)  # the default keeps one member per episode


def test_push_changes_planar_velocity_only(world) -> None:
    pushed, plain = make_env(world, n=16, seed=5), make_env(world, n=16, seed=5)
    pushed.push_timer[:] = 1
    plain.push_timer[:] = 100
    with torch.inference_mode():
        pushed.step(torch.zeros(16, 12))
        plain.step(torch.zeros(16, 12))
    kick = pushed.state[:, :2] - plain.state[:, :2]
    assert kick.abs().max() <= 0.5 + 1e-5 and kick.abs().min() > 0
    torch.testing.assert_close(pushed.state[:, 2:], plain.state[:, 2:])
    torch.testing.assert_close(pushed.normalizer.denormalize_state(pushed.state_n), pushed.state, rtol=1e-5, atol=1e-5)
    assert (pushed.push_timer >= 48).all()


@pytest.mark.parametrize("tilt_termination", [True, False])
def test_predicted_tilt_past_the_limit_ends_the_episode(world, tilt_termination) -> None:
    """A predicted fall (gravity z above -cos 60 deg) ends the episode even when the termination head says no."""
    model, ds = world
    g_z = ds.layout.block("projected_gravity").start + 2
    saved = [hd.state_mean_layers[2].bias.detach().clone() for hd in model.state_heads]
    saved_term = [hd.termination_layers[2].bias.detach().clone() for hd in model.auxiliary_heads]
    with torch.no_grad():
        for head in model.auxiliary_heads:
            head.termination_layers[2].bias.fill_(-50.0)
        for hd in model.state_heads:  # every member predicts the trunk rolled far over (g_z well above -0.5)
            hd.state_mean_layers[2].bias[g_z] += 50.0
    try:
        cfg = PolicyConfig(num_envs=8, observation_noise=False, tilt_termination=tilt_termination)
        env = ImaginationEnv(model, ds.normalizer, ds, cfg, episode_length=256, seed=0)
        _, _, dones, extras = env.step(torch.zeros(8, 12))
        assert bool(dones.all()) is tilt_termination
        assert not bool(extras["time_outs"].any())
    finally:
        with torch.no_grad():
            for hd, b in zip(model.state_heads, saved, strict=True):
                hd.state_mean_layers[2].bias.copy_(b)
            for hd, b in zip(model.auxiliary_heads, saved_term, strict=True):
                hd.termination_layers[2].bias.copy_(b)


@pytest.mark.parametrize(("margin", "quantile"), [(None, 0.0), (0.0, 0.0), (0.0, 0.01), (1e6, 0.0)])
def test_a_state_outside_the_data_range_ends_the_episode(world, margin, quantile) -> None:
    """With ``out_of_data_termination`` a predicted state past the dataset's range (here |g_z| far above 1) ends the
    episode as a fall, charged the fall cost, unless the margin widens the range past it."""
    model, ds = world
    g_z = ds.layout.block("projected_gravity").start + 2
    with torch.no_grad():
        for head in model.auxiliary_heads:
            head.termination_layers[2].bias.fill_(-50.0)
    saved = [hd.state_mean_layers[2].bias.detach().clone() for hd in model.state_heads]
    with torch.no_grad():
        for hd in model.state_heads:  # every member predicts gravity z far beyond the data (normalised +20)
            hd.state_mean_layers[2].bias[g_z] += 20.0
    try:
        cfg = PolicyConfig(
            num_envs=8,
            observation_noise=False,
            tilt_termination=False,
            termination_penalty=2.0,
            out_of_data_termination=margin is not None,
            out_of_data_margin=margin or 0.0,
            out_of_data_quantile=quantile,
        )
        env = ImaginationEnv(model, ds.normalizer, ds, cfg, episode_length=256, seed=0)
        _, reward, dones, extras = env.step(torch.zeros(8, 12))
        ends = margin == 0.0
        assert bool(dones.all()) is ends and bool(dones.any()) is ends
        cost = extras["step"]["reward_unpenalised"] - reward
        torch.testing.assert_close(cost, torch.full((8,), 2.0 if ends else 0.0))
        if ends:
            assert float(extras["log"]["/episode/left_data"]) == 1.0
    finally:
        with torch.no_grad():
            for hd, b in zip(model.state_heads, saved, strict=True):
                hd.state_mean_layers[2].bias.copy_(b)


@pytest.mark.parametrize("length", [256, 1])
def test_termination_penalty_charges_falls_but_not_time_outs(world, length) -> None:
    """The fall cost lowers only the reward PPO optimises, is logged as its own term, and spares time-outs."""
    model, ds = world
    saved = [hd.termination_layers[2].bias.detach().clone() for hd in model.auxiliary_heads]
    with torch.no_grad():
        for head in model.auxiliary_heads:  # every env predicts a termination at once
            head.termination_layers[2].bias.fill_(50.0)
    try:
        cfg = PolicyConfig(num_envs=8, observation_noise=False, tilt_termination=False, termination_penalty=3.0)
        env = ImaginationEnv(model, ds.normalizer, ds, cfg, episode_length=length, seed=0)
        _, reward, dones, extras = env.step(torch.zeros(8, 12))
        assert bool(dones.all())
        step = extras["step"]
        expected_cost = 3.0 if length > 1 else 0.0  # an episode that reaches its length is a time-out
        torch.testing.assert_close(step["reward_penalised"], step["reward_unpenalised"] - expected_cost)
        torch.testing.assert_close(reward, step["reward_penalised"])
        assert float(extras["log"]["/episode_reward/termination"]) == pytest.approx(-expected_cost)
    finally:
        with torch.no_grad():
            for hd, b in zip(model.auxiliary_heads, saved, strict=True):
                hd.termination_layers[2].bias.copy_(b)


@contextlib.contextmanager
def predicted_kneel(world, kneel: bool, *aux_layers: str):
    """Bias every member to predict a kneeling pose (thighs swung by 0.8 rad, knees folded by 2 rad: base 0.13 m
    over the floor on its knees) when ``kneel``, and the auxiliary heads' ``aux_layers`` outputs to "never"."""
    model, ds = world
    hfe = ds.layout.block("joint_pos").start + 4  # HFE then KFE joints, relative to the default pose
    saved = [hd.state_mean_layers[2].bias.detach().clone() for hd in model.state_heads]
    saved_aux = [[getattr(hd, a)[2].bias.detach().clone() for a in aux_layers] for hd in model.auxiliary_heads]
    std = torch.as_tensor(ds.normalizer.state_std[hfe : hfe + 8])
    fold = torch.tensor([0.8, -0.8, 0.8, -0.8, -2.0, 2.0, -2.0, 2.0]) / std
    with torch.no_grad():
        for head in model.auxiliary_heads:
            for a in aux_layers:
                getattr(head, a)[2].bias.fill_(-50.0)
        if kneel:
            for hd in model.state_heads:
                hd.state_mean_layers[2].bias[hfe : hfe + 8] += fold
    try:
        yield
    finally:
        with torch.no_grad():
            for hd, b in zip(model.state_heads, saved, strict=True):
                hd.state_mean_layers[2].bias.copy_(b)
            for hd, biases in zip(model.auxiliary_heads, saved_aux, strict=True):
                for a, b in zip(aux_layers, biases, strict=True):
                    getattr(hd, a)[2].bias.copy_(b)


@pytest.mark.parametrize("crouch", [True, False])
def test_height_termination_ends_crouched_episodes(world, crouch) -> None:
    """With ``height_termination`` a predicted deep crouch (knees folded: the kinematic base height below the
    simulator's limit) ends the episode even when the termination head and the tilt rule say no."""
    model, ds = world
    with predicted_kneel(world, crouch, "termination_layers"):
        cfg = PolicyConfig(num_envs=8, observation_noise=False, tilt_termination=False, height_termination=True)
        env = ImaginationEnv(model, ds.normalizer, ds, cfg, episode_length=256, seed=0)
        _, _, dones, _ = env.step(torch.zeros(8, 12))
        assert bool(dones.all()) is crouch


@pytest.mark.parametrize("kinematic", [True, False])
def test_kinematic_thigh_contacts_charge_kneeling(world, kinematic) -> None:
    """With ``kinematic_thigh_contacts`` a predicted kneeling pose (knees on the floor by leg kinematics) is charged
    as thigh contacts even though the contact head predicts none; without it the kneel is free."""
    model, ds = world
    # terminations silenced too: a predicted fall resets the env, replacing the predicted contacts with the data's
    with predicted_kneel(world, True, "contact_layers", "termination_layers"):
        cfg = PolicyConfig(
            num_envs=8, observation_noise=False, tilt_termination=False, kinematic_thigh_contacts=kinematic
        )
        env = ImaginationEnv(model, ds.normalizer, ds, cfg, episode_length=256, seed=0)
        env.step(torch.zeros(8, 12))
        thigh = env.contacts[:, : ds.layout.block("thigh_contact").stop - ds.layout.block("thigh_contact").start]
        charged = env.episode_sums["undesired_contacts"]
        if kinematic:
            assert bool((thigh.sum(1) >= 1).all())
            assert bool((charged < 0).all())
        else:
            assert float(thigh.abs().sum()) == 0.0
            assert float(charged.abs().sum()) == 0.0


@pytest.mark.parametrize("check", [True, False])
def test_trunk_contact_termination_ends_predicted_sits(world, check) -> None:
    """With ``trunk_contact_termination`` a predicted sit (hind legs folded, nose up 49 deg: the hip housings on the
    floor by leg kinematics, as the simulator's sitting robot) ends the episode as a fall, though the termination
    head says never and the tilt is within the limit; without it the sit goes on."""
    model, ds = world
    lay = ds.layout
    jp, g = lay.block("joint_pos").start, lay.block("projected_gravity").start
    shift = torch.zeros(lay.state_dim)
    shift[[jp + 5, jp + 7]] = -1.8  # hind HFE
    shift[[jp + 9, jp + 11]] = 1.84  # hind KFE
    shift[g] = -0.75  # from upright gravity (0, 0, -1) to (-0.75, 0, -0.66)
    shift[g + 2] = 0.34
    shift = shift / torch.as_tensor(ds.normalizer.state_std)
    saved = [hd.state_mean_layers[2].bias.detach().clone() for hd in model.state_heads]
    saved_aux = [hd.termination_layers[2].bias.detach().clone() for hd in model.auxiliary_heads]
    with torch.no_grad():
        for hd in model.state_heads:
            hd.state_mean_layers[2].bias += shift
        for hd in model.auxiliary_heads:
            hd.termination_layers[2].bias.fill_(-50.0)
    try:
        cfg = PolicyConfig(num_envs=8, observation_noise=False, trunk_contact_termination=check)
        env = ImaginationEnv(model, ds.normalizer, ds, cfg, episode_length=256, seed=0)
        _, _, dones, _ = env.step(torch.zeros(8, 12))
        assert bool(dones.all()) is check
        if not check:  # the episodes go on in the predicted sit: there the kinematics put the trunk on the floor
            gap = ds.task.trunk_gap(env._block(env.state, "joint_pos"), env._block(env.state, "projected_gravity"))
            assert float(gap.max()) < ds.task.TRUNK_CONTACT_GAP
            assert not bool(ds.task.mdp.tilted(env._block(env.state, "projected_gravity")).any())
    finally:
        with torch.no_grad():
            for hd, b in zip(model.state_heads, saved, strict=True):
                hd.state_mean_layers[2].bias.copy_(b)
            for hd, b in zip(model.auxiliary_heads, saved_aux, strict=True):
                hd.termination_layers[2].bias.copy_(b)


def test_the_imagination_env_declares_rsl_rls_vecenv_interface():
    from rsl_rl.env import VecEnv

    from rwm_core.imagination.env import ImaginationEnv

    assert issubclass(ImaginationEnv, VecEnv)


def test_the_out_of_data_range_is_the_datas_quantiles_widened_by_the_margin(world) -> None:
    """The bounds are each state dimension's data quantiles (min and max at 0), widened by margin × their width."""
    model, ds = world
    states = torch.from_numpy(np.asarray(ds.data)[:, ds.layout.state]).float()
    for q, margin in [(0.0, 0.0), (0.1, 0.0), (0.1, 0.5)]:
        cfg = PolicyConfig(num_envs=2, out_of_data_termination=True, out_of_data_quantile=q, out_of_data_margin=margin)
        env = ImaginationEnv(model, ds.normalizer, ds, cfg, episode_length=256)
        lo, hi = torch.quantile(states, q, dim=0), torch.quantile(states, 1 - q, dim=0)
        torch.testing.assert_close(env.state_lo, lo - margin * (hi - lo))
        torch.testing.assert_close(env.state_hi, hi + margin * (hi - lo))
