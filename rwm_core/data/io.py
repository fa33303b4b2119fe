"""Reading directories of ``state_action_data_<N>.csv`` files with errors that name file, line and column.

Files are concatenated in index order into one time series. Upstream's loader retried forever on a missing or
short file; here every problem is one immediate :class:`DatasetError`.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rwm_core.errors import RwmError

FILE_PATTERN = re.compile(r"^state_action_data_(\d+)\.csv$")
STREAMS_FILE = "streams.json"  # optional: {"independent_files": true} when every file is its own episode stream


class DatasetError(RwmError, ValueError):
    """Bad input data; the message names the file and, where it applies, the line and column."""


@dataclass(frozen=True)
class DataFile:
    index: int
    path: Path


def list_data_files(data_dir: str | Path) -> list[DataFile]:
    """Data files in index order; a missing directory, no files or a gap in the numbering is an error."""
    d = Path(data_dir)
    if not d.exists():
        raise DatasetError(f"{d}: data directory does not exist")
    if not d.is_dir():
        raise DatasetError(f"{d}: not a directory")
    files = []
    for p in d.iterdir():
        m = FILE_PATTERN.match(p.name)
        if m and p.is_file():
            files.append(DataFile(int(m.group(1)), p))
    if not files:
        raise DatasetError(f"{d}: no data files (expected state_action_data_0.csv, state_action_data_1.csv, ...)")
    files.sort(key=lambda f: f.index)
    seen = {f.index for f in files}
    if len(seen) != len(files):
        dup = sorted(i for i in seen if sum(f.index == i for f in files) > 1)
        raise DatasetError(f"{d}: more than one file for index {dup[0]} (e.g. leading zeros)")
    for expected in range(files[-1].index + 1):
        if expected not in seen:
            raise DatasetError(
                f"{d}: state_action_data_{expected}.csv is missing (files are numbered 0..{files[-1].index}; "
                "the series would have a gap)"
            )
    return files


def read_csv_file(path: str | Path, n_columns: int, column_names: list[str] | None = None) -> np.ndarray:
    """Read one headerless numeric CSV into float32 ``(rows, n_columns)``, or raise naming line and column."""
    path = Path(path)
    names = column_names or [str(i) for i in range(n_columns)]
    text = path.read_text()
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DatasetError(f"{path}: file is empty (expected rows of {n_columns} numbers)")
    for i, line in enumerate(lines):
        n = line.count(",") + 1
        if n != n_columns:
            raise DatasetError(f"{path}: line {i + 1}: expected {n_columns} columns, found {n}")
    try:
        df = pd.read_csv(io.StringIO(text), header=None, dtype=np.float64, engine="c", na_filter=True)
    except (ValueError, pd.errors.ParserError):
        raise _locate_bad_cell(path, lines, names) from None
    values = df.to_numpy(dtype=np.float64)
    if values.shape[1] != n_columns:  # pragma: no cover - guarded by the line scan above
        raise DatasetError(f"{path}: expected {n_columns} columns, found {values.shape[1]}")
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raw = lines[r].split(",")[c].strip()
        raise DatasetError(
            f"{path}: line {r + 1}, column {c} ({names[c]}): expected a finite number, got {raw or 'an empty cell'!r}"
        )
    return values.astype(np.float32)


def _locate_bad_cell(path: Path, lines: list[str], names: list[str]) -> DatasetError:
    for i, line in enumerate(lines):
        for c, cell in enumerate(line.split(",")):
            try:
                float(cell)
            except ValueError:
                hint = " (a header line? files must have none)" if i == 0 else ""
                return DatasetError(
                    f"{path}: line {i + 1}, column {c} ({names[c]}): expected a number, got {cell.strip()!r}{hint}"
                )
    return DatasetError(f"{path}: could not be parsed as numeric CSV")


def check_binary(values: np.ndarray, columns: list[int], path: Path, names: list[str], first_line: int = 1) -> None:
    """Contact and termination columns must hold exactly 0 or 1."""
    sub = values[:, columns]
    bad = (sub != 0) & (sub != 1)
    if bad.any():
        r, j = np.argwhere(bad)[0]
        c = columns[j]
        raise DatasetError(
            f"{path}: line {r + first_line}, column {c} ({names[c]}): expected 0 or 1, got {values[r, c]:g}"
        )


def write_csv_file(path: str | Path, rows: np.ndarray, binary_columns: list[int] | None = None) -> None:
    """Write rows in the upstream format (no header), atomically; binary columns as integers."""
    from rwm_core.artifacts import atomic_path

    fmt = ["%.9g"] * rows.shape[1]
    for c in binary_columns or []:
        fmt[c] = "%d"
    with atomic_path(path) as tmp:
        np.savetxt(tmp, rows + 0.0, fmt=fmt, delimiter=",")  # + 0.0 writes -0 as 0


def files_are_independent(data_dir: str | Path) -> bool:
    """True when ``streams.json`` in ``data_dir`` says each file is its own episode stream (our simulator's output).

    Upstream files are consecutive pieces of one stream and carry no such file; then windows may cross files.
    """
    p = Path(data_dir) / STREAMS_FILE
    if not p.exists():
        return False
    try:
        return bool(json.loads(p.read_text()).get("independent_files", False))
    except (json.JSONDecodeError, AttributeError) as e:
        raise DatasetError(f'{p}: expected a JSON object like {{"independent_files": true}} ({e})') from None


def stream_breaks(data_dir: str | Path) -> dict[str, list[int]]:
    """Rows (0-based, per file) after which a new episode stream starts without a termination label (time-outs).

    Read from the ``stream_breaks`` object of ``streams.json``; empty when there is none.
    """
    p = Path(data_dir) / STREAMS_FILE
    if not p.exists():
        return {}
    try:
        raw = json.loads(p.read_text()).get("stream_breaks") or {}
    except (json.JSONDecodeError, AttributeError) as e:
        raise DatasetError(f'{p}: expected a JSON object like {{"independent_files": true}} ({e})') from None
    if not isinstance(raw, dict) or not all(
        isinstance(v, list) and all(isinstance(i, int) and i >= 0 for i in v) for v in raw.values()
    ):
        raise DatasetError(f"{p}: stream_breaks must map file names to lists of row indices >= 0, got {raw!r}")
    return {str(k): [int(i) for i in v] for k, v in raw.items()}


def write_streams_marker(data_dir: str | Path, breaks: dict[str, list[int]] | None = None) -> None:
    """Say that every file is its own episode stream; ``breaks``: rows after which a time-out reset follows."""
    from rwm_core.artifacts import atomic_write_json

    marker: dict[str, Any] = {
        "independent_files": True,
        "why": "each file starts a new episode stream; windows must not cross files",
    }
    if breaks:
        marker["stream_breaks"] = breaks
        marker["why_breaks"] = "rows after which a time-out reset starts a new episode (no termination label)"
    atomic_write_json(Path(data_dir) / STREAMS_FILE, marker)
