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


def build_manifest(
    *,
    stage: str,
    inputs: list[str | Path | dict[str, str]],
    config: Any,
    seed: int | None = None,
    device: str | None = None,
    started: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Provenance record written as ``manifest.json`` beside every artifact."""
    from rwm_core import __version__

    try:
        import torch

        torch_version: str | None = torch.__version__
    except ImportError:  # pragma: no cover
        torch_version = None
    now = time.time()
    manifest: dict[str, Any] = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "stage": stage,
        "rwm_core_version": __version__,
        "git_commit": git_commit(),
        "config": config,
        "config_hash": config_hash(config),
        "inputs": [p if isinstance(p, dict) else {"path": str(p), "sha256": sha256_file(p)} for p in inputs],
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


def write_manifest(out_dir: str | Path, **kwargs: Any) -> Path:
    path = Path(out_dir) / "manifest.json"
    atomic_write_json(path, build_manifest(**kwargs))
    return path


_CHECKPOINT_RE = re.compile(r"^iter_(\d+)\.pt$")


def checkpoint_name(iteration: int) -> str:
    return f"iter_{iteration:06d}.pt"


def latest_checkpoint(directory: str | Path, max_iteration: int | None = None) -> Path | None:
    """The ``iter_N.pt`` file with the highest N (at most ``max_iteration``) in ``directory``, or None."""
    d = Path(directory)
    if not d.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _CHECKPOINT_RE.match(p.name))]
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
) -> tuple[Path, Any] | None:
    """The latest checkpoint (path, payload read once) that may be continued, or None to start from scratch.

    Checkpoints written under another fingerprint (config, seed, inputs) are removed, with a message, because a
    later run would otherwise mix them with the new ones.
    """
    path = latest_checkpoint(directory, max_iteration)
    if path is None:
        return None
    payload = read(path)
    if stored_fingerprint(payload) == fingerprint:
        return path, payload
    removed = clear_checkpoints(directory)
    print(
        f"{stage}: {removed} checkpoint(s) in {directory} came from another config, seed or input; "
        "starting from scratch"
    )
    return None
