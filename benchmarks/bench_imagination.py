"""Imagination throughput: env-steps/s of collection (policy acting, 24 steps per env) and of a full PPO iteration.

RWM-U world model (5 members, 2-layer GRU 256, heads 128), actor/critic [128, 128, 128], on 2 threads, for 1024 and
4096 envs, on synthetic data with an untrained model (throughput does not depend on the weights, but episode
lengths do, so terminations are switched off to keep the reset load realistic), in float32 (the default) and in
bfloat16 mixed precision (``policy.precision: bfloat16``: bf16 world-model products and gates in imagination, PPO
update under bf16 autocast). Ends with one JSON line.
Usage: python benchmarks/bench_imagination.py [--envs 1024 4096] [--precision float32 bfloat16] [--iterations 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import torch
from rsl_rl.algorithms import PPO

from rwm_core.config import DatasetConfig, DynamicsConfig, PolicyConfig
from rwm_core.data.dataset import Dataset
from rwm_core.data.io import write_csv_file
from rwm_core.data.synthetic import synthetic_rows
from rwm_core.data.validate import validate_dataset
from rwm_core.dynamics.model import ModelSpec, SystemDynamicsEnsemble
from rwm_core.imagination.env import ImaginationEnv
from rwm_core.policy.train import ppo_config
from rwm_core.runtime import PRECISIONS, autocast


def build(tmp: Path) -> tuple[SystemDynamicsEnsemble, Dataset]:
    rows = synthetic_rows(20_000, seed=0)
    (tmp / "csv").mkdir()
    write_csv_file(tmp / "csv" / "state_action_data_0.csv", rows, list(range(57, 66)))
    validate_dataset(tmp / "csv", tmp / "data", DatasetConfig(), progress=False)
    ds = Dataset.load(tmp / "data")
    model = SystemDynamicsEnsemble(ModelSpec.from_layout(ds.layout, DynamicsConfig())).eval()
    with torch.no_grad():  # no predicted terminations: episodes end by time-out only
        for head in model.auxiliary_heads:
            head.termination_layers[2].bias.fill_(-50.0)
    for p in model.parameters():
        p.requires_grad_(False)
    return model, ds


def measure(
    model: SystemDynamicsEnsemble, ds: Dataset, num_envs: int, iterations: int, precision: str = "float32"
) -> dict[str, float]:
    cfg = PolicyConfig(num_envs=num_envs, precision=precision)
    env = ImaginationEnv(model, ds.normalizer, ds, cfg, episode_length=cfg.episode_length, penalty=1.0, seed=0)
    dev = torch.device("cpu")
    with contextlib.redirect_stdout(io.StringIO()):
        alg = PPO.construct_algorithm(env.get_observations(), env, ppo_config(cfg), "cpu")
    alg.train_mode()
    obs = env.get_observations()
    t_collect = t_total = 0.0
    for it in range(iterations + 1):  # first iteration is warm-up
        t0 = time.perf_counter()
        with torch.inference_mode():
            for _ in range(cfg.steps_per_env):
                actions = alg.act(obs)
                obs, rewards, dones, extras = env.step(actions)
                alg.process_env_step(obs, rewards, dones, extras)
            alg.compute_returns(obs)
        t1 = time.perf_counter()
        with autocast(dev, precision):  # as rwm_core.policy.train does
            alg.update()
        t2 = time.perf_counter()
        if it > 0:
            t_collect += t1 - t0
            t_total += t2 - t0
    steps = num_envs * cfg.steps_per_env * iterations
    return {"collect_env_steps_per_s": steps / t_collect, "total_env_steps_per_s": steps / t_total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--precision", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result: dict[str, object] = {"threads": args.threads, "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        model, ds = build(Path(tmp))
        for prec, n in ((p, n) for p in args.precision for n in args.envs):
            r = measure(model, ds, n, args.iterations, prec)
            print(
                f"{prec:8s} {n:5d} envs: collection {r['collect_env_steps_per_s']:9,.0f} env-steps/s, "
                f"with PPO update {r['total_env_steps_per_s']:9,.0f} env-steps/s"
            )
            key = str(n) if prec == "float32" else f"{n}_{prec}"  # float32 keys unchanged from earlier runs
            result[key] = {k: round(v) for k, v in r.items()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
