"""Autoregressive prediction error of the world model vs forecast step (RWM Fig. 4), with noise and a baseline.

Metric (SPEC §3): relative error = Σ_dims |pred - true| / Σ_dims |true| per window and step, averaged over windows.
It is reported in normalised units (what the model sees; every dim on a comparable scale) and in raw units.
Windows come from the held-out contiguous blocks only, never from training data, and use the training time
alignment via :func:`rwm_core.dynamics.rollout.autoregressive_predict`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rwm_core.artifacts import atomic_write_json
from rwm_core.config import EvaluationConfig
from rwm_core.data.dataset import Dataset
from rwm_core.data.windows import contiguous_split, gather_windows, valid_window_starts
from rwm_core.dynamics import checkpoint as ckpt
from rwm_core.dynamics.rollout import autoregressive_predict
from rwm_core.errors import InputError
from rwm_core.runtime import resolve_device, seed_everything, set_threads


def relative_error(pred: torch.Tensor, true: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(N, T, D) -> (N, T): Σ|pred - true| / Σ|true| over the last dim."""
    return (pred - true).abs().sum(-1) / true.abs().sum(-1).clamp_min(eps)


def heldout_windows(
    ds: Dataset, history: int, horizon: int, n_windows: int, val_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Starts of up to ``n_windows`` valid windows of length H + horizon inside the validation blocks.

    If none exist, the horizon is halved (with a warning) until some do.
    """
    term = ds.episode_ends()
    h = horizon
    while h >= 1:
        length = history + h
        starts = valid_window_starts(term, length)
        _, val = contiguous_split(starts, ds.n_rows, length, val_fraction)
        if len(val):
            break
        h //= 2
    else:
        raise InputError(
            f"no held-out window of length >= {history + 1} (val_fraction={val_fraction}, {ds.n_rows} rows)"
        )
    if h != horizon:
        warnings.warn(f"held-out data too short for horizon {horizon}; using horizon {h}", stacklevel=2)
    if len(val) < n_windows:
        warnings.warn(f"only {len(val)} held-out windows of length {history + h} (asked for {n_windows})", stacklevel=2)
        return val, h
    return np.sort(rng.choice(val, size=n_windows, replace=False)), h


def evaluate_dynamics(
    model: str | Path,
    dataset: str | Path,
    out_json: str | Path,
    cfg: EvaluationConfig,
    val_fraction: float = 0.1,
    seed: int = 0,
    device: str = "auto",
) -> dict[str, Any]:
    """Per-step relative AR error of the model (clean and per noise scale) and of hold-last-state; writes JSON."""
    dev = resolve_device(device)
    set_threads()
    rng = seed_everything(seed)
    loaded = ckpt.load(model, device=dev)
    net, norm = loaded.model, loaded.normalizer
    ds = Dataset.load(dataset)
    ckpt.check_layout(loaded, ds.layout, model, f"dataset {dataset}")
    history = int(loaded.meta.get("history", ds.history))
    starts, horizon = heldout_windows(ds, history, cfg.horizon, cfg.n_windows, val_fraction, rng)
    lay = ds.layout
    rows = gather_windows(ds.data, starts, history + horizon).to(dev)
    raw_states = rows[..., lay.state]
    states = norm.normalize_state(raw_states)
    actions = norm.normalize_action(rows[..., lay.action])
    true_n = states[:, history:]
    true_r = raw_states[:, history:]

    def curves(pred_n: torch.Tensor) -> tuple[list[float], list[float]]:
        e_n = relative_error(pred_n, true_n).mean(0)
        e_r = relative_error(norm.denormalize_state(pred_n), true_r).mean(0)
        return e_n.cpu().tolist(), e_r.cpu().tolist()

    res = autoregressive_predict(net, states, actions, history)
    model_n, model_r = curves(res.states)
    hold = states[:, history - 1 : history].expand_as(true_n)
    base_n, base_r = curves(hold)
    gen = torch.Generator(device=dev).manual_seed(seed)
    noise_n: dict[str, list[float]] = {}
    noise_r: dict[str, list[float]] = {}
    for s in cfg.noise_scales:
        pred = autoregressive_predict(net, states, actions, history, input_noise=float(s), generator=gen).states
        noise_n[str(s)], noise_r[str(s)] = curves(pred)

    k = min(cfg.compare_steps, horizon)
    m_arr, b_arr = np.asarray(model_n), np.asarray(base_n)
    summary = {
        "model_mean": float(m_arr.mean()),
        "baseline_mean": float(b_arr.mean()),
        "model_at": {str(s): float(m_arr[s - 1]) for s in (1, 8, 50, 100, 200) if s <= horizon},
        "baseline_at": {str(s): float(b_arr[s - 1]) for s in (1, 8, 50, 100, 200) if s <= horizon},
        "noise_mean": {kk: float(np.mean(v)) for kk, v in noise_n.items()},
        "compare_steps": k,
        "beats_baseline_every_step": bool(np.all(m_arr[:k] < b_arr[:k])),
        "mean_epistemic": float(res.epistemic.mean()),
    }
    result: dict[str, Any] = {
        "metric": "relative autoregressive error: sum|pred-true| / sum|true| over state dims, mean over windows",
        "units": {"relative_error": "normalised state", "relative_error_raw": "raw (physical) state"},
        "model_path": str(model),
        "model_source": loaded.source,
        "dataset": str(dataset),
        "history": history,
        "horizon": horizon,
        "requested_horizon": cfg.horizon,
        "n_windows": int(len(starts)),
        "window_starts": [int(s) for s in starts],
        "val_fraction": val_fraction,
        "seed": seed,
        "steps": list(range(1, horizon + 1)),
        "relative_error": {"model": model_n, "baseline_hold_last": base_n, "noise": noise_n},
        "relative_error_raw": {"model": model_r, "baseline_hold_last": base_r, "noise": noise_r},
        "summary": summary,
    }
    atomic_write_json(out_json, result)
    return result


def trajectory_error(
    loaded: ckpt.LoadedDynamics,
    trajectories: list[np.ndarray],
    history: int,
    steps: tuple[int, ...] = (1, 8),
    stride: int = 10,
) -> dict[str, Any]:
    """Relative AR error (normalised units) of a world model on given trajectories, e.g. a policy's own rollouts.

    Why: a policy trained in imagination fails in the simulator where the model is wrong, and the model is wrong
    where the data never went; this measures it on exactly the states the policy reaches. ``trajectories`` are
    (T, 66) row tables in the dataset layout (one episode each); windows of H + max(steps) rows start every
    ``stride`` rows, and episodes too short for one window are skipped.
    """
    from rwm_core.tasks import get_task

    if not steps or min(steps) < 1:
        raise ValueError(f"forecast steps must be >= 1, got {steps}")
    lay = get_task(loaded.task).LAYOUT
    length = history + max(steps)
    windows = [t[s : s + length] for t in trajectories for s in range(0, len(t) - length + 1, max(1, int(stride)))]
    result: dict[str, Any] = {"history": history, "stride": stride, "n_windows": len(windows)}
    if not windows:
        result["at"] = {str(k): None for k in steps}
        return result
    dev = next(loaded.model.parameters()).device
    rows = torch.as_tensor(np.stack(windows), dtype=torch.float32, device=dev)
    norm = loaded.normalizer
    states = norm.normalize_state(rows[..., lay.state])
    actions = norm.normalize_action(rows[..., lay.action])
    pred = autoregressive_predict(loaded.model, states, actions, history).states
    err = relative_error(pred, states[:, history:]).mean(0)
    result["at"] = {str(k): float(err[k - 1]) for k in steps}
    return result
