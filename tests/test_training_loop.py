"""The shared training-loop skeleton on a toy trainer: cadence, resume, metrics truncation, NaN stop."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch

from rwm_core.artifacts import atomic_path
from rwm_core.errors import InputError, RwmError
from rwm_core.training_loop import TrainingLoop


class Diverged(RwmError):
    pass


class Crash(Exception):
    """A job killed mid-iteration (after its row was written, before the next checkpoint)."""


def toy_train(
    out: Path,
    iterations: int = 4,
    every: int = 2,
    resume: bool = False,
    fingerprint: str = "f",
    nan_at: int | None = None,
    crash_after: int | None = None,
) -> TrainingLoop:
    """A trainer in miniature: one random draw per iteration from a checkpointed generator."""
    gen = torch.Generator().manual_seed(0)
    total = torch.zeros(())
    loop = TrainingLoop(out, "toy", iterations, every, Diverged)
    state = loop.resume(resume, fingerprint, lambda p: torch.load(p, weights_only=False), 1)
    if state is not None:
        with loop.restoring("a toy checkpoint"):
            gen.set_state(state["gen"])
            total = state["total"]

    def save(path: Path, iteration: int, metrics_csv: str) -> None:
        state = {"iter": iteration, "format_version": 1, "fingerprint": fingerprint, "metrics_csv": metrics_csv}
        with atomic_path(path) as tmp:
            torch.save({**state, "gen": gen.get_state(), "total": total.clone()}, tmp)

    with loop.open(save, tracking=None, config={}, progress=False, desc="toy"):
        for it in loop:
            total = total + torch.rand((), generator=gen)
            x = float("nan") if it + 1 == nan_at else float(total)
            loop.end_iteration({"iteration": it + 1, "x": x, "wall_s": loop.wall_s}, finite=("x",))
            if it + 1 == crash_after:
                raise Crash
    return loop


def rows(out: Path) -> list[dict[str, str]]:
    with (out / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def checkpoints(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").glob("iter_*.pt"))


def test_checkpoints_every_n_iterations_and_after_the_last(tmp_path: Path) -> None:
    loop = toy_train(tmp_path / "a", iterations=5, every=2)
    assert checkpoints(tmp_path / "a") == ["iter_000002.pt", "iter_000004.pt", "iter_000005.pt"]
    assert [r["iteration"] for r in rows(tmp_path / "a")] == ["1", "2", "3", "4", "5"]
    assert loop.last_row["iteration"] == 5 and loop.start_iteration == 0
    assert loop.last_good == tmp_path / "a" / "checkpoints" / "iter_000005.pt"
    toy_train(tmp_path / "b", iterations=3, every=0)  # 0: only the last
    assert checkpoints(tmp_path / "b") == ["iter_000003.pt"]


def test_a_checkpoint_holds_the_metrics_rows_up_to_its_iteration(tmp_path: Path) -> None:
    toy_train(tmp_path, iterations=4, every=2)
    state = torch.load(tmp_path / "checkpoints" / "iter_000002.pt", weights_only=False)
    assert [r["iteration"] for r in csv.DictReader(state["metrics_csv"].splitlines())] == ["1", "2"]


def test_resume_after_a_crash_drops_rows_past_the_checkpoint_and_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    toy_train(tmp_path / "full", iterations=6, every=2)
    part = tmp_path / "part"
    with pytest.raises(Crash):
        toy_train(part, iterations=6, every=2, crash_after=3)
    assert [r["iteration"] for r in rows(part)] == ["1", "2", "3"]  # row 3 is past the last checkpoint
    loop = toy_train(part, iterations=6, every=2, resume=True)
    assert loop.start_iteration == 2
    assert [r["iteration"] for r in rows(part)] == ["1", "2", "3", "4", "5", "6"]
    assert [r["x"] for r in rows(part)] == [r["x"] for r in rows(tmp_path / "full")]


def test_resume_restores_the_metrics_a_killed_job_lost(tmp_path: Path) -> None:
    toy_train(tmp_path, iterations=2, every=2)
    (tmp_path / "metrics.csv").unlink()  # Snakemake deletes the declared outputs of a killed job
    loop = toy_train(tmp_path, iterations=4, every=2, resume=True)
    assert loop.start_iteration == 2
    assert [r["iteration"] for r in rows(tmp_path)] == ["1", "2", "3", "4"]


def test_resume_is_off_unless_asked_and_other_fingerprints_start_from_scratch(tmp_path: Path, capsys) -> None:
    toy_train(tmp_path, iterations=2, every=2)
    assert toy_train(tmp_path, iterations=4, every=2).start_iteration == 0
    loop = toy_train(tmp_path, iterations=4, every=2, resume=True, fingerprint="other")
    assert loop.start_iteration == 0
    assert "starting from scratch" in capsys.readouterr().out
    assert [r["iteration"] for r in rows(tmp_path)] == ["1", "2", "3", "4"]


def test_a_nan_stops_before_logging_and_names_the_last_good_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(Diverged, match=r"toy: iteration 3: non-finite \{'x': nan\}.*iter_000002\.pt"):
        toy_train(tmp_path / "a", iterations=4, every=2, nan_at=3)
    assert [r["iteration"] for r in rows(tmp_path / "a")] == ["1", "2"]
    assert checkpoints(tmp_path / "a") == ["iter_000002.pt"]
    with pytest.raises(Diverged, match="iteration 1: .*no checkpoint was written yet"):
        toy_train(tmp_path / "b", iterations=4, every=2, nan_at=1)


def test_state_that_does_not_fit_is_one_input_error_naming_the_checkpoint(tmp_path: Path) -> None:
    toy_train(tmp_path, iterations=2, every=2)
    path = tmp_path / "checkpoints" / "iter_000002.pt"
    state: dict[str, Any] = torch.load(path, weights_only=False)
    state["gen"] = torch.zeros(3, dtype=torch.uint8)  # not a generator state
    torch.save(state, path)
    with pytest.raises(InputError, match=r"iter_000002\.pt: expected a toy checkpoint, found state that does not"):
        toy_train(tmp_path, iterations=4, every=2, resume=True)
    loop = TrainingLoop(tmp_path, "toy", 4, 2)
    assert loop.resume(True, "f", lambda p: torch.load(p, weights_only=False), 1) is not None
    with pytest.raises(Diverged), loop.restoring("anything"):  # our own errors pass unchanged
        raise Diverged("kept")
