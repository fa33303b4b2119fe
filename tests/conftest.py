"""Shared fixtures: small synthetic CSV datasets in the upstream format, and the tiny-config workflow run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from rwm_core.data.io import write_csv_file
from rwm_core.data.synthetic import synthetic_rows
from rwm_core.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
# every final product of the tiny DAG; together they pull in every rule
TINY_TARGETS = [
    "results/penalty_sweep.pdf",
    "results/penalty_sweep.csv",
    "results/overview.pdf",
    "results/prediction.pdf",
    "results/uncertainty_error.pdf",
    "results/noise_robustness.pdf",
    "results/eval/dynamics.json",
]
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


def tiny_workdir(work: Path, overrides: dict[str, dict] | None = None) -> Path:
    """A copy of the workflow in ``work``, config: tests/tiny_config.yaml with sections updated by ``overrides``."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", work / "Snakefile")
    shutil.copytree(REPO / "workflow", work / "workflow")
    cfg = yaml.safe_load((REPO / "tests" / "tiny_config.yaml").read_text())
    for section, values in (overrides or {}).items():
        cfg[section].update(values)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return work


def snakemake_env() -> dict[str, str]:
    """This interpreter's bin first on PATH, so rules find `rwm` (also inside SLURM jobs, which export it)."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")


def run_snakemake(work: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SNAKEMAKE, *args], cwd=work, capture_output=True, text=True, timeout=timeout, env=snakemake_env()
    )


def scheduled_jobs(dry_run_output: str) -> dict[str, int]:
    """Rule -> job count from the first "Job stats" table of ``snakemake --dry-run`` ({} when nothing is to do)."""
    m = re.search(r"Job stats:\njob\s+count\n[- ]+\n(.*?)\ntotal\s", dry_run_output, re.S)
    if m is None:
        return {}
    return {name: int(n) for name, n in (line.split() for line in m.group(1).splitlines())}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One complete local run of the tiny DAG, shared by the end-to-end tests (read-only for them)."""
    work = tiny_workdir(tmp_path_factory.mktemp("tiny"))
    proc = run_snakemake(work, "--cores", "2", *TINY_TARGETS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return work
