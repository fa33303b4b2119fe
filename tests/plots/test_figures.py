"""Evaluation studies and figures on a tiny model: uncertainty-error, prediction traces, sweep table and PDFs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import FRESH_ACTOR, tiny_world

from rwm_core.config import EvaluationConfig, PolicyConfig
from rwm_core.dynamics import checkpoint as ckpt
from rwm_core.evaluation.sweep import SWEEP_COLUMNS, policy_row, sweep_table, term_gap
from rwm_core.evaluation.traces import prediction_traces
from rwm_core.evaluation.uncertainty import uncertainty_error
from rwm_core.plots.prediction import plot_prediction
from rwm_core.plots.sweep import plot_penalty_sweep
from rwm_core.plots.uncertainty import plot_uncertainty_error
from rwm_core.tasks import get_task


def pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", path.read_bytes()))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("fig")
    model, ds = tiny_world(tmp, 4000, rows_seed=6, history=8, model_seed=1)
    ckpt.save(tmp / "model.pt", model, ds.normalizer, task=ds.task_name)
    return tmp / "model.pt", tmp / "data"


def test_uncertainty_error_report_and_figure(tiny, tmp_path: Path) -> None:
    model, data = tiny
    cfg = EvaluationConfig(uncertainty_windows=6, uncertainty_steps=30)
    report = uncertainty_error(model, data, tmp_path / "u.json", cfg, val_fraction=0.2, device="cpu")
    saved = json.loads((tmp_path / "u.json").read_text())
    assert saved["windows"] == 6 and saved["steps"] == 30
    assert len(saved["per_step_error"]) == 30 and len(saved["per_step_uncertainty"]) == 30
    for key in ("step_averaged", "pooled"):
        assert np.isfinite(saved[key]["pearson"]) and np.isfinite(saved[key]["spearman"])
        assert -1 <= saved[key]["pearson"] <= 1
    assert saved["pooled"]["n"] == 6 * 30
    assert min(saved["per_step_uncertainty"]) > 0  # three members disagree
    plot_uncertainty_error(report, tmp_path / "u.pdf")
    assert pdf_pages(tmp_path / "u.pdf") == 2


def test_prediction_traces_and_figure(tiny, tmp_path: Path) -> None:
    model, data = tiny
    tr = prediction_traces(model, data, n_windows=2, horizon=20, val_fraction=0.2)
    assert tr["truth"].shape == (2, 8 + 20, 45)
    assert tr["mean"].shape == (2, 20, 45) and tr["members"].shape == (3, 2, 20, 45)
    # members bracket nothing in particular, but they differ from each other and from the mean
    assert not np.allclose(tr["members"][0], tr["members"][1])
    plot_prediction(tr, get_task("anymal_d_flat"), tmp_path / "p.pdf")
    assert pdf_pages(tmp_path / "p.pdf") == 2


def test_sweep_table_and_figure(tiny, tmp_path: Path) -> None:
    from rwm_core.evaluation.policy import evaluate_checkpoints, evaluate_policy_dir
    from rwm_core.policy.train import train_policy

    model, data = tiny
    cfg = PolicyConfig(
        num_envs=16,
        iterations=3,
        steps_per_env=8,
        mini_batches=2,
        eval_episodes=1,
        eval_episode_steps=40,
        checkpoint_every=1,
        **FRESH_ACTOR,  # no iteration-0 clone among the checkpoints
    )
    dirs = []
    for lam in (0.0, 2.0):
        d = tmp_path / f"lambda{lam:g}_seed0"
        train_policy(model, data, d, cfg, penalty=lam, seed=0, device="cpu", progress=False)
        if not lam:  # left behind by other runs: past the final iteration, and under another config
            shutil.copy(d / "checkpoints" / "iter_000001.pt", d / "checkpoints" / "iter_000007.pt")
            other = torch.load(d / "checkpoints" / "iter_000002.pt", weights_only=False)
            torch.save({**other, "fingerprint": "another config"}, d / "checkpoints" / "iter_000002.pt")
        # the second also asks how well the world model predicts both policies' simulator trajectories; the first
        # scores every checkpoint of its run
        kw = dict(seed=0, progress=False, model=model if lam else None, checkpoints=not lam)
        rep = evaluate_policy_dir(d, d / "sim_eval.json", cfg, **kw)
        # scored in worker processes (--workers): the same report, number for number
        assert evaluate_policy_dir(d, tmp_path / "parallel.json", cfg, workers=2, **kw) == rep
        if lam:
            me = json.loads((d / "sim_eval.json").read_text())["model_error"]
            for who in ("policy", "standing"):
                assert me[who]["n_windows"] > 0 and all(np.isfinite(v) and v > 0 for v in me[who]["at"].values())
            assert "checkpoints" not in rep
        else:
            assert "model_error" not in rep
            ckpts = json.loads((d / "sim_eval.json").read_text())["checkpoints"]
            assert [c["iteration"] for c in ckpts] == [1, 3]
            assert evaluate_checkpoints(d, cfg, seed=0, progress=False, workers=2) == ckpts
            # the final checkpoint's actor, rebuilt from its weights, scores exactly as the exported TorchScript
            assert ckpts[-1]["return_mean"] == pytest.approx(rep["return_mean"], rel=1e-9, abs=1e-12)
            # ... and tracks as it (the learning curve in tracking error too)
            for key in ("lin_vel_error", "yaw_rate_error"):
                assert ckpts[-1][key] == pytest.approx(rep[key], rel=1e-9, abs=1e-12)
            assert all(0.0 <= c["fall_rate"] <= 1.0 and c["episode_length_mean"] > 0 for c in ckpts)
        dirs.append(d)
    full = sweep_table(dirs, tail=2)
    assert list(full.columns) == list(SWEEP_COLUMNS)
    assert full["method"].tolist() == ["mopo-ppo", "mopo-ppo", "standing"]  # standing: scored on the same episodes
    stand = json.loads((dirs[0] / "sim_eval.json").read_text())["standing"]
    assert full["sim_return_mean"].iloc[2] == stand["return_mean"] and np.isnan(full["penalty"].iloc[2])
    table = full.iloc[:2]
    assert table["penalty"].tolist() == [0.0, 2.0] and table["seed"].tolist() == [0, 0]
    assert np.isfinite(table["sim_return_mean"]).all() and (table["sim_fall_rate"].between(0, 1)).all()
    # the model error on the policy's trajectories only where evaluate-policy was given the model (λ = 2)
    assert table["sim_model_error_1"].isna().tolist() == [True, False]
    assert table["sim_model_error_8"].iloc[1] > 0
    curves = {
        (r["penalty"], r["seed"]): pd.read_csv(d / "metrics.csv")
        for d, r in zip(dirs, (policy_row(d, 2) for d in dirs), strict=True)
    }
    plot_penalty_sweep(table, curves, tmp_path / "sweep.pdf")  # true return over training (none), imagined, vs λ
    assert pdf_pages(tmp_path / "sweep.pdf") == 3
    gaps = {key: term_gap(d, 2) for key, d in zip(curves, dirs, strict=True)}
    assert set(gaps[(0.0, 0)]["term"]) >= {"track_lin_vel_xy_exp", "undesired_contacts", "termination"}
    plot_penalty_sweep(table, curves, tmp_path / "sweep_gaps.pdf", gaps=gaps)
    assert pdf_pages(tmp_path / "sweep_gaps.pdf") == 4
    true_curves = {(0.0, 0): pd.DataFrame(ckpts), (2.0, 0): pd.DataFrame(columns=["iteration", "return_mean"])}
    plot_penalty_sweep(table, curves, tmp_path / "sweep_true.pdf", gaps=gaps, true_curves=true_curves)
    assert pdf_pages(tmp_path / "sweep_true.pdf") == 4


def test_term_gap_compares_per_step_rates(tmp_path: Path) -> None:
    """Imagined: episode sums / episode length over the tail; simulator: mean sums / mean length."""
    d = tmp_path / "lambda0_seed0"
    d.mkdir()
    pd.DataFrame(
        {
            "iteration": [1, 2, 3],
            "episode.length": [10.0, 20.0, 40.0],
            "episode_reward.track_lin_vel_xy_exp": [100.0, 1.0, 4.0],
            "episode_reward.termination": [0.0, -2.0, -2.0],
        }
    ).to_csv(d / "metrics.csv", index=False)
    sim = {"episode_length_mean": 50.0, "mean_terms": {"track_lin_vel_xy_exp": 5.0}}
    (d / "sim_eval.json").write_text(json.dumps(sim))
    g = term_gap(d, tail=2).set_index("term")
    assert g.loc["track_lin_vel_xy_exp", "imagined"] == pytest.approx((1 / 20 + 4 / 40) / 2)
    assert g.loc["track_lin_vel_xy_exp", "simulator"] == pytest.approx(0.1)
    assert g.loc["termination", "imagined"] == pytest.approx((-2 / 20 - 2 / 40) / 2)
    assert np.isnan(g.loc["termination", "simulator"])
