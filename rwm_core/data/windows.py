"""Termination-aware window index over one contiguous array (windows are gathered, never materialised).

A window is ``length = H + F`` consecutive rows starting at ``s``. It is valid only if no termination flag appears in
its first ``length - 1`` rows (a reset inside would splice two episodes); a termination on the last row is a label.
"""

from __future__ import annotations

import numpy as np
import torch


def valid_window_starts(termination: np.ndarray, length: int) -> np.ndarray:
    """Start indices of valid windows, O(rows) time and memory (prefix sum over termination flags).

    ``termination`` may be any episode-end mask (see :meth:`rwm_core.data.dataset.Dataset.episode_ends`).
    """
    n = int(termination.shape[0])
    if length < 1:
        raise ValueError(f"window length must be >= 1, got {length}")
    if n < length:
        return np.zeros(0, dtype=np.int64)
    term = (np.asarray(termination).reshape(-1) != 0).astype(np.int64)
    csum = np.concatenate([[0], np.cumsum(term)])
    starts = np.arange(n - length + 1, dtype=np.int64)
    # terminations in rows [s, s + length - 1)
    inside = csum[starts + length - 1] - csum[starts]
    return starts[inside == 0]


def contiguous_split(
    starts: np.ndarray, n_rows: int, length: int, val_fraction: float, n_blocks: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Split window starts into train/validation by contiguous blocks of the time series.

    Random windows would leak (neighbouring windows share rows), so the series is cut into ``n_blocks`` equal blocks,
    evenly spaced blocks are held out, and windows that straddle a train/validation boundary are dropped.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(val_fraction * n_blocks))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if n_val == 0 or len(starts) == 0:
        return starts, np.zeros(0, dtype=np.int64)
    edges = np.linspace(0, n_rows, n_blocks + 1).astype(np.int64)
    val_blocks = np.unique(np.round(np.linspace(n_blocks - 1, 0, n_val, endpoint=n_val > 1)).astype(np.int64))
    # validation rows mask -> which windows lie fully inside / fully outside
    is_val_row = np.zeros(n_rows, dtype=np.int64)
    for b in val_blocks:
        is_val_row[edges[b] : edges[b + 1]] = 1
    csum = np.concatenate([[0], np.cumsum(is_val_row)])
    val_rows_in_window = csum[starts + length] - csum[starts]
    val = starts[val_rows_in_window == length]
    train = starts[val_rows_in_window == 0]
    return train, val


def gather_windows(data: np.ndarray | torch.Tensor, starts: np.ndarray | torch.Tensor, length: int) -> torch.Tensor:
    """Gather ``(B, length, C)`` windows from the contiguous ``(rows, C)`` array without copying the dataset."""
    table = data if isinstance(data, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(data))
    s = torch.as_tensor(np.asarray(starts) if not isinstance(starts, torch.Tensor) else starts, dtype=torch.long)
    idx = s.to(table.device)[:, None] + torch.arange(length, device=table.device)[None, :]
    # index_select on the flat row index is several times faster than advanced indexing
    return table.index_select(0, idx.reshape(-1)).view(s.shape[0], length, table.shape[1])
