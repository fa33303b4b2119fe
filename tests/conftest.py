"""Shared fixtures (the helpers they use live in helpers.py, importable from every test directory)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_TARGETS, run_snakemake, synthetic_rows, tiny_workdir, write_rows


@pytest.fixture
def rows() -> np.ndarray:
    return synthetic_rows(1500, seed=3)


@pytest.fixture
def data_dir(tmp_path: Path, rows: np.ndarray) -> Path:
    return write_rows(tmp_path / "data", rows)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One complete local run of the tiny DAG, shared by the end-to-end tests (read-only for them)."""
    work = tiny_workdir(tmp_path_factory.mktemp("tiny"))
    proc = run_snakemake(work, "--cores", "2", *TINY_TARGETS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return work
