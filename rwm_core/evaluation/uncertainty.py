"""Does the ensemble know when it is wrong? Epistemic uncertainty against prediction error (RWM-U Fig. 3).

N held-out windows are rolled T steps with the ensemble mean fed back. Per window and step we record the epistemic
uncertainty u (std over members of the predicted means, summed over state dims) and the prediction error e (L1
distance of the ensemble mean from the true state, summed over dims), both in normalised units, so they are on the
same scale the imagination penalty sees. Correlations are reported two ways: over the step-averaged curves (how
both grow along the horizon, as in the thesis) and pooled over all window-steps (how well u ranks individual
predictions).
"""

from __future__ import annotations

import warnings as warnings_module
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from rwm_core.artifacts import atomic_write_json
from rwm_core.config import EvaluationConfig
from rwm_core.data.dataset import Dataset
from rwm_core.dynamics.rollout import autoregressive_predict
from rwm_core.evaluation.prediction import heldout_windows
from rwm_core.runtime import resolve_device, seed_everything, set_threads


def _correlations(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return {"pearson": float("nan"), "spearman": float("nan"), "n": int(len(x))}
    return {
        "pearson": float(stats.pearsonr(x, y)[0]),
        "spearman": float(stats.spearmanr(x, y)[0]),
        "n": int(len(x)),
    }


def uncertainty_error(
    model: str | Path,
    dataset: str | Path,
    out_json: str | Path,
    cfg: EvaluationConfig,
    val_fraction: float = 0.1,
    seed: int = 0,
    device: str = "auto",
) -> dict[str, Any]:
    """Roll held-out windows, write per-step uncertainty and error curves and their correlations as JSON."""
    from rwm_core.dynamics.checkpoint import check_layout
    from rwm_core.dynamics.checkpoint import load as load_model

    dev = resolve_device(device)
    set_threads()
    rng = seed_everything(seed)
    loaded = load_model(model, device=dev)
    net = loaded.model.eval()
    ds = Dataset.load(dataset)
    check_layout(loaded, ds.layout, model, f"dataset {dataset}")
    ds.normalizer = loaded.normalizer
    h = ds.history
    with warnings_module.catch_warnings(record=True) as caught:
        warnings_module.simplefilter("always")
        pick, steps = heldout_windows(ds, h, cfg.uncertainty_steps, cfg.uncertainty_windows, val_fraction, rng)
    warnings = [str(w.message) for w in caught]
    n = len(pick)
    batch = ds.batch(pick, h + steps)
    res = autoregressive_predict(net, batch.states.to(dev), batch.actions.to(dev), h)
    truth = batch.states[:, h:].to(dev)
    err = (res.states - truth).abs().sum(-1).cpu().numpy()  # (n, steps)
    unc = res.epistemic.cpu().numpy()  # (n, steps)
    per_step_err = err.mean(0)
    per_step_unc = unc.mean(0)
    report: dict[str, Any] = {
        "windows": int(n),
        "steps": int(steps),
        "history": int(h),
        "ensemble_size": int(net.ensemble_size),
        "units": "normalised state units; error = L1 over state dims of the ensemble mean, "
        "uncertainty = std over members of the predicted means, summed over dims",
        "step_averaged": _correlations(per_step_unc, per_step_err),
        "pooled": _correlations(unc.reshape(-1), err.reshape(-1)),
        "per_step_error": per_step_err.tolist(),
        "per_step_uncertainty": per_step_unc.tolist(),
        "per_step_error_std": err.std(0).tolist(),
        "per_step_uncertainty_std": unc.std(0).tolist(),
        "window_starts": pick.tolist(),
        "warnings": warnings,
    }
    # a subsample of the raw pairs for the scatter plot (kept small)
    flat = np.stack([unc.reshape(-1), err.reshape(-1)], 1)
    take = rng.choice(len(flat), size=min(len(flat), 4000), replace=False)
    report["scatter_sample"] = flat[np.sort(take)].tolist()
    if net.ensemble_size < 2:
        warnings.append("ensemble of one member: epistemic uncertainty is zero, correlations are undefined")
    atomic_write_json(out_json, report)
    return report
