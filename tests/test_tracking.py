"""Metrics CSV (always) and optional offline wandb mirroring."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rwm_core.config import TrackingConfig
from rwm_core.tracking import MetricsTracker


def _read(p: Path) -> list[dict[str, str]]:
    with p.open() as f:
        return list(csv.DictReader(f))


def test_csv_rows_header_and_flush(tmp_path: Path) -> None:
    p = tmp_path / "m" / "metrics.csv"
    with MetricsTracker(p) as tr:
        tr.log({"iteration": 1, "loss": 0.5, "lr": 1e-3})
        assert len(_read(p)) == 1  # flushed immediately
        tr.log({"iteration": 2, "loss": 0.25})
        with pytest.warns(UserWarning, match="not in the header"):
            tr.log({"iteration": 3, "loss": 0.125, "new": 1})
    rows = _read(p)
    assert [r["iteration"] for r in rows] == ["1", "2", "3"]
    assert float(rows[0]["lr"]) == 1e-3 and rows[1]["lr"] == ""


def test_resume_drops_rows_after_checkpoint_and_fresh_start_overwrites(tmp_path: Path) -> None:
    p = tmp_path / "metrics.csv"
    with MetricsTracker(p) as tr:
        for i in range(1, 6):
            tr.log({"iteration": i, "loss": float(i)})
    with MetricsTracker(p, resume_step=3) as tr:
        tr.log({"iteration": 4, "loss": 40.0})
    rows = _read(p)
    assert [r["iteration"] for r in rows] == ["1", "2", "3", "4"] and rows[-1]["loss"] == "40.0"
    with MetricsTracker(p) as tr:
        tr.log({"iteration": 1, "loss": 9.0})
    assert len(_read(p)) == 1


def test_resume_restores_rows_from_the_checkpoint_snapshot(tmp_path: Path) -> None:
    """Snakemake deletes a killed job's metrics.csv; the snapshot stored in the checkpoint brings the rows back."""
    p = tmp_path / "metrics.csv"
    with MetricsTracker(p) as tr:
        for i in range(1, 4):
            tr.log({"iteration": i, "loss": float(i)})
        snap = tr.snapshot()
        tr.log({"iteration": 4, "loss": 4.0})
    p.unlink()
    with MetricsTracker(p, resume_step=3, restore=snap) as tr:
        tr.log({"iteration": 4, "loss": 44.0})
    rows = _read(p)
    assert [r["iteration"] for r in rows] == ["1", "2", "3", "4"] and rows[-1]["loss"] == "44.0"


def test_wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = TrackingConfig(wandb=True)
    assert cfg.wandb_mode == "offline"
    with MetricsTracker(tmp_path / "metrics.csv", cfg, run_name="t", config={"a": 1}) as tr:
        tr.log({"iteration": 1, "loss": 0.5})
    assert (tmp_path / "wandb").is_dir()
    assert len(_read(tmp_path / "metrics.csv")) == 1
