"""Online RWM (MBPO-PPO, RWM's Algorithm 1): the simulator in the loop, the world model refined as the policy learns.

Each iteration: (1) a few real envs of the batched simulator step the current policy and append their rows to a
replay buffer of per-env streams; (2) the world model's 1- and 8-step relative error is measured on that fresh
data, before it has learnt from it; (3) the model takes ``model_updates`` gradient steps on windows from the buffer
(optionally mixed with the offline dataset); (4) the imagined envs restart from buffer histories with the updated
model and PPO updates the policy on the imagined transitions. The first ``warmup_iterations`` only collect and
train the model. Why online: an offline policy drives the model where it has no data and exploits its errors; here
the data follow the policy, so the model is corrected exactly where the policy goes.

By default PPO learns from imagined transitions only. With ``ppo_real`` it also learns from the real ones, as
upstream's MBPO-PPO does (it concatenates a real and an imagined mini-batch): the real and the imagined envs step side
by side as one env (:class:`rwm_core.policy.concat_env.ConcatVecEnv`), so rsl-rl's rollout storage holds both and
each mini-batch mixes them. The real envs' rollout for the buffer is then the real part of PPO's rollout
(``steps_per_env`` steps; ``real_steps`` is unused), its reward the task reward less the same fall cost the imagined
envs pay. An iteration becomes: (1+4a) real and imagined envs step together, the imagined ones from buffer histories
with the model as the previous iteration left it; (2) the error on the fresh real rows; (3) the model update; (4b)
the PPO update. So the imagination lags the model and the buffer by one iteration's update; the error is still
measured before the model learns from the rows. Warm-up iterations step the real envs alone. Real samples are
``real_envs / (real_envs + num_envs)`` of every batch (16 of 1040 with the defaults): the env counts set the mix.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDict

from rwm_core import artifacts
from rwm_core.config import DynamicsConfig, OnlineConfig, PPOConfig, TrackingConfig, from_dict, to_dict
from rwm_core.data.dataset import Dataset, window_batch
from rwm_core.dynamics import checkpoint as ckpt
from rwm_core.dynamics.rollout import autoregressive_predict
from rwm_core.dynamics.train import training_step
from rwm_core.evaluation.prediction import relative_error
from rwm_core.imagination.env import ImaginationEnv
from rwm_core.policy.concat_env import ConcatVecEnv
from rwm_core.policy.onpolicy import StepMeans, action_std, build_ppo, collect
from rwm_core.policy.ppo import _env_state, _restore_env
from rwm_core.policy.replay import ReplayBuffer
from rwm_core.policy.train import (
    POLICY_FORMAT_VERSION,
    PolicyTrainingError,
    _read_resumable,
    _save,
    finish_policy,
    ppo_config,
    read_checkpoint,
)
from rwm_core.runtime import resolve_device, seed_everything, set_threads, torch_threads
from rwm_core.sim.vec_env import SimVecEnv
from rwm_core.training_loop import TrainingLoop

MODEL_FILE = "model.pt"  # the world model as refined online
ERROR_STEPS = (1, 8)
PPO_LOSSES = ("value", "surrogate", "entropy")  # what rsl-rl's PPO.update() returns
RESUME_IGNORED = frozenset({"iterations", "checkpoint_every", "threads"})


def real_env_config(cfg: OnlineConfig) -> PPOConfig:
    """The real envs' settings, in the ``ppo`` section's terms (what :class:`SimVecEnv` reads): every env records
    its rows; the fall cost only when PPO learns from their transitions (the logged true reward never has it)."""
    return PPOConfig(
        num_envs=cfg.real_envs,
        episode_length=cfg.real_episode_length,
        observation_noise=cfg.observation_noise,
        pushes=True,
        termination_penalty=cfg.termination_penalty if cfg.ppo_real else 0.0,
        threads=cfg.threads,
        record_envs=cfg.real_envs,
    )


class _FreshError:
    """The model's relative error on the newest rows of the buffer, before the model has trained on them."""

    def __init__(self, buffer: ReplayBuffer, history: int, fresh_rows: int, max_windows: int = 512) -> None:
        self.buffer, self.history, self.fresh, self.max_windows = buffer, history, fresh_rows, max_windows

    def __call__(self, model: torch.nn.Module, normalizer: Any, layout: Any) -> dict[str, float]:
        b = self.buffer
        length = self.history + max(ERROR_STEPS)
        nan = {f"model_error_{k}": float("nan") for k in ERROR_STEPS}
        if len(b) < length:
            return nan
        starts = b.valid_starts(length)
        if len(starts) == 0:
            return nan
        # logical position (0 = oldest row) of each start; keep windows whose forecast lies in the fresh rows
        size, cap = len(b), b.data.shape[1]
        logical = (starts[:, 1] - (b.position - size)) % cap
        keep = logical + length > size - self.fresh
        if not bool(keep.any()):
            return nan
        chosen = starts[keep]
        if len(chosen) > self.max_windows:  # evenly spaced, no random draw: many real envs make thousands
            chosen = chosen[torch.linspace(0, len(chosen) - 1, self.max_windows).round().long().to(chosen.device)]
        rows = b.windows(chosen, length)
        batch = window_batch(rows, normalizer, layout)
        with torch.inference_mode():
            pred = autoregressive_predict(model, batch.states, batch.actions, self.history).states
        err = relative_error(pred, batch.states[:, self.history :]).mean(0)
        return {f"model_error_{k}": float(err[k - 1]) for k in ERROR_STEPS}


class _RealFeed:
    """Each real step's rows into the replay buffer, and the true reward and falls into step means.

    A row starts an episode when its env was done at the previous step (``prev_done``, carried across iterations)."""

    def __init__(self, buffer: ReplayBuffer, prev_done: torch.Tensor) -> None:
        self.buffer, self.prev_done = buffer, prev_done
        self.stats = StepMeans(("reward", "fell"))

    def __call__(self, extras: dict[str, Any]) -> None:
        record = extras["record"]  # every real env records (real_env_config)
        self.buffer.append(torch.from_numpy(record["rows"]).float(), self.prev_done.clone())
        self.prev_done = torch.from_numpy(record["done"]).bool()
        self.stats.add(extras)


def train_online(
    model: str | Path,
    dataset: str | Path,
    out_dir: str | Path,
    cfg: OnlineConfig,
    seed: int = 0,
    device: str = "auto",
    resume: bool = False,
    tracking: TrackingConfig | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run MBPO-PPO from the pretrained world model ``model`` (and its offline ``dataset``); see the module doc."""
    if cfg.ppo_real and cfg.warmup_iterations < 1:
        raise PolicyTrainingError(
            "online.ppo_real needs online.warmup_iterations >= 1: the imagined envs start from replay-buffer "
            "histories, and with ppo_real they step beside the real envs, so the first histories come from warm-up"
        )
    out = Path(out_dir)
    dev = resolve_device(device)
    set_threads()
    seed_everything(seed)
    loaded = ckpt.load(model, device=dev)
    data = Dataset.load(dataset)
    ckpt.check_layout(loaded, data.layout, model, f"dataset {dataset}")
    # rows each real env holds when imagination first starts from the buffer (before any fall breaks a stream)
    if cfg.ppo_real:
        first_rows, how = cfg.warmup_iterations * cfg.steps_per_env, "warmup_iterations x steps_per_env"
    else:
        first_rows, how = (cfg.warmup_iterations + 1) * cfg.real_steps, "(warmup_iterations + 1) x real_steps"
    if first_rows < data.history:
        raise PolicyTrainingError(
            f"online: the first imagined envs need {data.history}-step histories (the dataset's history) from the "
            f"replay buffer, but each real env holds only {how} = {first_rows} rows by then; raise "
            "warmup_iterations"
        )
    init_state = read_checkpoint(cfg.init_policy) if cfg.init_policy else None
    out.mkdir(parents=True, exist_ok=True)
    real = SimVecEnv(real_env_config(cfg), seed=seed)
    try:
        return _run(loaded, data, out, cfg, seed, dev, resume, tracking, progress, real, init_state, model, dataset)
    finally:
        real.close()


def _run(
    loaded: ckpt.LoadedDynamics,
    data: Dataset,
    out: Path,
    cfg: OnlineConfig,
    seed: int,
    dev: torch.device,
    resume: bool,
    tracking: TrackingConfig | None,
    progress: bool,
    real: SimVecEnv,
    init_state: dict[str, Any] | None,
    model_path: str | Path,
    dataset_path: str | Path,
) -> dict[str, Any]:
    world, normalizer, lay = loaded.model, loaded.normalizer, data.layout
    history, forecast = data.history, data.forecast
    dyn_cfg = from_dict(DynamicsConfig, loaded.training_config or {}, "dynamics")
    dyn_cfg.batch_size = cfg.model_batch_size
    optimizer = torch.optim.Adam(world.parameters(), lr=cfg.model_learning_rate)
    gen = torch.Generator().manual_seed(seed)  # model batches, bootstrap and buffer draws

    buffer = ReplayBuffer.from_layout(lay, cfg.real_envs, cfg.buffer_capacity)
    real_steps = cfg.steps_per_env if cfg.ppo_real else cfg.real_steps  # per real env and iteration
    fresh_error = _FreshError(buffer, history, real_steps)
    for p in world.parameters():
        p.requires_grad_(False)
    # every iteration restarts the imagined envs from fresh buffer histories: an episode lasts one iteration
    env = ImaginationEnv(
        world, normalizer, data, cfg, episode_length=cfg.steps_per_env, penalty=cfg.penalty, device=dev, seed=seed
    )
    env.cfg_dict = to_dict(cfg)
    offline_starts = torch.from_numpy(data.split(0.0)[0]) if cfg.offline_fraction > 0 else None

    def histories(k: int, g: torch.Generator) -> torch.Tensor:
        return buffer.sample(k, history, g)

    # ppo_real: PPO's env is the real envs beside the imagined ones, so its rollout storage holds both
    joint = ConcatVecEnv({"real": real, "imagined": env}, device=dev) if cfg.ppo_real else None
    train_cfg = ppo_config(cfg)
    alg = build_ppo(env if joint is None else joint, train_cfg, dev)
    if init_state is not None:  # fine-tune a model-free PPO policy, as upstream's Finetune task does
        try:
            alg.load(init_state, {"actor": True, "critic": True}, strict=True)
        except (RuntimeError, KeyError) as e:
            raise PolicyTrainingError(
                f"online.init_policy {cfg.init_policy}: its actor/critic do not fit this section's networks "
                f"(actor_hidden {cfg.actor_hidden}, critic_hidden {cfg.critic_hidden}, activation "
                f"{cfg.activation!r}); set them to the checkpoint's ({type(e).__name__}: {str(e).splitlines()[0]})"
            ) from None
    fingerprint = artifacts.resume_fingerprint(
        to_dict(cfg), RESUME_IGNORED, seed=seed, model=artifacts.sha256_file(model_path), stage="train-online"
    )
    loop = TrainingLoop(out, "train-online", cfg.iterations, cfg.checkpoint_every, PolicyTrainingError)
    state = loop.resume(resume, fingerprint, lambda p: _read_resumable(p, dev), POLICY_FORMAT_VERSION)
    real_obs = real.get_observations()
    prev_done = torch.ones(cfg.real_envs, dtype=torch.bool)  # the first row of every stream starts an episode
    if state is not None:
        with loop.restoring("a train-online checkpoint of this configuration"):
            alg.load(state, None, strict=True)
            online = state["online"]
            world.load_state_dict(online["world_model"])
            optimizer.load_state_dict(online["model_optimizer"])
            gen.set_state(online["generator"])
            env.gen.set_state(online["imagination_generator"])
            buffer.load_state_dict(online["buffer"])
            _restore_env(real, online["real_env"])
            real_obs = TensorDict({"policy": online["real_obs"]}, batch_size=[cfg.real_envs])
            prev_done = online["prev_done"]
    ckpt_extra = {"seed": seed, "fingerprint": fingerprint, "actor_cfg": train_cfg["actor"], "stage": "train-online"}

    def save(path: Path, iteration: int, metrics_csv: str) -> None:
        online = {
            "world_model": {k: v.detach().clone() for k, v in world.state_dict().items()},
            "model_optimizer": optimizer.state_dict(),
            "generator": gen.get_state(),
            "imagination_generator": env.gen.get_state(),
            "buffer": buffer.state_dict(),
            "real_env": _env_state(real),
            "real_obs": real_obs["policy"].clone(),
            "prev_done": prev_done.clone(),
        }
        _save(path, alg, iteration, {**ckpt_extra, "metrics_csv": metrics_csv, "online": online})

    def start_imagination() -> TensorDict:
        """The imagined envs restarted from buffer histories with the model as it is now; their first observation."""
        env.history_source = histories
        env.rollout.refresh()
        alg.train_mode()
        with torch.inference_mode():  # the env's tensors are inference tensors after the first rollout
            env.reset_envs(torch.arange(env.num_envs, device=env.device))
            return env.get_observations()

    def update_model() -> float:
        """``model_updates`` steps on buffer windows (and offline ones); the mean loss, NaN while none fits."""
        if not len(buffer.valid_starts(history + forecast)):
            return float("nan")
        for p in world.parameters():
            p.requires_grad_(True)
        world.train()
        losses = []
        for _ in range(cfg.model_updates):
            n_off = int(round(cfg.offline_fraction * cfg.model_batch_size)) if offline_starts is not None else 0
            rows = buffer.sample(cfg.model_batch_size - n_off, history + forecast, gen)
            if n_off:
                pick = offline_starts[torch.randint(0, len(offline_starts), (n_off,), generator=gen)]
                rows = torch.cat([rows, data.gather(pick.numpy())])
            batch = window_batch(rows.to(dev), normalizer, lay)  # already on the device
            terms, gnorm = training_step(world, optimizer, batch, history, dyn_cfg, gen)
            if not torch.isfinite(gnorm):
                bad = {**{f"model_{k}": float(v) for k, v in terms.items()}, "model_grad_norm": float(gnorm)}
                raise loop.non_finite(bad, "world-model update")
            losses.append(float(terms["total"]))
        world.eval()
        for p in world.parameters():
            p.requires_grad_(False)
        return sum(losses) / len(losses)

    config = {"online": to_dict(cfg), "seed": seed}
    with loop.open(save, tracking=tracking, config=config, progress=progress, desc="online"):
        for it in loop:
            warmup = it < cfg.warmup_iterations
            row: dict[str, Any] = {"iteration": it + 1, "warmup": int(warmup)}
            row.update({f"loss.{k}": float("nan") for k in PPO_LOSSES})  # fixed columns; set once PPO runs
            finite = ["true_reward"]
            feed = _RealFeed(buffer, prev_done)
            imag_stats = StepMeans(("reward_unpenalised", "uncertainty"))
            t0 = time.perf_counter()
            time_imagination = time_ppo = 0.0
            if joint is None or warmup:
                # (1) real interaction with the current policy
                with torch.inference_mode(), torch_threads(1):  # MuJoCo has the cores
                    for _ in range(real_steps):
                        actions = alg.actor(real_obs.to(dev), stochastic_output=True).cpu()
                        real_obs, _, _, extras = real.step(actions)
                        feed(extras)
                time_sim = time.perf_counter() - t0
            else:
                # (1 + 4a) the real envs step beside the imagined ones, as the real part of PPO's rollout
                sim_before = joint.step_seconds["real"]
                first = start_imagination()
                with torch.inference_mode():
                    obs = joint.join([real_obs, first])
                last = collect(
                    alg,
                    joint,
                    obs,
                    cfg.steps_per_env,
                    joint.on_part("real", feed),
                    joint.on_part("imagined", imag_stats.add),
                )
                real_obs = joint.part(last, "real").to("cpu")
                # the simulator's share of the joint rollout; the rest (imagined steps, acting) counts as imagination
                time_sim = joint.step_seconds["real"] - sim_before
                time_imagination = time.perf_counter() - t0 - time_sim
            prev_done = feed.prev_done
            true = feed.stats.step_means()
            row.update(true_reward=true["reward"], true_fall_rate=true["fell"])
            t1 = time.perf_counter()
            # (2) the model on this iteration's fresh data, before it learns from it
            world.eval()
            row.update(fresh_error(world, normalizer, lay))
            # (3) model update on buffer windows (and, optionally, offline windows)
            row["model_loss"] = update_model()
            t2 = time.perf_counter()
            # (4) PPO: on imagination from buffer histories with the updated model (or, with ppo_real, on the
            # rollout of step 1 + 4a)
            imagined, unc = float("nan"), float("nan")
            if not warmup:
                if joint is None:
                    collect(alg, env, start_imagination(), cfg.steps_per_env, imag_stats.add)
                    time_imagination = time.perf_counter() - t2
                t3 = time.perf_counter()
                ppo_losses = alg.update()
                time_ppo = time.perf_counter() - t3
                means = imag_stats.step_means()
                imagined, unc = means["reward_unpenalised"], means["uncertainty"]
                row.update({f"loss.{k}": float(v) for k, v in ppo_losses.items()})
                finite += [f"loss.{k}" for k in ppo_losses]
            row.update(
                imagined_reward=imagined,
                uncertainty=unc,
                buffer_rows=buffer.size_total,
                time_sim_s=time_sim,
                time_model_s=t2 - t1,
                time_imagination_s=time_imagination,
                time_ppo_s=time_ppo,
                wall_s=loop.wall_s,
                real_env_steps=(it + 1) * cfg.real_envs * real_steps,
                action_std=action_std(alg),
            )
            postfix = {
                "true": f"{row['true_reward']:.4f}",
                "imag": f"{imagined:.4f}",
                "err8": f"{row['model_error_8']:.2f}",
            }
            loop.end_iteration(row, finite=finite, postfix=postfix)
    finish_policy(out, alg, cfg.iterations, ckpt_extra)
    ckpt.save(
        out / MODEL_FILE,
        world,
        normalizer,
        task=loaded.task,
        training_config=to_dict(dyn_cfg),
        meta={**loaded.meta, "online": {"iterations": cfg.iterations, "dataset": str(dataset_path)}},
    )
    return {"seed": seed, "iterations": cfg.iterations, "resumed_from": loop.start_iteration, **loop.last_row}
