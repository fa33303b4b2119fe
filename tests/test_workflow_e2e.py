"""The whole DAG on the tiny config (tests/tiny_config.yaml): simulate -> ... -> penalty sweep, a real Snakemake run.

One run is shared by the tests of this module; each checks that its outputs exist and hold sane values.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TARGETS = [
    "results/penalty_sweep.pdf",
    "results/prediction.pdf",
    "results/uncertainty_error.pdf",
    "results/noise_robustness.pdf",
    "results/eval/dynamics.json",
]


def run_snakemake(work: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    return subprocess.run(
        [SNAKEMAKE, "--cores", "2", *args], cwd=work, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("tiny")
    shutil.copy(REPO / "Snakefile", work / "Snakefile")
    shutil.copytree(REPO / "workflow", work / "workflow")
    shutil.copy(REPO / "tests" / "tiny_config.yaml", work / "config.yaml")
    proc = run_snakemake(work, *TARGETS)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return work


def pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", path.read_bytes()))


def test_every_figure_exists_with_pages(tiny_run: Path) -> None:
    for name in ("penalty_sweep.pdf", "prediction.pdf", "uncertainty_error.pdf", "noise_robustness.pdf"):
        assert pages(tiny_run / "results" / name) >= 1, name
    assert pages(tiny_run / "results/data/overview.pdf") == 3


def test_sweep_csv_has_one_row_per_penalty_and_seed(tiny_run: Path) -> None:
    cfg = yaml.safe_load((tiny_run / "config.yaml").read_text())
    table = pd.read_csv(tiny_run / "results/penalty_sweep.csv")
    assert len(table) == len(cfg["sweep"]["penalties"]) * len(cfg["sweep"]["seeds"])
    assert sorted(table["penalty"]) == sorted(cfg["sweep"]["penalties"])
    for col in ("imagined_reward_penalised", "imagined_reward_unpenalised", "imagined_uncertainty", "sim_return"):
        assert table[col].notna().all() and (table[col].abs() < 1e6).all(), col
    assert table["sim_fall_rate"].between(0, 1).all()


def test_world_model_reports_are_finite(tiny_run: Path) -> None:
    dyn = json.loads((tiny_run / "results/eval/dynamics.json").read_text())
    assert len(dyn["relative_error"]["model"]) == dyn["horizon"] > 0
    unc = json.loads((tiny_run / "results/eval/uncertainty_error.json").read_text())
    for key in ("step_averaged", "pooled"):
        assert -1 <= unc[key]["pearson"] <= 1


def test_every_artifact_has_a_manifest(tiny_run: Path) -> None:
    manifest = json.loads((tiny_run / "results/data/manifest.json").read_text())
    assert manifest["inputs"] and all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    policy = next((tiny_run / "results/policies").iterdir())
    assert json.loads((policy / "manifest.json").read_text())["stage"] == "train_policy"


def test_nothing_to_do_after_a_complete_run(tiny_run: Path) -> None:
    proc = run_snakemake(tiny_run, "--dry-run", *TARGETS, timeout=120)
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr
