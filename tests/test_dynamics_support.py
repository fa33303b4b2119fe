"""Shared helpers for the dynamics tests (small synthetic datasets and models); holds no tests itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rwm_core.config import DynamicsConfig
from rwm_core.data.dataset import Dataset
from rwm_core.data.normalizer import Normalizer
from rwm_core.data.windows import valid_window_starts
from rwm_core.dynamics.model import ModelSpec
from rwm_core.tasks import anymal_d_flat as task

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
