"""Throughput of the simulators: the batched env (mujoco.rollout) at several N, and the single-robot data collector.

Usage: python benchmarks/bench_sim.py [--sizes 64 256 1024] [--threads 2] [--seconds 4]
For each N it prints, on ``--threads`` MuJoCo threads:

* ``physics``: raw ``mujoco.rollout`` control steps/s on the same model (4 substeps in one call, fixed controls);
* ``collect``: env-steps/s of :class:`SimVecEnv` with an rsl-rl actor acting (observation, policy, physics,
  contacts, reward, resets);
* ``total``: env-steps/s of the whole PPO loop (``rwm train-ppo``: collection plus the PPO update).

The last line is one JSON object. Only meaningful on an otherwise idle machine (the load average is included).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from mujoco import rollout as mj_rollout

from rwm_core.config import PPOConfig
from rwm_core.sim.batch import BatchedQuadruped
from rwm_core.sim.collect import generate_rows
from rwm_core.sim.vec_env import SimVecEnv


def physics_rate(n: int, threads: int, seconds: float) -> float:
    """Control steps/s of plain mujoco.rollout: 4 substeps per call, zero torques (robots settle and stand)."""
    b = BatchedQuadruped(n, threads=threads)
    import mujoco

    data = [mujoco.MjData(b.model) for _ in range(threads)]
    ctrl = np.zeros((n, 4, 12))
    state = b.state.copy()
    out = np.empty((n, 4, b.nstate))
    sens = np.empty((n, 4, b.model.nsensordata))
    models = [b.model] * n
    calls = 0
    with mj_rollout.Rollout(nthread=threads) as pool:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            pool.rollout(models, data, state, ctrl, nstep=4, skip_checks=True, state=out, sensordata=sens)
            calls += 1
        dt = time.perf_counter() - t0
    b.close()
    return n * calls / dt


def ppo_rates(n: int, threads: int, seconds: float, collect_threads: int = 1) -> tuple[float, float]:
    """(collect, total) env-steps/s of the PPO loop of `rwm train-ppo` on N envs."""
    import contextlib
    import io

    from rsl_rl.algorithms import PPO

    from rwm_core.policy.onpolicy import collect
    from rwm_core.policy.train import ppo_config
    from rwm_core.runtime import torch_threads

    cfg = PPOConfig(num_envs=n, threads=threads, record_envs=0)
    torch.manual_seed(0)
    env = SimVecEnv(cfg, seed=0)
    with contextlib.redirect_stdout(io.StringIO()):
        alg = PPO.construct_algorithm(env.get_observations(), env, ppo_config(cfg), "cpu")
    alg.train_mode()
    obs = env.get_observations()
    t_collect = t_total = 0.0
    iters = 0
    while t_total < seconds or iters < 2:
        t0 = time.perf_counter()
        with torch_threads(collect_threads):  # as `rwm train-ppo` collects
            obs = collect(alg, env, obs, cfg.steps_per_env)
        t1 = time.perf_counter()
        alg.update()
        t2 = time.perf_counter()
        if iters > 0:  # the first iteration pays for allocations
            t_collect += t1 - t0
            t_total += t2 - t0
        iters += 1
    env.close()
    steps = (iters - 1) * n * cfg.steps_per_env
    return steps / t_collect, steps / t_total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=4.0, help="measuring time per figure")
    p.add_argument(
        "--collect-threads", type=int, default=1, help="torch threads while collecting (`rwm train-ppo` uses 1)"
    )
    p.add_argument("--single-rows", type=int, default=10_000, help="rows for the single-robot collector")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    result: dict[str, object] = {"benchmark": "sim", "threads": args.threads, "collect_threads": args.collect_threads}
    for n in args.sizes:
        phys = physics_rate(n, args.threads, args.seconds)
        collect, total = ppo_rates(n, args.threads, args.seconds, args.collect_threads)
        print(
            f"N={n:5d}: physics {phys:9.0f} control steps/s | collect (policy acting) {collect:8.0f} env-steps/s"
            f" | PPO loop {total:8.0f} env-steps/s"
        )
        result[f"physics_steps_per_s_n{n}"] = round(phys, 1)
        result[f"collect_steps_per_s_n{n}"] = round(collect, 1)
        result[f"total_steps_per_s_n{n}"] = round(total, 1)
    t0 = time.perf_counter()
    generate_rows(args.single_rows, np.random.default_rng(0))
    single = args.single_rows / (time.perf_counter() - t0)
    print(f"single robot (QuadrupedSim + trotting controller, one process): {single:.0f} control steps/s")
    result["single_robot_collect_steps_per_s"] = round(single, 1)
    result["loadavg_1min_before"] = round(load_before, 2)
    result["cpu_count"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
