"""Throughput of the data-collection simulator (single process), with a per-stage breakdown.

Usage: python benchmarks/bench_sim.py [--rows N] [--seed S]
Prints human-readable figures and, as the last line, one JSON object. The machine's load average is included
because the figure is only meaningful on an otherwise idle core.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from rwm_core.sim.collect import _stats, generate_rows, summarize
from rwm_core.sim.gait import TrotController
from rwm_core.sim.robot import QuadrupedSim


def breakdown(steps: int = 3000) -> dict[str, float]:
    """Microseconds per control step spent in the controller, the physics step and the row read-out."""
    sim = QuadrupedSim()
    ctl = TrotController(sim, rng=np.random.default_rng(0), noise_level=0.1)
    ctl.set_command(np.array([0.6, 0.3, 0.4]), standing=False)
    out = np.empty(66)
    t_act = t_step = t_row = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        a = ctl.act()
        t1 = time.perf_counter()
        sim.step(a)
        t2 = time.perf_counter()
        sim.row(sim.fallen(), out)
        t3 = time.perf_counter()
        t_act += t1 - t0
        t_step += t2 - t1
        t_row += t3 - t2
    return {k: round(1e6 * v / steps, 1) for k, v in (("act_us", t_act), ("step_us", t_step), ("row_us", t_row))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=30_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    table, cmds, falls = generate_rows(args.rows, np.random.default_rng(args.seed))
    seconds = time.perf_counter() - t0
    summary = summarize(_stats(table, cmds, falls), 1, seconds)
    parts = breakdown()
    result = {
        "benchmark": "sim_collect_single_process",
        "rows": args.rows,
        "steps_per_s": round(args.rows / seconds, 1),
        "breakdown": parts,
        "falls_per_100k_rows": summary["falls_per_100k_rows"],
        "command_correlation": summary["command_correlation"],
        "foot_contact_duty": summary["foot_contact_duty"],
        "loadavg_1min_before": round(load_before, 2),
        "cpu_count": os.cpu_count(),
    }
    print(f"control steps/s (single process, incl. controller and row logging): {result['steps_per_s']}")
    print(f"per step: controller {parts['act_us']} us, physics {parts['step_us']} us, row {parts['row_us']} us")
    print(f"falls per 100k rows: {summary['falls_per_100k_rows']}, correlations: {summary['command_correlation']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
