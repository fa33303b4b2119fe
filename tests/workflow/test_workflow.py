"""Real Snakemake runs of the workflow on small data (copies of the repo's workflow files in a temp dir)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from helpers import REPO, write_rows

from rwm_core.data.synthetic import synthetic_rows

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def make_workdir(tmp_path: Path, overrides: dict) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(REPO / "Snakefile", work / "Snakefile")
    shutil.copytree(REPO / "workflow", work / "workflow")
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for section, values in overrides.items():
        if isinstance(values, dict):
            cfg[section].update(values)
        else:
            cfg[section] = values
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    return work


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env_path = str(Path(sys.executable).parent)
    import os

    env = dict(os.environ, PATH=f"{env_path}:{os.environ.get('PATH', '')}")
    return subprocess.run(
        [SNAKEMAKE, "--cores", "1", *args], cwd=work, capture_output=True, text=True, timeout=600, env=env
    )


def test_validate_rule_on_user_csvs(tmp_path: Path) -> None:
    data = write_rows(tmp_path / "csv", synthetic_rows(1200, seed=5), n_files=2)
    work = make_workdir(tmp_path, {"dataset": {"source": "dir", "dir": str(data)}})
    proc = snakemake(work, "results/data/validation.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((work / "results/data/validation.json").read_text())
    assert report["rows"] == 1200 and report["valid_windows"] > 0
    dry = snakemake(work, "--dry-run", "results/data/validation.json")
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_validate_rule_fails_cleanly_without_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    work = make_workdir(tmp_path, {"dataset": {"source": "dir", "dir": str(tmp_path / "empty")}})
    proc = snakemake(work, "results/data/validation.json")
    assert proc.returncode != 0
    log = "results/logs/validate_dataset.log"  # the job's stdout and stderr, kept after the failure
    assert log in proc.stdout + proc.stderr  # Snakemake's error message names it
    assert "no data files" in (work / log).read_text()
    assert not (work / "results/data/validation.json").exists()
