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
from rwm_core.policy.online import MODEL_FILE, train_online

TINY = dict(
    iterations=4, warmup_iterations=1, real_envs=4, real_steps=12, buffer_capacity=30, model_updates=2,
    model_batch_size=16, num_envs=16, steps_per_env=6, checkpoint_every=2, actor_hidden=[16], critic_hidden=[16],
    learning_epochs=1, mini_batches=2,
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
