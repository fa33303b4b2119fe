"""The pieces of rsl-rl's on-policy iteration that the PPO trainers share (train-policy, train-ppo, train-online).

Why not rsl-rl's runner: the trainers own what sits around the iteration (see :mod:`rwm_core.training_loop`) and
log per-step means of their own env's values; these helpers keep the collection phase and the logged columns the
same in all three. None of them draws a random number beyond what rsl-rl's ``act`` and ``update`` draw.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable
from typing import Any

import torch
from rsl_rl.algorithms import PPO
from tensordict import TensorDict


def build_ppo(env: Any, train_cfg: dict[str, Any], dev: torch.device) -> PPO:
    """rsl-rl's PPO for ``env``, without the model summaries it prints."""
    obs = env.get_observations()
    with contextlib.redirect_stdout(io.StringIO()):
        return PPO.construct_algorithm(obs, env, train_cfg, str(dev))


class StepMeans:
    """Means over one iteration of per-step values (``extras["step"]``, averaged over the envs) and of the
    episode logs (``extras["log"]``, NaN when no episode ended): the rows the PPO trainers log."""

    def __init__(self, step_keys: Iterable[str], episode_keys: Iterable[str] = ()) -> None:
        self.sums = dict.fromkeys(step_keys, 0.0)
        self.episodes: dict[str, list[float]] = {k: [] for k in episode_keys}
        self.steps = 0

    def add(self, extras: dict[str, Any]) -> None:
        for k in self.sums:
            v = extras["step"][k]
            self.sums[k] += float((v.float() if v.dtype == torch.bool else v).mean())
        for k, v in extras["log"].items():
            if k in self.episodes:
                self.episodes[k].append(float(v))
        self.steps += 1

    def step_means(self) -> dict[str, float]:
        return {k: v / self.steps for k, v in self.sums.items()}

    def episode_means(self) -> dict[str, float]:
        """By column name: ``/episode/length`` is ``episode.length``."""
        return {
            k.strip("/").replace("/", "."): sum(vals) / len(vals) if vals else float("nan")
            for k, vals in self.episodes.items()
        }


def collect(
    alg: PPO, env: Any, obs: TensorDict, steps: int, *on_step: Callable[[dict[str, Any]], object]
) -> TensorDict:
    """rsl-rl's collection phase (act, step, store, returns), with ``on_step(extras)`` after each step; returns the
    last observation, where the next iteration goes on."""
    with torch.inference_mode():
        for _ in range(steps):
            actions = alg.act(obs)
            obs, rewards, dones, extras = env.step(actions)
            alg.process_env_step(obs, rewards, dones, extras)
            for f in on_step:
                f(extras)
        alg.compute_returns(obs)
    return obs


def ppo_columns(alg: PPO, losses: dict[str, Any]) -> dict[str, float]:
    """The update's losses, learning rate (adaptive under ``schedule: adaptive``) and the actor's mean std."""
    return {
        **{f"loss.{k}": float(v) for k, v in losses.items()},
        "learning_rate": float(alg.learning_rate),
        "action_std": action_std(alg),
    }


def action_std(alg: PPO) -> float:
    return float(alg.get_policy().output_std.detach().mean())
