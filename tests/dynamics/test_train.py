"""Pretraining: outputs, determinism, resume, NaN handling, and learning a learnable system."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from helpers import save_dataset, small_cfg

from rwm_core.artifacts import ArtifactFormatError
from rwm_core.config import EvaluationConfig
from rwm_core.dynamics import checkpoint, train
from rwm_core.dynamics.train import NonFiniteLossError, pretrain
from rwm_core.evaluation.prediction import evaluate_dynamics


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_dataset(tmp_path_factory.mktemp("data"))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return checkpoint.read(path)["system_dynamics_state_dict"]


def test_pretrain_writes_model_checkpoints_and_metrics(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = pretrain(dataset, out, small_cfg(), progress=False)
    assert (out / "model.pt").exists() and summary["iterations"] == 4
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["iter_000002.pt", "iter_000004.pt"]
    rows = _rows(out / "metrics.csv")
    assert [r["iteration"] for r in rows] == ["1", "2", "3", "4"]
    for col in (
        "loss_state",
        "loss_bound",
        "loss_contact",
        "loss_termination",
        "loss_total",
        "val_loss",
        "lr",
        "windows_per_s",
        "grad_norm",
    ):
        assert col in rows[0] and rows[-1][col] != ""
    loaded = checkpoint.load(out / "model.pt")
    assert loaded.meta["history"] == 6 and loaded.training_config["iterations"] == 4
    assert summary["windows_per_s"] > 0 and summary["n_val_windows"] > 0


def test_deterministic_and_resume_equals_uninterrupted(dataset: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    pretrain(dataset, full, small_cfg(iterations=4), seed=3, progress=False)
    again = tmp_path / "again"
    pretrain(dataset, again, small_cfg(iterations=4), seed=3, progress=False)
    part = tmp_path / "part"
    pretrain(dataset, part, small_cfg(iterations=2), seed=3, progress=False)
    summary = pretrain(dataset, part, small_cfg(iterations=4), seed=3, resume=True, progress=False)
    assert summary["resumed_from"] == 2 and summary["iterations"] == 4
    a, b, c = (_weights(p / "model.pt") for p in (full, again, part))
    for k in a:
        assert torch.equal(a[k], b[k]), k
        torch.testing.assert_close(a[k], c[k], rtol=0, atol=1e-6, msg=k)
    assert [r["iteration"] for r in _rows(part / "metrics.csv")] == ["1", "2", "3", "4"]
    assert _rows(part / "metrics.csv")[3]["loss_total"] == _rows(full / "metrics.csv")[3]["loss_total"]


def test_resume_after_a_killed_job_restores_metrics_and_refuses_future_checkpoints(
    dataset: Path, tmp_path: Path
) -> None:
    """A killed job's declared outputs are deleted by Snakemake; resume still continues with the full metrics."""
    out = tmp_path / "run"
    pretrain(dataset, out, small_cfg(iterations=2), seed=3, progress=False)
    (out / "metrics.csv").unlink()
    (out / "model.pt").unlink()
    summary = pretrain(dataset, out, small_cfg(iterations=4), seed=3, resume=True, progress=False)
    assert summary["resumed_from"] == 2
    assert [r["iteration"] for r in _rows(out / "metrics.csv")] == ["1", "2", "3", "4"]
    last = out / "checkpoints" / "iter_000004.pt"
    raw = checkpoint.read(last)
    raw["format_version"] = checkpoint.CHECKPOINT_FORMAT_VERSION + 1
    torch.save(raw, last)
    with pytest.raises(ArtifactFormatError, match="newer than this rwm_core supports"):
        pretrain(dataset, out, small_cfg(iterations=4), seed=3, resume=True, progress=False)


def test_nan_loss_stops_with_clear_error_and_keeps_checkpoint(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = train.ensemble_loss
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        losses = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] > 5 and torch.is_grad_enabled():  # 3rd iteration (2 mini-batches each), training only
            losses["total"] = losses["total"] * float("nan")
        return losses

    monkeypatch.setattr(train, "ensemble_loss", flaky)
    out = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match="iteration 3.*iter_000002.pt"):
        pretrain(dataset, out, small_cfg(iterations=4), progress=False)
    assert (out / "checkpoints" / "iter_000002.pt").exists()
    assert not (out / "model.pt").exists()
    assert checkpoint.read(out / "checkpoints" / "iter_000002.pt")["iter"] == 2


def test_trained_model_beats_hold_last_state(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "learn"
    pretrain(dataset, out, small_cfg(iterations=60, batch_size=64, checkpoint_every=0), progress=False)
    res = evaluate_dynamics(
        out / "model.pt",
        dataset,
        tmp_path / "eval.json",
        EvaluationConfig(horizon=30, n_windows=16, noise_scales=[0.1], compare_steps=30),
        val_fraction=0.2,
    )
    assert res["summary"]["beats_baseline_every_step"], res["summary"]
    assert res["summary"]["model_mean"] < 0.9 * res["summary"]["baseline_mean"]
