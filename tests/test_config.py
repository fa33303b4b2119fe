"""Config: the dataclasses are the one description; the schema file, config.yaml and the tiny config agree with them."""

from __future__ import annotations

import copy
import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import REPO, TINY_CONFIG, tiny_config

from rwm_core.config import (
    WRITE_SCHEMA_COMMAND,
    Config,
    ConfigError,
    config_schema,
    from_dict,
    load_config,
    parse_params,
    schema_text,
    validate_config,
)

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def sections(cls: type = Config, where: str = "config"):
    """(dotted name, dataclass) of the config and every nested section."""
    yield where, cls
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            yield from sections(type(default), f"{where}.{f.name}")


def leaves(d: dict, where: tuple[str, ...] = ()):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from leaves(v, (*where, k))
        else:
            yield (*where, k), v


def test_config_yaml_equals_defaults() -> None:
    assert load_config(REPO / "config.yaml") == Config()


def test_every_field_has_help_text() -> None:
    missing = [
        f"{where}.{f.name}"
        for where, cls in sections()
        for f in dataclasses.fields(cls)
        if not str(f.metadata.get("help", "")).strip()
    ]
    assert not missing, f"fields without help text (use rwm_core.config.opt/section): {missing}"


def test_schema_file_is_generated_from_the_dataclasses() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == schema_text(), f"stale {SCHEMA.name}: run `{WRITE_SCHEMA_COMMAND}`"


def test_schema_lists_exactly_the_dataclass_fields() -> None:
    schema = config_schema()
    for where, cls in sections():
        node = schema
        for key in where.split(".")[1:]:
            node = node["properties"][key]
        assert node["type"] == "object" and node["additionalProperties"] is False, where
        assert list(node["properties"]) == [f.name for f in dataclasses.fields(cls)], where


def test_validate_names_unknown_and_mistyped_keys() -> None:
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    validate_config(raw, SCHEMA)
    raw["dynamics"]["batch_sise"] = 3
    raw["sweep"]["penalties"] = ["a"]
    with pytest.raises(ConfigError) as e:
        validate_config(raw, SCHEMA, "config.yaml")
    assert "dynamics.batch_sise: unknown key" in str(e.value)
    assert "sweep.penalties.0" in str(e.value)


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("device", "gpu", "does not match"),
        ("seeds.ppo", -1, "less than the minimum"),
        ("dataset.source", "csv", "is not one of"),
        ("dataset.medium_fraction", 1.5, "greater than the maximum"),
        ("dataset.gravity_norm_tolerance", 0, "less than or equal to the minimum"),
        ("dataset.sim.rows", 0, "less than the minimum"),
        ("dataset.sim.extra", 1, "unknown key"),
        ("dynamics.val_fraction", 1, "greater than or equal to the maximum"),
        ("dynamics.bootstrap", 1, "is not of type 'boolean'"),
        ("dynamics.precision", "float16", "is not one of"),
        ("evaluation.noise_scales", [-0.1], "less than the minimum"),
        ("ppo.actor_hidden", [], "should be non-empty"),
        ("ppo.actor_hidden", [32, 1.5], "is not of type 'integer'"),
        ("policy.activation", "gelu", "is not one of"),
        ("online.buffer_capacity", 1, "less than the minimum"),
        ("online.init_policy", 0, "is not of type 'string'"),
        ("sweep.seeds", [-1], "less than the minimum"),
        ("tracking.wandb_mode", "cloud", "is not one of"),
        ("figures.dpi", 29, "less than the minimum"),
    ],
)
def test_schema_constraints(key: str, value, fragment: str) -> None:
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    *path, name = key.split(".")
    node = raw
    for k in path:
        node = node[k]
    node[name] = value
    with pytest.raises(ConfigError, match=fragment):
        validate_config(raw)


def test_a_stale_schema_file_stops_validation(tmp_path: Path) -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    del schema["properties"]["figures"]["properties"]["dpi"]["minimum"]
    stale = tmp_path / "config.schema.yaml"
    stale.write_text(yaml.safe_dump(schema))
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    with pytest.raises(ConfigError, match="--write-schema"):
        validate_config(raw, stale)


def test_tiny_config_holds_only_overrides_and_validates() -> None:
    defaults = dict(leaves(yaml.safe_load((REPO / "config.yaml").read_text())))
    overrides = dict(leaves(yaml.safe_load(TINY_CONFIG.read_text())))
    assert set(overrides) <= set(defaults), "tests/tiny_config.yaml: keys config.yaml does not have"
    same = [".".join(k) for k, v in overrides.items() if v == defaults[k] and type(v) is type(defaults[k])]
    assert not same, f"tests/tiny_config.yaml repeats config.yaml's values of {same}"
    cfg = validate_config(copy.deepcopy(tiny_config()), SCHEMA, "tiny config")
    assert cfg.policy.num_envs == 32 and cfg.dataset.sim.workers == Config().dataset.sim.workers


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


def test_configuration_reference_is_up_to_date():
    """docs/configuration.md is generated from the dataclasses; regenerate it with --write-reference."""
    from rwm_core.config import REFERENCE_FILE, config_reference

    assert REFERENCE_FILE.read_text() == config_reference(), "run: python -m rwm_core.config --write-reference"
