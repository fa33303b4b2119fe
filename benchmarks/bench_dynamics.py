"""Throughput and peak memory of one world-model training step (forward, backward, clip, Adam).

RWM-U configuration: B = 5 members, H = 32, F = 8, GRU hidden 256, head hidden 128, 2 intra-op threads. The step is
``rwm_core.dynamics.train.training_step`` (the training loop's own), which accumulates gradients over micro-batches
(default 256 windows; same gradient as the unsplit mini-batch), with the allocator tuning pretrain uses.
Each (precision, mini-batch size) runs in its own subprocess so that peak RSS figures are separate: float32 (the
default, upstream's arithmetic) and bfloat16 mixed precision (``dynamics.precision: bfloat16``: bf16 matrix
products, float32 weights, gates and Adam). Prints a table, then one JSON line.

    python benchmarks/bench_dynamics.py [--batch-sizes 256 1000] [--precision float32 bfloat16] [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from rwm_core.runtime import PRECISIONS

DEFAULT_MICRO = 256  # DynamicsConfig.micro_batch_size default


def run_one(
    batch: int,
    steps: int,
    warmup: int,
    threads: int,
    seed: int,
    micro: int,
    tune: bool = True,
    precision: str = "float32",
) -> dict[str, float | str]:
    import torch

    from rwm_core.config import DynamicsConfig
    from rwm_core.data.dataset import WindowBatch
    from rwm_core.dynamics.model import ModelSpec, SystemDynamicsEnsemble
    from rwm_core.dynamics.train import training_step, tune_allocator

    torch.set_num_threads(threads)
    tuned = tune_allocator() if tune else False
    torch.manual_seed(seed)
    history, forecast = 32, 8
    spec = ModelSpec(ensemble_size=5, hidden_size=256, num_layers=2, head_hidden=128)
    model = SystemDynamicsEnsemble(spec)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    length = history + forecast
    states = torch.randn(batch, length, spec.state_dim, generator=g)
    actions = torch.randn(batch, length, spec.action_dim, generator=g)
    contacts = (torch.rand(batch, length, spec.contact_dim, generator=g) > 0.5).float()
    terms = (torch.rand(batch, length, 1, generator=g) > 0.99).float()

    cfg = DynamicsConfig(batch_size=batch, micro_batch_size=micro, precision=precision)
    wb = WindowBatch(states, actions, contacts, terms)

    def step() -> None:
        training_step(model, opt, wb, history, cfg, g)

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    return {
        "precision": precision,
        "batch_size": batch,
        "steps": steps,
        "windows_per_s_median": batch / median,
        "windows_per_s_best": batch / times[0],
        "windows_per_s_mean": batch * steps / sum(times),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,  # KiB on Linux
        "threads": torch.get_num_threads(),
        "micro_batch_size": micro,
        "allocator_tuned": tuned,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1000])
    ap.add_argument("--precision", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--micro-batch", type=int, default=DEFAULT_MICRO, help="gradient-accumulation chunk; 0 = none")
    ap.add_argument("--no-tune-allocator", action="store_true", help="keep glibc malloc defaults (see tune_allocator)")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        res = run_one(
            args.child,
            args.steps,
            args.warmup,
            args.threads,
            args.seed,
            args.micro_batch,
            not args.no_tune_allocator,
            args.precision[0],
        )
        print(json.dumps(res))
        return 0
    results = []
    for prec, b in ((p, b) for p in args.precision for b in args.batch_sizes):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            str(b),
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            "--threads",
            str(args.threads),
            "--seed",
            str(args.seed),
            "--micro-batch",
            str(args.micro_batch),
            "--precision",
            prec,
        ] + (["--no-tune-allocator"] if args.no_tune_allocator else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(res)
        print(
            f"{prec:8s} mini-batch {b:5d}: {res['windows_per_s_median']:7.1f} windows/s "
            f"(median of {res['steps']} steps, "
            f"best {res['windows_per_s_best']:.1f}), peak RSS {res['peak_rss_gb']:.2f} GB, "
            f"{res['threads']} threads, micro-batch {res['micro_batch_size'] or 'none'}"
        )
    print(
        json.dumps(
            {
                "benchmark": "dynamics_train_step",
                "config": {"ensemble": 5, "history": 32, "forecast": 8, "hidden": 256},
                "results": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
