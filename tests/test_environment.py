"""environment.yml lists the same dependencies, with the same lower bounds, as pyproject.toml."""

from __future__ import annotations

import tomllib

import yaml
from conftest import REPO


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = sorted(p for p in pip if not p.startswith("-e"))
    assert listed == sorted(project["dependencies"])
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.split("=")[1] == project["requires-python"].lstrip(">=")
