"""Several VecEnvs side by side along the env axis, as one rsl-rl ``VecEnv``.

Why: online RWM can let PPO learn from real and imagined transitions together (``online.ppo_real``). Stepping the
real and the imagined envs as one env puts both in rsl-rl's rollout storage, so every shuffled mini-batch mixes
real and imagined samples in proportion to their env counts, and returns, advantages and their normalisation are
computed by rsl-rl as for any env. Each part keeps its own device, generator and episode bookkeeping; this class
only splits actions and joins what comes back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict


class ConcatVecEnv(VecEnv):
    """The named ``parts`` in order along the env axis (env ids ``0 .. n_0-1`` are the first part's, and so on).

    ``step`` returns the joined observations, rewards, dones and ``time_outs`` (all False for a part that reports
    none), ``log`` with each part's keys under ``/<name>`` (``/episode/length`` of part ``real`` is
    ``/real/episode/length``), and ``parts``: each part's own extras, unchanged, for a trainer that reads e.g. the
    real part's recorded rows.
    """

    def __init__(self, parts: dict[str, VecEnv], device: torch.device | str) -> None:
        if not parts:
            raise ValueError("ConcatVecEnv needs at least one part")
        actions = {name: int(p.num_actions) for name, p in parts.items()}
        if len(set(actions.values())) != 1:
            raise ValueError(f"the parts must take the same number of actions, got {actions}")
        self.parts = dict(parts)
        self.device = torch.device(device)
        self.num_actions = next(iter(actions.values()))
        self.slices: dict[str, slice] = {}
        start = 0
        for name, p in self.parts.items():
            self.slices[name] = slice(start, start + int(p.num_envs))
            start += int(p.num_envs)
        self.num_envs = start
        self.cfg = {name: getattr(p, "cfg", None) for name, p in self.parts.items()}  # rsl-rl logs it, nothing more
        self.step_seconds = dict.fromkeys(self.parts, 0.0)  # time spent in each part's step, summed over calls

    @property
    def max_episode_length(self) -> torch.Tensor:  # type: ignore[override]
        """Per env: the parts' episode lengths differ (e.g. real 1000 steps, imagined one iteration)."""
        return torch.cat(
            [torch.full((p.num_envs,), int(p.max_episode_length), device=self.device) for p in self.parts.values()]
        )

    @property
    def episode_length_buf(self) -> torch.Tensor:  # type: ignore[override]
        """A joined copy of the parts' step counters (read-only: the parts own them)."""
        return torch.cat([p.episode_length_buf.to(self.device) for p in self.parts.values()])

    def join(self, observations: list[TensorDict]) -> TensorDict:
        """One observation per part, in order, joined on this env's device."""
        return torch.cat([o.to(self.device) for o in observations], dim=0)

    def part(self, value: Any, name: str) -> Any:
        """The rows of part ``name`` of a joined tensor or TensorDict."""
        return value[self.slices[name]]

    def on_part(self, name: str, f: Callable[[dict[str, Any]], object]) -> Callable[[dict[str, Any]], object]:
        """``f`` called with part ``name``'s own extras of a step, e.g. as an ``on_step`` hook."""
        if name not in self.parts:
            raise KeyError(f"no part {name!r}; the parts are {list(self.parts)}")
        return lambda extras: f(extras["parts"][name])

    def get_observations(self) -> TensorDict:
        """Each part's :meth:`get_observations`, joined. A part may draw fresh observation noise each call (the
        simulator does): a trainer that holds the parts' last observations joins those with :meth:`join`."""
        return self.join([p.get_observations() for p in self.parts.values()])

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        obs, rewards, dones, time_outs = [], [], [], []
        log: dict[str, Any] = {}
        extras: dict[str, dict[str, Any]] = {}
        for name, p in self.parts.items():
            t0 = time.perf_counter()
            o, r, d, ex = p.step(self.part(actions, name).to(p.device))
            self.step_seconds[name] += time.perf_counter() - t0
            obs.append(o)
            rewards.append(r.to(self.device))
            dones.append(d.to(self.device))
            t = ex.get("time_outs")
            time_outs.append(
                torch.zeros(p.num_envs, dtype=torch.bool, device=self.device) if t is None else t.to(self.device)
            )
            for k, v in ex.get("log", {}).items():
                log[f"/{name}{k}" if k.startswith("/") else f"/{name}/{k}"] = v
            extras[name] = ex
        joined = {"time_outs": torch.cat(time_outs), "log": log, "parts": extras}
        return self.join(obs), torch.cat(rewards), torch.cat(dones), joined
