"""Model-free PPO from scratch in the batched MuJoCo simulator, keeping its experience as the world model's data.

Why: upstream pretrains its world model on the experience a PPO learner induces in the simulator, at every stage of
its learning, and RWM-U's best offline dataset ("mixed") is exactly that. This trainer is rsl-rl-lib's PPO on
:class:`rwm_core.sim.vec_env.SimVecEnv`, with the same progress bar, metrics.csv, atomic checkpoints, resume, NaN
stop and TorchScript/ONNX export as ``rwm train-policy``; the first ``record_envs`` envs' rows are written as
``experience/state_action_data_<i>.csv`` (one stream per env, time-outs listed in ``streams.json``).
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import time
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDict

from rwm_core import artifacts
from rwm_core.artifacts import atomic_path
from rwm_core.config import PPOConfig, TrackingConfig, to_dict
from rwm_core.policy.onpolicy import StepMeans, build_ppo, collect, ppo_columns
from rwm_core.policy.train import (
    CHECKPOINT_DIR,
    FINAL_CHECKPOINT,
    POLICY_FORMAT_VERSION,
    PolicyTrainingError,
    _read_resumable,
    _save,
    finish_policy,
    ppo_config,
)
from rwm_core.runtime import resolve_device, seed_everything, set_threads, torch_threads
from rwm_core.sim.record import ExperienceRecorder
from rwm_core.sim.vec_env import SimVecEnv
from rwm_core.tasks.anymal_d_flat.rewards import TERM_NAMES
from rwm_core.training_loop import TrainingLoop

EXPERIENCE_DIR = "experience"
EXPERIENCE_STATE = "experience.pkl"  # the recorder at a checkpoint, beside it (resume continues the streams)
RESUME_IGNORED = frozenset({"iterations", "checkpoint_every", "threads"})


def _experience_path(checkpoint: Path) -> Path:
    return checkpoint.with_suffix(".experience.pkl")


def _save_experience(path: Path, recorder: ExperienceRecorder | None) -> None:
    if recorder is None:
        return
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(recorder.state_dict(), f, protocol=pickle.HIGHEST_PROTOCOL)


def _load_experience(path: Path) -> ExperienceRecorder:
    """The recorder saved beside a checkpoint; anything else is one InputError line, not a traceback."""
    from rwm_core.loaders import check_file, fail, one_line

    expected = "the recorded experience saved with this checkpoint"
    check_file(path, expected, "remove the checkpoints to start from scratch")
    try:
        with open(path, "rb") as f:
            return ExperienceRecorder.from_state_dict(pickle.load(f))
    except Exception as e:  # truncated or foreign: unpickling fails in many ways
        raise fail(path, expected, f"an unreadable file ({one_line(str(e)) or type(e).__name__})",
                   "remove the checkpoints to start from scratch") from None  # fmt: skip


def train_ppo(
    out_dir: str | Path,
    cfg: PPOConfig,
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    tracking: TrackingConfig | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a policy from scratch in the simulator; write checkpoints, metrics.csv, the actor and its experience."""
    out = Path(out_dir)
    dev = resolve_device(device)
    set_threads()
    seed_everything(seed)
    out.mkdir(parents=True, exist_ok=True)
    env = SimVecEnv(cfg, seed=seed, device=dev)
    try:
        return _train(env, out, cfg, seed, dev, resume, tracking, progress)
    finally:
        env.close()


def _train(
    env: SimVecEnv,
    out: Path,
    cfg: PPOConfig,
    seed: int,
    dev: torch.device,
    resume: bool,
    tracking: TrackingConfig | None,
    progress: bool,
) -> dict[str, Any]:
    env.cfg_dict = to_dict(cfg)
    train_cfg = ppo_config(cfg)
    alg = build_ppo(env, train_cfg, dev)
    fingerprint = artifacts.resume_fingerprint(to_dict(cfg), RESUME_IGNORED, seed=seed, stage="train-ppo")
    recorder = ExperienceRecorder(env.sim.rows(env.record_ids)) if cfg.record_envs else None
    loop = TrainingLoop(out, "train-ppo", cfg.iterations, cfg.checkpoint_every, PolicyTrainingError)
    state = loop.resume(resume, fingerprint, lambda p: _read_resumable(p, dev), POLICY_FORMAT_VERSION)
    if state is not None:
        with loop.restoring("a train-ppo checkpoint of this configuration"):
            alg.load(state, None, strict=True)
            _restore_env(env, state["env_state"])
        if recorder is not None:
            recorder = _load_experience(_experience_path(loop.resumed_path))
    episode_keys = [
        "/episode/length",
        "/episode/return",
        "/episode/fall",
        *(f"/episode_reward/{name}" for name in TERM_NAMES),
        "/episode_reward/termination",
    ]
    ckpt_extra = {"seed": seed, "fingerprint": fingerprint, "actor_cfg": train_cfg["actor"], "stage": "train-ppo"}

    def save(path: Path, iteration: int, metrics_csv: str) -> None:
        _save_experience(_experience_path(path), recorder)
        env_state = {**_env_state(env), "obs": obs["policy"]}
        _save(path, alg, iteration, {**ckpt_extra, "metrics_csv": metrics_csv, "env_state": env_state})

    def record(extras: dict[str, Any]) -> None:
        if recorder is not None:
            recorder.add(extras["record"])

    config = {"ppo": to_dict(cfg), "seed": seed}
    with loop.open(save, tracking=tracking, config=config, progress=progress, desc="ppo"):
        if state is None:  # the untrained policy: RWM-U's `random` dataset rolls it out
            _save(out / INITIAL_CHECKPOINT, alg, 0, ckpt_extra)
        alg.train_mode()
        # the observation the last step returned (with its noise draw), so a resumed run goes on exactly
        obs = (
            TensorDict({"policy": state["env_state"]["obs"].to(dev)}, batch_size=[env.num_envs], device=dev)
            if state is not None
            else env.get_observations()
        )
        steps = cfg.num_envs * cfg.steps_per_env
        for it in loop:
            t0 = time.perf_counter()
            stats = StepMeans(("reward", "fell"), episode_keys)
            with torch_threads(1):  # MuJoCo has the cores; the update below gets them back
                obs = collect(alg, env, obs, cfg.steps_per_env, stats.add, record)
            t_collect = time.perf_counter() - t0
            losses = alg.update()
            t_total = time.perf_counter() - t0
            means = stats.step_means()
            row: dict[str, Any] = {
                "iteration": it + 1,
                "env_steps": (it + 1) * steps,
                "wall_s": loop.wall_s,
                "reward": means["reward"],
                "fall_rate": means["fell"],  # falls per env-step
                **stats.episode_means(),
            }
            row.update(
                ppo_columns(alg, losses),
                collect_steps_per_s=steps / t_collect,
                env_steps_per_s=steps / t_total,
                recorded_rows=recorder.rows if recorder is not None else 0,
            )
            postfix = {
                "r": f"{row['reward']:.4f}",
                "len": f"{row['episode.length']:.0f}",
                "std": f"{row['action_std']:.2f}",
                "sps": f"{row['env_steps_per_s']:.0f}",
            }
            loop.end_iteration(row, finite=("reward", *(f"loss.{k}" for k in losses)), postfix=postfix)
    finish_policy(out, alg, cfg.iterations, ckpt_extra)
    summary: dict[str, Any] = {
        "seed": seed,
        "iterations": cfg.iterations,
        "resumed_from": loop.start_iteration,
        **loop.last_row,
    }
    if recorder is not None:
        summary["experience"] = recorder.write(out / EXPERIENCE_DIR)
    return summary


def _env_state(env: SimVecEnv) -> dict[str, Any]:
    """Everything the env carries between steps, so a resumed run continues the same episodes."""
    r = env.rewards
    return {
        "sim": {k: torch.from_numpy(getattr(env.sim, k).copy()) for k in _SIM_KEYS},  # tensors: weights_only loads
        "rng": env.rng.bit_generator.state,
        "noise_gen": env.noise_gen.get_state(),
        "commands": env.commands.clone(),
        "command_timer": torch.from_numpy(env.command_timer.copy()),
        "push_timer": torch.from_numpy(env.push_timer.copy()),
        "episode_length_buf": env.episode_length_buf.clone(),
        "episode_sums": {k: v.clone() for k, v in env.episode_sums.items()},
        "episode_return": env.episode_return.clone(),
        "rewards": {k: getattr(r, k).clone() for k in _REWARD_KEYS},
        "torch_rng": torch.get_rng_state(),  # PPO samples its actions from torch's global generator (CPU) ...
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,  # ... or the GPU's
    }


_SIM_KEYS = (
    "state",
    "target",
    "last_action",
    "last_torque",
    "lo",
    "hi",
    "foot_contact",
    "thigh_contact",
    "trunk_contact",
)
_REWARD_KEYS = ("prev_joint_vel", "prev_action", "has_prev_joint_vel", "air_time", "last_air_time")


def _restore_env(env: SimVecEnv, state: dict[str, Any]) -> None:
    """Undo :func:`_env_state`; the checkpoint may have been loaded onto a GPU (``map_location``), the simulator
    arrays and the generators live on the CPU."""
    for k in _SIM_KEYS:
        getattr(env.sim, k)[...] = state["sim"][k].cpu().numpy()
    env.rng.bit_generator.state = state["rng"]
    env.noise_gen.set_state(state["noise_gen"].cpu())
    env.commands.copy_(state["commands"])
    env.command_timer[:] = state["command_timer"].cpu().numpy()
    env.push_timer[:] = state["push_timer"].cpu().numpy()
    env.episode_length_buf.copy_(state["episode_length_buf"])
    env.episode_sums = {k: v.to(env.episode_return.device, copy=True) for k, v in state["episode_sums"].items()}
    env.episode_return.copy_(state["episode_return"])
    for k in _REWARD_KEYS:
        getattr(env.rewards, k).copy_(state["rewards"][k])
    torch.set_rng_state(state["torch_rng"].cpu())
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])


DATASET_KINDS = ("mixed", "random", "medium", "expert")  # RWM-U's offline dataset kinds
INITIAL_CHECKPOINT = "initial_policy.pt"  # the untrained policy of the run: the `random` kind rolls it out


def kind_checkpoint(policy_dir: str | Path, kind: str, medium_fraction: float = 0.3) -> Path:
    """The checkpoint a dataset kind rolls out: the initial policy, the one nearest ``medium_fraction`` of the run,
    or the final one."""
    from rwm_core.loaders import fail

    d = Path(policy_dir)
    if kind == "random":
        path = d / INITIAL_CHECKPOINT
    elif kind == "expert":
        path = d / FINAL_CHECKPOINT
    elif kind == "medium":
        found = artifacts.list_checkpoints(d / CHECKPOINT_DIR)
        if not found:
            raise fail(d / CHECKPOINT_DIR, "the checkpoints of `rwm train-ppo`", "none")
        last = max(i for i, _ in found)
        path = min(found, key=lambda ip: (abs(ip[0] - medium_fraction * last), ip[0]))[1]
    else:
        raise PolicyTrainingError(f"dataset kind {kind!r} is not rolled out from a checkpoint; use {DATASET_KINDS[1:]}")
    if not path.exists():
        raise fail(path, f"the {kind} policy of a `rwm train-ppo` run", "nothing (file not found)")
    return path


def collect_dataset(
    policy_dir: str | Path,
    kind: str,
    out_dir: str | Path,
    rows: int,
    cfg: PPOConfig,
    seed: int = 0,
    num_envs: int = 64,
    medium_fraction: float = 0.3,
    progress: bool = True,
) -> dict[str, Any]:
    """Roll out a checkpoint of a PPO run with its own action noise and keep every env's rows (RWM-U's random,
    medium and expert datasets); one stream per env, as the `mixed` experience."""
    from rwm_core.config import PolicyConfig
    from rwm_core.policy.export import actor_from_checkpoint
    from rwm_core.policy.train import read_checkpoint

    path = kind_checkpoint(policy_dir, kind, medium_fraction)
    state = read_checkpoint(path)
    actor = actor_from_checkpoint(state, PolicyConfig(), name=path)
    std = state["actor_state_dict"]["distribution.std_param"].detach().float()
    set_threads()
    seed_everything(seed)
    env = SimVecEnv(dataclasses.replace(cfg, num_envs=num_envs, record_envs=num_envs), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    steps = max(1, math.ceil((rows - num_envs) / num_envs))
    try:
        recorder = ExperienceRecorder(env.sim.rows(env.record_ids))
        obs = env.get_observations()
        from tqdm import tqdm

        with torch.inference_mode():
            for _ in tqdm(range(steps), desc=f"collect {kind}", unit="step", disable=not progress):
                mean = actor(obs["policy"])
                actions = mean + std * torch.randn(mean.shape, generator=gen)
                obs, _, _, extras = env.step(actions)
                recorder.add(extras["record"])
        summary = recorder.write(out_dir)
    finally:
        env.close()
    return {"kind": kind, "checkpoint": str(path), "iteration": int(state.get("iter", 0)), **summary}
