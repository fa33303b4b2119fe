"""Closed-loop evaluation of a policy in the simulator, scored with the imagination env's reward terms.

Why: policies are trained in imagination under a (possibly penalised) reward computed from predicted states; the
honest score is the same unpenalised reward computed from the simulator's true states, under the same observation,
noise, command and push conventions as imagination (SPEC §4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rwm_core.sim.gait import TrotController
from rwm_core.sim.robot import QuadrupedSim
from rwm_core.tasks import anymal_d_flat as task
from rwm_core.tasks.anymal_d_flat.rewards import TERM_NAMES, RewardComputer

Policy = Callable[[np.ndarray], Any]

_OBS_SLICES = task.mdp.OBS_SLICES
_NOISE = task.mdp.observation_noise_scale()


class SimEnv:
    """One simulated robot with commands, pushes, observation and true reward (SPEC §4 conventions)."""

    def __init__(self, seed: int, observation_noise: bool = True, pushes: bool = True) -> None:
        self.sim = QuadrupedSim()
        # separate streams: switching observation noise on or off must not change commands, pushes or resets
        self.rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(0xE7A1, 0)))
        self.noise_rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(0xE7A1, 1)))
        self.observation_noise = observation_noise
        self.pushes = pushes
        self.rewards = RewardComputer(1)
        self.command = np.zeros(3)
        self.steps = 0

    # ------------------------------------------------------------ commands
    def _sample_command(self) -> None:
        # the draw order of this env's stream: standing first, the three ranges only for a moving command
        standing = self.rng.random()
        xyz = np.zeros(3) if standing < task.STANDING_ENV_FRACTION else self.rng.random(3)
        cmd = task.mdp.commands_from_uniform(torch.from_numpy(xyz)[None], torch.tensor([standing], dtype=torch.float64))
        self.command = cmd[0].numpy()
        lo, hi = task.COMMAND_RESAMPLE_STEPS
        self._next_command = self.steps + int(self.rng.integers(lo, hi + 1))

    def _schedule_push(self) -> None:
        lo, hi = task.PUSH_INTERVAL_STEPS
        self._next_push = self.steps + int(self.rng.integers(lo, hi + 1))

    # ------------------------------------------------------------ episode
    def reset(self) -> np.ndarray:
        self.sim.reset(self.rng, joint_noise=0.0, yaw=float(self.rng.uniform(-np.pi, np.pi)))
        self.rewards.reset()
        self.steps = 0
        self._sample_command()
        self._schedule_push()
        return self.observe()

    def observe(self) -> np.ndarray:
        """48-dim policy observation (float32) with optional uniform noise."""
        s = self.sim
        t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32))  # noqa: E731
        obs = task.mdp.observation(
            t(s.base_lin_vel()),
            t(s.base_ang_vel()),
            t(s.projected_gravity()),
            t(self.command),
            t(s.joint_pos() - s.default_q),
            t(s.joint_vel()),
            t(s.last_action),
        )
        if self.observation_noise:
            obs = task.mdp.add_observation_noise(obs, t(self.noise_rng.random(task.OBS_DIM)), _NOISE)
        return obs.numpy()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, dict[str, float], bool]:
        """Apply an action; return (obs, reward, weighted*dt terms, fell)."""
        s = self.sim
        s.step(action)
        self.steps += 1
        fell = s.fallen()
        t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(1, -1)  # noqa: E731
        total, terms = self.rewards.compute(
            lin_vel=t(s.base_lin_vel()),
            ang_vel=t(s.base_ang_vel()),
            projected_gravity=t(s.projected_gravity()),
            joint_pos_rel=t(s.joint_pos() - s.default_q),
            joint_vel=t(s.joint_vel()),
            torque=t(s.last_torque),
            action=t(s.last_action),
            foot_contact=t(s.foot_contact),
            thigh_contact=t(s.thigh_contact),
            command=t(self.command),
        )
        if self.steps >= self._next_command:
            self._sample_command()
        if self.pushes and self.steps >= self._next_push:
            kick = task.mdp.push_from_uniform(torch.from_numpy(self.rng.random(2)))
            s.data.qvel[0:2] += kick.numpy()  # world frame, like Isaac Lab
            self._schedule_push()
        return self.observe(), float(total[0]), {k: float(v[0]) for k, v in terms.items()}, fell


class ControllerPolicy:
    """The data-collection controller as a policy: it reads the command from the observation and the rest of
    the state from the simulator (privileged). ``evaluate_policy`` calls :meth:`attach` at every episode start."""

    def __init__(self, noise_level: float = 0.0, seed: int = 0) -> None:
        self.noise_level = noise_level
        self.rng = np.random.default_rng(seed)
        self.controller: TrotController | None = None

    def attach(self, env: SimEnv) -> None:
        self.controller = TrotController(env.sim, rng=self.rng, noise_level=self.noise_level)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if self.controller is None:
            raise RuntimeError("ControllerPolicy needs attach(env) before use (evaluate_policy does that)")
        cmd = np.asarray(obs, dtype=np.float64).reshape(-1)[_OBS_SLICES["velocity_command"]]
        self.controller.set_command(cmd, standing=bool(np.all(cmd == 0.0)))
        return self.controller.act()


def controller_policy(noise_level: float = 0.0, seed: int = 0) -> ControllerPolicy:
    """The trotting controller wrapped for :func:`evaluate_policy` (a privileged reference policy)."""
    return ControllerPolicy(noise_level=noise_level, seed=seed)


def _to_action(out: Any) -> np.ndarray:
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().numpy()
    a = np.asarray(out, dtype=np.float64).reshape(-1)
    if a.shape != (12,):
        raise ValueError(f"policy must return 12 actions, got shape {np.shape(out)}")
    return a


def evaluate_policy(
    policy: Policy,
    episodes: int,
    episode_steps: int,
    seed: int,
    observation_noise: bool = True,
    progress: bool = False,
    pushes: bool = True,
    record_rows: bool = False,
) -> dict:
    """Roll ``episodes`` episodes of at most ``episode_steps`` steps (an episode also ends when the robot falls).

    ``policy`` gets the 48-dim float32 observation of SPEC §4 and returns 12 actions (numpy or torch, shape (12,)
    or (1, 12)); a ``torch.nn.Module`` (or TorchScript module) is called with a (1, 48) tensor. A policy object
    with an ``attach(env)`` method is attached to the :class:`SimEnv` at every episode start (used by
    :func:`controller_policy`). Returns per-episode and mean true unpenalised returns (sum of weight * term * dt),
    per-term sums, lengths, fall rate and mean tracking errors; with ``record_rows`` also every episode's rows in
    the dataset layout (reset row first), for judging a world model on the policy's own trajectories.
    """
    from tqdm import tqdm

    if episodes < 1 or episode_steps < 1:
        raise ValueError("episodes and episode_steps must be >= 1")
    env = SimEnv(seed, observation_noise=observation_noise, pushes=pushes)
    if isinstance(policy, torch.nn.Module | torch.jit.ScriptModule):  # exported / trained torch policies
        module = policy

        def policy(obs: np.ndarray) -> Any:
            return module(torch.from_numpy(obs)[None])

    returns, lengths, falls = [], [], []
    term_sums: dict[str, list[float]] = {k: [] for k in TERM_NAMES if k in env.rewards.weights}
    lin_err, yaw_err = [], []
    episode_rows: list[np.ndarray] = []
    for _ in tqdm(range(episodes), desc="evaluate", unit="episode", disable=not progress):
        obs = env.reset()
        attach = getattr(policy, "attach", None)
        if callable(attach):
            attach(env)
        ret = 0.0
        sums = dict.fromkeys(term_sums, 0.0)
        e_lin, e_yaw = 0.0, 0.0
        fell = False
        steps = 0
        rows = [env.sim.row()] if record_rows else None
        for _step in range(episode_steps):
            with torch.no_grad():
                action = _to_action(policy(obs))
            cmd = env.command.copy()
            obs, r, terms, fell = env.step(action)
            steps += 1
            ret += r
            for k, v in terms.items():
                sums[k] += v
            v = env.sim.base_lin_vel()
            w = env.sim.base_ang_vel()
            e_lin += float(np.hypot(cmd[0] - v[0], cmd[1] - v[1]))
            e_yaw += abs(float(cmd[2] - w[2]))
            if rows is not None:
                rows.append(env.sim.row(fell))
            if fell:
                break
        returns.append(ret)
        lengths.append(steps)
        falls.append(bool(fell))
        for k in term_sums:
            term_sums[k].append(sums[k])
        lin_err.append(e_lin / steps)
        yaw_err.append(e_yaw / steps)
        if rows is not None:
            episode_rows.append(np.stack(rows))
    out = {
        "episodes": episodes,
        "episode_steps": episode_steps,
        "seed": seed,
        "observation_noise": observation_noise,
        "mean_return": float(np.mean(returns)),
        "returns": returns,
        "lengths": lengths,
        "mean_length": float(np.mean(lengths)),
        "falls": falls,
        "fall_rate": float(np.mean(falls)),
        "term_sums": term_sums,
        "mean_terms": {k: float(np.mean(v)) for k, v in term_sums.items()},
        "lin_vel_xy_error": lin_err,
        "yaw_rate_error": yaw_err,
        "mean_lin_vel_xy_error": float(np.mean(lin_err)),
        "mean_yaw_rate_error": float(np.mean(yaw_err)),
    }
    if record_rows:
        out["rows"] = episode_rows
    return out
