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

from rwm_core.data.layout import ColumnLayout
from rwm_core.data.normalizer import Normalizer
from rwm_core.data.windows import contiguous_split, gather_windows
from rwm_core.errors import InputError
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
        rows = self.gather(starts, length)
        lay = self.layout
        return WindowBatch(
            states=self.normalizer.normalize_state(rows[..., lay.state]),
            actions=self.normalizer.normalize_action(rows[..., lay.action]),
            contacts=rows[..., lay.contacts],
            terminations=rows[..., lay.termination],
        )

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
        """Load from the artifact directory (or any file inside it, such as ``dataset.json``)."""
        p = Path(path)
        root = p if p.is_dir() else p.parent
        meta_path = root / META_FILE
        if not meta_path.exists():
            raise InputError(f"{root}: not a dataset artifact (missing {META_FILE}); run `rwm validate` first")
        meta = json.loads(meta_path.read_text())
        version = meta.get("artifact_version", 0)
        if version > ARTIFACT_VERSION:
            raise InputError(
                f"{meta_path}: artifact version {version} is newer than this rwm_core supports ({ARTIFACT_VERSION})"
            )
        data = np.load(root / ROWS_FILE, mmap_mode="r" if mmap else None)
        return cls(
            data=data,
            window_starts=np.load(root / WINDOWS_FILE),
            normalizer=Normalizer.load(root / NORMALIZATION_FILE),
            task_name=meta["task"],
            history=int(meta["history"]),
            forecast=int(meta["forecast"]),
            meta=meta,
        )
