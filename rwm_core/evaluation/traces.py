"""Autoregressive trajectories for the prediction figure (RWM Fig. 3): ensemble mean and per-member rollouts.

Each member is also rolled on its own predictions (all rows assigned to that member), so the figure can show the
spread of the ensemble's futures, not only the spread of one-step predictions around the mean trajectory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rwm_core.data.dataset import Dataset
from rwm_core.dynamics.rollout import autoregressive_predict
from rwm_core.evaluation.prediction import heldout_windows


def prediction_traces(
    model: str | Path,
    dataset: str | Path,
    n_windows: int = 3,
    horizon: int = 100,
    val_fraction: float = 0.1,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Physical-unit trajectories (truth, ensemble mean, each member) for a few held-out windows."""
    from rwm_core.dynamics.checkpoint import check_layout
    from rwm_core.dynamics.checkpoint import load as load_model

    loaded = load_model(model, device=device)
    net = loaded.model.eval()
    norm = loaded.normalizer
    ds = Dataset.load(dataset)
    check_layout(loaded, ds.layout, model, f"dataset {dataset}")
    h = ds.history
    rng = np.random.default_rng(seed)
    pick, horizon = heldout_windows(ds, h, horizon, n_windows, val_fraction, rng)
    rows = ds.gather(pick, h + horizon)
    lay = ds.layout
    states_n = norm.normalize_state(rows[..., lay.state]).to(device)
    actions_n = norm.normalize_action(rows[..., lay.action]).to(device)
    mean = autoregressive_predict(net, states_n, actions_n, h).states
    members = []
    for b in range(net.ensemble_size):
        ids = torch.full((len(pick),), b, dtype=torch.long, device=states_n.device)
        members.append(autoregressive_predict(net, states_n, actions_n, h, member_ids=ids).states)
    to_np = lambda x: norm.denormalize_state(x).cpu().numpy()  # noqa: E731
    return {
        "history": h,
        "horizon": horizon,
        "window_starts": pick.tolist(),
        "truth": rows[..., lay.state].numpy(),  # (n, H + horizon, D): history and future
        "mean": to_np(mean),  # (n, horizon, D)
        "members": np.stack([to_np(m) for m in members]),  # (B, n, horizon, D)
    }
