"""Per-iteration metrics: always a CSV (the record the workflow keeps), optionally mirrored to wandb.

wandb runs only when ``TrackingConfig.wandb`` is true, and offline unless ``wandb_mode`` says otherwise, so a
training run never needs network access or an account.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any

from rwm_core.artifacts import atomic_write_text
from rwm_core.config import TrackingConfig


class MetricsTracker:
    """Append one row per step to ``csv_path`` (flushed at once, so a crash keeps every finished row).

    The header is fixed by the first row logged; later rows fill missing columns with blanks. On resume, pass
    ``resume_step``: rows with ``step_key`` greater than it (written after the checkpoint) are dropped first. Pass
    ``restore`` (the :meth:`snapshot` stored in that checkpoint) too: Snakemake deletes the declared outputs of a
    killed job, this file among them, and the checkpoint is then the only record of the earlier rows.
    """

    def __init__(
        self,
        csv_path: str | Path,
        tracking: TrackingConfig | None = None,
        *,
        run_name: str | None = None,
        config: dict[str, Any] | None = None,
        resume_step: int | None = None,
        step_key: str = "iteration",
        restore: str | None = None,
    ) -> None:
        self.path = Path(csv_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.step_key = step_key
        self.columns: list[str] | None = None
        self._warned: set[str] = set()
        if resume_step is not None and restore is not None:
            atomic_write_text(self.path, restore)
        if resume_step is not None and self.path.exists():
            self._truncate(resume_step)
        elif self.path.exists():
            self.path.unlink()
        if self.path.exists():
            with self.path.open(newline="") as f:
                header = next(csv.reader(f), None)
            self.columns = header or None
        self._file = self.path.open("a", newline="")
        self._writer = csv.writer(self._file)
        self._wandb: Any = None
        if tracking is not None and tracking.wandb:
            self._wandb = _start_wandb(tracking, self.path.parent, run_name, config)

    def _truncate(self, step: int) -> None:
        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        header, body = rows[0], rows[1:]
        col = header.index(self.step_key) if self.step_key in header else None
        kept = [r for r in body if col is None or (r[col] != "" and int(float(r[col])) <= step)]
        lines = [header, *kept]
        text = "".join(_csv_line(r) for r in lines)
        atomic_write_text(self.path, text)

    def log(self, row: dict[str, Any]) -> None:
        """Write one row (numbers and strings); mirrored to wandb when enabled."""
        if self.columns is None:
            self.columns = list(row)
            self._writer.writerow(self.columns)
        extra = [k for k in row if k not in self.columns and k not in self._warned]
        if extra:
            warnings.warn(f"{self.path}: columns {extra} not in the header; not written to CSV", stacklevel=2)
            self._warned.update(extra)
        self._writer.writerow([_fmt(row.get(c, "")) for c in self.columns])
        self._file.flush()
        if self._wandb is not None:
            step = row.get(self.step_key)
            self._wandb.log({k: v for k, v in row.items() if isinstance(v, int | float)}, step=step)

    def snapshot(self) -> str:
        """The CSV written so far (stored in training checkpoints, see ``restore``)."""
        self._file.flush()
        return self.path.read_text()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def __enter__(self) -> MetricsTracker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _fmt(v: Any) -> Any:
    if isinstance(v, float) and math.isfinite(v):
        return repr(v)
    return v


def _csv_line(row: list[str]) -> str:
    import io

    buf = io.StringIO()
    csv.writer(buf).writerow(row)
    return buf.getvalue()


def _start_wandb(tracking: TrackingConfig, out_dir: Path, run_name: str | None, config: dict[str, Any] | None) -> Any:
    try:
        import wandb
    except ImportError:
        msg = "tracking.wandb is true but wandb is not installed; pip install 'rwm-core[tracking]'"
        raise RuntimeError(msg) from None
    return wandb.init(
        project=tracking.wandb_project,
        mode=tracking.wandb_mode,
        dir=str(out_dir),
        name=run_name,
        config=config or {},
        reinit="finish_previous",
    )
