"""World-model checkpoints: our self-describing format and import of upstream files.

Our file is a dict that is also a valid upstream file (the weights sit under ``system_dynamics_state_dict`` with
upstream's key names) and additionally carries ``format_version``, ``spec`` (dims + architecture), ``normalization``,
``task``, ``training_config`` and, for training checkpoints, optimiser and RNG state. An upstream file (e.g. the
released ``pretrain_rnn_ens.pt``) has only the weights: the architecture is inferred from the key shapes and the
normalisation comes from the task's constants.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rwm_core.artifacts import CHECKPOINT_FORMAT_VERSION, atomic_path, check_format_version
from rwm_core.data.normalizer import Normalizer
from rwm_core.dynamics.model import ModelSpec, SystemDynamicsEnsemble, spec_from_state_dict
from rwm_core.errors import InputError
from rwm_core.tasks import get_task

CHECKPOINT_KIND = "rwm_core.dynamics"
STATE_DICT_KEY = "system_dynamics_state_dict"


@dataclass
class LoadedDynamics:
    """A ready model (eval mode) plus the normalisation it expects; unpacks as ``model, normalizer = load(p)``."""

    model: SystemDynamicsEnsemble
    normalizer: Normalizer
    spec: ModelSpec
    source: str  # "rwm_core" or "upstream"
    task: str
    format_version: int | None = None
    training_config: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Any:
        yield self.model
        yield self.normalizer


def save(
    path: str | Path,
    model: SystemDynamicsEnsemble,
    normalizer: Normalizer,
    *,
    task: str,
    training_config: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    training_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (a reader never sees a half-written file)."""
    payload: dict[str, Any] = {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "kind": CHECKPOINT_KIND,
        "task": task,
        "spec": model.spec.to_dict(),
        "normalization": normalizer.to_dict(),
        "training_config": training_config,
        "meta": meta or {},
        STATE_DICT_KEY: {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if training_state:
        payload.update(training_state)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict (tensor-only unpickling; upstream files with other objects fall back with a warning)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # upstream 'infos' may hold arbitrary objects
        warnings.warn(
            f"{path}: not loadable with weights_only=True ({type(e).__name__}); loading with full unpickling - "
            "only do this for files you trust",
            stacklevel=2,
        )
        obj = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a checkpoint dict, got {type(obj).__name__}")
    return obj


def load(path: str | Path, device: str | torch.device = "cpu", task: str = "anymal_d_flat") -> LoadedDynamics:
    """Load our checkpoint or an upstream-format file into a ready model; see :class:`LoadedDynamics`.

    ``task`` is used only for upstream files (which carry no normalisation): its constants become the normaliser.
    """
    raw = read(path)
    if raw.get("kind") == CHECKPOINT_KIND or "format_version" in raw:
        version = int(raw.get("format_version", 0))
        check_format_version(version, CHECKPOINT_FORMAT_VERSION, path)
        spec = ModelSpec.from_dict(raw["spec"])
        model = SystemDynamicsEnsemble(spec)
        model.load_state_dict(raw[STATE_DICT_KEY])
        normalizer = Normalizer.from_dict(raw["normalization"])
        loaded = LoadedDynamics(
            model,
            normalizer,
            spec,
            "rwm_core",
            raw.get("task", task),
            version,
            raw.get("training_config"),
            dict(raw.get("meta") or {}),
        )
    else:
        sd = raw.get(STATE_DICT_KEY, raw)
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise InputError(f"{path}: neither an rwm_core checkpoint nor an upstream file with '{STATE_DICT_KEY}'")
        spec = spec_from_state_dict(sd)
        task_mod = get_task(task)
        lay = task_mod.LAYOUT
        if (spec.state_dim, spec.action_dim) != (lay.state_dim, lay.action_dim):
            raise InputError(
                f"{path}: upstream model has state/action dims {spec.state_dim}/{spec.action_dim}, task {task!r} "
                f"expects {lay.state_dim}/{lay.action_dim}"
            )
        model = SystemDynamicsEnsemble(spec)
        model.load_state_dict(sd)
        meta = {"upstream_iter": raw.get("iter")} if "iter" in raw else {}
        loaded = LoadedDynamics(model, Normalizer.from_task(task_mod), spec, "upstream", task, None, None, meta)
    loaded.model.to(device).eval()
    return loaded
