"""`rwm validate`: check a directory of CSV files and write the dataset artifact every later stage reads.

Errors (bad files, no usable window) stop with one message and leave nothing behind; oddities that a user may
accept (gravity far from unit length, a constant state column) become warnings in ``validation.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rwm_core.artifacts import atomic_dir, atomic_write_json, sha256_file
from rwm_core.config import DatasetConfig
from rwm_core.data.dataset import Dataset
from rwm_core.data.io import (
    STREAMS_FILE,
    DatasetError,
    check_binary,
    files_are_independent,
    list_data_files,
    read_csv_file,
    stream_breaks,
)
from rwm_core.data.normalizer import Normalizer
from rwm_core.data.windows import valid_window_starts
from rwm_core.tasks import get_task

VALIDATION_FILE = "validation.json"


def load_rows(data_dir: str | Path, task: Any, progress: bool = False) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Read and check every file; return the concatenated float32 table and per-file info."""
    files = list_data_files(data_dir)
    layout = task.LAYOUT
    names = task.COLUMN_NAMES
    binary = layout.binary_columns()
    tables: list[np.ndarray] = []
    info: list[dict[str, Any]] = []
    iterator: Any = files
    if progress:
        from tqdm import tqdm

        iterator = tqdm(files, desc="reading", unit="file", leave=False)
    for f in iterator:
        values = read_csv_file(f.path, layout.n_columns, names)
        check_binary(values, binary, f.path, names)
        tables.append(values)
        info.append({"file": f.path.name, "rows": int(values.shape[0]), "sha256": sha256_file(f.path)})
    data = np.ascontiguousarray(np.concatenate(tables, axis=0), dtype=np.float32)
    return data, info


def summarize(data: np.ndarray, task: Any, cfg: DatasetConfig) -> tuple[dict[str, Any], list[str]]:
    """Statistics and warnings for the report (no errors here)."""
    layout = task.LAYOUT
    names = task.COLUMN_NAMES
    warnings: list[str] = []
    d64 = data.astype(np.float64)
    stats = {
        names[c]: {
            "mean": float(d64[:, c].mean()),
            "std": float(d64[:, c].std()),
            "min": float(d64[:, c].min()),
            "max": float(d64[:, c].max()),
        }
        for c in range(layout.n_columns)
    }
    st = layout.state
    for c in range(st.start, st.stop):
        if d64[:, c].min() == d64[:, c].max():
            warnings.append(f"state column {c} ({names[c]}) is constant ({d64[0, c]:g}); its std is zero")
    g = d64[:, layout.block("projected_gravity")]
    gnorm = np.linalg.norm(g, axis=1)
    far = np.abs(gnorm - 1.0) > cfg.gravity_norm_tolerance
    if far.any():
        first = int(np.argmax(far))
        warnings.append(
            f"projected gravity norm deviates from 1 by more than {cfg.gravity_norm_tolerance:g} in {int(far.sum())} "
            f"rows (first at row {first}: |g| = {gnorm[first]:.3f}); is the gravity block in the base frame?"
        )
    feet = data[:, layout.block("foot_contact")]
    thighs = data[:, layout.block("thigh_contact")]
    legs = task.LEGS
    summary = {
        "column_stats": stats,
        "foot_contact_duty": {leg: float(feet[:, i].mean()) for i, leg in enumerate(legs)},
        "thigh_contact_rate": {leg: float(thighs[:, i].mean()) for i, leg in enumerate(legs)},
        "gravity_norm": {"mean": float(gnorm.mean()), "min": float(gnorm.min()), "max": float(gnorm.max())},
    }
    return summary, warnings


def validate_dataset(
    data_dir: str | Path, out_dir: str | Path, cfg: DatasetConfig | None = None, progress: bool = True
) -> dict[str, Any]:
    """Validate ``data_dir`` and write the artifact and report into ``out_dir`` (all or nothing).

    The overview figure is drawn separately (``rwm plot overview``), so figure options never invalidate the data.
    """
    cfg = cfg or DatasetConfig()
    task = get_task(cfg.task)
    layout = task.LAYOUT
    data_dir = Path(data_dir)
    data, files = load_rows(data_dir, task, progress=progress)
    length = cfg.history + cfg.forecast
    n_rows = int(data.shape[0])
    if n_rows < length:
        raise DatasetError(
            f"{data_dir}: {n_rows} rows in total, fewer than one window of history {cfg.history} + forecast "
            f"{cfg.forecast} = {length} rows"
        )
    term = data[:, layout.termination_column]
    # independent files (our simulator's output) end their episode streams without a termination label
    stream_ends: list[int] = []
    if files_are_independent(data_dir):
        stream_ends = (np.cumsum([f["rows"] for f in files])[:-1] - 1).tolist()
        offsets = dict(zip([f["file"] for f in files], np.cumsum([0] + [f["rows"] for f in files])[:-1], strict=True))
        for name, rows in stream_breaks(data_dir).items():
            if name not in offsets:
                raise DatasetError(f"{data_dir / STREAMS_FILE}: stream_breaks names {name!r}, which is not a data file")
            n_file = next(f["rows"] for f in files if f["file"] == name)
            bad = [i for i in rows if i >= n_file]
            if bad:
                raise DatasetError(f"{data_dir / STREAMS_FILE}: stream_breaks of {name} past its {n_file} rows: {bad}")
            stream_ends.extend(int(offsets[name]) + i for i in rows)
        stream_ends = sorted(set(stream_ends))
    ends = term != 0
    ends[stream_ends] = True
    starts = valid_window_starts(ends, length)
    if len(starts) == 0:
        raise DatasetError(
            f"{data_dir}: no valid window of {length} rows: every span of {length - 1} consecutive rows holds a "
            f"termination (column {layout.termination_column}); episodes are too short for history {cfg.history} "
            f"+ forecast {cfg.forecast}"
        )
    n_term = int((term != 0).sum())
    episodes = int(ends.sum()) + (0 if ends[-1] else 1)
    normalizer = Normalizer.build(cfg.normalization, task, data[:, layout.state], data[:, layout.action])
    summary, warnings = summarize(data, task, cfg)
    report: dict[str, Any] = {
        "data_dir": str(data_dir),
        "task": cfg.task,
        "files": files,
        "rows": n_rows,
        "terminations": n_term,
        "independent_files": bool(stream_ends),
        "episodes": episodes,
        "history": cfg.history,
        "forecast": cfg.forecast,
        "valid_windows": int(len(starts)),
        "normalization": cfg.normalization,
        "warnings": warnings,
        **summary,
    }
    dataset = Dataset(
        data=data,
        window_starts=starts,
        normalizer=normalizer,
        task_name=cfg.task,
        history=cfg.history,
        forecast=cfg.forecast,
        meta={"source_dir": str(data_dir), "files": [f["file"] for f in files], "stream_ends": stream_ends},
    )
    with atomic_dir(out_dir) as tmp:
        dataset.save(tmp)
        atomic_write_json(tmp / VALIDATION_FILE, report)
    return report
