"""The single-robot simulator env: one MuJoCo robot under the task's commands, pushes, observation and true reward.

Why a single robot: it is the slow, simple reference that scores policies closed loop
(:mod:`rwm_core.evaluation.policy`), and the batched env (:mod:`rwm_core.sim.vec_env`) is tested against it. It
follows the same observation, noise, command and push conventions as imagination (SPEC §4), so true and imagined
returns are comparable. The trotting controller is offered here as a policy of this env (it reads the simulator).
"""

from __future__ import annotations

import numpy as np
import torch

from rwm_core.sim.gait import TrotController
from rwm_core.sim.robot import QuadrupedSim
from rwm_core.tasks import anymal_d_flat as task
from rwm_core.tasks.anymal_d_flat.rewards import RewardComputer

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
    the state from the simulator (privileged). :func:`rwm_core.evaluation.policy.evaluate_policy` calls
    :meth:`attach` at every episode start."""

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
    """The trotting controller as a policy for :func:`~rwm_core.evaluation.policy.evaluate_policy` (privileged)."""
    return ControllerPolicy(noise_level=noise_level, seed=seed)
