"""N imagined robots stepping through the world model: the environment MOPO-PPO trains in (SPEC §4).

Every reset takes an H-row history window from the dataset, feeds its first H-1 (state, next action) pairs through
the GRU bases (the training time alignment) and continues from the window's last state; each env is assigned one
random ensemble member (with ``member_sampling: step``, a new one every step). A step appends the policy's action,
predicts the next state with the assigned member, reads contacts and termination from the auxiliary heads and
scores the step with :mod:`rwm_core.tasks.anymal_d_flat.rewards`, the same reward code the simulator evaluation
uses. The penalised reward is ``r - λ·u·dt`` with ``u`` the epistemic
uncertainty (std over members of the predicted means, summed over state dimensions).

The offline pipeline has one dataset, so upstream's split of resets between an "init" and a "training" dataset
(init_data_ratio) does not arise here: every reset draws from the dataset artifact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from rwm_core.data.dataset import Dataset
from rwm_core.data.normalizer import Normalizer
from rwm_core.data.windows import valid_window_starts
from rwm_core.dynamics.rollout import EnsembleRollout
from rwm_core.runtime import matmul_dtype
from rwm_core.tasks.anymal_d_flat.rewards import RewardComputer


class ImaginationSettings(Protocol):
    """The config keys the env reads; the ``policy`` and ``online`` sections (:mod:`rwm_core.config`) have them,
    and their help text says what each does. The keys only ``policy`` has (``height_termination``,
    ``trunk_contact_termination``, ``kinematic_thigh_contacts``, ``uncertainty_offset``, ``out_of_data_*``,
    ``member_sampling``) are read when the section has them and are off otherwise (``online``)."""

    num_envs: int
    observation_noise: bool
    tilt_termination: bool
    termination_penalty: float
    precision: str


class ImaginationEnv(VecEnv):
    """Batched imagined robots with rsl-rl's ``VecEnv`` interface (observation group ``policy``)."""

    def __init__(
        self,
        model: torch.nn.Module,
        normalizer: Normalizer,
        dataset: Dataset,
        cfg: ImaginationSettings,
        *,
        episode_length: int,
        penalty: float = 0.0,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        """``cfg``: a config section (e.g. :class:`rwm_core.config.PolicyConfig`), read once here. ``episode_length``:
        steps before a time-out; ``penalty``: λ of the penalised reward ``r - λ·u·dt``."""
        self.device = torch.device(device)
        self.cfg = cfg
        self.tilt_termination = bool(cfg.tilt_termination)
        self.termination_penalty = float(cfg.termination_penalty)
        self.height_termination = bool(getattr(cfg, "height_termination", False))
        self.kinematic_thigh_contacts = bool(getattr(cfg, "kinematic_thigh_contacts", False))
        self.trunk_contact_termination = bool(getattr(cfg, "trunk_contact_termination", False))
        self.uncertainty_offset = float(getattr(cfg, "uncertainty_offset", 0.0))
        self.out_of_data_termination = bool(getattr(cfg, "out_of_data_termination", False))
        self.member_per_step = getattr(cfg, "member_sampling", "episode") == "step"
        self.task = dataset.task
        t = self.task
        lay = dataset.layout
        self.layout = lay
        self.num_envs = cfg.num_envs
        self.num_actions = lay.action_dim
        self.max_episode_length = episode_length
        self.dt = float(t.STEP_DT)
        self.penalty = float(penalty)
        self.history = dataset.history
        self.normalizer = normalizer
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        # (k, generator) -> (k, H, columns) raw history windows; None: draw them from the dataset
        self.history_source: Callable[[int, torch.Generator], torch.Tensor] | None = None

        # the dataset rows live on the env's device; history windows need only H clean rows
        self.rows = torch.from_numpy(np.ascontiguousarray(dataset.data)).to(self.device)
        starts = valid_window_starts(dataset.episode_ends(), self.history)
        if len(starts) == 0:
            raise ValueError(f"the dataset has no history window of {self.history} rows without a termination")
        self.init_starts = torch.from_numpy(starts).to(self.device)
        # the data's range per state dimension, widened by the margin: outside it the model extrapolates
        self.state_lo = self.state_hi = None
        if self.out_of_data_termination:
            self.state_lo, self.state_hi = _data_range(
                self.rows[:, lay.state].float(), cfg.out_of_data_quantile, cfg.out_of_data_margin
            )

        if self.history < 2:
            raise ValueError(f"imagination needs a history of at least 2 rows, got {self.history}")
        self.ensemble_size = int(model.ensemble_size)
        self.rewards = RewardComputer(self.num_envs, device=self.device)

        n, dev = self.num_envs, self.device
        sd, ad = lay.state_dim, lay.action_dim
        self.state_n = torch.zeros(n, sd, device=dev)  # current normalised state
        self.state = torch.zeros(n, sd, device=dev)  # current state, physical units
        self.last_action = torch.zeros(n, ad, device=dev)  # raw policy action of the previous step
        self.contacts = torch.zeros(n, lay.contact_dim, device=dev)
        self.member_ids = torch.zeros(n, dtype=torch.long, device=dev)
        # dataset row of each env's history (-1: from the history source)
        self.episode_starts = torch.zeros(n, dtype=torch.long, device=dev)
        # the one owner of hidden states; it reads member_ids in place
        self.rollout = EnsembleRollout(model, self.member_ids, matmul_dtype(self.device, cfg.precision))
        self.commands = torch.zeros(n, 3, device=dev)
        self.command_timer = torch.zeros(n, dtype=torch.long, device=dev)
        self.push_timer = torch.zeros(n, dtype=torch.long, device=dev)
        self.episode_length_buf = torch.zeros(n, dtype=torch.long, device=dev)
        self.episode_sums: dict[str, torch.Tensor] = {}
        self.episode_penalised = torch.zeros(n, device=dev)
        self.episode_unpenalised = torch.zeros(n, device=dev)
        self.episode_uncertainty = torch.zeros(n, device=dev)
        self.obs_noise = t.mdp.observation_noise_scale(dev) if cfg.observation_noise else None
        self.reset_envs(torch.arange(n, device=dev))

    # ------------------------------------------------------------------ random draws (seeded, on CPU)
    def _uniform(self, shape: tuple[int, ...], lo: float, hi: float) -> torch.Tensor:
        return (torch.rand(shape, generator=self.gen) * (hi - lo) + lo).to(self.device)

    def _randint(self, shape: tuple[int, ...], lo: int, hi: int) -> torch.Tensor:
        """Integers in [lo, hi] inclusive."""
        return torch.randint(lo, hi + 1, shape, generator=self.gen).to(self.device)

    # ------------------------------------------------------------------ resets
    def reset_envs(self, env_ids: torch.Tensor) -> None:
        """Start new episodes from dataset history windows for the given envs."""
        k = int(env_ids.numel())
        if k == 0:
            return
        lay = self.layout
        h = self.history
        if self.history_source is not None:  # online RWM: histories from the replay buffer
            win = self.history_source(k, self.gen).to(self.device)
            starts = torch.full((k,), -1, dtype=torch.long, device=self.device)
        else:
            pick = torch.randint(0, len(self.init_starts), (k,), generator=self.gen).to(self.device)
            starts = self.init_starts[pick]
            idx = starts[:, None] + torch.arange(h, device=self.device)[None, :]
            win = self.rows.index_select(0, idx.reshape(-1)).view(k, h, -1)
        states = win[..., lay.state]
        actions = win[..., lay.action]
        members = torch.randint(0, self.ensemble_size, (k,), generator=self.gen).to(self.device)
        self.member_ids[env_ids] = members
        self.episode_starts[env_ids] = starts
        # history pairs (state row i, action row i+1), i < H-1; the policy supplies the H-th action. The warm-up's
        # own prediction (of the window's last row, which we take from the data) is not used.
        all_envs = k == self.num_envs
        self.rollout.warmup(
            self.normalizer.normalize_state(states[:, :-1]),
            self.normalizer.normalize_action(actions[:, 1:]),
            rows=None if all_envs else env_ids,
            lean=True,
        )
        self.state[env_ids] = states[:, -1]
        self.state_n[env_ids] = self.normalizer.normalize_state(states[:, -1])
        self.last_action[env_ids] = actions[:, -1]
        self.contacts[env_ids] = win[:, -1, lay.contacts]
        self.episode_length_buf[env_ids] = 0
        self.command_timer[env_ids] = 0  # resample now
        self._resample_commands(env_ids)
        self.push_timer[env_ids] = self._randint((k,), *self.task.PUSH_INTERVAL_STEPS)
        self.rewards.reset(env_ids)
        self.rewards.prime(env_ids, joint_vel=self._block(states[:, -1], "joint_vel"), action=actions[:, -1])
        for v in self.episode_sums.values():
            v[env_ids] = 0.0
        self.episode_penalised[env_ids] = 0.0
        self.episode_unpenalised[env_ids] = 0.0
        self.episode_uncertainty[env_ids] = 0.0

    def _resample_commands(self, env_ids: torch.Tensor) -> None:
        k = int(env_ids.numel())
        if k == 0:
            return
        xyz = torch.stack([self._uniform((k,), 0.0, 1.0) for _ in range(3)], dim=1)
        self.commands[env_ids] = self.task.mdp.commands_from_uniform(xyz, self._uniform((k,), 0.0, 1.0))
        self.command_timer[env_ids] = self._randint((k,), *self.task.COMMAND_RESAMPLE_STEPS)

    def _block(self, state: torch.Tensor, name: str) -> torch.Tensor:
        return state[..., self.layout.block(name)]

    # ------------------------------------------------------------------ VecEnv interface
    def get_observations(self) -> TensorDict:
        s = self.state
        obs = self.task.mdp.observation(
            self._block(s, "base_lin_vel"),
            self._block(s, "base_ang_vel"),
            self._block(s, "projected_gravity"),
            self.commands,
            self._block(s, "joint_pos"),
            self._block(s, "joint_vel"),
            self.last_action,
        )
        if self.obs_noise is not None:
            u = torch.rand(obs.shape, generator=self.gen).to(self.device)
            obs = self.task.mdp.add_observation_noise(obs, u, self.obs_noise)
        return TensorDict({"policy": obs}, batch_size=[self.num_envs], device=self.device)

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        lay = self.layout
        actions = actions.to(self.device)
        if self.member_per_step:  # in place: the rollout reads these ids
            draw = torch.randint(0, self.ensemble_size, (self.num_envs,), generator=self.gen)
            self.member_ids.copy_(draw.to(self.device))
        pred = self.rollout.step(self.state_n, self.normalizer.normalize_action(actions), lean=True)
        next_n = pred.state
        nxt = self.normalizer.denormalize_state(next_n)
        contacts = (pred.contact_logits > 0).to(nxt.dtype)
        terminated = (pred.termination_logits > 0).reshape(-1)
        n_thigh = lay.block("thigh_contact").stop - lay.block("thigh_contact").start
        if self.tilt_termination:
            terminated = terminated | self.task.mdp.tilted(self._block(nxt, "projected_gravity"))
        left_data = torch.zeros_like(terminated)
        if self.out_of_data_termination:
            left_data = ((nxt < self.state_lo) | (nxt > self.state_hi)).any(-1)
            terminated = terminated | left_data
        if self.height_termination or self.kinematic_thigh_contacts or self.trunk_contact_termination:
            joint_pos, gravity = self._block(nxt, "joint_pos"), self._block(nxt, "projected_gravity")
            height, thigh_gap = self.task.ground_clearance(joint_pos, gravity)  # leg kinematics, once per step
            if self.height_termination:
                terminated = terminated | self.task.mdp.too_low(height)
            if self.kinematic_thigh_contacts:
                touching = (thigh_gap < self.task.THIGH_CONTACT_GAP).to(contacts.dtype)
                contacts[:, :n_thigh] = torch.maximum(contacts[:, :n_thigh], touching)
            if self.trunk_contact_termination:  # task.trunk_gap, with the height already at hand
                gap = height - self.task.trunk_depth(joint_pos, gravity)
                terminated = terminated | (gap < self.task.TRUNK_CONTACT_GAP)
        u = pred.epistemic
        total, terms = self.rewards.compute(
            lin_vel=self._block(nxt, "base_lin_vel"),
            ang_vel=self._block(nxt, "base_ang_vel"),
            projected_gravity=self._block(nxt, "projected_gravity"),
            joint_pos_rel=self._block(nxt, "joint_pos"),
            joint_vel=self._block(nxt, "joint_vel"),
            torque=self._block(nxt, "joint_torque"),
            action=actions,
            thigh_contact=contacts[:, :n_thigh],
            foot_contact=contacts[:, n_thigh:],
            command=self.commands,
        )
        excess = (u - self.uncertainty_offset).clamp_min(0.0)  # u >= 0: with u0 = 0 this is u, bit for bit
        penalised = total - self.penalty * excess * self.dt
        # time-outs are not failures: an episode that reaches its length is bootstrapped, not punished
        time_outs = self.episode_length_buf + 1 >= self.max_episode_length
        cost = (terminated & ~time_outs).to(total.dtype) * self.termination_penalty
        terms = {**terms, "termination": -cost}
        penalised = penalised - cost

        self.state_n = next_n
        self.state = nxt
        self.last_action = actions
        self.contacts = contacts
        self.episode_length_buf += 1
        dones = terminated | time_outs

        for name, value in terms.items():
            if name not in self.episode_sums:
                self.episode_sums[name] = torch.zeros(self.num_envs, device=self.device)
            self.episode_sums[name] += value
        self.episode_penalised += penalised
        self.episode_unpenalised += total
        self.episode_uncertainty += u

        # commands and pushes for envs that go on
        self.command_timer -= 1
        self._resample_commands(torch.nonzero((self.command_timer <= 0) & ~dones).reshape(-1))
        self.push_timer -= 1
        push = torch.nonzero((self.push_timer <= 0) & ~dones).reshape(-1)
        if push.numel():
            vel = lay.block("base_lin_vel")
            kick = self.task.mdp.push_from_uniform(self._uniform((push.numel(), 2), 0.0, 1.0))
            self.state[push, vel.start : vel.start + 2] += kick
            self.state_n[push] = self.normalizer.normalize_state(self.state[push])
            self.push_timer[push] = self._randint((push.numel(),), *self.task.PUSH_INTERVAL_STEPS)

        done_ids = torch.nonzero(dones).reshape(-1)
        log: dict[str, Any] = {}
        if done_ids.numel():
            lengths = self.episode_length_buf[done_ids].float()
            log["/episode/length"] = lengths.mean()
            log["/episode/reward_penalised"] = self.episode_penalised[done_ids].mean()
            log["/episode/reward_unpenalised"] = self.episode_unpenalised[done_ids].mean()
            log["/episode/uncertainty_mean"] = (self.episode_uncertainty[done_ids] / lengths).mean()
            log["/episode/terminated"] = terminated[done_ids].float().mean()
            log["/episode/left_data"] = left_data[done_ids].float().mean()
            for name, value in self.episode_sums.items():
                log[f"/episode_reward/{name}"] = value[done_ids].mean()
            self.reset_envs(done_ids)
        extras = {
            "time_outs": time_outs,
            "log": log,
            "step": {"reward_penalised": penalised, "reward_unpenalised": total, "uncertainty": u},
        }
        return self.get_observations(), penalised, dones, extras


def _data_range(states: torch.Tensor, quantile: float, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension (lo, hi) of the rows: their quantiles (min/max at 0), widened by ``margin`` x the width."""
    if quantile > 0:  # rows thinned to at most 4M values: torch.quantile takes at most 2^24
        step = max(1, -(-states.shape[0] * states.shape[1] // (1 << 22)))
        sub = states[::step]
        lo, hi = torch.quantile(sub, quantile, dim=0), torch.quantile(sub, 1 - quantile, dim=0)
    else:
        lo, hi = states.min(0).values, states.max(0).values
    widen = margin * (hi - lo)
    return lo - widen, hi + widen
