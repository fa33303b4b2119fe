"""MOPO-PPO training in imagination: metrics, checkpoints, resume, exported actors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import FRESH_ACTOR, read_metrics, tiny_policy_world
from tensordict import TensorDict

from rwm_core.artifacts import ArtifactFormatError
from rwm_core.config import PolicyConfig
from rwm_core.errors import RwmError
from rwm_core.policy.export import OnnxPolicy, TorchScriptPolicy, export_actor
from rwm_core.policy.train import train_policy

# upstream's fresh actor (no clone, no anchor): the behaviour-cloning path has its own tests in test_bc.py
SMALL = PolicyConfig(
    num_envs=32,
    iterations=4,
    steps_per_env=8,
    checkpoint_every=2,
    mini_batches=2,
    **FRESH_ACTOR,
)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_policy_world(tmp_path_factory.mktemp("pol"))


def test_training_writes_metrics_checkpoints_and_exports(artifacts, tmp_path: Path) -> None:
    model, data = artifacts
    out = tmp_path / "p"
    summary = train_policy(model, data, out, SMALL, penalty=1.0, seed=0, device="cpu", progress=False)
    rows = read_metrics(out / "metrics.csv")
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]
    for key in (
        "reward_penalised",
        "reward_unpenalised",
        "uncertainty",
        "episode.length",
        "env_steps_per_s",
        "episode_reward.track_lin_vel_xy_exp",
    ):
        assert key in rows[0]
    pen, unpen, u = (float(rows[-1][k]) for k in ("reward_penalised", "reward_unpenalised", "uncertainty"))
    assert pen == pytest.approx(unpen - 1.0 * u * 0.02, rel=1e-4, abs=1e-6)
    assert (out / "checkpoints" / "iter_000002.pt").exists()
    assert (out / "policy.pt").exists() and (out / "policy.onnx").exists()
    assert summary["iterations"] == 4


def test_bfloat16_training_tracks_float32(artifacts, tmp_path: Path) -> None:
    """``policy.precision: bfloat16`` (bf16 world-model steps, PPO update under autocast) trains like float32:
    same first-iteration imagined reward to bf16 rounding, finite losses, a changed actor, float32 exports."""
    import dataclasses
    import warnings

    model, data = artifacts
    rows = {}
    for prec in ("float32", "bfloat16"):
        cfg = dataclasses.replace(SMALL, precision=prec, iterations=2, checkpoint_every=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # CPUs without native bf16 warn that it is slow
            train_policy(model, data, tmp_path / prec, cfg, penalty=1.0, seed=0, device="cpu", progress=False)
        rows[prec] = read_metrics(tmp_path / prec / "metrics.csv")
    for key in ("reward_unpenalised", "uncertainty"):
        ref, low = float(rows["float32"][0][key]), float(rows["bfloat16"][0][key])
        assert low == pytest.approx(ref, rel=0.02, abs=1e-3), key
    assert all(np.isfinite(float(v)) for k, v in rows["bfloat16"][-1].items() if k.startswith("loss."))
    state = torch.load(tmp_path / "bfloat16" / "policy_checkpoint.pt", weights_only=False)
    first = torch.load(tmp_path / "float32" / "policy_checkpoint.pt", weights_only=False)
    assert all(v.dtype == torch.float32 for v in state["actor_state_dict"].values() if v.is_floating_point())
    assert not all(
        torch.equal(v, first["actor_state_dict"][k]) for k, v in state["actor_state_dict"].items()
    )  # the runs differ (bf16 was used), yet stay close
    jit = torch.jit.load(str(tmp_path / "bfloat16" / "policy.pt"))
    assert jit(torch.zeros(1, 48)).dtype == torch.float32


def test_resume_continues_from_the_last_checkpoint(artifacts, tmp_path: Path) -> None:
    model, data = artifacts
    out = tmp_path / "p"
    first = PolicyConfig(**{**SMALL.__dict__, "iterations": 2})
    train_policy(model, data, out, first, penalty=0.0, seed=1, device="cpu", progress=False)
    assert (out / "checkpoints" / "iter_000002.pt").exists()  # the last iteration is always checkpointed
    train_policy(model, data, out, SMALL, penalty=0.0, seed=1, device="cpu", resume=True, progress=False)
    assert [int(r["iteration"]) for r in read_metrics(out / "metrics.csv")] == [1, 2, 3, 4]
    state = torch.load(out / "policy_checkpoint.pt", weights_only=False)
    assert state["iter"] == 4


def test_resume_after_a_killed_job_restores_metrics_and_refuses_future_checkpoints(artifacts, tmp_path: Path) -> None:
    model, data = artifacts
    out = tmp_path / "p"
    first = PolicyConfig(**{**SMALL.__dict__, "iterations": 2})
    train_policy(model, data, out, first, penalty=0.0, seed=1, device="cpu", progress=False)
    for name in ("metrics.csv", "policy.pt", "policy.onnx", "policy_checkpoint.pt"):  # what Snakemake deletes
        (out / name).unlink()
    summary = train_policy(model, data, out, SMALL, penalty=0.0, seed=1, device="cpu", resume=True, progress=False)
    assert summary["resumed_from"] == 2
    assert [int(r["iteration"]) for r in read_metrics(out / "metrics.csv")] == [1, 2, 3, 4]
    last = out / "checkpoints" / "iter_000004.pt"
    state = torch.load(last, weights_only=False)
    state["format_version"] += 1
    torch.save(state, last)
    with pytest.raises(ArtifactFormatError, match="newer than this rwm_core supports"):
        train_policy(model, data, out, SMALL, penalty=0.0, seed=1, device="cpu", resume=True, progress=False)


def test_negative_penalty_is_rejected(artifacts, tmp_path: Path) -> None:
    model, data = artifacts
    with pytest.raises(RwmError, match="penalty"):
        train_policy(model, data, tmp_path / "p", SMALL, penalty=-1.0, device="cpu", progress=False)


def test_exports_match_the_pytorch_actor(tmp_path: Path) -> None:
    from rsl_rl.models import MLPModel

    obs = TensorDict({"policy": torch.zeros(2, 48)}, batch_size=[2])
    torch.manual_seed(3)
    actor = MLPModel(
        obs,
        {"actor": ["policy"]},
        "actor",
        12,
        hidden_dims=[128, 128, 128],
        activation="elu",
        distribution_cfg={"class_name": "GaussianDistribution", "init_std": 1.0},
    )
    paths = export_actor(actor, tmp_path)
    x = torch.randn(7, 48)
    with torch.no_grad():
        ref = actor(TensorDict({"policy": x}, batch_size=[7])).numpy()
    np.testing.assert_allclose(TorchScriptPolicy(paths["torchscript"])(x.numpy()), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(OnnxPolicy(paths["onnx"])(x.numpy()), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(OnnxPolicy(paths["onnx"])(x.numpy()[0]), ref[0], rtol=1e-4, atol=1e-5)


def test_resume_ignores_checkpoints_from_another_config(artifacts, tmp_path: Path, capsys) -> None:
    model, data = artifacts
    out = tmp_path / "p"
    first = PolicyConfig(**{**SMALL.__dict__, "iterations": 2})
    train_policy(model, data, out, first, penalty=0.0, seed=1, device="cpu", progress=False)
    other = PolicyConfig(**{**SMALL.__dict__, "entropy_coef": 0.01})
    train_policy(model, data, out, other, penalty=0.0, seed=1, device="cpu", resume=True, progress=False)
    assert "starting from scratch" in capsys.readouterr().out
    assert [int(r["iteration"]) for r in read_metrics(out / "metrics.csv")] == [1, 2, 3, 4]
