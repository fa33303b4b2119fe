"""Behaviour cloning with hindsight commands: the pairs against a row-by-row reference, the fit, the warm start,
and the clone as PPO's anchor (behaviour-regularised PPO)."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_dataset, read_metrics, tiny_policy_world

from rwm_core.config import PolicyConfig
from rwm_core.errors import RwmError
from rwm_core.policy.bc import CloneAnchor, ClonePairs, CloningError, clone, hindsight_pairs
from rwm_core.policy.train import read_checkpoint, train_policy


def reference_pairs(data, horizon: int) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """The pairs written out row by row: an episode ends after a row with its end flag set."""
    lay = data.layout
    rows = np.asarray(data.data, dtype=np.float64)
    ends = data.episode_ends()
    kept, obs, actions, commands = [], [], [], []
    for t in range(rows.shape[0] - horizon - 1):
        if ends[t : t + horizon].any():  # an episode ends at t .. t + horizon - 1: the next rows are another robot
            continue
        future = rows[t + 1 : t + 1 + horizon]
        lin, ang = future[:, lay.block("base_lin_vel")], future[:, lay.block("base_ang_vel")]
        cmd = np.array([lin[:, 0].mean(), lin[:, 1].mean(), ang[:, 2].mean()])
        r = rows[t]
        o = np.concatenate(
            [
                r[lay.block("base_lin_vel")],
                r[lay.block("base_ang_vel")],
                r[lay.block("projected_gravity")],
                cmd,
                r[lay.block("joint_pos")],
                r[lay.block("joint_vel")],
                r[lay.action],
            ]
        )
        kept.append(t)
        obs.append(o)
        actions.append(rows[t + 1, lay.action])
        commands.append(cmd)
    return kept, np.array(obs), np.array(actions), np.array(commands)


@pytest.mark.parametrize("horizon", [1, 7, 50])
def test_hindsight_pairs_match_the_row_by_row_reference(horizon: int) -> None:
    data = make_dataset(1200, seed=2)
    pairs = hindsight_pairs(data, horizon)
    kept, obs, actions, commands = reference_pairs(data, horizon)
    n_ends = int(data.episode_ends()[: data.n_rows - 1].sum())
    assert 0 < len(kept) < data.n_rows - horizon - 1 - n_ends * (horizon - 1)  # episode boundaries drop pairs
    assert pairs.obs.shape == (len(kept), obs.shape[1])
    np.testing.assert_allclose(pairs.obs.numpy(), obs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pairs.actions.numpy(), actions, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pairs.commands.numpy(), commands, rtol=1e-5, atol=1e-5)


def test_hindsight_pairs_refuse_a_horizon_no_episode_reaches() -> None:
    data = make_dataset(600, seed=1)  # four episode ends: episodes of ~120 rows
    with pytest.raises(CloningError, match="longer than policy.bc_command_horizon"):
        hindsight_pairs(data, 400)
    with pytest.raises(CloningError, match=">= 1"):
        hindsight_pairs(data, 0)


def test_clone_fits_a_known_map_and_reports_held_out_error() -> None:
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(4000, 48, generator=g)
    w = torch.randn(48, 12, generator=g) / 7
    pairs = ClonePairs(obs=obs, actions=torch.tanh(obs @ w), commands=obs[:, 9:12])
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(48, 64), torch.nn.ELU(), torch.nn.Linear(64, 12))
    history = clone(mlp, pairs, epochs=30, learning_rate=3e-3, batch_size=256, noise_scale=None, generator=g)
    assert [h["epoch"] for h in history] == list(range(1, 31))
    variance = float(pairs.actions.var())
    assert history[0]["val_mse"] > 0.3 * variance  # an untrained net does not already fit
    assert history[-1]["val_mse"] < 0.1 * variance
    assert history[-1]["train_mse"] < history[0]["train_mse"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_policy_world(tmp_path_factory.mktemp("bc"))


BC = PolicyConfig(  # the clone alone: warm-up and anchor are switched on by the tests that need them
    num_envs=16,
    iterations=3,
    steps_per_env=8,
    checkpoint_every=1,
    mini_batches=2,
    bc_epochs=3,
    bc_command_horizon=5,
    critic_warmup_iterations=0,
    bc_regularization=0.0,
)


def actor_mean(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in read_checkpoint(path)["actor_state_dict"].items() if k.startswith("mlp.")}


def test_warm_start_is_iteration_zero_and_deterministic(world, tmp_path: Path) -> None:
    model, data = world
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        train_policy(model, data, out, BC, penalty=1.0, seed=3, device="cpu", progress=False)
    a, b = outs
    with (a / "bc.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and float(rows[-1]["val_mse"]) > 0
    assert (a / "bc.csv").read_text() == (b / "bc.csv").read_text()
    zero = a / "checkpoints" / "iter_000000.pt"
    assert int(read_checkpoint(zero)["iter"]) == 0
    fresh = tmp_path / "fresh"
    train_policy(model, data, fresh, replace(BC, bc_epochs=0), 1.0, 3, "cpu", progress=False)
    assert not (fresh / "checkpoints" / "iter_000000.pt").exists() and not (fresh / "bc.csv").exists()
    cloned, scratch = actor_mean(zero), actor_mean(fresh / "checkpoints" / "iter_000001.pt")
    assert any(not torch.equal(cloned[k], scratch[k]) for k in cloned)
    final_a, final_b = actor_mean(a / "policy_checkpoint.pt"), actor_mean(b / "policy_checkpoint.pt")
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)


def test_critic_warmup_holds_the_cloned_actor(world, tmp_path: Path) -> None:
    model, data = world
    out = tmp_path / "w"
    cfg = replace(BC, critic_warmup_iterations=2)
    train_policy(model, data, out, cfg, penalty=1.0, seed=0, device="cpu", progress=False)
    ck = out / "checkpoints"
    zero = read_checkpoint(ck / "iter_000000.pt")
    two, three = read_checkpoint(ck / "iter_000002.pt"), read_checkpoint(ck / "iter_000003.pt")
    for k, v in zero["actor_state_dict"].items():  # the mean and the std
        assert torch.equal(v, two["actor_state_dict"][k]), k
    assert any(not torch.equal(v, three["actor_state_dict"][k]) for k, v in zero["actor_state_dict"].items())
    assert any(not torch.equal(v, two["critic_state_dict"][k]) for k, v in zero["critic_state_dict"].items())


def test_a_run_killed_after_the_warm_start_resumes_from_it(world, tmp_path: Path) -> None:
    model, data = world
    cut = tmp_path / "cut"
    train_policy(model, data, cut, BC, penalty=1.0, seed=1, device="cpu", progress=False)
    for p in (cut / "checkpoints").glob("iter_00000[1-9].pt"):
        p.unlink()  # as if killed before the first PPO checkpoint
    (cut / "bc.csv").unlink()
    summary = train_policy(model, data, cut, BC, penalty=1.0, seed=1, device="cpu", resume=True, progress=False)
    assert summary["resumed_from"] == 0
    assert not (cut / "bc.csv").exists()  # no second cloning: the actor came from iteration 0


def test_clone_anchor_loss_is_the_mean_squared_gap_of_the_action_means() -> None:
    from types import SimpleNamespace

    from rsl_rl.models import MLPModel
    from tensordict import TensorDict

    obs = TensorDict({"policy": torch.randn(6, 48, generator=torch.Generator().manual_seed(0))}, batch_size=[6])
    torch.manual_seed(1)
    actor = MLPModel(obs, {"actor": ["policy"]}, "actor", 12, [16, 16], "elu",
                     distribution_cfg={"class_name": "GaussianDistribution", "init_std": 0.3})  # fmt: skip
    anchor = CloneAnchor(actor, 2.5)
    assert anchor.mirror_loss_coeff == 2.5 and anchor.use_mirror_loss
    with torch.no_grad():
        for p in actor.mlp.parameters():
            p.add_(0.1)  # the actor moves on; the anchor is a frozen copy
    batch = SimpleNamespace(observations=obs)
    loss = anchor.compute_loss(actor, batch, 4)  # only the mini-batch's own rows, as rsl-rl passes them
    x = obs["policy"][:4].double()
    ref = 0.0
    with torch.no_grad():
        for i in range(4):  # row by row, in float64
            a = actor.mlp.double()(x[i])
            c = anchor.anchor.mlp.double()(x[i])
            ref += float(((a - c) ** 2).sum()) / (4 * 12)
    actor.float(), anchor.anchor.float()
    assert float(loss) == pytest.approx(ref, rel=1e-4) and float(loss) > 0
    loss.backward()
    assert all(p.grad is not None for p in actor.mlp.parameters())
    assert all(p.grad is None for p in anchor.anchor.parameters())


def test_bc_regularization_needs_a_clone(world, tmp_path: Path) -> None:
    model, data = world
    with pytest.raises(RwmError, match="bc_epochs is 0"):
        train_policy(model, data, tmp_path / "r", replace(BC, bc_epochs=0, bc_regularization=1.0), 1.0, 0, "cpu",
                     progress=False)  # fmt: skip
    assert not (tmp_path / "r").exists()


def _gap_to_clone(out: Path, data: Path) -> float:
    from rwm_core.data.dataset import Dataset

    obs = hindsight_pairs(Dataset.load(data), BC.bc_command_horizon).obs
    nets = []
    for name in ("checkpoints/iter_000000.pt", "policy_checkpoint.pt"):
        net = torch.nn.Sequential(torch.nn.Linear(48, 128), torch.nn.ELU(), torch.nn.Linear(128, 128), torch.nn.ELU(),
                                  torch.nn.Linear(128, 128), torch.nn.ELU(), torch.nn.Linear(128, 12))  # fmt: skip
        net.load_state_dict({k.removeprefix("mlp."): v for k, v in actor_mean(out / name).items()})
        nets.append(net)
    with torch.no_grad():
        return float(torch.mean((nets[1](obs) - nets[0](obs)) ** 2))


def test_bc_regularization_holds_the_actor_near_the_clone(world, tmp_path: Path) -> None:
    model, data = world
    cfg = replace(BC, iterations=4, learning_rate=3e-3, schedule="fixed")  # a fast-moving actor to hold back
    free, held = tmp_path / "free", tmp_path / "held"
    train_policy(model, data, free, cfg, 1.0, 2, "cpu", progress=False)
    train_policy(model, data, held, replace(cfg, bc_regularization=100.0), 1.0, 2, "cpu", progress=False)
    assert (free / "bc.csv").read_text() == (held / "bc.csv").read_text()  # the same clone to start from
    gap_free, gap_held = _gap_to_clone(free, data), _gap_to_clone(held, data)
    assert gap_free > 0 and gap_held < 0.5 * gap_free
    rows = read_metrics(held / "metrics.csv")
    assert all(float(r["loss.bc"]) > 0 for r in rows[1:]) and "loss.bc" not in read_metrics(free / "metrics.csv")[0]


def test_a_regularised_run_resumes_with_the_clone_as_anchor(world, tmp_path: Path) -> None:
    model, data = world
    cfg = replace(BC, bc_regularization=1.0)
    out = tmp_path / "r"
    train_policy(model, data, out, replace(cfg, iterations=2), 1.0, 0, "cpu", progress=False)
    summary = train_policy(model, data, out, cfg, 1.0, 0, "cpu", resume=True, progress=False)
    assert summary["resumed_from"] == 2 and float(read_metrics(out / "metrics.csv")[-1]["loss.bc"]) > 0
    (out / "checkpoints" / "iter_000000.pt").unlink()  # the anchor is gone: say so, do not anchor on something else
    with pytest.raises(RwmError, match="iter_000000.pt"):
        train_policy(model, data, out, replace(cfg, iterations=4), 1.0, 0, "cpu", resume=True, progress=False)
