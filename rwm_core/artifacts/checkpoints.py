"""Training checkpoints: naming, listing, and which one a resumed run may continue."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rwm_core.artifacts.manifest import check_format_version, config_hash

CHECKPOINT_FORMAT_VERSION = 1


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
