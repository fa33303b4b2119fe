"""World-model pretraining loop (SPEC §3): Adam, grad-norm clipping, validation on held-out blocks, checkpoints.

Every random draw (mini-batch starts, bootstrap counts, reparameterisation noise) comes from one seeded
``torch.Generator`` whose state is checkpointed, so a resumed run continues exactly like an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rwm_core import artifacts
from rwm_core.config import DynamicsConfig, TrackingConfig
from rwm_core.data.dataset import ROWS_FILE, Dataset
from rwm_core.dynamics import checkpoint as ckpt
from rwm_core.dynamics.loss import LOSS_TERMS, LossWeights, bootstrap_weights, ensemble_loss
from rwm_core.dynamics.model import ModelSpec, SystemDynamicsEnsemble
from rwm_core.errors import InputError, RwmError
from rwm_core.runtime import autocast, resolve_device, seed_everything, set_threads
from rwm_core.training_loop import CHECKPOINT_DIR as CHECKPOINT_DIR
from rwm_core.training_loop import METRICS_FILE, TrainingLoop

MODEL_FILE = "model.pt"
# keys that only say how long or how often; a checkpoint written under other values can be continued
RESUME_IGNORED = frozenset({"iterations", "checkpoint_every", "val_every", "val_batches", "micro_batch_size"})


def tune_allocator() -> bool:
    """Keep freed memory in glibc's heap instead of returning it to the OS after every op.

    Why: a training step allocates and frees many 0.2-30 MB tensors; with glibc's defaults each comes from a fresh
    ``mmap`` and is page-faulted in again (~40k faults per step), costing ~8% of the step on a 2-core CPU. Raising
    the mmap and trim thresholds (the ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` tunables) removes that;
    peak memory is unchanged. Process-wide; a no-op (returns False) where glibc is not available.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024) == 1
        return bool(libc.mallopt(m_trim_threshold, 1 << 30) == 1 and ok)
    except (OSError, AttributeError):
        return False


class NonFiniteLossError(RwmError, RuntimeError):
    """A loss became NaN/Inf; the message names the iteration and the last good checkpoint."""


def loss_weights(cfg: DynamicsConfig) -> LossWeights:
    return LossWeights(
        state=cfg.state_loss_weight,
        bound=cfg.bound_loss_weight,
        contact=cfg.contact_loss_weight,
        termination=cfg.termination_loss_weight,
        termination_pos_weight=cfg.termination_pos_weight,
    )


def _artifact_root(dataset: str | Path) -> Path:
    p = Path(dataset)
    return p if p.is_dir() else p.parent


def training_step(
    model: SystemDynamicsEnsemble,
    optimizer: torch.optim.Optimizer,
    batch: Any,
    history: int,
    cfg: DynamicsConfig,
    generator: torch.Generator,
    weights: LossWeights | None = None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One optimiser step on a :class:`WindowBatch`; returns the detached loss terms and the grad norm.

    The mini-batch is processed in micro-batches of ``cfg.micro_batch_size`` windows with gradient accumulation:
    the bootstrap counts and noise are drawn for the whole mini-batch and every term is normalised by whole-batch
    sums, so the gradient equals the unsplit one while peak memory stays that of one micro-batch. On a non-finite
    loss or gradient nothing is updated and the returned grad norm is non-finite.
    """
    n, length, d = batch.states.shape
    dev = batch.states.device
    nb = model.ensemble_size
    w = bootstrap_weights(nb, n, generator, enabled=cfg.bootstrap).to(dev)
    noise = torch.randn((length - history, nb, n, d), generator=generator).to(dev)
    wn = w.sum(-1)
    step = cfg.micro_batch_size if cfg.micro_batch_size > 0 else n
    weights = weights or loss_weights(cfg)
    optimizer.zero_grad(set_to_none=True)
    totals: dict[str, torch.Tensor] = {}
    for i, lo in enumerate(range(0, n, step)):
        sl = slice(lo, min(lo + step, n))
        with autocast(dev, cfg.precision):  # bf16 mixed precision when configured; backward runs outside
            losses = ensemble_loss(
                model,
                batch.states[sl],
                batch.actions[sl],
                batch.contacts[sl],
                batch.terminations[sl],
                history,
                sample_weights=w[:, sl],
                noise=noise[:, :, sl],
                weights=weights,
                state_loss=cfg.state_loss,
                weight_norm=wn,
                include_bound=i == 0,
            )
        for k, v in losses.items():
            totals[k] = totals[k] + v.detach() if k in totals else v.detach()
        if not torch.isfinite(losses["total"]):
            optimizer.zero_grad(set_to_none=True)
            return totals, torch.tensor(float("nan"))
        losses["total"].backward()
    gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
    if not torch.isfinite(gnorm):  # never let a NaN/Inf gradient reach the weights
        optimizer.zero_grad(set_to_none=True)
        return totals, gnorm.detach()
    optimizer.step()
    return totals, gnorm.detach()


@torch.no_grad()
def validation_loss(
    model: SystemDynamicsEnsemble, ds: Dataset, starts: np.ndarray, cfg: DynamicsConfig, device: torch.device
) -> dict[str, float]:
    """Loss on held-out windows: no bootstrap, no sampling (the mean is fed back), so it is deterministic."""
    if len(starts) == 0:
        return {}
    sums: dict[str, float] = {}
    chunks = [starts[i : i + cfg.batch_size] for i in range(0, len(starts), cfg.batch_size)]
    for c in chunks:
        b = _to(ds.batch(c), device)
        losses = ensemble_loss(
            model,
            b.states,
            b.actions,
            b.contacts,
            b.terminations,
            ds.history,
            weights=loss_weights(cfg),
            state_loss=cfg.state_loss,
        )
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(c)
    return {k: v / len(starts) for k, v in sums.items()}


def _to(batch: Any, device: torch.device) -> Any:
    if device.type == "cpu":
        return batch
    for name in ("states", "actions", "contacts", "terminations"):
        setattr(batch, name, getattr(batch, name).to(device, non_blocking=True))
    return batch


def _val_starts(val: np.ndarray, n: int) -> np.ndarray:
    if len(val) <= n:
        return val
    return val[np.linspace(0, len(val) - 1, n).round().astype(np.int64)]


def pretrain(
    dataset: str | Path,
    out_dir: str | Path,
    cfg: DynamicsConfig,
    tracking: TrackingConfig | None = None,
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the ensemble on a dataset artifact; writes ``model.pt``, ``checkpoints/``, ``metrics.csv`` to out_dir.

    Returns a summary (iterations, final losses, mean windows/s, paths). Raises :class:`NonFiniteLossError` on a
    NaN/Inf loss, leaving the last good checkpoint in place.
    """
    out = Path(out_dir)
    dev = resolve_device(device)
    set_threads()
    tune_allocator()
    seed_everything(seed)
    ds = Dataset.load(dataset)
    if ds.history < 1 or ds.forecast < 1:
        raise InputError(f"{dataset}: history and forecast must be >= 1 (got {ds.history}, {ds.forecast})")
    train_starts, val_starts = ds.split(cfg.val_fraction)
    if len(train_starts) == 0:
        raise InputError(f"{dataset}: no training windows of length {ds.window_length} (too few rows?)")
    val_eval = _val_starts(val_starts, cfg.val_batches * cfg.batch_size)
    out.mkdir(parents=True, exist_ok=True)  # only once the inputs are known to be usable: a failure writes nothing

    spec = ModelSpec.from_layout(ds.layout, cfg)
    model = SystemDynamicsEnsemble(spec).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    cfg_dict = asdict(cfg)
    fingerprint = artifacts.resume_fingerprint(
        cfg_dict, RESUME_IGNORED, seed=seed, rows=artifacts.sha256_file(_artifact_root(dataset) / ROWS_FILE)
    )
    meta = {
        "history": ds.history,
        "forecast": ds.forecast,
        "seed": seed,
        "dataset": str(dataset),
        "resume_fingerprint": fingerprint,
    }

    loop = TrainingLoop(out, "pretrain", cfg.iterations, cfg.checkpoint_every, NonFiniteLossError)
    raw = loop.resume(
        resume,
        fingerprint,
        ckpt.read_training_checkpoint,
        ckpt.CHECKPOINT_FORMAT_VERSION,
        lambda raw: (raw.get("meta") or {}).get("resume_fingerprint"),
    )
    if raw is not None:
        with loop.restoring(f"a training checkpoint of this model ({spec.to_dict()})"):
            model.load_state_dict(raw[ckpt.STATE_DICT_KEY])
            optimizer.load_state_dict(raw["system_dynamics_optimizer_state_dict"])
            gen.set_state(raw["generator_state"])

    def write(path: Path, it: int, training_state: dict[str, Any] | None = None) -> None:
        """``model.pt`` or, with ``training_state``, a checkpoint to resume from."""
        ckpt.save(
            path,
            model,
            ds.normalizer,
            task=ds.task_name,
            training_config=cfg_dict,
            meta={**meta, "iter": it},
            training_state=training_state,
        )

    def save(path: Path, it: int, metrics_csv: str) -> None:
        state = {"iter": it, "system_dynamics_optimizer_state_dict": optimizer.state_dict()}
        write(path, it, {**state, "generator_state": gen.get_state(), "metrics_csv": metrics_csv})

    weights = loss_weights(cfg)
    if dev.type != "cpu":
        ds.data = torch.from_numpy(np.ascontiguousarray(ds.data)).to(dev)  # gather windows on the device
    rates: list[float] = []
    val: dict[str, float] = {}
    with loop.open(save, tracking=tracking, config={"dynamics": cfg_dict, **meta}, progress=progress, desc="pretrain"):
        model.train()
        for it in loop:
            t0 = time.perf_counter()
            sums = {k: 0.0 for k in (*LOSS_TERMS, "total")}
            gnorm_sum = 0.0
            for b in range(cfg.batches_per_iteration):
                idx = torch.randint(len(train_starts), (cfg.batch_size,), generator=gen).numpy()
                batch = _to(ds.batch(train_starts[idx]), dev)
                losses, gnorm = training_step(model, optimizer, batch, ds.history, cfg, gen, weights)
                bad = {k: float(v) for k, v in losses.items() if not math.isfinite(float(v))}
                if not bad and not math.isfinite(float(gnorm)):
                    bad = {"grad_norm": float(gnorm)}
                if bad:
                    raise loop.non_finite(bad, f"mini-batch {b + 1}")
                for k, v in losses.items():
                    sums[k] += float(v) / cfg.batches_per_iteration
                gnorm_sum += float(gnorm) / cfg.batches_per_iteration
            dt = time.perf_counter() - t0
            rate = cfg.batches_per_iteration * cfg.batch_size / max(dt, 1e-9)
            rates.append(rate)
            done = it + 1
            if len(val_eval) and (done % max(cfg.val_every, 1) == 0 or done == cfg.iterations):
                model.eval()
                val = validation_loss(model, ds, val_eval, cfg, dev)
                model.train()
            row = {
                "iteration": done,
                **{f"loss_{k}": v for k, v in sums.items()},
                "val_loss": val.get("total", float("nan")),
                "val_state": val.get("state", float("nan")),
                "grad_norm": gnorm_sum,
                "lr": optimizer.param_groups[0]["lr"],
                "windows_per_s": rate,
                "elapsed_s": dt,
            }
            postfix = {
                "loss": f"{sums['total']:.3f}",
                "state": f"{sums['state']:.3f}",
                "val": f"{row['val_loss']:.3f}",
                "wps": f"{rate:.0f}",
            }
            loop.end_iteration(row, postfix=postfix)
    model.eval()
    write(out / MODEL_FILE, cfg.iterations)
    summary = {
        "iterations": cfg.iterations,
        "resumed_from": loop.start_iteration,
        "final": loop.last_row,
        "windows_per_s": float(np.mean(rates)) if rates else None,
        "model": str(out / MODEL_FILE),
        "metrics": str(out / METRICS_FILE),
        "n_train_windows": int(len(train_starts)),
        "n_val_windows": int(len(val_starts)),
    }
    return summary
