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


def tiny_world(tmp: Path, n_rows: int, rows_seed: int, history: int, model_seed: int):
    """A validated synthetic dataset artifact in ``tmp/data`` and a small untrained 3-member ensemble for it."""
    import torch

    from rwm_core.config import DatasetConfig, DynamicsConfig
    from rwm_core.data.dataset import Dataset
    from rwm_core.data.validate import validate_dataset
    from rwm_core.dynamics.model import ModelSpec, SystemDynamicsEnsemble

    write_rows(tmp / "csv", synthetic_rows(n_rows, seed=rows_seed), n_files=1)
    validate_dataset(tmp / "csv", tmp / "data", DatasetConfig(history=history, forecast=3), progress=False)
    ds = Dataset.load(tmp / "data")
    torch.manual_seed(model_seed)
    model = SystemDynamicsEnsemble(
        ModelSpec.from_layout(ds.layout, DynamicsConfig(ensemble_size=3, hidden_size=24, head_hidden=16))
    )
    return model, ds
