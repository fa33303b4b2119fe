"""The dataset artifact every stage after validation reads: one float32 array, its window index, normalisation.

On disk (a directory): ``rows.npy`` (rows x 66, float32), ``window_starts.npy`` (int64), ``normalization.json``,
``dataset.json`` (task, H, F, file boundaries), plus ``validation.json`` and ``manifest.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rwm_core.artifacts import check_format_version
from rwm_core.data.layout import ColumnLayout
from rwm_core.data.normalizer import Normalizer
from rwm_core.data.windows import contiguous_split, gather_windows
from rwm_core.loaders import fail, format_version, load_json_file, load_npy_file, one_line
from rwm_core.tasks import get_task

ARTIFACT_VERSION = 1
ROWS_FILE = "rows.npy"
WINDOWS_FILE = "window_starts.npy"
NORMALIZATION_FILE = "normalization.json"
META_FILE = "dataset.json"


@dataclass
class WindowBatch:
    """A batch of windows split into model inputs; all tensors are ``(B, H + F, dim)``."""

    states: torch.Tensor  # normalised
    actions: torch.Tensor  # normalised
    contacts: torch.Tensor
    terminations: torch.Tensor


def window_batch(rows: torch.Tensor, normalizer: Normalizer, layout: ColumnLayout) -> WindowBatch:
    """Raw (B, L, columns) windows as model inputs: normalised states and actions, raw contact/termination labels."""
    return WindowBatch(
        states=normalizer.normalize_state(rows[..., layout.state]),
        actions=normalizer.normalize_action(rows[..., layout.action]),
        contacts=rows[..., layout.contacts],
        terminations=rows[..., layout.termination],
    )


@dataclass
class Dataset:
    """In-memory view of the dataset artifact."""

    data: np.ndarray  # (rows, n_columns) float32, contiguous
    window_starts: np.ndarray  # int64, valid starts for history + forecast
    normalizer: Normalizer
    task_name: str
    history: int
    forecast: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> Any:
        return get_task(self.task_name)

    @property
    def layout(self) -> ColumnLayout:
        return self.task.LAYOUT

    @property
    def window_length(self) -> int:
        return self.history + self.forecast

    @property
    def n_rows(self) -> int:
        return int(self.data.shape[0])

    def episode_ends(self) -> np.ndarray:
        """Rows after which a new episode starts: terminations, plus the last row of every independent stream."""
        ends = np.asarray(self.data[:, self.layout.termination_column]) != 0
        stream_ends = self.meta.get("stream_ends") or []
        if stream_ends:
            ends = ends.copy()
            ends[np.asarray(stream_ends, dtype=np.int64)] = True
        return ends

    def split(self, val_fraction: float, n_blocks: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Train/validation window starts from held-out contiguous blocks of the series."""
        return contiguous_split(self.window_starts, self.n_rows, self.window_length, val_fraction, n_blocks)

    def gather(self, starts: np.ndarray | torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Raw rows ``(B, length, n_columns)`` for the given window starts."""
        return gather_windows(self.data, starts, length or self.window_length)

    def batch(self, starts: np.ndarray | torch.Tensor, length: int | None = None) -> WindowBatch:
        """Normalised states/actions and raw contact/termination labels for the given window starts."""
        return window_batch(self.gather(starts, length), self.normalizer, self.layout)

    def save(self, out_dir: str | Path) -> None:
        """Write the array files (the caller owns atomicity of the whole directory)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / ROWS_FILE, np.ascontiguousarray(self.data, dtype=np.float32))
        np.save(out / WINDOWS_FILE, self.window_starts.astype(np.int64))
        self.normalizer.save(out / NORMALIZATION_FILE)
        meta = dict(self.meta)
        meta.update(
            artifact_version=ARTIFACT_VERSION,
            task=self.task_name,
            history=self.history,
            forecast=self.forecast,
            n_rows=self.n_rows,
            n_columns=int(self.data.shape[1]),
            n_windows=int(len(self.window_starts)),
        )
        (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path, mmap: bool = False) -> Dataset:
        """Load from the artifact directory (or any file inside it, such as ``dataset.json``).

        Every file is checked before use (present, complete, of its format, of the task's layout and consistent
        with ``dataset.json``), so a broken or mismatched artifact fails with one :class:`InputError` line.
        """
        p = Path(path)
        root = p if p.is_dir() else p.parent
        expected = "a dataset artifact directory (written by `rwm validate`)"
        if not p.exists():
            raise fail(p, expected, "nothing (not found)")
        meta_path = root / META_FILE
        if not meta_path.exists():
            raise fail(root, expected, f"no {META_FILE} (not a dataset artifact)", "run `rwm validate` first")
        meta = load_json_file(meta_path, "the dataset description written by `rwm validate`")
        version = format_version(meta, meta_path, expected, key="artifact_version")
        check_format_version(version, ARTIFACT_VERSION, meta_path, "dataset artifact")
        missing = [k for k in ("task", "history", "forecast") if k not in meta]
        if missing:
            found = f"one without {', '.join(map(repr, missing))}"
            raise fail(meta_path, "a dataset description with 'task', 'history' and 'forecast'", found)
        try:
            task = get_task(str(meta["task"]))
            history, forecast = int(meta["history"]), int(meta["forecast"])
        except (TypeError, ValueError) as e:
            raise fail(meta_path, "a known task and integer history/forecast", one_line(str(e))) from None
        lay = task.LAYOUT
        data = load_npy_file(root / ROWS_FILE, f"the dataset rows (float, rows x {lay.n_columns})", mmap=mmap)
        if data.ndim != 2 or data.shape[1] != lay.n_columns or not np.issubdtype(data.dtype, np.floating):
            raise fail(
                root / ROWS_FILE,
                f"a float array of rows x {lay.n_columns} columns (task {task.NAME!r})",
                f"a {data.dtype} array of shape {data.shape}",
            )
        n_rows = int(data.shape[0])
        if "n_rows" in meta and meta["n_rows"] != n_rows:
            raise fail(root / ROWS_FILE, f"{meta['n_rows']} rows (as {META_FILE} says)", f"{n_rows} rows")
        starts = load_npy_file(root / WINDOWS_FILE, "the window index (1-D integer array)")
        if starts.ndim != 1 or not np.issubdtype(starts.dtype, np.integer):
            raise fail(root / WINDOWS_FILE, "a 1-D integer array", f"a {starts.dtype} array of shape {starts.shape}")
        last = n_rows - (history + forecast)
        if len(starts) and (int(starts.min()) < 0 or int(starts.max()) > last):
            raise fail(
                root / WINDOWS_FILE,
                f"window starts in [0, {last}] ({n_rows} rows, windows of {history + forecast})",
                f"starts from {int(starts.min())} to {int(starts.max())}",
            )
        norm_path = root / NORMALIZATION_FILE
        norm_raw = load_json_file(norm_path, "the normalisation (state/action mean and std)")
        try:
            normalizer = Normalizer.from_dict(norm_raw)
        except (KeyError, TypeError, ValueError) as e:
            raise fail(norm_path, "state_mean, state_std, action_mean, action_std", f"not those ({e!r})") from None
        widths = tuple(len(np.atleast_1d(a)) for a in (normalizer.state_mean, normalizer.state_std))
        widths += tuple(len(np.atleast_1d(a)) for a in (normalizer.action_mean, normalizer.action_std))
        want = (lay.state_dim, lay.state_dim, lay.action_dim, lay.action_dim)
        if widths != want:
            raise fail(
                norm_path,
                f"normalisation for {lay.state_dim} state and {lay.action_dim} action dims",
                f"mean/std widths {'/'.join(map(str, widths))}",
            )
        return cls(
            data=data,
            window_starts=starts,
            normalizer=normalizer,
            task_name=str(meta["task"]),
            history=history,
            forecast=forecast,
            meta=meta,
        )
