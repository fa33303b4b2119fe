"""ConcatVecEnv: parts side by side along the env axis, each getting its own actions and keeping its own extras."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from rwm_core.policy.concat_env import ConcatVecEnv


class _Fake(VecEnv):
    """``n`` envs whose observation is (offset + env id, step count); envs ``done_ids`` end every step."""

    def __init__(
        self, n: int, offset: float, done_ids: list[int], timeout_ids: list[int] | None, log: dict[str, float]
    ) -> None:
        self.num_envs, self.num_actions, self.device = n, 3, torch.device("cpu")
        self.max_episode_length = 10 * n
        self.episode_length_buf = torch.arange(n)
        self.offset, self.done_ids, self.timeout_ids, self.log = offset, done_ids, timeout_ids, log
        self.steps, self.actions = 0, None

    def get_observations(self) -> TensorDict:
        obs = torch.stack(
            [self.offset + torch.arange(self.num_envs).float(), torch.full((self.num_envs,), 1.0 * self.steps)], 1
        )
        return TensorDict({"policy": obs}, batch_size=[self.num_envs])

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
        self.steps += 1
        self.actions = actions
        dones = torch.zeros(self.num_envs, dtype=torch.bool)
        dones[self.done_ids] = True
        extras: dict[str, Any] = {"log": dict(self.log), "step": {"offset": self.offset}}
        if self.timeout_ids is not None:
            time_outs = torch.zeros(self.num_envs, dtype=torch.bool)
            time_outs[self.timeout_ids] = True
            extras["time_outs"] = time_outs
        return self.get_observations(), self.offset + actions.sum(1), dones, extras


def _pair() -> tuple[ConcatVecEnv, _Fake, _Fake]:
    a = _Fake(2, 100.0, done_ids=[1], timeout_ids=None, log={"/episode/length": 5.0})
    b = _Fake(3, 200.0, done_ids=[0, 2], timeout_ids=[2], log={"/episode/length": 7.0, "plain": 1.0})
    return ConcatVecEnv({"real": a, "imagined": b}, device="cpu"), a, b


def test_shapes_and_each_part_gets_its_own_actions() -> None:
    env, a, b = _pair()
    assert (env.num_envs, env.num_actions) == (5, 3)
    assert env.get_observations()["policy"][:, 0].tolist() == [100, 101, 200, 201, 202]
    actions = torch.arange(15.0).view(5, 3)
    obs, rewards, dones, extras = env.step(actions)
    assert torch.equal(a.actions, actions[:2]) and torch.equal(b.actions, actions[2:])
    assert obs.batch_size == torch.Size([5]) and obs["policy"].shape == (5, 2)
    assert torch.equal(rewards, torch.cat([100.0 + actions[:2].sum(1), 200.0 + actions[2:].sum(1)]))
    assert torch.equal(env.part(obs, "imagined")["policy"], b.get_observations()["policy"])
    assert env.step_seconds["real"] > 0 and env.step_seconds["imagined"] > 0


def test_dones_and_time_outs_map_to_the_joined_env_ids() -> None:
    env, _, _ = _pair()
    _, _, dones, extras = env.step(torch.zeros(5, 3))
    assert dones.tolist() == [False, True, True, False, True]
    # the first part reports no time-outs: all of its envs count as not timed out
    assert extras["time_outs"].tolist() == [False, False, False, False, True]


def test_logs_are_merged_under_the_part_names_and_extras_pass_through() -> None:
    env, _, _ = _pair()
    _, _, _, extras = env.step(torch.zeros(5, 3))
    assert extras["log"] == {"/real/episode/length": 5.0, "/imagined/episode/length": 7.0, "/imagined/plain": 1.0}
    assert extras["parts"]["real"]["step"] == {"offset": 100.0}
    seen: list[float] = []
    env.on_part("imagined", lambda ex: seen.append(ex["step"]["offset"]))(extras)
    assert seen == [200.0]
    with pytest.raises(KeyError, match="no part 'sim'"):
        env.on_part("sim", print)


def test_per_env_episode_lengths_and_mismatched_actions() -> None:
    env, _, _ = _pair()
    assert env.max_episode_length.tolist() == [20, 20, 30, 30, 30]
    assert env.episode_length_buf.tolist() == [0, 1, 0, 1, 2]
    odd = _Fake(1, 0.0, [], None, {})
    odd.num_actions = 4
    with pytest.raises(ValueError, match="same number of actions"):
        ConcatVecEnv({"a": _pair()[1], "b": odd}, device="cpu")
