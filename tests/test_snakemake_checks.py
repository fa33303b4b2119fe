"""Checks of the workflow that run no job (seconds): `snakemake --lint`, and command-line config overrides."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import run_snakemake, scheduled_jobs, tiny_workdir

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
