"""Checks of the workflow that run no job (seconds): `snakemake --lint`, and command-line config overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import run_snakemake, scheduled_jobs, tiny_workdir

SHELL = re.compile(r"^Shell command: (.*)$", re.M)


def test_lint_finds_nothing(tmp_path: Path) -> None:
    """Every rule has a log, a conda environment and params derived from its files; functions sit in common.smk."""
    proc = run_snakemake(tiny_workdir(tmp_path), "--lint", timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Congratulations, your workflow is in a good condition!" in out, out[-6000:]


def test_nested_config_override_on_the_command_line(tmp_path: Path) -> None:
    """README's override, --config 'sweep={"penalties":[0,2]}' 'seeds={"dynamics":7}': Snakemake hands the workflow
    every scalar of a nested value as a string ('0'); typed by the schema, it is the run a --configfile gives."""
    work = tiny_workdir(tmp_path)
    overrides = ['sweep={"penalties":[0,2]}', 'seeds={"dynamics":7}']  # as in README.md, Configuration
    cli = run_snakemake(work, "--dry-run", "--printshellcmds", "--config", *overrides, timeout=120)
    assert cli.returncode == 0, cli.stdout[-2000:] + cli.stderr[-3000:]
    jobs = scheduled_jobs(cli.stdout + cli.stderr)
    assert jobs["train_policy"] == jobs["evaluate_policy"] == 2
    assert set(re.findall(r"results/policies/(lambda\w+)/", cli.stdout)) == {"lambda0_seed0", "lambda2_seed0"}
    assert re.search(r"rwm pretrain .* --seed 7 ", cli.stdout)
    (work / "my.yaml").write_text("sweep:\n  penalties: [0, 2]\nseeds:\n  dynamics: 7\n")
    from_file = run_snakemake(work, "--dry-run", "--printshellcmds", "--configfile", "my.yaml", timeout=120)
    assert from_file.returncode == 0, from_file.stderr[-3000:]
    assert scheduled_jobs(from_file.stdout + from_file.stderr) == jobs
    assert sorted(SHELL.findall(from_file.stdout)) == sorted(SHELL.findall(cli.stdout))
    bad = run_snakemake(work, "--dry-run", "--config", 'sweep={"penalties":["x"]}', timeout=120)
    assert bad.returncode != 0 and "sweep.penalties.0: 'x' is not of type 'number'" in bad.stdout + bad.stderr


ABLATION_RULES = (
    "ablation_validate_dataset",
    "ablation_pretrain_dynamics",
    "ablation_train_policy",
    "ablation_evaluate_policy",
    "ablation_table",
    "plot_dataset_ablation",
    "dataset_ablation",
)


@pytest.mark.parametrize(
    ("overrides", "reused", "retrained"),
    [
        pytest.param({}, "mixed", 4, id="main-kind-mixed"),
        pytest.param({"dataset": {"source": "sim"}}, "controller", 4, id="main-kind-controller"),
        # another world-model budget: the main kind's data are reused, its world model and policies are not
        pytest.param({"ablation": {"dynamics_iterations": 3}}, None, 5, id="own-budget"),
    ],
)
def test_dataset_ablation_trains_every_kind_but_the_main_jobs(
    tmp_path: Path, overrides: dict, reused: str | None, retrained: int
) -> None:
    """`snakemake dataset_ablation` (tiny config: 5 kinds, λ = 0 and 1, one seed): one pretraining and two policies
    per kind, of which the main job's kind takes its dataset, world model and policies from the main job's rules."""
    proc = run_snakemake(tiny_workdir(tmp_path, overrides), "--dry-run", "--printshellcmds", "dataset_ablation")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    jobs = scheduled_jobs(proc.stdout)
    assert jobs["validate_dataset"] == jobs["pretrain_dynamics"] == 1  # the main job's (evaluate_ppo needs its model)
    assert jobs["ablation_validate_dataset"] == 4  # the main kind's dataset is always the main job's
    assert jobs["collect_ppo_dataset"] == 3 and jobs["simulate_dataset"] == 1  # random, medium, expert; controller
    assert jobs["ablation_pretrain_dynamics"] == retrained
    assert jobs["ablation_train_policy"] == jobs["ablation_evaluate_policy"] == 2 * retrained
    assert jobs.get("train_policy", 0) == jobs.get("evaluate_policy", 0) == 2 * (5 - retrained)
    assert jobs["ablation_table"] == jobs["plot_dataset_ablation"] == jobs["dataset_ablation"] == 1
    kinds = set(re.findall(r"results/ablation/(\w+)/dynamics/model\.pt", proc.stdout))
    assert kinds == {"random", "medium", "expert", "mixed", "controller"} - {reused}
    # every policy is scored on the sweep's episodes; the table names each run with its kind
    commands = SHELL.findall(proc.stdout)
    scored = [re.search(r"--seed (\d+) .*--params '(\{.*?\})'", c).groups() for c in commands if "evaluate-policy" in c]
    assert len(scored) == 10 + jobs["evaluate_ppo"] and len(set(scored)) == 1, set(scored)
    table = next(line for line in commands if "--out-csv results/dataset_ablation.csv" in line)
    if reused:
        assert f"{reused}=results/policies/lambda0_seed0 {reused}=results/policies/lambda1_seed0" in table
    assert "random=results/ablation/random/policies/lambda0_seed0" in table


def test_the_main_target_schedules_no_ablation_job(tmp_path: Path) -> None:
    proc = run_snakemake(tiny_workdir(tmp_path), "--dry-run", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = scheduled_jobs(proc.stdout)
    assert jobs["all"] == 1 and jobs["penalty_sweep"] == 1
    assert not set(jobs) & set(ABLATION_RULES), jobs
    assert "collect_ppo_dataset" not in jobs and "simulate_dataset" not in jobs
