"""Manifests: where they live, what they hold, and that a newer schema fails clearly."""

from __future__ import annotations

import importlib
import json
import types
from pathlib import Path

import pytest

from rwm_core import artifacts
from rwm_core.artifacts import ArtifactFormatError, manifest_path, read_manifest, write_manifest


def test_directory_artifacts_hold_their_manifest_files_get_a_sibling(tmp_path: Path) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    (d / "a.bin").write_bytes(b"a")
    (d / ".hidden").write_text("x")
    f = tmp_path / "report.json"
    f.write_text("{}")
    assert manifest_path(d) == d / "manifest.json"
    assert manifest_path(f) == tmp_path / "report.json.manifest.json"
    write_manifest(d, stage="s", inputs=[f], config={"k": 1}, seed=3, device="cpu", command=["rwm", "s"])
    m = read_manifest(d)
    assert set(artifacts.MANIFEST_REQUIRED) <= set(m)
    assert [Path(o["path"]).name for o in m["outputs"]] == ["a.bin"]  # no hidden files, not itself
    assert m["inputs"] == [{"path": str(f), "sha256": artifacts.sha256_file(f)}]
    assert m["config_hash"] == artifacts.config_hash({"k": 1}) and m["seed"] == 3
    write_manifest(f, stage="s", inputs=[d], config={})
    assert [Path(i["path"]).name for i in read_manifest(f)["inputs"]] == ["a.bin"]
    assert read_manifest(f)["outputs"][0]["sha256"] == artifacts.sha256_file(f)


def test_a_newer_manifest_schema_fails_clearly(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text("{}")
    path = write_manifest(f, stage="s", inputs=[], config={})
    data = json.loads(path.read_text())
    data["schema_version"] = artifacts.MANIFEST_SCHEMA_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(ArtifactFormatError, match="newer than this rwm_core supports.*upgrade rwm_core"):
        read_manifest(path)


@pytest.mark.parametrize(
    ("module", "one_of_its_names"),
    [("atomic", "atomic_path"), ("manifest", "write_manifest"), ("checkpoints", "resumable_checkpoint")],
)
def test_the_package_re_exports_every_public_name_of_its_modules(module: str, one_of_its_names: str) -> None:
    """Callers import from ``rwm_core.artifacts`` only, whichever module holds a name."""
    mod = importlib.import_module(f"rwm_core.artifacts.{module}")
    own = [  # defined there (constants have no __module__), not imported
        n
        for n, v in vars(mod).items()
        if not n.startswith("_")
        and not isinstance(v, types.ModuleType)
        and getattr(v, "__module__", mod.__name__) == mod.__name__
    ]
    assert one_of_its_names in own
    for name in own:
        assert name in artifacts.__all__ and getattr(artifacts, name) is getattr(mod, name), name
