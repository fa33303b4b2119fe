"""Artifacts: atomic writes (:mod:`.atomic`), provenance manifests (:mod:`.manifest`) and training checkpoints
(:mod:`.checkpoints`).

The names are re-exported here so that callers keep importing ``rwm_core.artifacts`` whatever module holds them.
"""

from rwm_core.artifacts.atomic import atomic_dir, atomic_path, atomic_write_json, atomic_write_text
from rwm_core.artifacts.checkpoints import (
    CHECKPOINT_FORMAT_VERSION,
    checkpoint_name,
    clear_checkpoints,
    latest_checkpoint,
    list_checkpoints,
    resumable_checkpoint,
    resume_fingerprint,
)
from rwm_core.artifacts.manifest import (
    MANIFEST_NAME,
    MANIFEST_REQUIRED,
    MANIFEST_SCHEMA_VERSION,
    MANIFEST_SUFFIX,
    ArtifactFormatError,
    build_manifest,
    check_format_version,
    config_hash,
    file_entries,
    git_commit,
    is_manifest,
    manifest_path,
    read_manifest,
    sha256_file,
    write_manifest,
)

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "MANIFEST_NAME",
    "MANIFEST_REQUIRED",
    "MANIFEST_SCHEMA_VERSION",
    "MANIFEST_SUFFIX",
    "ArtifactFormatError",
    "atomic_dir",
    "atomic_path",
    "atomic_write_json",
    "atomic_write_text",
    "build_manifest",
    "check_format_version",
    "checkpoint_name",
    "clear_checkpoints",
    "config_hash",
    "file_entries",
    "git_commit",
    "is_manifest",
    "latest_checkpoint",
    "list_checkpoints",
    "manifest_path",
    "read_manifest",
    "resumable_checkpoint",
    "resume_fingerprint",
    "sha256_file",
    "write_manifest",
]
