"""Replay buffer of online RWM (MBPO-PPO): per-env circular storage of real rows, sampled as within-episode windows.

Each iteration ``num_streams`` real simulator envs step the current policy and append one row per env per step (the
task's row layout, e.g. 66 columns: state, the action applied since the previous row, contacts, termination). The
world model trains on windows of ``L`` consecutive rows of ONE env, and imagined rollouts start from them, so a window
must be one uninterrupted piece of one episode. Each stream is its own sequence; a window is valid only if

* all ``L`` rows are held and consecutive in time: it never wraps across the write position, where the newest row
  sits next to the oldest (upstream's circular buffer forgets this and splices the two),
* no row at offsets ``1 .. L-1`` has ``episode_start`` (a reset after a fall or a time-out, or the first row written),
* no row at offsets ``0 .. L-2`` has a termination flag; a termination on the last row is kept, it is the label the
  model learns to predict falls from.

Validity is computed with prefix sums over the flags in logical (oldest-first) order and cached until the next write;
windows are gathered with one ``index_select`` on flat row indices.
"""

from __future__ import annotations

from typing import Any

import torch

from rwm_core.data.layout import ColumnLayout

STATE_VERSION = 1


class ReplayBuffer:
    """Circular ``(num_streams, capacity, row_dim)`` buffer; all streams append together at one write position."""

    def __init__(
        self,
        num_streams: int,
        capacity: int,
        row_dim: int,
        termination_column: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if num_streams < 1 or capacity < 1 or row_dim < 1:
            raise ValueError(
                f"num_streams, capacity and row_dim must be >= 1, got {num_streams}, {capacity}, {row_dim}"
            )
        tc = row_dim - 1 if termination_column is None else int(termination_column)
        if not 0 <= tc < row_dim:
            raise ValueError(f"termination_column {termination_column} outside a row of {row_dim} columns")
        self.num_streams = int(num_streams)
        self.capacity = int(capacity)
        self.row_dim = int(row_dim)
        self.termination_column = tc
        self.device = torch.device(device)
        self.data = torch.zeros(num_streams, capacity, row_dim, dtype=torch.float32, device=self.device)
        self.episode_start = torch.zeros(num_streams, capacity, dtype=torch.bool, device=self.device)
        self._pos = 0  # physical index the next row goes to (shared by all streams)
        self._size = 0  # rows held per stream
        self._total = 0  # rows ever appended per stream
        self._cache: dict[int, torch.Tensor] = {}

    @classmethod
    def from_layout(
        cls, layout: ColumnLayout, num_streams: int, capacity: int, device: str | torch.device = "cpu"
    ) -> ReplayBuffer:
        """A buffer for rows of a task's layout, so row width and termination column cannot drift from it."""
        return cls(num_streams, capacity, layout.n_columns, layout.termination_column, device)

    # ------------------------------------------------------------------ size
    def __len__(self) -> int:
        return self._size

    @property
    def size_total(self) -> int:
        """Rows held over all streams."""
        return self._size * self.num_streams

    @property
    def position(self) -> int:
        """Physical index the next row is written to."""
        return self._pos

    @property
    def total_appended(self) -> int:
        """Rows ever appended per stream (including overwritten ones)."""
        return self._total

    # ------------------------------------------------------------------ writing
    def append(self, rows: torch.Tensor, episode_start: torch.Tensor) -> None:
        """Append one row per stream: ``rows`` (num_streams, row_dim), ``episode_start`` (num_streams,) bool."""
        if tuple(rows.shape) != (self.num_streams, self.row_dim):
            raise ValueError(f"rows must be ({self.num_streams}, {self.row_dim}), got {tuple(rows.shape)}")
        if tuple(episode_start.shape) != (self.num_streams,):
            raise ValueError(f"episode_start must be ({self.num_streams},), got {tuple(episode_start.shape)}")
        self.extend(rows[:, None], episode_start[:, None])

    def extend(self, rows: torch.Tensor, episode_start: torch.Tensor) -> None:
        """Append T steps at once: ``rows`` (num_streams, T, row_dim), ``episode_start`` (num_streams, T) bool."""
        if rows.dim() != 3 or rows.shape[0] != self.num_streams or rows.shape[2] != self.row_dim:
            raise ValueError(f"rows must be ({self.num_streams}, T, {self.row_dim}), got {tuple(rows.shape)}")
        steps = int(rows.shape[1])
        if tuple(episode_start.shape) != (self.num_streams, steps):
            raise ValueError(f"episode_start must be ({self.num_streams}, {steps}), got {tuple(episode_start.shape)}")
        if episode_start.dtype != torch.bool:
            raise ValueError(f"episode_start must be a bool tensor, got {episode_start.dtype}")
        if steps == 0:
            return
        rows = rows.to(device=self.device, dtype=torch.float32)
        starts = episode_start.to(self.device).clone()
        if self._total == 0:
            starts[:, 0] = True  # the first row ever written begins an episode
        keep = min(steps, self.capacity)  # older rows of an oversized batch would be overwritten anyway
        first = self._pos + steps - keep
        phys = (first + torch.arange(keep, device=self.device)) % self.capacity
        self.data[:, phys] = rows[:, steps - keep :]
        self.episode_start[:, phys] = starts[:, steps - keep :]
        self._pos = (self._pos + steps) % self.capacity
        self._size = min(self._size + steps, self.capacity)
        self._total += steps
        self._cache.clear()

    # ------------------------------------------------------------------ windows
    def _oldest(self) -> int:
        return (self._pos - self._size) % self.capacity

    def valid_starts(self, length: int) -> torch.Tensor:
        """All valid windows of ``length`` rows as a (K, 2) int64 tensor of (stream, physical start index).

        Ordered by stream, then oldest first; the tensor is cached until the next write, do not modify it.
        """
        if length < 1:
            raise ValueError(f"window length must be >= 1, got {length}")
        cached = self._cache.get(length)
        if cached is not None:
            return cached
        size, dev = self._size, self.device
        if size < length:
            out = torch.zeros(0, 2, dtype=torch.long, device=dev)
        else:
            oldest = self._oldest()
            logical = (oldest + torch.arange(size, device=dev)) % self.capacity  # physical index of logical row
            es = self.episode_start.index_select(1, logical).long()
            term = (self.data[:, :, self.termination_column].index_select(1, logical) != 0).long()
            zero = torch.zeros(self.num_streams, 1, dtype=torch.long, device=dev)
            ces = torch.cat([zero, es.cumsum(1)], 1)  # ces[:, k] = starts in logical rows [0, k)
            cterm = torch.cat([zero, term.cumsum(1)], 1)
            n = size - length + 1  # logical starts p = 0 .. size - length (never past the newest row)
            starts_inside = ces[:, length : length + n] - ces[:, 1 : 1 + n]  # rows [p + 1, p + L)
            terms_inside = cterm[:, length - 1 : length - 1 + n] - cterm[:, 0:n]  # rows [p, p + L - 1)
            stream, p = ((starts_inside == 0) & (terms_inside == 0)).nonzero(as_tuple=True)
            out = torch.stack([stream, (oldest + p) % self.capacity], 1)
        self._cache[length] = out
        return out

    def windows(self, starts: torch.Tensor, length: int) -> torch.Tensor:
        """Gather (K, length, row_dim) windows at ``starts`` (K, 2) of (stream, physical start), e.g. for evaluation.

        Starts are not checked for validity; take them from :meth:`valid_starts`.
        """
        if starts.dim() != 2 or starts.shape[1] != 2:
            raise ValueError(f"starts must be (K, 2) of (stream, physical start), got {tuple(starts.shape)}")
        s = starts.to(device=self.device, dtype=torch.long)
        offsets = torch.arange(length, device=self.device)
        flat = s[:, :1] * self.capacity + (s[:, 1:] + offsets) % self.capacity  # (K, L)
        table = self.data.view(self.num_streams * self.capacity, self.row_dim)
        # index_select on flat row indices is several times faster than advanced indexing
        return table.index_select(0, flat.reshape(-1)).view(s.shape[0], length, self.row_dim)

    def sample_starts(self, n: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """Draw ``n`` valid (stream, physical start) pairs uniformly with replacement."""
        valid = self.valid_starts(length)
        if valid.shape[0] == 0:
            raise ValueError(
                f"no valid window of {length} rows in the replay buffer ({self._size} rows per stream held, "
                f"{self.num_streams} streams); collect more steps or use shorter windows"
            )
        idx = torch.randint(valid.shape[0], (int(n),), generator=generator, device=generator.device)
        return valid.index_select(0, idx.to(self.device))

    def sample(self, n: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """Draw ``n`` valid windows (n, length, row_dim) uniformly with replacement; ValueError if none is valid."""
        return self.windows(self.sample_starts(n, length, generator), length)

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit-identically: geometry, write position, sizes, rows and flags."""
        return {
            "version": STATE_VERSION,
            "num_streams": self.num_streams,
            "capacity": self.capacity,
            "row_dim": self.row_dim,
            "termination_column": self.termination_column,
            "position": self._pos,
            "size": self._size,
            "total": self._total,
            "data": self.data.clone(),
            "episode_start": self.episode_start.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` into this buffer (same geometry; rows stay on this buffer's device)."""
        if int(state.get("version", -1)) != STATE_VERSION:
            raise ValueError(f"replay buffer state version {state.get('version')!r}, expected {STATE_VERSION}")
        geometry = ("num_streams", "capacity", "row_dim", "termination_column")
        mine = tuple(getattr(self, k) for k in geometry)
        theirs = tuple(int(state[k]) for k in geometry)
        if mine != theirs:
            raise ValueError(f"replay buffer state has {dict(zip(geometry, theirs, strict=True))}, buffer has {mine}")
        pos, size, total = int(state["position"]), int(state["size"]), int(state["total"])
        if not (0 <= pos < self.capacity and 0 <= size <= min(self.capacity, total)):
            raise ValueError(f"inconsistent replay buffer state: position {pos}, size {size}, total {total}")
        self.data.copy_(state["data"])
        self.episode_start.copy_(state["episode_start"])
        self._pos, self._size, self._total = pos, size, total
        self._cache.clear()
