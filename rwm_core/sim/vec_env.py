"""N simulated robots with the task's MDP behind rsl-rl's ``VecEnv`` interface: where model-free PPO learns.

Physics: :class:`rwm_core.sim.batch.BatchedQuadruped` (MuJoCo, all robots per ``mujoco.rollout`` call). Around it
the task's MDP (:mod:`rwm_core.tasks.anymal_d_flat.mdp` and ``.rewards``), the same functions the imagination env
and the single-robot :class:`rwm_core.sim.env.SimEnv` call: observation and its noise, commands resampled on the
task's schedule, pushes, the simulator's terminations (trunk contact, tilt, base height), the reward terms.
Resets put a robot in the default pose with a random yaw, as Isaac Lab does; an episode times out after
``episode_length`` steps (1000 = 20 s, upstream's real env), and time-outs are bootstrapped by PPO.

With ``record_envs = k`` the first k envs report their rows in the 66-column layout every step (``extras["record"]``),
so a trainer can keep the experience of its own learning as a dataset (:mod:`rwm_core.sim.record`).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from rwm_core.sim.batch import BatchedQuadruped
from rwm_core.tasks import anymal_d_flat as task
from rwm_core.tasks.anymal_d_flat.rewards import RewardComputer


class SimEnvSettings(Protocol):
    """The config keys the env reads: those of the ``ppo`` section (:class:`rwm_core.config.PPOConfig`, whose help
    text says what each does); online RWM passes a ``PPOConfig`` with its real envs' values."""

    num_envs: int
    episode_length: int  # steps before a time-out
    observation_noise: bool
    pushes: bool
    termination_penalty: float  # one-off training cost of a fall, logged as its own term
    threads: int  # MuJoCo rollout threads
    record_envs: int  # the first k envs report their rows every step


class SimVecEnv(VecEnv):
    """Batched MuJoCo robots with the task's observation, commands, pushes, terminations and rewards."""

    def __init__(self, cfg: SimEnvSettings, seed: int = 0, device: torch.device | str = "cpu") -> None:
        """``cfg`` is read once here."""
        if cfg.record_envs > cfg.num_envs:
            raise ValueError(f"record_envs ({cfg.record_envs}) must not exceed num_envs ({cfg.num_envs})")
        self.cfg = cfg
        self.pushes = bool(cfg.pushes)
        self.termination_penalty = float(cfg.termination_penalty)
        self.device = torch.device(device)
        self.num_envs = n = int(cfg.num_envs)
        self.num_actions = 12
        self.max_episode_length = int(cfg.episode_length)
        self.sim = BatchedQuadruped(n, threads=cfg.threads)
        # separate streams: observation noise on or off must not change resets, commands or pushes
        self.rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(0xBA7C, 0)))
        self.noise_gen = torch.Generator().manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
        self.noise_scale = task.mdp.observation_noise_scale() if cfg.observation_noise else None
        self.rewards = RewardComputer(n)
        self.commands = torch.zeros(n, 3)
        self.command_timer = np.zeros(n, dtype=np.int64)
        self.push_timer = np.zeros(n, dtype=np.int64)
        self.episode_length_buf = torch.zeros(n, dtype=torch.long)
        self.episode_sums: dict[str, torch.Tensor] = {}
        self.episode_return = torch.zeros(n)
        self.record_ids = np.arange(int(cfg.record_envs))
        self._reset(np.arange(n))

    def close(self) -> None:
        self.sim.close()

    # ------------------------------------------------------------------ draws
    def _sample_commands(self, ids: np.ndarray) -> None:
        k = ids.size
        u = torch.from_numpy(self.rng.random((k, 4)))
        self.commands[ids] = task.mdp.commands_from_uniform(u[:, :3], u[:, 3]).float()
        lo, hi = task.COMMAND_RESAMPLE_STEPS
        self.command_timer[ids] = self.rng.integers(lo, hi + 1, k)

    def _schedule_pushes(self, ids: np.ndarray) -> None:
        lo, hi = task.PUSH_INTERVAL_STEPS
        self.push_timer[ids] = self.rng.integers(lo, hi + 1, ids.size)

    def _reset(self, ids: np.ndarray) -> None:
        if ids.size == 0:
            return
        self.sim.reset(ids, self.rng.uniform(-np.pi, np.pi, ids.size))
        t_ids = torch.from_numpy(ids)
        self.rewards.reset(t_ids)
        self.episode_length_buf[t_ids] = 0
        self.episode_return[t_ids] = 0.0
        for v in self.episode_sums.values():
            v[t_ids] = 0.0
        self._sample_commands(ids)
        self._schedule_pushes(ids)

    # ------------------------------------------------------------------ VecEnv interface
    def _blocks(self) -> dict[str, torch.Tensor]:
        s = self.sim
        rot = s.rotation()
        f = lambda x: torch.from_numpy(np.ascontiguousarray(x)).float()  # noqa: E731
        return {
            "lin_vel": f(s.base_lin_vel(rot)),
            "ang_vel": f(s.base_ang_vel()),
            "projected_gravity": f(s.projected_gravity(rot)),
            "joint_pos_rel": f(s.joint_pos_rel()),
            "joint_vel": f(s.joint_vel()),
            "torque": f(s.last_torque),
            "action": f(s.last_action),
            "foot_contact": f(s.foot_contact),
            "thigh_contact": f(s.thigh_contact),
        }

    def _observe(self, b: dict[str, torch.Tensor]) -> TensorDict:
        obs = task.mdp.observation(
            b["lin_vel"], b["ang_vel"], b["projected_gravity"], self.commands, b["joint_pos_rel"], b["joint_vel"],
            b["action"],
        )  # fmt: skip
        if self.noise_scale is not None:
            u = torch.rand(obs.shape, generator=self.noise_gen)
            obs = task.mdp.add_observation_noise(obs, u, self.noise_scale)
        return TensorDict({"policy": obs.to(self.device)}, batch_size=[self.num_envs], device=self.device)

    def get_observations(self) -> TensorDict:
        return self._observe(self._blocks())

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        a = actions.detach().to("cpu", torch.float64).numpy()
        self.sim.step(a)
        b = self._blocks()
        command = self.commands.clone()
        total, terms = self.rewards.compute(command=command, **b)
        height = torch.from_numpy(self.sim.base_height())
        fell = task.mdp.fallen(torch.from_numpy(self.sim.trunk_contact), b["projected_gravity"], height)
        self.episode_length_buf += 1
        time_outs = (self.episode_length_buf >= self.max_episode_length) & ~fell
        cost = fell.float() * self.termination_penalty
        terms = {**terms, "termination": -cost}
        reward = total - cost
        dones = fell | time_outs
        for name, value in terms.items():
            if name not in self.episode_sums:
                self.episode_sums[name] = torch.zeros(self.num_envs)
            self.episode_sums[name] += value
        self.episode_return += total

        extras: dict[str, Any] = {"time_outs": time_outs.to(self.device), "log": {}}
        rec = self.record_ids
        if rec.size:
            extras["record"] = {"rows": self.sim.rows(rec, fell[: rec.size].numpy()), "done": dones[: rec.size].numpy()}

        # commands and pushes of envs that go on, on the task's schedule
        done_np = dones.numpy()
        self.command_timer -= 1
        self._sample_commands(np.flatnonzero((self.command_timer <= 0) & ~done_np))
        push = np.zeros(0, dtype=np.int64)
        if self.pushes:
            self.push_timer -= 1
            push = np.flatnonzero((self.push_timer <= 0) & ~done_np)
            if push.size:
                kick = task.mdp.push_from_uniform(torch.from_numpy(self.rng.random((push.size, 2))))
                self.sim.push(push, kick.numpy())
                self._schedule_pushes(push)

        done_ids = np.flatnonzero(done_np)
        if done_ids.size:
            t_ids = torch.from_numpy(done_ids)
            lengths = self.episode_length_buf[t_ids].float()
            log = extras["log"]
            log["/episode/length"] = lengths.mean()
            log["/episode/return"] = self.episode_return[t_ids].mean()
            log["/episode/fall"] = fell[t_ids].float().mean()
            for name, value in self.episode_sums.items():
                log[f"/episode_reward/{name}"] = value[t_ids].mean()
            self._reset(done_ids)
            if rec.size:
                again = done_ids[done_ids < rec.size]
                extras["record"]["reset_ids"] = again
                extras["record"]["reset_rows"] = self.sim.rows(again)
        extras["step"] = {"reward": total, "fell": fell}
        obs = self._observe(self._blocks() if done_ids.size or push.size else b)  # re-read what resets/pushes moved
        return obs, reward.to(self.device), dones.to(self.device), extras
