"""World-model checkpoints: our self-describing format and import of upstream files.

Our file is a dict that is also a valid upstream file (the weights sit under ``system_dynamics_state_dict`` with
upstream's key names) and additionally carries ``format_version``, ``spec`` (dims + architecture), ``normalization``,
``task``, ``training_config`` and, for training checkpoints, optimiser and RNG state. An upstream file (e.g. the
released ``pretrain_rnn_ens.pt``) has only the weights: the architecture is inferred from the key shapes and the
normalisation comes from the task's constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rwm_core.artifacts import CHECKPOINT_FORMAT_VERSION, atomic_path, check_format_version
from rwm_core.data.layout import ColumnLayout
from rwm_core.data.normalizer import Normalizer
from rwm_core.dynamics.model import ModelSpec, SystemDynamicsEnsemble, spec_from_state_dict
from rwm_core.loaders import (
    KIND_NAMES,
    UPSTREAM_WORLD_MODEL,
    WORLD_MODEL,
    WORLD_MODEL_STATE_KEY,
    detect_kind,
    fail,
    format_version,
    load_torch_file,
    one_line,
    require_keys,
)
from rwm_core.tasks import TASKS, get_task

CHECKPOINT_KIND = WORLD_MODEL
STATE_DICT_KEY = WORLD_MODEL_STATE_KEY


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


EXPECTED = "a world-model checkpoint (rwm_core, or upstream with 'system_dynamics_state_dict')"
TRAINING_STATE_KEYS = ("iter", "system_dynamics_optimizer_state_dict", "generator_state")


def read(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict of a world model, ours or upstream; anything else fails in one line.

    Tensor-only unpickling; upstream files with other objects fall back to full unpickling with a warning.
    """
    return load_torch_file(path, (CHECKPOINT_KIND, UPSTREAM_WORLD_MODEL), expected=EXPECTED)


def read_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """One of our training checkpoints (``checkpoints/iter_N.pt`` of `rwm pretrain`), for resuming.

    Why stricter than :func:`read`: resuming needs our metadata and the optimiser and generator state, which an
    upstream file or a final ``model.pt`` lack.
    """
    expected = "a world-model training checkpoint (checkpoints/iter_N.pt of `rwm pretrain`)"
    raw = load_torch_file(
        path,
        CHECKPOINT_KIND,
        expected=expected,
        supported_version=CHECKPOINT_FORMAT_VERSION,
        hint="remove it to start from scratch",
    )
    require_keys(raw, TRAINING_STATE_KEYS, path, expected, KIND_NAMES[CHECKPOINT_KIND])
    return raw


def load(path: str | Path, device: str | torch.device = "cpu", task: str = "anymal_d_flat") -> LoadedDynamics:
    """Load our checkpoint or an upstream-format file into a ready model; see :class:`LoadedDynamics`.

    ``task`` is used only for upstream files (which carry no normalisation): its constants become the normaliser.
    Every way the file can be unusable (missing, truncated, another kind, newer format, weights that do not fit
    its own spec) fails with one :class:`InputError` line naming the file.
    """
    raw = read(path)
    if detect_kind(raw) == CHECKPOINT_KIND:
        version = format_version(raw, path, EXPECTED)
        check_format_version(version, CHECKPOINT_FORMAT_VERSION, path, "world-model checkpoint format")
        require_keys(raw, ("spec", "normalization", STATE_DICT_KEY), path, EXPECTED, KIND_NAMES[CHECKPOINT_KIND])
        try:
            spec = ModelSpec.from_dict(raw["spec"])
            normalizer = Normalizer.from_dict(raw["normalization"])
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise fail(path, EXPECTED, f"unreadable 'spec' or 'normalization' ({one_line(repr(e))})") from None
        model = _build(path, spec, raw[STATE_DICT_KEY])
        check_normalizer(path, normalizer, spec)
        task = str(raw.get("task", task))
        if task not in TASKS:
            raise fail(path, f"a world model of a known task ({', '.join(sorted(TASKS))})", f"task {task!r}")
        loaded = LoadedDynamics(
            model,
            normalizer,
            spec,
            "rwm_core",
            task,
            version,
            raw.get("training_config"),
            dict(raw.get("meta") or {}),
        )
    else:
        sd = raw.get(STATE_DICT_KEY, raw)
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise fail(path, EXPECTED, f"'{STATE_DICT_KEY}' that is not a dict of tensors")
        try:
            spec = spec_from_state_dict(sd)
        except ValueError as e:
            raise fail(path, EXPECTED, f"an upstream-format file whose weights are not a GRU ensemble ({e})") from None
        task_mod = get_task(task)
        lay = task_mod.LAYOUT
        if (spec.state_dim, spec.action_dim) != (lay.state_dim, lay.action_dim):
            raise fail(
                path,
                f"a world model with state/action dims {lay.state_dim}/{lay.action_dim} (task {task!r})",
                f"an upstream model with state/action dims {spec.state_dim}/{spec.action_dim}",
            )
        model = _build(path, spec, sd)
        meta = {"upstream_iter": raw.get("iter")} if "iter" in raw else {}
        loaded = LoadedDynamics(model, Normalizer.from_task(task_mod), spec, "upstream", task, None, None, meta)
    loaded.model.to(device).eval()
    return loaded


def _build(path: str | Path, spec: ModelSpec, state_dict: Any) -> SystemDynamicsEnsemble:
    """The ensemble of ``spec`` with ``state_dict`` loaded; weights of other shapes fail in one line."""
    try:
        model = SystemDynamicsEnsemble(spec)
        model.load_state_dict(state_dict)
    except (RuntimeError, TypeError, ValueError, AttributeError) as e:
        raise fail(path, f"weights matching the file's own spec {spec.to_dict()}", one_line(str(e))) from None
    return model


def check_normalizer(path: str | Path, normalizer: Normalizer, spec: ModelSpec) -> None:
    """The stored normalisation must have the model's state/action widths."""
    found = (len(normalizer.state_mean), len(normalizer.state_std), len(normalizer.action_mean))
    found += (len(normalizer.action_std),)
    want = (spec.state_dim, spec.state_dim, spec.action_dim, spec.action_dim)
    if found != want:
        raise fail(
            path,
            f"normalisation for {spec.state_dim} state and {spec.action_dim} action dims",
            f"state mean/std widths {found[0]}/{found[1]} and action mean/std widths {found[2]}/{found[3]}",
        )


def check_layout(loaded: LoadedDynamics, layout: ColumnLayout, path: str | Path, against: str | Path) -> None:
    """Refuse a world model whose state/action/contact/termination dims are not those of ``layout``.

    Why: a model for another layout would otherwise fail deep inside a rollout (or, worse, slice the wrong
    columns); ``against`` names what the layout comes from (the dataset artifact, the simulator).
    """
    spec = loaded.spec
    found = (spec.state_dim, spec.action_dim, spec.contact_dim, spec.termination_dim)
    want = (layout.state_dim, layout.action_dim, layout.contact_dim, layout.termination_dim)
    if found != want:
        raise fail(
            path,
            f"a world model for the layout of {against} (state/action/contact/termination dims "
            f"{'/'.join(map(str, want))})",
            f"one with dims {'/'.join(map(str, found))}",
        )
