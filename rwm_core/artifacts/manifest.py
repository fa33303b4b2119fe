"""Provenance manifests: which code, config, inputs and run facts produced an artifact, with sha256 of its files."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from rwm_core.artifacts.atomic import _json_default, atomic_write_json
from rwm_core.errors import InputError

MANIFEST_SCHEMA_VERSION = 1


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def config_hash(section: Any) -> str:
    """Stable hash of a config section (sorted-key JSON)."""
    blob = json.dumps(section, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


# ---------------------------------------------------------------- manifests
# Convention (README "What the stages write"): every file an `rwm` command writes is listed, with its sha256, in
# exactly one manifest. A command that writes a directory (dataset, world model, policy, simulated CSVs) puts
# ``manifest.json`` inside it; a command that writes single files (evaluation JSON, figures, the sweep table) puts
# ``<file>.manifest.json`` beside each. Manifests are written last, so one that exists means its artifact is complete.
MANIFEST_NAME = "manifest.json"
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_REQUIRED = (
    "schema_version",
    "stage",
    "command",
    "rwm_core_version",
    "git_commit",
    "config",
    "config_hash",
    "inputs",
    "outputs",
    "seed",
    "device",
    "torch_version",
    "python_version",
    "started",
    "finished",
)


class ArtifactFormatError(InputError):
    """A manifest or checkpoint written by a newer rwm_core than this one (its format is unknown here)."""


def manifest_path(artifact: str | Path) -> Path:
    """Where the manifest of ``artifact`` lives: ``DIR/manifest.json`` for a directory, ``FILE.manifest.json`` else."""
    artifact = Path(artifact)
    if artifact.is_dir():
        return artifact / MANIFEST_NAME
    return artifact.with_name(artifact.name + MANIFEST_SUFFIX)


def is_manifest(path: str | Path) -> bool:
    name = Path(path).name
    return name == MANIFEST_NAME or name.endswith(MANIFEST_SUFFIX)


def file_entries(paths: list[str | Path]) -> list[dict[str, str]]:
    """``{"path", "sha256"}`` per file; a directory stands for its top-level files (no manifests, hidden or subdirs).

    Why top-level only: an input directory such as the dataset artifact is read through its top-level files;
    ``checkpoints/`` below a training directory are intermediate and would make hashing slow.
    """
    entries = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".") and not is_manifest(f))
        else:
            files = [p]
        entries.extend({"path": str(f), "sha256": sha256_file(f)} for f in files)
    return entries


def build_manifest(
    *,
    stage: str,
    inputs: list[str | Path | dict[str, str]],
    config: Any,
    outputs: list[str | Path] | None = None,
    command: list[str] | None = None,
    seed: int | None = None,
    device: str | None = None,
    started: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Provenance of one artifact: code version, config section and hash, inputs and outputs with sha256, run facts."""
    from rwm_core import __version__

    try:
        import torch

        torch_version: str | None = torch.__version__
    except ImportError:  # pragma: no cover
        torch_version = None
    now = time.time()
    given = [p for p in inputs if isinstance(p, dict)]
    manifest: dict[str, Any] = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "stage": stage,
        "command": command,
        "rwm_core_version": __version__,
        "git_commit": git_commit(),
        "config": config,
        "config_hash": config_hash(config),
        "inputs": given + file_entries([p for p in inputs if not isinstance(p, dict)]),
        "outputs": file_entries(list(outputs or [])),
        "seed": seed,
        "device": device,
        "torch_version": torch_version,
        "python_version": platform.python_version(),
        "started": _iso(started if started is not None else now),
        "finished": _iso(now),
    }
    if extra:
        manifest.update(extra)
    return manifest


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def write_manifest(artifact: str | Path, outputs: list[str | Path] | None = None, **kwargs: Any) -> Path:
    """Write the manifest of ``artifact`` (a directory or a file) where :func:`manifest_path` says; returns its path.

    ``outputs`` are the files the command wrote; by default the artifact itself (a file) or its top-level files.
    """
    artifact = Path(artifact)
    path = manifest_path(artifact)
    atomic_write_json(path, build_manifest(outputs=outputs if outputs is not None else [artifact], **kwargs))
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """A manifest (the file itself or its artifact); one written under a newer schema fails clearly."""
    path = Path(path)
    if not is_manifest(path):
        path = manifest_path(path)
    data = json.loads(path.read_text())
    check_format_version(int(data.get("schema_version", 0)), MANIFEST_SCHEMA_VERSION, path, "manifest schema")
    return data


def check_format_version(found: int, supported: int, path: str | Path, what: str = "checkpoint format") -> None:
    """Refuse a file written in a format newer than this code knows, naming the file and what to do."""
    if found > supported:
        raise ArtifactFormatError(
            f"{path}: expected {what} version {supported} or older, found version {found}, which is newer than "
            "this rwm_core supports; upgrade rwm_core"
        )
