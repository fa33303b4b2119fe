"""Synthetic rows in a task's layout, for tests and benchmarks (not a substitute for simulated data).

The state follows a smooth, stable random linear system driven by the actions, so a model can learn it; gravity is
a unit vector, contacts follow a trot-like square wave and episodes end at random rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rwm_core.tasks import get_task


def synthetic_rows(
    n_rows: int, seed: int = 0, task: Any = None, episode_length: tuple[int, int] = (200, 600)
) -> np.ndarray:
    """``(n_rows, n_columns)`` float32 rows in the upstream convention (row t+1's action drives row t -> t+1)."""
    task = task or get_task("anymal_d_flat")
    lay = task.LAYOUT
    rng = np.random.default_rng(seed)
    sd = lay.state_dim
    ad = lay.action_dim
    a_mat = np.eye(sd) * 0.9 + rng.normal(0, 0.02, (sd, sd))
    a_mat *= 0.97 / max(1.0, float(np.abs(np.linalg.eigvals(a_mat)).max()))  # stable
    b_mat = rng.normal(0, 0.1, (sd, ad))
    out = np.zeros((n_rows, lay.n_columns), dtype=np.float32)
    # actions: smooth noise
    actions = np.cumsum(rng.normal(0, 0.1, (n_rows, ad)), axis=0)
    actions = np.tanh(actions * 0.1).astype(np.float32)
    state = np.zeros(sd)
    std = np.asarray(task.STATE_STD, dtype=np.float64)
    mean = np.asarray(task.STATE_MEAN, dtype=np.float64)
    next_end = int(rng.integers(*episode_length))
    phase = 0
    for t in range(n_rows):
        if t > 0:
            state = a_mat @ state + b_mat @ actions[t] + rng.normal(0, 0.01, sd)
        out[t, lay.state] = mean + std * np.tanh(0.5 * state)
        out[t, lay.action] = actions[t]
        phase = (phase + 1) % 40
        trot = phase < 20
        out[t, lay.block("foot_contact")] = [trot, not trot, not trot, trot]
        if t == next_end:
            out[t, lay.termination_column] = 1
            state = np.zeros(sd)
            next_end = t + int(rng.integers(*episode_length))
    g = rng.normal(0, 0.02, (n_rows, 3)) + np.array([0, 0, -1.0])
    out[:, lay.block("projected_gravity")] = g / np.linalg.norm(g, axis=1, keepdims=True)
    return out
