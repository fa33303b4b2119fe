"""Atomic writes and provenance manifests, so no stage ever leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rwm_core.errors import InputError

MANIFEST_SCHEMA_VERSION = 1
CHECKPOINT_FORMAT_VERSION = 1


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; outputs are meant to be shared
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a directory under a temporary name and rename it into place when complete.

    An existing directory at ``path`` is replaced only after the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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


_CHECKPOINT_RE = re.compile(r"^iter_(\d+)\.pt$")


def checkpoint_name(iteration: int) -> str:
    return f"iter_{iteration:06d}.pt"


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """Every ``iter_N.pt`` file in ``directory`` as (N, path), by N; empty when the directory does not exist."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in d.iterdir() if (m := _CHECKPOINT_RE.match(p.name)))


def latest_checkpoint(directory: str | Path, max_iteration: int | None = None) -> Path | None:
    """The ``iter_N.pt`` file with the highest N (at most ``max_iteration``) in ``directory``, or None."""
    found = list_checkpoints(directory)
    if max_iteration is not None:
        found = [f for f in found if f[0] <= max_iteration]
    return max(found)[1] if found else None


def resume_fingerprint(config: dict[str, Any], ignore: set[str] | frozenset[str], **identity: Any) -> str:
    """What must be equal for a checkpoint to be resumed: the config (less run-length keys) and the inputs.

    Snakemake reruns a training rule after any edit of its section; a checkpoint written under another config,
    seed or input must then be ignored, not continued.
    """
    kept = {k: v for k, v in config.items() if k not in ignore}
    return config_hash({"config": kept, **identity})


def clear_checkpoints(directory: str | Path) -> int:
    """Remove ``iter_N.pt`` files (stale ones from a run with another config)."""
    d = Path(directory)
    n = 0
    if d.is_dir():
        for p in d.iterdir():
            if _CHECKPOINT_RE.match(p.name):
                p.unlink()
                n += 1
    return n


def resumable_checkpoint(
    directory: str | Path,
    max_iteration: int,
    fingerprint: str,
    read: Any,
    stored_fingerprint: Any,
    stage: str,
    supported_version: int,
) -> tuple[Path, Any] | None:
    """The latest checkpoint (path, payload read once) that may be continued, or None to start from scratch.

    Checkpoints written under another fingerprint (config, seed, inputs) are removed, with a message, because a
    later run would otherwise mix them with the new ones. One in a newer format than ``supported_version`` is an
    error (it may be someone else's work), never silently discarded.
    """
    path = latest_checkpoint(directory, max_iteration)
    if path is None:
        return None
    payload = read(path)
    check_format_version(int(payload.get("format_version", 0)), supported_version, path)
    if stored_fingerprint(payload) == fingerprint:
        print(f"{stage}: resuming from {path} (iteration {int(payload.get('iter', 0))} of {max_iteration})")
        return path, payload
    removed = clear_checkpoints(directory)
    print(
        f"{stage}: {removed} checkpoint(s) in {directory} came from another config, seed or input; "
        "starting from scratch"
    )
    return None
