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
TINY_CONFIG = REPO / "tests" / "tiny_config.yaml"  # only its overrides of config.yaml: see tiny_config
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
# the default target, as in README's main command: rule `all` lists every final product, which pull in every rule
TINY_TARGETS = ["all"]
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


def deep_merge(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` applied: mappings merge key by key, any other value (lists too) replaces."""
    out = dict(base)
    for key, value in overrides.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = deep_merge(base[key], value) if both else value
    return out


def tiny_config() -> dict:
    """The repository's config.yaml with the toy-size overrides of tests/tiny_config.yaml."""
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    return deep_merge(base, yaml.safe_load(TINY_CONFIG.read_text()) or {})


def tiny_workdir(work: Path, overrides: dict[str, dict] | None = None) -> Path:
    """A copy of the workflow in ``work``, config: :func:`tiny_config` with sections updated by ``overrides``."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", work / "Snakefile")
    shutil.copytree(REPO / "workflow", work / "workflow")
    cfg = tiny_config()
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
