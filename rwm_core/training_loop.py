"""The resumable loop every trainer runs around its own iteration step.

Why one place: `rwm pretrain`, `train-policy`, `train-ppo` and `train-online` must all continue a killed job exactly
(Snakemake reruns it with ``--resume``), keep metrics.csv consistent with the checkpoint they continue from, stop on
a NaN naming the checkpoint a rerun would continue from, and checkpoint on the same cadence. The trainer keeps all
that is numeric (its state, its step, what a checkpoint holds); this class draws no random number and touches no
tensor, so a trainer gives the same numbers with it as without it.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from rwm_core import artifacts
from rwm_core.config import TrackingConfig
from rwm_core.errors import InputError, RwmError
from rwm_core.loaders import one_line
from rwm_core.tracking import MetricsTracker

CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.csv"

SaveCheckpoint = Callable[[Path, int, str], object]
"""``save(path, iteration, metrics_csv)``: write the trainer's state after ``iteration`` to ``path`` atomically,
with ``metrics_csv`` (the rows so far) in it, so a resumed run can restore the metrics a killed job lost."""


def stored_fingerprint(state: dict[str, Any]) -> Any:
    """Where the policy trainers keep their resume fingerprint in a checkpoint."""
    return state.get("fingerprint")


class TrainingLoop:
    """Resume, metrics.csv, progress bar, NaN stop and checkpoint cadence of one training run in ``out``.

    Use::

        loop = TrainingLoop(out, "train-ppo", cfg.iterations, cfg.checkpoint_every, PolicyTrainingError)
        state = loop.resume(resume, fingerprint, read, FORMAT_VERSION)
        if state is not None:
            with loop.restoring("a checkpoint of this configuration"):
                ...  # load the trainer's state from ``state``
        with loop.open(save, tracking=tracking, config=..., progress=progress, desc="ppo"):
            for it in loop:  # 0-based, from the checkpoint's iteration on
                row = {"iteration": it + 1, ...}
                loop.end_iteration(row, finite=("reward",), postfix={"r": f"{row['reward']:.3f}"})
        ...  # final checkpoint and exports

    A checkpoint is written after every ``checkpoint_every``-th iteration (none when it is 0) and after the last.
    """

    def __init__(
        self,
        out: Path,
        stage: str,
        iterations: int,
        checkpoint_every: int,
        error: type[RwmError] = RwmError,
    ) -> None:
        self.out = out
        self.stage = stage
        self.iterations = iterations
        self.checkpoint_every = checkpoint_every
        self.error = error
        self.start_iteration = 0  # the iteration of the checkpoint resumed from; 0 for a fresh run
        self.iteration = 0  # the 1-based number of the iteration in progress (or last finished)
        self.resumed_path: Path | None = None
        self.last_good: Path | None = None  # the newest checkpoint written or resumed from
        self.last_row: dict[str, Any] = {}
        self._restore: str | None = None
        self._save: SaveCheckpoint | None = None
        self._tracker: MetricsTracker | None = None
        self._bar: Any = None
        self._wall0 = time.perf_counter()

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / CHECKPOINT_DIR

    def resume(
        self,
        enabled: bool,
        fingerprint: str,
        read: Callable[[Path], dict[str, Any]],
        supported_version: int,
        fingerprint_of: Callable[[dict[str, Any]], Any] = stored_fingerprint,
    ) -> dict[str, Any] | None:
        """The state of the latest checkpoint to continue (None: start from scratch); see
        :func:`rwm_core.artifacts.resumable_checkpoint` for what is continued, removed or refused."""
        if not enabled:
            return None
        found = artifacts.resumable_checkpoint(
            self.checkpoint_dir, self.iterations, fingerprint, read, fingerprint_of, self.stage, supported_version
        )
        if found is None:
            return None
        path, state = found
        with _fits(path, "a checkpoint with its iteration number"):
            self.start_iteration = int(state["iter"])
        self.resumed_path = self.last_good = path
        self._restore = state.get("metrics_csv")
        return state

    @contextlib.contextmanager
    def restoring(self, expected: str) -> Iterator[None]:
        """Around the trainer's loading of the resumed state: state that does not fit this run (another shape, a
        missing key) becomes one :class:`InputError` line naming the checkpoint, not a traceback."""
        assert self.resumed_path is not None, "restoring() without a resumed checkpoint"
        with _fits(self.resumed_path, expected):
            yield

    def open(
        self,
        save: SaveCheckpoint,
        *,
        tracking: TrackingConfig | None,
        config: dict[str, Any],
        progress: bool,
        desc: str,
    ) -> TrainingLoop:
        """Start metrics.csv (cut back to the resumed checkpoint's rows) and the progress bar; close with ``with``."""
        self._save = save
        self._tracker = MetricsTracker(
            self.out / METRICS_FILE,
            tracking,
            run_name=self.out.name,
            config=config,
            resume_step=self.start_iteration if self.start_iteration > 0 else None,
            restore=self._restore,
        )
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.iterations, initial=self.start_iteration, desc=desc, unit="it", dynamic_ncols=True
            )
        return self

    def __enter__(self) -> TrainingLoop:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tracker is not None:
            self._tracker.close()

    def __iter__(self) -> Iterator[int]:
        self._wall0 = time.perf_counter()
        for it in range(self.start_iteration, self.iterations):
            self.iteration = it + 1
            yield it

    @property
    def wall_s(self) -> float:
        """Seconds since this run's first iteration began (a resumed run counts from its own start)."""
        return time.perf_counter() - self._wall0

    def non_finite(self, values: dict[str, float], where: str = "") -> RwmError:
        """The error to raise on a NaN/Inf: what, where, and the checkpoint a rerun with ``--resume`` continues."""
        at = f"iteration {self.iteration}" + (f", {where}" if where else "")
        kept = f"last good checkpoint: {self.last_good}" if self.last_good else "no checkpoint was written yet"
        return self.error(f"{self.stage}: {at}: non-finite {values}; training stopped ({kept})")

    def end_iteration(
        self, row: dict[str, Any], finite: Iterable[str] = (), postfix: dict[str, str] | None = None
    ) -> None:
        """Stop if a ``finite`` column of ``row`` is NaN/Inf; else log the row, show ``postfix`` on the bar and
        write a checkpoint when one is due."""
        assert self._tracker is not None and self._save is not None, "end_iteration() before open()"
        bad = {k: row[k] for k in finite if not math.isfinite(row[k])}
        if bad:
            raise self.non_finite(bad)
        self._tracker.log(row)
        self.last_row = row
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix)
            self._bar.update(1)
        done = self.iteration
        if done == self.iterations or (self.checkpoint_every > 0 and done % self.checkpoint_every == 0):
            path = self.checkpoint_dir / artifacts.checkpoint_name(done)
            self._save(path, done, self._tracker.snapshot())
            self.last_good = path


@contextlib.contextmanager
def _fits(path: Path, expected: str) -> Iterator[None]:
    try:
        yield
    except RwmError:
        raise
    except (RuntimeError, ValueError, TypeError, KeyError) as e:
        raise InputError(
            f"{path}: expected {expected}, found state that does not fit it ({one_line(str(e))}); "
            "remove it to start from scratch"
        ) from None
