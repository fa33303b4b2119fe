"""Config: the shipped config.yaml, the schema and the typed sections agree; bad keys stop Snakemake early."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from rwm_core.config import Config, ConfigError, from_dict, load_config, parse_params, validate_config

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def test_config_yaml_equals_defaults() -> None:
    assert load_config(REPO / "config.yaml") == Config()


def test_schema_lists_exactly_the_dataclass_fields() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())

    def check(cls: type, node: dict, where: str) -> None:
        props = node["properties"]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert set(props) == set(fields), where
        assert node.get("additionalProperties") is False, where
        for name, f in fields.items():
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if dataclasses.is_dataclass(default):
                check(type(default), props[name], f"{where}.{name}")

    check(Config, schema, "config")


def test_validate_names_unknown_and_mistyped_keys() -> None:
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    validate_config(raw, SCHEMA)
    raw["dynamics"]["batch_sise"] = 3
    raw["sweep"]["penalties"] = ["a"]
    with pytest.raises(ConfigError) as e:
        validate_config(raw, SCHEMA, "config.yaml")
    assert "dynamics.batch_sise: unknown key" in str(e.value)
    assert "sweep.penalties.0" in str(e.value)


def test_params_override_only_named_keys() -> None:
    cfg = parse_params(Config().dynamics.__class__, '{"iterations": 3}', "dynamics")
    assert cfg.iterations == 3 and cfg.hidden_size == 256
    with pytest.raises(ConfigError, match="dynamics: unknown key"):
        parse_params(Config().dynamics.__class__, '{"iteration": 3}', "dynamics")
    with pytest.raises(ConfigError, match="dataset.history: expected an integer"):
        from_dict(Config, {"dataset": {"history": 2.5}})


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda c: c["dataset"].update(histroy=3), "dataset.histroy: unknown key"),
        (lambda c: c["dynamics"].update(batch_size="big"), "dynamics.batch_size: 'big' is not of type 'integer'"),
        (lambda c: c.update(trackin={}), "trackin: unknown key"),
    ],
)
def test_snakemake_stops_before_any_job(tmp_path: Path, edit, fragment: str) -> None:
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    raw = yaml.safe_load((tmp_path / "config.yaml").read_text())
    edit(raw)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    snakemake = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run(
        [str(snakemake), "--cores", "1", "--dry-run"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert fragment in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()
