"""The whole DAG on the tiny config (tests/tiny_config.yaml): train_ppo -> ... -> penalty sweep, a real Snakemake run.

One run (the session fixture ``tiny_run`` in conftest) is shared by the tests of this module; each checks that its
outputs exist and hold sane values, that every output carries its manifest, and that after a config edit Snakemake
schedules exactly the stale jobs (dry runs against the finished run; nothing here modifies it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import TINY_TARGETS, run_snakemake, scheduled_jobs, tiny_workdir

from rwm_core import artifacts


def pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", path.read_bytes()))


def test_every_figure_exists_with_pages(tiny_run: Path) -> None:
    for name in ("penalty_sweep.pdf", "prediction.pdf", "uncertainty_error.pdf", "noise_robustness.pdf"):
        assert pages(tiny_run / "results" / name) >= 1, name
    assert pages(tiny_run / "results/overview.pdf") == 3


def test_sweep_csv_has_one_row_per_penalty_and_seed(tiny_run: Path) -> None:
    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    full = pd.read_csv(tiny_run / "results/penalty_sweep.csv")
    assert list(full["method"]) == ["mopo-ppo"] * (len(full) - 3) + ["online-rwm", "model-free-ppo", "standing"]
    for method in ("online-rwm", "model-free-ppo", "standing"):  # the references, scored on the same simulator episodes
        ref = full[full["method"] == method]
        assert ref["sim_return_mean"].notna().all() and ref["sim_fall_rate"].between(0, 1).all(), method
    table = full[full["method"] == "mopo-ppo"]
    assert len(table) == len(cfg["sweep"]["penalties"]) * len(cfg["sweep"]["seeds"])
    assert sorted(table["penalty"]) == sorted(cfg["sweep"]["penalties"])
    for col in ("imagined_reward_penalised", "imagined_reward_unpenalised", "imagined_uncertainty", "sim_return_mean"):
        assert table[col].notna().all() and (table[col].abs() < 1e6).all(), col
    assert table["sim_fall_rate"].between(0, 1).all()


def test_world_model_reports_are_finite(tiny_run: Path) -> None:
    dyn = json.loads((tiny_run / "results/eval/dynamics.json").read_text())
    assert len(dyn["relative_error"]["model"]) == dyn["horizon"] > 0
    unc = json.loads((tiny_run / "results/eval/uncertainty_error.json").read_text())
    for key in ("step_averaged", "pooled"):
        assert -1 <= unc[key]["pearson"] <= 1


def declared_outputs(work: Path) -> dict[str, str]:
    """Every output the DAG declares (path -> rule), from ``snakemake --summary``."""
    proc = run_snakemake(work, "--cores", "1", "--summary", *TINY_TARGETS, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line.split("\t") for line in proc.stdout.splitlines() if "\t" in line]
    header, rows = lines[0], lines[1:]
    assert header[:3] == ["output_file", "date", "rule"]
    assert all(r[4] == "ok" for r in rows), [r for r in rows if r[4] != "ok"]
    return {r[0]: r[2] for r in rows}


def test_every_output_has_a_manifest_with_the_required_fields(tiny_run: Path) -> None:
    outputs = declared_outputs(tiny_run)
    rules = set(outputs.values())
    assert len(rules) == 17, sorted(rules)  # every rule of the default DAG but `all`
    covered: dict[str, dict] = {}
    for name in outputs:
        path = tiny_run / name
        if artifacts.is_manifest(path):
            continue
        sibling = artifacts.manifest_path(path)
        holder = sibling if sibling.exists() else path.parent / artifacts.MANIFEST_NAME
        assert holder.exists(), f"{name}: neither {sibling.name} nor {holder} exists"
        manifest = artifacts.read_manifest(holder)
        missing = set(artifacts.MANIFEST_REQUIRED) - set(manifest)
        assert not missing, f"{holder}: missing {missing}"
        assert manifest["stage"] == outputs[name], holder
        assert manifest["config_hash"] == artifacts.config_hash(manifest["config"])
        assert manifest["rwm_core_version"] and manifest["torch_version"] and manifest["device"] == "cpu"
        assert manifest["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", manifest["git_commit"])
        assert manifest["started"] <= manifest["finished"]
        for entry in manifest["inputs"]:  # nothing was modified after it was read
            assert artifacts.sha256_file(tiny_run / entry["path"]) == entry["sha256"], (holder, entry["path"])
        listed = {e["path"]: e["sha256"] for e in manifest["outputs"]}
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if artifacts.is_manifest(f) or f.name.startswith("."):
                continue
            rel = str(f.relative_to(tiny_run))
            assert listed.get(rel) == artifacts.sha256_file(f), f"{holder} does not list {rel} with its sha256"
        covered[name] = manifest
    seeded = {m["stage"]: m["seed"] for m in covered.values()}
    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert seeded["train_ppo"] == cfg["seeds"]["ppo"]
    assert seeded["pretrain_dynamics"] == cfg["seeds"]["dynamics"]
    assert seeded["evaluate_dynamics"] == cfg["seeds"]["evaluation"]
    assert covered["results/dynamics/model.pt"]["config"] == cfg["dynamics"]
    assert covered["results/dynamics/model.pt"]["resumed_from"] == 0


def dry_run(work: Path, config: dict | None = None) -> dict[str, int]:
    """Jobs a run would schedule now (with ``config`` as an extra config file layered over config.yaml)."""
    args = ["--cores", "1", "--dry-run", *TINY_TARGETS]
    if config is not None:
        name = f"edited_{abs(hash(json.dumps(config, sort_keys=True)))}.yaml"
        (work / name).write_text(yaml.safe_dump(config))
        args += ["--configfile", name]
    proc = run_snakemake(work, *args, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    jobs = scheduled_jobs(proc.stdout + proc.stderr)
    if not jobs:
        assert "Nothing to be done" in proc.stdout + proc.stderr
    else:  # the target, `all` (no command), waits for every final product, so it is scheduled with any job
        assert jobs.pop("all") == 1, jobs
    return jobs


def test_nothing_to_do_after_a_complete_run(tiny_run: Path) -> None:
    assert dry_run(tiny_run) == {}


SWEEP = {"penalty_sweep": 1, "plot_penalty_sweep": 1}
FIGURES = (
    "plot_overview", "plot_prediction", "plot_uncertainty", "plot_noise_robustness", "plot_online", "plot_penalty_sweep"
)  # fmt: skip
DOWNSTREAM_OF_WORLD_MODEL = {
    "pretrain_dynamics": 1,
    "evaluate_dynamics": 1,
    "evaluate_uncertainty": 1,
    "plot_prediction": 1,
    "plot_uncertainty": 1,
    "plot_noise_robustness": 1,
    "train_policy": 2,
    "evaluate_policy": 2,
    "evaluate_ppo": 1,  # also scores the world model on the PPO policy's trajectories
    "train_online": 1,
    "evaluate_online": 1,
    "plot_online": 1,
    **SWEEP,
}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            {"sweep": {"penalties": [0.0, 1.0, 5.0], "seeds": [0]}},
            {"train_policy": 1, "evaluate_policy": 1, **SWEEP},
            id="new-lambda",
        ),
        pytest.param({"dynamics": {"learning_rate": 0.002}}, DOWNSTREAM_OF_WORLD_MODEL, id="world-model-param"),
        pytest.param({"seeds": {"dynamics": 7}}, DOWNSTREAM_OF_WORLD_MODEL, id="world-model-seed"),
        pytest.param({"figures": {"dpi": 61}}, dict.fromkeys(FIGURES, 1), id="figure-dpi"),
        pytest.param({"figures": {"overview_seconds": 1.0}}, {"plot_overview": 1}, id="figure-overview"),
        pytest.param({"figures": {"prediction_windows": 2}}, {"plot_prediction": 1}, id="figure-windows"),
        pytest.param(
            {"policy": {"entropy_coef": 0.01}}, {"train_policy": 2, "evaluate_policy": 2, **SWEEP}, id="policy-param"
        ),
        pytest.param(
            {"policy": {"eval_episodes": 2}},
            {"evaluate_policy": 2, "evaluate_ppo": 1, "evaluate_online": 1, **SWEEP},  # all scored alike
            id="policy-eval-only",
        ),
    ],
)
def test_an_edit_schedules_only_the_stale_jobs(tiny_run: Path, edit: dict, expected: dict[str, int]) -> None:
    assert dry_run(tiny_run, edit) == expected


def test_the_default_target_all_schedules_every_stage(tmp_path: Path) -> None:
    """README's main command names no target: `all`, the first rule, lists the final products; they run every stage."""
    work = tiny_workdir(tmp_path)
    proc = run_snakemake(work, "--dry-run", timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = scheduled_jobs(proc.stdout)
    every_rule = {
        "train_ppo", "evaluate_ppo", "validate_dataset", "plot_overview", "pretrain_dynamics", "evaluate_dynamics",
        "evaluate_uncertainty", "plot_uncertainty", "plot_prediction", "plot_noise_robustness", "train_policy",
        "evaluate_policy", "penalty_sweep", "plot_penalty_sweep", "train_online", "evaluate_online", "plot_online",
        "all",
    }  # fmt: skip
    assert set(jobs) == every_rule


def test_report_collects_every_figure_and_the_numbers(tiny_run: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    proc = run_snakemake(tiny_run, "--report", str(report), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    added = set(re.findall(r"Adding (\S+) \(", proc.stdout + proc.stderr))
    assert added == {
        "overview.pdf", "uncertainty_error.pdf", "prediction.pdf", "noise_robustness.pdf", "penalty_sweep.pdf",
        "penalty_sweep.csv", "penalty_sweep_summary.csv", "dynamics.json", "uncertainty_error.json", "online.pdf",
    }  # fmt: skip
    assert report.stat().st_size > 100_000
