"""The experience of simulated envs kept as a dataset in the 66-column layout, one episode stream per env.

Why: RWM-U's best offline dataset ("mixed") is the experience of a PPO learner at every stage of its learning. The
batched env reports the rows of its first k envs every step (``extras["record"]``); this recorder keeps them per
env and writes ``state_action_data_<i>.csv`` (env i's stream) plus ``streams.json``. A fall ends its row with the
termination flag; a time-out has no flag (it is no fall), so ``streams.json`` lists it as a stream break, and the
validator never lets a training window run across it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rwm_core.data.io import write_csv_file, write_streams_marker
from rwm_core.tasks import anymal_d_flat as task

FILE_PATTERN = "state_action_data_{}.csv"
_BINARY = sorted(task.LAYOUT.binary_columns())


class ExperienceRecorder:
    """Rows of k envs, in the order each env lived them (reset rows included)."""

    def __init__(self, first_rows: np.ndarray) -> None:
        first_rows = np.asarray(first_rows, dtype=np.float32)
        self.k = int(first_rows.shape[0])
        self._rows: list[list[np.ndarray]] = [[first_rows[i : i + 1]] for i in range(self.k)]
        self._counts = np.ones(self.k, dtype=np.int64)
        self._breaks: list[list[int]] = [[] for _ in range(self.k)]  # rows after which a time-out reset follows

    @property
    def rows(self) -> int:
        return int(self._counts.sum())

    def add(self, record: dict[str, Any]) -> None:
        """Append one env step (``extras["record"]`` of :class:`rwm_core.sim.vec_env.SimVecEnv`)."""
        rows = np.asarray(record["rows"], dtype=np.float32)
        done = np.asarray(record["done"], dtype=bool)
        fell = rows[:, task.LAYOUT.termination_column] != 0
        for i in range(self.k):
            self._rows[i].append(rows[i : i + 1])
        self._counts += 1
        for i in np.flatnonzero(done & ~fell):
            self._breaks[i].append(int(self._counts[i] - 1))
        reset_ids = record.get("reset_ids")
        if reset_ids is not None and len(reset_ids):
            reset_rows = np.asarray(record["reset_rows"], dtype=np.float32)
            for j, i in enumerate(np.asarray(reset_ids)):
                self._rows[i].append(reset_rows[j : j + 1])
                self._counts[i] += 1

    def streams(self) -> list[np.ndarray]:
        """Each env's rows as one (n_i, 66) array."""
        return [np.concatenate(chunks) for chunks in self._rows]

    def state_dict(self) -> dict[str, Any]:
        return {"streams": self.streams(), "breaks": [list(b) for b in self._breaks]}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> ExperienceRecorder:
        streams = state["streams"]
        rec = cls(np.stack([s[0] for s in streams]))
        rec._rows = [[np.asarray(s, dtype=np.float32)] for s in streams]
        rec._counts = np.array([len(s) for s in streams], dtype=np.int64)
        rec._breaks = [list(b) for b in state["breaks"]]
        return rec

    def write(self, out_dir: str | Path) -> dict[str, Any]:
        """Write one CSV per env and ``streams.json`` (with the time-out breaks); returns a small summary."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob("state_action_data_*.csv"):
            stale.unlink()
        breaks = {}
        for i, rows in enumerate(self.streams()):
            name = FILE_PATTERN.format(i)
            write_csv_file(out / name, rows, _BINARY)
            if self._breaks[i]:
                breaks[name] = list(self._breaks[i])
        write_streams_marker(out, breaks)
        term = sum(int((s[:, task.LAYOUT.termination_column] != 0).sum()) for s in self.streams())
        return {"files": self.k, "rows": self.rows, "falls": term, "time_outs": sum(len(b) for b in self._breaks)}
