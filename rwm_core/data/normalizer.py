"""Per-column normalisation of states and actions; contacts and terminations are never normalised."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass
class Normalizer:
    """(x - mean) / std for states and actions, usable on numpy arrays and torch tensors alike."""

    state_mean: np.ndarray
    state_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray
    source: str = "fixed"  # "fixed" (task constants) or "data" (computed from the dataset)

    @classmethod
    def from_task(cls, task: Any) -> Normalizer:
        return cls(
            np.asarray(task.STATE_MEAN, np.float32),
            np.asarray(task.STATE_STD, np.float32),
            np.asarray(task.ACTION_MEAN, np.float32),
            np.asarray(task.ACTION_STD, np.float32),
            source="fixed",
        )

    @classmethod
    def from_data(cls, states: np.ndarray, actions: np.ndarray) -> Normalizer:
        """Mean/std over rows, std + 1e-6 as upstream does when a task gives no constants."""
        s = states.astype(np.float64)
        a = actions.astype(np.float64)
        return cls(
            s.mean(0).astype(np.float32),
            (s.std(0) + 1e-6).astype(np.float32),
            a.mean(0).astype(np.float32),
            (a.std(0) + 1e-6).astype(np.float32),
            source="data",
        )

    @classmethod
    def build(cls, mode: str, task: Any, states: np.ndarray, actions: np.ndarray) -> Normalizer:
        if mode == "fixed":
            return cls.from_task(task)
        if mode == "data":
            return cls.from_data(states, actions)
        raise ValueError(f"normalization must be 'fixed' or 'data', got {mode!r}")

    def _apply(self, x: Any, mean: np.ndarray, std: np.ndarray, inverse: bool) -> Any:
        if isinstance(x, torch.Tensor):
            m = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
            s = torch.as_tensor(std, dtype=x.dtype, device=x.device)
        else:
            m, s = mean, std
        return x * s + m if inverse else (x - m) / s

    def normalize_state(self, x: Any) -> Any:
        return self._apply(x, self.state_mean, self.state_std, False)

    def denormalize_state(self, x: Any) -> Any:
        return self._apply(x, self.state_mean, self.state_std, True)

    def normalize_action(self, x: Any) -> Any:
        return self._apply(x, self.action_mean, self.action_std, False)

    def denormalize_action(self, x: Any) -> Any:
        return self._apply(x, self.action_mean, self.action_std, True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "state_mean": self.state_mean.tolist(),
            "state_std": self.state_std.tolist(),
            "action_mean": self.action_mean.tolist(),
            "action_std": self.action_std.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalizer:
        return cls(
            np.asarray(d["state_mean"], np.float32),
            np.asarray(d["state_std"], np.float32),
            np.asarray(d["action_mean"], np.float32),
            np.asarray(d["action_std"], np.float32),
            source=d.get("source", "fixed"),
        )

    def save(self, path: str | Path) -> None:
        from rwm_core.artifacts import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Normalizer:
        return cls.from_dict(json.loads(Path(path).read_text()))
