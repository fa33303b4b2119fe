"""Shared test helpers (one place): synthetic CSV datasets in the upstream format, a tiny world model, the
tiny-config workflow copy and Snakemake runners. Fixtures built on them live in conftest.py."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from rwm_core.config import DynamicsConfig
from rwm_core.data.dataset import Dataset
from rwm_core.data.io import write_csv_file
from rwm_core.data.normalizer import Normalizer
from rwm_core.data.synthetic import synthetic_rows
from rwm_core.data.windows import valid_window_starts
from rwm_core.dynamics.model import ModelSpec
from rwm_core.tasks import anymal_d_flat as task
from rwm_core.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "tiny_config.yaml"  # only its overrides of config.yaml: see tiny_config
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
# the default target, as in README's main command: rule `all` lists every final product, which pull in every rule
TINY_TARGETS = ["all"]
TASK = get_task("anymal_d_flat")
# upstream's fresh actor: no clone, no critic-only warm-up, no anchor (config.yaml's defaults have all three)
FRESH_ACTOR = {"bc_epochs": 0, "critic_warmup_iterations": 0, "bc_regularization": 0.0}
BINARY = TASK.LAYOUT.binary_columns()


def write_rows(directory: Path, rows: np.ndarray, n_files: int = 2) -> Path:
    """Split rows into ``n_files`` files ``state_action_data_<i>.csv``."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(np.array_split(rows, n_files)):
        write_csv_file(directory / f"state_action_data_{i}.csv", chunk, BINARY)
    return directory


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


def tiny_policy_world(tmp: Path) -> tuple[Path, Path]:
    """``tiny_world`` saved for the policy trainers: the model (its predicted falls silenced) and the dataset paths."""
    import torch

    from rwm_core.dynamics import checkpoint as ckpt

    model, ds = tiny_world(tmp, 1500, rows_seed=4, history=6, model_seed=0)
    with torch.no_grad():
        for head in model.auxiliary_heads:
            head.termination_layers[2].bias.fill_(-5.0)
    ckpt.save(tmp / "model.pt", model, ds.normalizer, task=ds.task_name)
    return tmp / "model.pt", tmp / "data"


def read_metrics(path: Path) -> list[dict[str, str]]:
    """A trainer's metrics.csv as rows of strings."""
    with path.open() as f:
        return list(csv.DictReader(f))


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


# ---------------------------------------------------------------- small datasets and models for the dynamics tests
H, F = 6, 3
SMALL = ModelSpec(ensemble_size=3, hidden_size=32, num_layers=2, head_hidden=16)


def small_cfg(**kw: object) -> DynamicsConfig:
    base: dict[str, object] = dict(
        ensemble_size=3,
        hidden_size=32,
        head_hidden=16,
        batch_size=32,
        batches_per_iteration=2,
        iterations=4,
        checkpoint_every=2,
        val_fraction=0.2,
        val_batches=1,
        learning_rate=3e-3,
        precision="float32",  # the default is auto (bf16 where native): keep the tests' arithmetic machine-free
    )
    base.update(kw)
    return DynamicsConfig(**base)  # type: ignore[arg-type]


def make_rows(n_rows: int = 3000, seed: int = 0, n_terms: int = 4) -> np.ndarray:
    """A smooth, stable random linear system in the 66-column layout, with a few episode ends."""
    rng = np.random.default_rng(seed)
    lay = task.LAYOUT
    ds_, da = lay.state_dim, lay.action_dim
    q, _ = np.linalg.qr(rng.normal(size=(ds_, ds_)))
    a_mat = 0.97 * q
    b_mat = 0.3 * rng.normal(size=(ds_, da)) / np.sqrt(da)
    t = np.arange(n_rows)[:, None]
    freqs = rng.uniform(0.02, 0.1, size=(1, da))
    phases = rng.uniform(0, 2 * np.pi, size=(1, da))
    actions = np.sin(freqs * t + phases) + 0.05 * rng.normal(size=(n_rows, da))
    states = np.zeros((n_rows, ds_))
    s = rng.normal(size=ds_)
    for _ in range(300):  # burn-in: start on the stationary distribution
        s = a_mat @ s + b_mat @ actions[0] + 0.01 * rng.normal(size=ds_)
    for i in range(n_rows):
        if i > 0:
            s = a_mat @ s + b_mat @ actions[i] + 0.01 * rng.normal(size=ds_)
        states[i] = s
    rows = np.zeros((n_rows, lay.n_columns), dtype=np.float32)
    rows[:, lay.state] = states
    rows[:, lay.action] = actions
    rows[:, lay.contacts] = (states[:, :8] > 0).astype(np.float32)
    ends = np.linspace(0, n_rows, n_terms + 2)[1:-1].astype(int)
    rows[ends, lay.termination_column] = 1.0
    return rows


def make_dataset(n_rows: int = 3000, seed: int = 0) -> Dataset:
    rows = make_rows(n_rows, seed)
    lay = task.LAYOUT
    norm = Normalizer.from_data(rows[:, lay.state], rows[:, lay.action])
    starts = valid_window_starts(rows[:, lay.termination_column], H + F)
    return Dataset(rows, starts, norm, task.NAME, H, F)


def save_dataset(tmp: Path, n_rows: int = 3000, seed: int = 0) -> Path:
    out = tmp / "dataset"
    make_dataset(n_rows, seed).save(out)
    return out
