"""Shared fixtures: small synthetic CSV datasets in the upstream format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rwm_core.data.io import write_csv_file
from rwm_core.data.synthetic import synthetic_rows
from rwm_core.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
TASK = get_task("anymal_d_flat")
BINARY = TASK.LAYOUT.binary_columns()


def write_rows(directory: Path, rows: np.ndarray, n_files: int = 2) -> Path:
    """Split rows into ``n_files`` files ``state_action_data_<i>.csv``."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(np.array_split(rows, n_files)):
        write_csv_file(directory / f"state_action_data_{i}.csv", chunk, BINARY)
    return directory


@pytest.fixture
def rows() -> np.ndarray:
    return synthetic_rows(1500, seed=3)


@pytest.fixture
def data_dir(tmp_path: Path, rows: np.ndarray) -> Path:
    return write_rows(tmp_path / "data", rows)
