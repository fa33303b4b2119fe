"""MOPO-PPO: rsl-rl-lib's PPO on the penalised imagination environment (SPEC §5).

The loop is rsl-rl's on-policy loop (act, step, process, compute returns, update) written out here so that we own
what a research pipeline needs around it: a metrics CSV per iteration, atomic checkpoints, resume, a progress bar,
and export of the actor for the simulator evaluation.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from pathlib import Path
from typing import Any

import torch
from rsl_rl.algorithms import PPO

from rwm_core import artifacts
from rwm_core.artifacts import atomic_path
from rwm_core.config import PolicyConfig, TrackingConfig, to_dict
from rwm_core.data.dataset import Dataset
from rwm_core.errors import InputError, RwmError
from rwm_core.imagination.env import ImaginationEnv
from rwm_core.loaders import KIND_NAMES, POLICY, load_torch_file, one_line, require_keys
from rwm_core.policy.export import JIT_FILE, ONNX_FILE, export_actor
from rwm_core.runtime import autocast, resolve_device, seed_everything, set_threads
from rwm_core.tasks.anymal_d_flat.rewards import TERM_NAMES
from rwm_core.tracking import MetricsTracker

CHECKPOINT_DIR = "checkpoints"
FINAL_CHECKPOINT = "policy_checkpoint.pt"
METRICS_FILE = "metrics.csv"
OUTPUT_FILES = (JIT_FILE, ONNX_FILE, FINAL_CHECKPOINT, METRICS_FILE)  # what train-policy leaves in its directory
POLICY_FORMAT_VERSION = 1
POLICY_KIND = POLICY  # the ``kind`` field of our policy checkpoints; files written before it are told by their keys
RESUME_KEYS = ("actor_state_dict", "critic_state_dict", "optimizer_state_dict", "iter")


class PolicyTrainingError(RwmError):
    """Training diverged or a checkpoint cannot be used."""


def ppo_config(cfg: PolicyConfig) -> dict[str, Any]:
    """The rsl-rl runner-style config for PPO with MLP actor and critic."""
    return {
        "num_steps_per_env": cfg.steps_per_env,
        "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
        "multi_gpu": None,
        "algorithm": {
            "class_name": "PPO",
            "num_learning_epochs": cfg.learning_epochs,
            "num_mini_batches": cfg.mini_batches,
            "clip_param": cfg.clip_param,
            "gamma": cfg.gamma,
            "lam": cfg.lam,
            "value_loss_coef": cfg.value_loss_coef,
            "entropy_coef": cfg.entropy_coef,
            "learning_rate": cfg.learning_rate,
            "max_grad_norm": cfg.max_grad_norm,
            "use_clipped_value_loss": cfg.use_clipped_value_loss,
            "schedule": cfg.schedule,
            "desired_kl": cfg.desired_kl,
        },
        "actor": {
            "class_name": "MLPModel",
            "hidden_dims": list(cfg.actor_hidden),
            "activation": cfg.activation,
            "obs_normalization": False,
            "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": cfg.init_noise_std},
        },
        "critic": {
            "class_name": "MLPModel",
            "hidden_dims": list(cfg.critic_hidden),
            "activation": cfg.activation,
            "obs_normalization": False,
        },
    }


# keys that only say how long, how often or how to evaluate; checkpoints under other values can be continued
RESUME_IGNORED = frozenset({"iterations", "checkpoint_every", "eval_episodes", "eval_episode_steps"})


def _save(path: Path, alg: PPO, iteration: int, extra: dict[str, Any]) -> None:
    state = alg.save()
    state.update(iter=iteration, format_version=POLICY_FORMAT_VERSION, kind=POLICY_KIND, **extra)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: str | Path, map_location: Any = "cpu", hint: str = "") -> dict[str, Any]:
    """A policy checkpoint of `rwm train-policy` (``policy_checkpoint.pt``, ``checkpoints/iter_N.pt``).

    Anything else (missing, truncated, a world model, a newer format) fails with one :class:`InputError` line.
    """
    return load_torch_file(
        path, POLICY_KIND, supported_version=POLICY_FORMAT_VERSION, map_location=map_location, hint=hint
    )


def _read_resumable(path: Path, map_location: Any) -> dict[str, Any]:
    state = read_checkpoint(path, map_location, hint="remove it to start from scratch")
    require_keys(state, RESUME_KEYS, path, "a policy training checkpoint", KIND_NAMES[POLICY_KIND])
    return state


def train_policy(
    model: str | Path,
    dataset: str | Path,
    out_dir: str | Path,
    cfg: PolicyConfig,
    penalty: float = 0.0,
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    tracking: TrackingConfig | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train one policy in imagination with penalty λ; write checkpoints, metrics.csv and the exported actor."""
    from rwm_core.dynamics.checkpoint import check_layout
    from rwm_core.dynamics.checkpoint import load as load_model

    if penalty < 0 or not math.isfinite(penalty):
        raise PolicyTrainingError(f"penalty λ must be a finite number >= 0, got {penalty}")
    out = Path(out_dir)
    dev = resolve_device(device)
    set_threads()
    seed_everything(seed)
    loaded = load_model(model, device=dev)
    world_model, normalizer = loaded.model, loaded.normalizer
    world_model.eval()
    for p in world_model.parameters():
        p.requires_grad_(False)
    data = Dataset.load(dataset)
    check_layout(loaded, data.layout, model, f"dataset {dataset}")
    out.mkdir(parents=True, exist_ok=True)  # only once the inputs are known to be usable: a failure writes nothing
    env = ImaginationEnv(
        world_model, normalizer, data, cfg, episode_length=cfg.episode_length, penalty=penalty, device=dev, seed=seed
    )
    env.cfg_dict = to_dict(cfg)  # rsl-rl reads env.cfg for logging only
    train_cfg = ppo_config(cfg)
    obs = env.get_observations()
    with contextlib.redirect_stdout(io.StringIO()):  # rsl-rl prints the model summaries
        alg = PPO.construct_algorithm(obs, env, train_cfg, str(dev))

    fingerprint = artifacts.resume_fingerprint(
        to_dict(cfg), RESUME_IGNORED, penalty=penalty, seed=seed, model=artifacts.sha256_file(model)
    )
    start_iter = 0
    found = (
        artifacts.resumable_checkpoint(
            out / CHECKPOINT_DIR,
            cfg.iterations,
            fingerprint,
            lambda p: _read_resumable(p, dev),
            lambda state: state.get("fingerprint"),
            "train-policy",
            POLICY_FORMAT_VERSION,
        )
        if resume
        else None
    )
    restore: str | None = None
    if found is not None:
        last, state = found
        try:
            alg.load(state, None, strict=True)
            start_iter = int(state["iter"])
        except (RuntimeError, ValueError, TypeError, KeyError) as e:
            raise InputError(
                f"{last}: expected a policy checkpoint of this configuration, found one that does not fit it "
                f"({one_line(str(e))}); remove it to start from scratch"
            ) from None
        restore = state.get("metrics_csv")
    logger = MetricsTracker(
        out / METRICS_FILE,
        tracking,
        run_name=out.name,
        config={"policy": to_dict(cfg), "penalty": penalty, "seed": seed},
        resume_step=start_iter if start_iter > 0 else None,
        restore=restore,
    )
    episode_keys = [
        "/episode/length",
        "/episode/reward_penalised",
        "/episode/reward_unpenalised",
        "/episode/uncertainty_mean",
        "/episode/terminated",
        *(f"/episode_reward/{name}" for name in TERM_NAMES),
        "/episode_reward/termination",  # the training-only fall cost (0 unless policy.termination_penalty > 0)
    ]

    # actor_cfg: lets `rwm evaluate-policy --checkpoints` rebuild any checkpoint's actor without the training config
    ckpt_extra = {"penalty": penalty, "seed": seed, "fingerprint": fingerprint, "actor_cfg": ppo_config(cfg)["actor"]}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.iterations, initial=start_iter, desc=f"policy λ={penalty:g}", unit="it")
    alg.train_mode()
    obs = env.get_observations()
    last_row: dict[str, Any] = {}
    for it in range(start_iter, cfg.iterations):
        t0 = time.perf_counter()
        step_stats = {"reward_penalised": 0.0, "reward_unpenalised": 0.0, "uncertainty": 0.0}
        episode_logs: dict[str, list[float]] = {}
        with torch.inference_mode():
            for _ in range(cfg.steps_per_env):
                actions = alg.act(obs)
                obs, rewards, dones, extras = env.step(actions)
                alg.process_env_step(obs, rewards, dones, extras)
                for k in step_stats:
                    step_stats[k] += float(extras["step"][k].mean())
                for k, v in extras["log"].items():
                    episode_logs.setdefault(k, []).append(float(v))
            alg.compute_returns(obs)
        t_collect = time.perf_counter() - t0
        with autocast(dev, cfg.precision):  # bf16 mixed precision for the actor/critic products when configured
            losses = alg.update()
        t_total = time.perf_counter() - t0
        steps = cfg.num_envs * cfg.steps_per_env
        row: dict[str, Any] = {
            "iteration": it + 1,
            "reward_penalised": step_stats["reward_penalised"] / cfg.steps_per_env,
            "reward_unpenalised": step_stats["reward_unpenalised"] / cfg.steps_per_env,
            "uncertainty": step_stats["uncertainty"] / cfg.steps_per_env,
        }
        for k in episode_keys:  # fixed columns; NaN when no episode ended this iteration
            vals = episode_logs.get(k, [])
            row[k.strip("/").replace("/", ".")] = sum(vals) / len(vals) if vals else float("nan")
        row.update({f"loss.{k}": float(v) for k, v in losses.items()})
        row.update(
            learning_rate=float(alg.learning_rate),
            action_std=float(alg.get_policy().output_std.detach().mean()),
            collect_steps_per_s=steps / t_collect,
            env_steps_per_s=steps / t_total,
        )
        core = ("reward_penalised", "reward_unpenalised", "uncertainty")
        if not all(math.isfinite(row[k]) for k in core) or not all(math.isfinite(float(v)) for v in losses.values()):
            raise PolicyTrainingError(
                f"non-finite value at iteration {it + 1}: {row}; the last good checkpoint is kept in {out}"
            )
        logger.log(row)
        last_row = row
        if bar is not None:
            bar.set_postfix(
                r=f"{row['reward_unpenalised']:.3f}",
                r_pen=f"{row['reward_penalised']:.3f}",
                u=f"{row['uncertainty']:.2f}",
                sps=f"{row['env_steps_per_s']:.0f}",
            )
            bar.update(1)
        if (it + 1) % cfg.checkpoint_every == 0 or it + 1 == cfg.iterations:
            extra = {**ckpt_extra, "metrics_csv": logger.snapshot()}
            _save(out / CHECKPOINT_DIR / artifacts.checkpoint_name(it + 1), alg, it + 1, extra)
    if bar is not None:
        bar.close()
    logger.close()
    _save(out / FINAL_CHECKPOINT, alg, cfg.iterations, ckpt_extra)
    alg.eval_mode()
    export_actor(alg.get_policy(), out)
    return {
        "penalty": penalty,
        "seed": seed,
        "iterations": cfg.iterations,
        "resumed_from": start_iter,
        "device": str(dev),
        **last_row,
    }
