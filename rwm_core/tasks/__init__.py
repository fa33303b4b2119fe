"""Tasks: a robot's column layout, constants and reward weights. Look one up with :func:`get_task`."""

from __future__ import annotations

from types import ModuleType

from rwm_core.tasks import anymal_d_flat

TASKS: dict[str, ModuleType] = {"anymal_d_flat": anymal_d_flat}


def get_task(name: str) -> ModuleType:
    """Return the task module registered under ``name`` (error lists the known tasks)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}") from None
