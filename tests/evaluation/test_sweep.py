"""The sweep's summary over seeds, its figure pages and the dataset ablation's table and figure, on synthetic policy
directories (metrics.csv and sim_eval.json as `rwm train-policy` and `rwm evaluate-policy --checkpoints` write them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rwm_core import stages
from rwm_core.artifacts import read_manifest
from rwm_core.cli import main
from rwm_core.errors import InputError
from rwm_core.evaluation.ablation import ablation_runs, ablation_table, parse_run
from rwm_core.evaluation.sweep import SUMMARY_COLUMNS, seed_curves, seed_summary, sweep_figure_data, sweep_table
from rwm_core.plots.ablation import plot_dataset_ablation
from rwm_core.plots.sweep import plot_penalty_sweep

TERMS = ("track_lin_vel_xy_exp", "track_ang_vel_z_exp", "undesired_contacts", "termination")
STANDING = {"return_mean": 3.0, "return_std": 0.5, "fall_rate": 0.25, "lin_vel_error": 0.8, "yaw_rate_error": 0.5}


def true_return(lam: float, seed: int) -> float:
    """The synthetic final true return of run (λ, seed): distinct per run, so that means and spreads are known."""
    return 1.0 + lam + 0.5 * seed


def pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", path.read_bytes()))


def policy_dir(root: Path, lam: float, seed: int, iterations: int = 20, ret: float | None = None) -> Path:
    """A scored MOPO-PPO run lambda<λ>_seed<s>: imagined reward rising, true return over checkpoints falling."""
    rng = np.random.default_rng(int(lam * 10) + 100 * seed)
    d = root / f"lambda{lam:g}_seed{seed}"
    d.mkdir(parents=True)
    it = np.arange(1, iterations + 1)
    unpenalised = 0.02 * it + 0.1 * rng.standard_normal(iterations)
    uncertainty = 0.5 + 0.1 * rng.random(iterations)
    metrics = {
        "iteration": it,
        "reward_penalised": unpenalised - lam * uncertainty * 0.02,
        "reward_unpenalised": unpenalised,
        "uncertainty": uncertainty,
        "episode.length": rng.uniform(30, 60, iterations),
        **{f"episode_reward.{t}": rng.normal(size=iterations) for t in TERMS},
    }
    pd.DataFrame(metrics).to_csv(d / "metrics.csv", index=False)
    final = true_return(lam, seed) if ret is None else ret
    checkpoints = [
        {"iteration": int(i), "return_mean": final + 4.0 - 0.2 * i + 0.3 * rng.standard_normal()}
        for i in range(5, iterations + 1, 5)
    ]
    sim = {
        "return_mean": final,
        "return_std": 0.7,
        "fall_rate": 0.5 if lam == 0 else 0.25,
        "lin_vel_error": 0.9 - 0.01 * seed,
        "yaw_rate_error": 0.4,
        "episode_length_mean": 300.0,
        "mean_terms": {t: float(rng.normal()) for t in TERMS[:3]},
        "standing": STANDING,
        "checkpoints": checkpoints,
        "model_error": {"policy": {"at": {"1": 0.3, "8": 0.6}}},
    }
    (d / "sim_eval.json").write_text(json.dumps(sim))
    return d


def reference_dir(root: Path, name: str, ret: float) -> Path:
    d = root / name
    d.mkdir(parents=True)
    pd.DataFrame({"iteration": [1, 2, 3], "reward": [0.1, 0.2, 0.3]}).to_csv(d / "metrics.csv", index=False)
    sim = {"return_mean": ret, "return_std": 1.0, "fall_rate": 0.0, "lin_vel_error": 0.2, "yaw_rate_error": 0.1}
    (d / "sim_eval.json").write_text(json.dumps({**sim, "standing": STANDING}))
    return d


LAMS, SEEDS = (0.0, 1.0, 5.0), (0, 1)


@pytest.fixture
def sweep_dirs(tmp_path: Path) -> list[Path]:
    return [policy_dir(tmp_path / "policies", lam, seed) for seed in SEEDS for lam in LAMS]


def test_summary_over_seeds(sweep_dirs: list[Path], tmp_path: Path) -> None:
    ppo = reference_dir(tmp_path, "ppo", 10.0)
    table = sweep_table(sweep_dirs, tail=5, model_free=[ppo])
    summary = seed_summary(table)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert summary["method"].tolist() == ["mopo-ppo"] * 3 + ["model-free-ppo", "standing"]
    runs = summary[summary["method"] == "mopo-ppo"].set_index("penalty")
    assert runs.index.tolist() == list(LAMS) and (runs["n_seeds"] == 2).all()
    for lam in LAMS:
        returns = [true_return(lam, seed) for seed in SEEDS]
        row = runs.loc[lam]
        assert row["sim_return_mean"] == pytest.approx(np.mean(returns))
        assert row["sim_return_seed_std"] == pytest.approx(np.std(returns, ddof=1))  # the sample std over seeds
        assert (row["sim_return_seed_min"], row["sim_return_seed_max"]) == (min(returns), max(returns))
        seeds = table[(table["method"] == "mopo-ppo") & (table["penalty"] == lam)]
        for col in ("sim_fall_rate", "sim_lin_vel_error", "imagined_reward_penalised", "imagined_reward_unpenalised"):
            assert row[col] == pytest.approx(seeds[col].mean()), col
        assert row["imagined_reward_unpenalised_seed_std"] == pytest.approx(seeds["imagined_reward_unpenalised"].std())
    refs = summary[summary["method"] != "mopo-ppo"]
    assert (refs["n_seeds"] == 1).all() and refs["penalty"].isna().all() and refs["sim_return_seed_std"].isna().all()
    assert refs["sim_return_mean"].tolist() == [10.0, STANDING["return_mean"]]


def test_seed_curves_mean_and_range_per_iteration() -> None:
    a = pd.DataFrame({"iteration": [5, 10], "return_mean": [1.0, 3.0]})
    b = pd.DataFrame({"iteration": [5, 10], "return_mean": [2.0, 5.0]})
    empty = pd.DataFrame(columns=["iteration", "return_mean"])  # a run scored without --checkpoints
    c = seed_curves({(0.0, 0): a, (0.0, 1): b, (1.0, 0): a, (2.0, 0): empty})
    assert c["penalty"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert c["n_seeds"].tolist() == [2, 2, 1, 1] and c["return_mean"].tolist() == [1.5, 4.0, 1.0, 3.0]
    assert c["return_min"].tolist() == [1.0, 3.0, 1.0, 3.0] and c["return_max"].tolist() == [2.0, 5.0, 1.0, 3.0]
    assert seed_curves({(2.0, 0): empty}).empty


def test_sweep_figure_pages_with_two_seeds_and_lambda_zero(sweep_dirs: list[Path], tmp_path: Path) -> None:
    ppo, online = reference_dir(tmp_path, "ppo", 10.0), reference_dir(tmp_path, "online", -2.0)
    table = sweep_table(sweep_dirs, tail=5, model_free=[ppo], online=[online])
    data = sweep_figure_data(table, sweep_dirs, tail=5)
    assert set(data.references) == {"sim_return_mean_standing", "sim_return_mean_model_free", "sim_return_mean_online"}
    table.attrs.update(data.references)
    out = tmp_path / "sweep.pdf"
    plot_penalty_sweep(table, data.curves, out, dpi=60, gaps=data.gaps, true_curves=data.true_curves)
    assert pdf_pages(out) == 4  # true return over training, imagined reward, outcomes against λ, reward terms
    # runs scored without their checkpoints and no term gaps: the first page says so, the gap page is left out
    plot_penalty_sweep(table, data.curves, tmp_path / "bare.pdf", dpi=60)
    assert pdf_pages(tmp_path / "bare.pdf") == 3


def test_sweep_writes_and_prints_the_summary_with_its_manifest(
    sweep_dirs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ppo = reference_dir(tmp_path, "ppo", 10.0)
    csv, summary = tmp_path / "sweep.csv", tmp_path / "sweep_summary.csv"
    argv = [*map(str, sweep_dirs), "--model-free", str(ppo), "--out-csv", str(csv), "--out-summary", str(summary)]
    assert main(["sweep", *argv]) == 0
    printed = capsys.readouterr().out
    written = pd.read_csv(summary)
    assert list(written.columns) == list(SUMMARY_COLUMNS) and written["n_seeds"].tolist() == [2, 2, 2, 1, 1]
    assert "summary over seeds" in printed and "sim_return_seed_std" in printed
    m = read_manifest(summary)
    assert m["stage"] == "penalty_sweep" and m["command"] == ["rwm", "sweep", *argv]
    assert [i["path"] for i in m["inputs"]] == [i["path"] for i in read_manifest(csv)["inputs"]]
    done = stages.sweep(sweep_dirs, out_summary=tmp_path / "only_summary.csv")  # a summary alone is enough to write
    assert len(done.manifests) == 1 and (tmp_path / "only_summary.csv").exists()


KINDS = ("random", "expert", "mixed")


@pytest.fixture
def ablation_dirs(tmp_path: Path) -> list[tuple[str, Path]]:
    """Two λ and two seeds per kind; the kinds' returns differ (random < expert < mixed)."""
    runs = []
    for k, kind in enumerate(KINDS):
        for lam in (0.0, 1.0):
            for seed in (0, 1):
                ret = 2.0 * k + lam + 0.5 * seed
                runs.append((kind, policy_dir(tmp_path / kind / "policies", lam, seed, ret=ret)))
    return runs


def test_ablation_table_per_kind_and_penalty(ablation_dirs: list[tuple[str, Path]], tmp_path: Path) -> None:
    ppo = reference_dir(tmp_path, "ppo", 10.0)
    per_run = ablation_runs(list(reversed(ablation_dirs)), tail=5, model_free=[ppo])
    # kinds in the order first named, each kind's runs by (λ, seed)
    assert per_run["kind"].tolist() == [k for k in reversed(KINDS) for _ in range(4)] + ["", ""]
    assert per_run["method"].tolist()[-2:] == ["model-free-ppo", "standing"]
    table = ablation_table(ablation_runs(ablation_dirs, tail=5, model_free=[ppo]))
    assert list(table.columns) == ["kind", *SUMMARY_COLUMNS]
    runs = table[table["method"] == "mopo-ppo"]
    assert list(zip(runs["kind"], runs["penalty"], strict=True)) == [(k, lam) for k in KINDS for lam in (0.0, 1.0)]
    assert (runs["n_seeds"] == 2).all()
    expert = runs[(runs["kind"] == "expert") & (runs["penalty"] == 1.0)].iloc[0]
    assert expert["sim_return_mean"] == pytest.approx(2.0 + 1.0 + 0.25)
    assert (expert["sim_return_seed_min"], expert["sim_return_seed_max"]) == (3.0, 3.5)
    assert expert["sim_fall_rate"] == 0.25
    assert table[table["method"] == "standing"]["sim_return_mean"].tolist() == [STANDING["return_mean"]]
    with pytest.raises(InputError, match="KIND=POLICY_DIR"):
        parse_run("results/policies/lambda0_seed0")
    assert parse_run("mixed=results/policies/lambda0_seed0") == ("mixed", Path("results/policies/lambda0_seed0"))


def test_ablation_command_writes_table_and_figure_with_manifests(
    ablation_dirs: list[tuple[str, Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ppo = reference_dir(tmp_path, "ppo", 10.0)
    csv, pdf = tmp_path / "ablation.csv", tmp_path / "ablation.pdf"
    specs = [f"{kind}={d}" for kind, d in ablation_dirs]
    argv = [*specs, "--model-free", str(ppo), "--out-csv", str(csv), "--out-pdf", str(pdf), "--dpi", "60"]
    assert main(["ablation", *argv]) == 0
    assert "expert" in capsys.readouterr().out
    assert pd.read_csv(csv, keep_default_na=False)["kind"].tolist() == [k for k in KINDS for _ in (0, 1)] + ["", ""]
    assert pdf_pages(pdf) == 1
    for out, stage in ((csv, "ablation_table"), (pdf, "plot_dataset_ablation")):
        m = read_manifest(out)
        assert m["stage"] == stage and m["command"] == ["rwm", "ablation", *argv]
        assert m["config"]["kinds"] == list(KINDS)
        assert len(m["inputs"]) == 2 * len(ablation_dirs) + 2  # metrics.csv and sim_eval.json of every run and PPO
    # one seed and a kind without a λ = 1 run: no spread to draw, the missing bar left out
    few = [(k, d) for k, d in ablation_dirs if d.name.endswith("seed0") and (k != "random" or "lambda0" in d.name)]
    per_run = ablation_runs(few, tail=5)
    plot_dataset_ablation(per_run, ablation_table(per_run), tmp_path / "few.pdf", dpi=60)
    assert pdf_pages(tmp_path / "few.pdf") == 1
