"""The conda environments list the same dependencies, with the same lower bounds, as pyproject.toml.

workflow/envs/rwm.yaml is the environment of every rule (``snakemake --software-deployment-method conda``);
environment.yml at the root is the same environment for ``conda env create -f environment.yml``. The two differ only
in the path of the editable install of this package, each the repository root seen from its own directory.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from helpers import REPO

RULE_ENV = REPO / "workflow/envs/rwm.yaml"
ROOT_ENV = REPO / "environment.yml"


def pip_list(env: dict) -> list[str]:
    return next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)


@pytest.mark.parametrize("path", [ROOT_ENV, RULE_ENV], ids=["environment.yml", "workflow/envs/rwm.yaml"])
def test_environment_matches_pyproject(path: Path) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load(path.read_text())
    listed = sorted(p for p in pip_list(env) if not p.startswith("-e"))
    assert listed == sorted(project["dependencies"])
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.split("=")[1] == project["requires-python"].lstrip(">=")
    (editable,) = [p for p in pip_list(env) if p.startswith("-e")]
    assert (path.parent / editable.removeprefix("-e").strip()).resolve() == REPO  # the package itself


def test_environment_yml_is_the_rules_environment() -> None:
    root, rule = (yaml.safe_load(p.read_text()) for p in (ROOT_ENV, RULE_ENV))
    for env in (root, rule):
        env["dependencies"] = [
            d if isinstance(d, str) else [p for p in d["pip"] if not p.startswith("-e")] for d in env["dependencies"]
        ]
    assert root == rule
