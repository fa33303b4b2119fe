"""Model-free PPO in the batched simulator: outputs, recorded experience as a valid dataset, exact resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rwm_core.config import DatasetConfig, PPOConfig
from rwm_core.data.dataset import Dataset
from rwm_core.data.io import STREAMS_FILE, stream_breaks
from rwm_core.data.validate import validate_dataset
from rwm_core.policy.ppo import EXPERIENCE_DIR, train_ppo
from rwm_core.tasks import anymal_d_flat as task

LAY = task.LAYOUT
TINY = dict(
    num_envs=8, iterations=4, steps_per_env=10, checkpoint_every=2, episode_length=15, record_envs=3,
    actor_hidden=[16], critic_hidden=[16],
)  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ppo") / "run"
    train_ppo(out, PPOConfig(**TINY), seed=1, device="cpu", progress=False)
    return out


def test_outputs_and_metrics(run):
    for name in ("policy.pt", "policy.onnx", "policy_checkpoint.pt", "metrics.csv", "checkpoints/iter_000002.pt"):
        assert (run / name).exists(), name
    m = pd.read_csv(run / "metrics.csv")
    assert list(m["iteration"]) == [1, 2, 3, 4]
    assert list(m["env_steps"]) == [80, 160, 240, 320]
    for col in ("reward", "fall_rate", "env_steps_per_s", "wall_s", "recorded_rows"):
        assert col in m.columns and np.isfinite(m[col]).all(), col
    for col in ("episode.length", "episode.return", "episode.fall"):  # NaN in iterations where no episode ended
        assert np.isfinite(m[col]).any(), col
    assert "episode_reward.track_lin_vel_xy_exp" in m.columns


def test_recorded_experience_is_a_dataset_with_time_outs_as_stream_breaks(run, tmp_path):
    exp = run / EXPERIENCE_DIR
    files = sorted(exp.glob("state_action_data_*.csv"))
    assert len(files) == TINY["record_envs"]
    breaks = stream_breaks(exp)
    assert breaks, "a 15-step episode length must time out within 40 steps"
    for f in files:
        rows = np.loadtxt(f, delimiter=",", ndmin=2)
        assert rows.shape[1] == LAY.n_columns
        # 40 env steps, plus one reset row per ended episode, plus the first reset row
        ends = int((rows[:, LAY.termination_column] != 0).sum()) + len(breaks.get(f.name, []))
        assert len(rows) == 1 + TINY["iterations"] * TINY["steps_per_env"] + ends
        for b in breaks.get(f.name, []):  # after a time-out the next row is a fresh reset: action zero
            assert rows[b, LAY.termination_column] == 0.0 and np.all(rows[b + 1, LAY.action] == 0.0)
    report = validate_dataset(exp, tmp_path / "data", DatasetConfig(history=4, forecast=2), progress=False)
    assert report["warnings"] == []
    ds = Dataset.load(tmp_path / "data")
    ends = ds.episode_ends()
    offsets = np.cumsum([0] + [len(np.loadtxt(f, delimiter=",", ndmin=2)) for f in files])
    for i, f in enumerate(files):
        for b in breaks.get(f.name, []):
            assert ends[offsets[i] + b], "a time-out must end its stream"
    length = ds.window_length
    for s in ds.window_starts:  # no window runs across a stream end
        assert not ends[s : s + length - 1].any()
    assert (exp / STREAMS_FILE).exists()


def test_resume_gives_the_uninterrupted_result(run, tmp_path):
    """Stopped after 2 iterations and resumed: same metrics, weights and recorded experience as straight through."""
    part = tmp_path / "part"
    train_ppo(part, PPOConfig(**{**TINY, "iterations": 2}), seed=1, device="cpu", progress=False)
    shutil.rmtree(part / EXPERIENCE_DIR)
    train_ppo(part, PPOConfig(**TINY), seed=1, device="cpu", resume=True, progress=False)
    a = pd.read_csv(run / "metrics.csv").drop(columns=["wall_s", "collect_steps_per_s", "env_steps_per_s"])
    b = pd.read_csv(part / "metrics.csv").drop(columns=["wall_s", "collect_steps_per_s", "env_steps_per_s"])
    pd.testing.assert_frame_equal(a, b)
    wa = torch.load(run / "policy_checkpoint.pt", weights_only=False)["actor_state_dict"]
    wb = torch.load(part / "policy_checkpoint.pt", weights_only=False)["actor_state_dict"]
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    for f in sorted((run / EXPERIENCE_DIR).glob("*")):
        assert f.read_bytes() == (part / EXPERIENCE_DIR / f.name).read_bytes(), f.name


@pytest.mark.parametrize("kind", ["random", "medium", "expert"])
def test_dataset_kinds_roll_out_their_checkpoint_and_validate_without_warnings(run, tmp_path, kind):
    from rwm_core.policy.ppo import collect_dataset

    out = tmp_path / kind
    summary = collect_dataset(run, kind, out, rows=200, cfg=PPOConfig(**TINY), seed=0, num_envs=4, progress=False)
    assert summary["iteration"] == {"random": 0, "medium": 2, "expert": 4}[kind]  # medium: nearest 0.3 x 4 = 1.2
    assert summary["files"] == 4 and summary["rows"] >= 200
    report = validate_dataset(out, tmp_path / "data", DatasetConfig(history=4, forecast=2), progress=False)
    assert report["warnings"] == [] and report["rows"] == summary["rows"]


def test_resume_with_a_truncated_experience_file_is_one_clear_error(run, tmp_path):
    from rwm_core.errors import InputError

    part = tmp_path / "part"
    train_ppo(part, PPOConfig(**{**TINY, "iterations": 2}), seed=1, device="cpu", progress=False)
    pkl = next((part / "checkpoints").glob("*.experience.pkl"))
    pkl.write_bytes(pkl.read_bytes()[:100])
    with pytest.raises(InputError, match=r"experience.pkl: expected the recorded experience"):
        train_ppo(part, PPOConfig(**TINY), seed=1, device="cpu", resume=True, progress=False)


def test_collection_on_one_torch_thread_restores_the_count_and_changes_no_number():
    """train-ppo collects with torch on one thread (MuJoCo has the cores); the rollout must be the same as on two."""
    from rwm_core.policy.onpolicy import build_ppo, collect
    from rwm_core.policy.train import ppo_config
    from rwm_core.runtime import torch_threads
    from rwm_core.sim.vec_env import SimVecEnv

    cfg = PPOConfig(num_envs=8, steps_per_env=6, threads=2, record_envs=0)
    rollouts = []
    before = torch.get_num_threads()
    for threads in (1, 2):
        torch.manual_seed(0)
        env = SimVecEnv(cfg, seed=0)
        try:
            alg = build_ppo(env, ppo_config(cfg), torch.device("cpu"))
            with torch_threads(threads):
                assert torch.get_num_threads() == threads
                collect(alg, env, env.get_observations(), cfg.steps_per_env)
            assert torch.get_num_threads() == before
            s = alg.storage
            rollouts.append([t.clone() for t in (s.actions, s.rewards, s.dones, s.returns)])
        finally:
            env.close()
    for a, b in zip(*rollouts, strict=True):
        assert torch.equal(a, b)
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
