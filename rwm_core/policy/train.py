"""MOPO-PPO: rsl-rl-lib's PPO on the penalised imagination environment (SPEC §5).

The loop is rsl-rl's on-policy loop (act, step, process, compute returns, update) written out here so that we own
what a research pipeline needs around it: a metrics CSV per iteration, atomic checkpoints, resume, a progress bar,
and export of the actor for the simulator evaluation. Those are shared with the other trainers: the collection
phase in :mod:`rwm_core.policy.onpolicy`, the resumable loop around it in :mod:`rwm_core.training_loop`.
"""

from __future__ import annotations

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
from rwm_core.errors import RwmError
from rwm_core.imagination.env import ImaginationEnv
from rwm_core.loaders import KIND_NAMES, POLICY, load_torch_file, require_keys
from rwm_core.policy.bc import BC_FILE, CloneAnchor, warm_start
from rwm_core.policy.export import JIT_FILE, ONNX_FILE, export_actor
from rwm_core.policy.onpolicy import StepMeans, build_ppo, collect, ppo_columns
from rwm_core.runtime import autocast, resolve_device, seed_everything, set_threads
from rwm_core.tasks.anymal_d_flat.rewards import TERM_NAMES
from rwm_core.training_loop import CHECKPOINT_DIR as CHECKPOINT_DIR
from rwm_core.training_loop import METRICS_FILE, TrainingLoop

FINAL_CHECKPOINT = "policy_checkpoint.pt"
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


def finish_policy(out: Path, alg: PPO, iterations: int, extra: dict[str, Any]) -> None:
    """The final checkpoint and the exported actor (TorchScript, ONNX) a PPO trainer leaves in ``out``."""
    _save(out / FINAL_CHECKPOINT, alg, iterations, extra)
    alg.eval_mode()
    export_actor(alg.get_policy(), out)


def _clone_actor(alg: PPO, path: Path, dev: torch.device) -> torch.nn.Module:
    """The cloned actor a run saved as its checkpoint 0, for a resumed run's anchor."""
    import copy

    state = read_checkpoint(path, dev, hint="the cloned actor of this run; remove the checkpoints to start afresh")
    require_keys(state, ("actor_state_dict",), path, "the cloned actor", KIND_NAMES[POLICY_KIND])
    actor = copy.deepcopy(alg.actor)
    actor.load_state_dict(state["actor_state_dict"])
    return actor


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
    if cfg.bc_regularization > 0 and cfg.bc_epochs == 0:
        raise PolicyTrainingError(
            f"policy.bc_regularization {cfg.bc_regularization:g} holds the actor near the cloned one, but "
            "policy.bc_epochs is 0 (no clone): set bc_epochs > 0 or bc_regularization to 0"
        )
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
    alg = build_ppo(env, ppo_config(cfg), dev)

    fingerprint = artifacts.resume_fingerprint(
        to_dict(cfg), RESUME_IGNORED, penalty=penalty, seed=seed, model=artifacts.sha256_file(model)
    )
    loop = TrainingLoop(out, "train-policy", cfg.iterations, cfg.checkpoint_every, PolicyTrainingError)
    state = loop.resume(resume, fingerprint, lambda p: _read_resumable(p, dev), POLICY_FORMAT_VERSION)
    if state is not None:
        with loop.restoring("a policy checkpoint of this configuration"):
            alg.load(state, None, strict=True)
    episode_keys = [
        "/episode/length",
        "/episode/reward_penalised",
        "/episode/reward_unpenalised",
        "/episode/uncertainty_mean",
        "/episode/terminated",
        "/episode/left_data",  # ended by out_of_data_termination (0 when it is off)
        *(f"/episode_reward/{name}" for name in TERM_NAMES),
        "/episode_reward/termination",  # the training-only fall cost (0 unless policy.termination_penalty > 0)
    ]
    core = ("reward_penalised", "reward_unpenalised", "uncertainty")
    # actor_cfg: lets `rwm evaluate-policy --checkpoints` rebuild any checkpoint's actor without the training config
    ckpt_extra = {"penalty": penalty, "seed": seed, "fingerprint": fingerprint, "actor_cfg": ppo_config(cfg)["actor"]}

    def save(path: Path, iteration: int, metrics_csv: str) -> None:
        _save(path, alg, iteration, {**ckpt_extra, "metrics_csv": metrics_csv})

    if state is None and cfg.bc_epochs > 0:
        # the cloned actor is iteration 0: `evaluate-policy --checkpoints` scores it, a killed run resumes from it
        warm_start(alg.actor, data, cfg, seed, out / BC_FILE, progress=progress)
        save(loop.checkpoint_dir / artifacts.checkpoint_name(0), 0, "")
    if cfg.bc_regularization > 0:  # the anchor is the clone, checkpoint 0 (also of a resumed run)
        clone = alg.actor
        if state is not None:
            clone = _clone_actor(alg, loop.checkpoint_dir / artifacts.checkpoint_name(0), dev)
        alg.symmetry = CloneAnchor(clone, cfg.bc_regularization)

    config = {"policy": to_dict(cfg), "penalty": penalty, "seed": seed}
    with loop.open(save, tracking=tracking, config=config, progress=progress, desc=f"policy λ={penalty:g}"):
        alg.train_mode()
        obs = env.get_observations()
        for it in loop:
            t0 = time.perf_counter()
            stats = StepMeans(core, episode_keys)
            obs = collect(alg, env, obs, cfg.steps_per_env, stats.add)
            t_collect = time.perf_counter() - t0
            hold_actor = it < cfg.critic_warmup_iterations  # the critic learns the start's values first
            for p in alg.actor.parameters():
                p.requires_grad_(not hold_actor)  # no gradient: Adam leaves the actor (and its std) as it is
            with autocast(dev, cfg.precision):  # bf16 mixed precision for the actor/critic products when configured
                losses = alg.update()
            if "symmetry" in losses:  # rsl-rl's name for the extra loss term: here the clone anchor's
                losses["bc"] = losses.pop("symmetry")
            t_total = time.perf_counter() - t0
            steps = cfg.num_envs * cfg.steps_per_env
            row: dict[str, Any] = {"iteration": it + 1, **stats.step_means(), **stats.episode_means()}
            row.update(ppo_columns(alg, losses), collect_steps_per_s=steps / t_collect, env_steps_per_s=steps / t_total)
            postfix = {
                "r": f"{row['reward_unpenalised']:.3f}",
                "r_pen": f"{row['reward_penalised']:.3f}",
                "u": f"{row['uncertainty']:.2f}",
                "sps": f"{row['env_steps_per_s']:.0f}",
            }
            loop.end_iteration(row, finite=(*core, *(f"loss.{k}" for k in losses)), postfix=postfix)
    finish_policy(out, alg, cfg.iterations, ckpt_extra)
    return {
        "penalty": penalty,
        "seed": seed,
        "iterations": cfg.iterations,
        "resumed_from": loop.start_iteration,
        "device": str(dev),
        **loop.last_row,
    }
