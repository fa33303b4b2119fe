"""Online RWM (MBPO-PPO) on a tiny world model: the loop runs, logs what it must, and resumes exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import tiny_world

from rwm_core.config import DynamicsConfig, OnlineConfig
from rwm_core.data.normalizer import Normalizer
from rwm_core.dynamics import checkpoint as ckpt
from rwm_core.imagination.env import ImaginationEnv
from rwm_core.policy import online
from rwm_core.policy.concat_env import ConcatVecEnv
from rwm_core.policy.online import MODEL_FILE, train_online
from rwm_core.policy.train import PolicyTrainingError, read_checkpoint
from rwm_core.sim.vec_env import SimVecEnv

TINY = dict(
    iterations=4, warmup_iterations=1, real_envs=4, real_steps=12, buffer_capacity=30, model_updates=2,
    model_batch_size=16, num_envs=16, steps_per_env=6, checkpoint_every=2, actor_hidden=[16], critic_hidden=[16],
    learning_epochs=1, mini_batches=2, init_policy="", ppo_real=False,
)  # fmt: skip
TIMING = ["time_sim_s", "time_model_s", "time_imagination_s", "time_ppo_s", "wall_s"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("online")
    model, ds = tiny_world(tmp, 1500, rows_seed=4, history=4, model_seed=0)
    path = tmp / "model.pt"
    ckpt.save(path, model, Normalizer.from_task(ds.task), task=ds.task_name, training_config=vars(DynamicsConfig()))
    return path, tmp / "data"


@pytest.fixture(scope="module")
def run(world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("online_run") / "run"
    train_online(world[0], world[1], out, OnlineConfig(**TINY), seed=2, device="cpu", progress=False)
    return out


def test_outputs_and_per_iteration_metrics(run):
    for name in ("policy.pt", "policy.onnx", "policy_checkpoint.pt", MODEL_FILE, "metrics.csv"):
        assert (run / name).exists(), name
    m = pd.read_csv(run / "metrics.csv")
    assert list(m["iteration"]) == [1, 2, 3, 4] and list(m["warmup"]) == [1, 0, 0, 0]
    for col in ("true_reward", "buffer_rows", *TIMING):
        assert np.isfinite(m[col]).all(), col
    assert list(m["buffer_rows"]) == [48, 96, 120, 120]  # 4 envs x 12 steps, capped at 4 x 30 rows
    assert np.isnan(m["imagined_reward"][0]) and np.isfinite(m["imagined_reward"][1:]).all()  # warm-up: no PPO
    assert np.isfinite(m["uncertainty"][1:]).all() and (m["uncertainty"][1:] > 0).all()
    # the fresh-data error needs history + 8 rows in a stream: from the first iteration's 12 rows on
    assert np.isfinite(m["model_error_1"]).all() and np.isfinite(m["model_error_8"]).all()
    assert np.isfinite(m["model_loss"]).all()
    refined = ckpt.load(run / MODEL_FILE).model.state_dict()
    assert "online" in ckpt.read(run / MODEL_FILE)["meta"]
    assert any(v.dtype.is_floating_point for v in refined.values())


def test_the_world_model_is_refined(run, world):
    before = ckpt.load(world[0]).model.state_dict()
    after = ckpt.load(run / MODEL_FILE).model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_resume_gives_the_uninterrupted_result(run, world, tmp_path):
    part = tmp_path / "part"
    train_online(world[0], world[1], part, OnlineConfig(**{**TINY, "iterations": 2}), seed=2, device="cpu",
                 progress=False)  # fmt: skip
    train_online(world[0], world[1], part, OnlineConfig(**TINY), seed=2, device="cpu", resume=True, progress=False)
    a = pd.read_csv(run / "metrics.csv").drop(columns=TIMING)
    b = pd.read_csv(part / "metrics.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(a, b)
    wa = ckpt.load(run / MODEL_FILE).model.state_dict()
    wb = ckpt.load(part / MODEL_FILE).model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


# ppo_real: the real envs step steps_per_env = 12 steps per iteration inside PPO's rollout (real_steps is unused)
REAL = {**TINY, "ppo_real": True, "steps_per_env": 12, "real_steps": 5}


class _Counts:
    """Steps of the real (simulator) and imagined envs, and the envs PPO's rollout storage holds."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.steps = {"real": 0, "imagined": 0}
        self.storage_envs = 0
        for name, cls in (("real", SimVecEnv), ("imagined", ImaginationEnv)):
            monkeypatch.setattr(cls, "step", self._counted(name, cls.step))
        build = online.build_ppo

        def build_ppo(env, train_cfg, dev):
            alg = build(env, train_cfg, dev)
            self.storage_envs = alg.storage.num_envs
            return alg

        monkeypatch.setattr(online, "build_ppo", build_ppo)

    def _counted(self, name, step):
        def counted(env, actions):
            self.steps[name] += 1
            return step(env, actions)

        return counted


@pytest.fixture(scope="module")
def real_run(world, tmp_path_factory) -> tuple[Path, _Counts]:
    out = tmp_path_factory.mktemp("online_real") / "run"
    with pytest.MonkeyPatch.context() as mp:
        counts = _Counts(mp)
        train_online(world[0], world[1], out, OnlineConfig(**REAL), seed=2, device="cpu", progress=False)
    return out, counts


def test_real_envs_pay_the_fall_cost_only_when_ppo_learns_from_them():
    assert online.real_env_config(OnlineConfig(termination_penalty=3.0, ppo_real=False)).termination_penalty == 0.0
    assert online.real_env_config(OnlineConfig(termination_penalty=3.0, ppo_real=True)).termination_penalty == 3.0


def test_ppo_real_learns_from_real_and_imagined_transitions(real_run, run):
    out, counts = real_run
    for name in ("policy.pt", "policy.onnx", "policy_checkpoint.pt", MODEL_FILE, "metrics.csv"):
        assert (out / name).exists(), name
    m = pd.read_csv(out / "metrics.csv")
    assert list(m.columns) == list(pd.read_csv(run / "metrics.csv").columns)  # the same columns as without
    assert list(m["warmup"]) == [1, 0, 0, 0]
    assert counts.storage_envs == REAL["real_envs"] + REAL["num_envs"]  # mini-batches mix real and imagined rows
    # the real envs step steps_per_env steps every iteration, the imagined ones after the warm-up only
    assert counts.steps == {"real": 4 * 12, "imagined": 3 * 12}
    assert list(m["real_env_steps"]) == [48, 96, 144, 192]
    assert list(m["buffer_rows"]) == [48, 96, 120, 120]  # every real step still goes to the buffer
    for col in ("true_reward", "true_fall_rate", "model_error_1", "model_error_8", "model_loss", *TIMING):
        assert np.isfinite(m[col]).all(), col
    assert np.isnan(m["imagined_reward"][0]) and np.isfinite(m["imagined_reward"][1:]).all()
    assert np.isnan(m["loss.value"][0]) and np.isfinite(m["loss.value"][1:]).all()
    assert (m["uncertainty"][1:] > 0).all()


def test_ppo_real_resume_gives_the_uninterrupted_result(real_run, world, tmp_path):
    part = tmp_path / "part"
    train_online(world[0], world[1], part, OnlineConfig(**{**REAL, "iterations": 2}), seed=2, device="cpu",
                 progress=False)  # fmt: skip
    train_online(world[0], world[1], part, OnlineConfig(**REAL), seed=2, device="cpu", resume=True, progress=False)
    a = pd.read_csv(real_run[0] / "metrics.csv").drop(columns=TIMING)
    b = pd.read_csv(part / "metrics.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(a, b)
    wa = ckpt.load(real_run[0] / MODEL_FILE).model.state_dict()
    wb = ckpt.load(part / MODEL_FILE).model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    pa = read_checkpoint(real_run[0] / "policy_checkpoint.pt")["actor_state_dict"]
    pb = read_checkpoint(part / "policy_checkpoint.pt")["actor_state_dict"]
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


def test_ppo_real_warmup_steps_only_the_real_envs(world, tmp_path, monkeypatch):
    def no_imagination(*args, **kwargs):
        raise AssertionError("an imagined or joint step during warm-up")

    monkeypatch.setattr(ImaginationEnv, "step", no_imagination)
    monkeypatch.setattr(ConcatVecEnv, "step", no_imagination)
    cfg = OnlineConfig(**{**REAL, "iterations": 2, "warmup_iterations": 2})
    train_online(world[0], world[1], tmp_path / "run", cfg, seed=2, device="cpu", progress=False)
    m = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert list(m["warmup"]) == [1, 1] and list(m["buffer_rows"]) == [48, 96]
    assert m["loss.value"].isna().all() and m["imagined_reward"].isna().all()
    assert np.isfinite(m["model_loss"]).all()


def test_ppo_real_needs_a_warmup(world, tmp_path):
    cfg = OnlineConfig(**{**REAL, "warmup_iterations": 0})
    with pytest.raises(PolicyTrainingError, match="warmup_iterations >= 1"):
        train_online(world[0], world[1], tmp_path / "run", cfg, seed=2, device="cpu", progress=False)
    assert not (tmp_path / "run").exists()


def test_fresh_error_caps_its_windows_evenly_and_equals_the_full_measure_below_the_cap(world):
    """Many real envs give thousands of fresh windows; the measure takes an evenly spaced subset of at most
    ``max_windows``, and below the cap it is the full mean."""
    from rwm_core.policy.replay import ReplayBuffer

    loaded = ckpt.load(world[0])
    data = online.Dataset.load(world[1])
    lay, history = data.layout, data.history
    rows = torch.from_numpy(np.load(Path(world[1]) / "rows.npy")).float()
    streams, steps, fresh = 6, 40, 10
    buf = ReplayBuffer.from_layout(lay, streams, 64)
    no_start = torch.zeros(streams, dtype=torch.bool)
    for t in range(steps):
        r = rows[t * streams : (t + 1) * streams].clone()
        r[:, lay.termination_column] = 0.0
        buf.append(r, no_start)
    full = online._FreshError(buf, history, fresh, max_windows=10_000)
    n_fresh = streams * fresh  # windows that end in the fresh rows
    seen: list[int] = []
    real_predict = online.autoregressive_predict

    def counting(model, states, actions, h, **kw):
        seen.append(states.shape[0])
        return real_predict(model, states, actions, h, **kw)

    online.autoregressive_predict = counting
    try:
        a = full(loaded.model, loaded.normalizer, lay)
        b = online._FreshError(buf, history, fresh, max_windows=n_fresh)(loaded.model, loaded.normalizer, lay)
        c = online._FreshError(buf, history, fresh, max_windows=7)(loaded.model, loaded.normalizer, lay)
    finally:
        online.autoregressive_predict = real_predict
    assert seen == [n_fresh, n_fresh, 7]
    assert a == b and np.isfinite(list(c.values())).all() and c != a


def test_fine_tuning_starts_from_the_given_policy_and_a_size_mismatch_is_one_clear_error(run, world, tmp_path):
    """``init_policy`` (the default config fine-tunes the PPO policy): the loop starts from that actor and critic;
    warm-up only, the exported policy is the initial one."""
    init = run / "policy_checkpoint.pt"
    out = tmp_path / "ft"
    cfg = OnlineConfig(**{**TINY, "init_policy": str(init), "iterations": 1, "warmup_iterations": 1})
    train_online(world[0], world[1], out, cfg, seed=5, device="cpu", progress=False)
    a, b = read_checkpoint(init), read_checkpoint(out / "policy_checkpoint.pt")
    for part in ("actor_state_dict", "critic_state_dict"):
        assert a[part].keys() == b[part].keys() and all(torch.equal(a[part][k], b[part][k]) for k in a[part])
    wrong = OnlineConfig(**{**TINY, "init_policy": str(init), "actor_hidden": [8, 8]})
    with pytest.raises(PolicyTrainingError, match=r"policy_checkpoint\.pt.*actor_hidden"):
        train_online(world[0], world[1], tmp_path / "bad", wrong, seed=5, device="cpu", progress=False)


def test_too_short_a_warmup_for_the_first_histories_is_one_clear_error(world, tmp_path):
    """With ppo_real the first imagined envs start from warmup_iterations x steps_per_env rows per real env."""
    cfg = OnlineConfig(**{**REAL, "steps_per_env": 2, "warmup_iterations": 1})  # 2 rows; the history is 4
    with pytest.raises(PolicyTrainingError, match=r"4-step histories.*= 2 rows"):
        train_online(world[0], world[1], tmp_path / "x", cfg, seed=2, device="cpu", progress=False)
    assert not (tmp_path / "x").exists()
