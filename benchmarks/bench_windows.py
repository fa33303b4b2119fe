"""Window index and batch drawing on 1,000,000 synthetic rows: time and peak memory.

Windows are never materialised (a copy of every 40-row window would need ~10.6 GB here); the index addresses the
one contiguous array. Usage: python benchmarks/bench_windows.py [--rows 1000000] [--batch 1000] [--batches 200]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import torch

from rwm_core.data.dataset import Dataset
from rwm_core.data.normalizer import Normalizer
from rwm_core.data.windows import contiguous_split, valid_window_starts
from rwm_core.tasks import get_task


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--history", type=int, default=32)
    ap.add_argument("--forecast", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(2)
    task = get_task("anymal_d_flat")
    lay = task.LAYOUT
    rng = np.random.default_rng(0)
    base_mb = peak_rss_mb()
    data = rng.standard_normal((args.rows, lay.n_columns), dtype=np.float32)
    data[:, lay.termination_column] = rng.random(args.rows) < 1 / 2000  # episodes of ~40 s
    table_mb = data.nbytes / 2**20

    t0 = time.perf_counter()
    starts = valid_window_starts(data[:, lay.termination_column], args.history + args.forecast)
    t_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    train, val = contiguous_split(starts, args.rows, args.history + args.forecast, 0.1)
    t_split = time.perf_counter() - t0
    ds = Dataset(data, starts, Normalizer.from_task(task), task.NAME, args.history, args.forecast)

    t0 = time.perf_counter()
    n = 0
    for _ in range(args.batches):
        idx = train[rng.integers(0, len(train), args.batch)]
        b = ds.batch(idx)
        n += b.states.shape[0]
    t_batches = time.perf_counter() - t0
    result = {
        "rows": args.rows,
        "valid_windows": int(len(starts)),
        "train_windows": int(len(train)),
        "val_windows": int(len(val)),
        "table_mb": round(table_mb, 1),
        "index_s": round(t_index, 4),
        "split_s": round(t_split, 4),
        "batches": args.batches,
        "batch_size": args.batch,
        "batch_draw_s": round(t_batches, 3),
        "windows_per_s": round(n / t_batches),
        "materialised_copy_would_need_mb": round(
            len(starts) * (args.history + args.forecast) * lay.n_columns * 4 / 2**20
        ),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "baseline_rss_mb": round(base_mb, 1),
    }
    print(f"index over {args.rows:,} rows: {t_index:.3f} s; split: {t_split:.3f} s")
    print(f"{args.batches} batches of {args.batch} windows: {t_batches:.3f} s ({result['windows_per_s']:,} windows/s)")
    print(
        f"peak memory {result['peak_rss_mb']:.0f} MB (table {table_mb:.0f} MB; a materialised copy of every "
        f"window would need {result['materialised_copy_would_need_mb']:,} MB)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
