"""Window index: termination-aware starts, leak-free contiguous split, gather equals slicing."""

from __future__ import annotations

import numpy as np
import pytest

from rwm_core.data.windows import contiguous_split, gather_windows, valid_window_starts


def brute_force_starts(term: np.ndarray, length: int) -> np.ndarray:
    return np.array([s for s in range(len(term) - length + 1) if not term[s : s + length - 1].any()], dtype=np.int64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_valid_starts_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    term = (rng.random(500) < 0.03).astype(np.float32)
    for length in (1, 2, 7, 40):
        np.testing.assert_array_equal(valid_window_starts(term, length), brute_force_starts(term, length))


def test_termination_on_last_row_is_a_label() -> None:
    term = np.zeros(10)
    term[4] = 1
    starts = valid_window_starts(term, 5)
    assert 0 in starts  # rows 0..4, termination on the last row
    assert 1 not in starts and 4 not in starts
    assert 5 in starts


def test_too_short_gives_no_window() -> None:
    assert len(valid_window_starts(np.zeros(3), 5)) == 0


def test_contiguous_split_never_shares_rows() -> None:
    n, length = 2000, 40
    starts = np.arange(n - length + 1)
    train, val = contiguous_split(starts, n, length, 0.2, n_blocks=10)
    assert len(val) > 0 and len(train) > 0
    train_rows = set()
    for s in train:
        train_rows.update(range(s, s + length))
    for s in val:
        assert not train_rows.intersection(range(s, s + length))
    assert 0.1 < len(val) / len(starts) < 0.3


def test_split_zero_fraction() -> None:
    starts = np.arange(100)
    train, val = contiguous_split(starts, 140, 40, 0.0)
    np.testing.assert_array_equal(train, starts)
    assert len(val) == 0


def test_gather_equals_slices() -> None:
    data = np.arange(300, dtype=np.float32).reshape(100, 3)
    starts = np.array([0, 17, 90])
    out = gather_windows(data, starts, 10).numpy()
    for i, s in enumerate(starts):
        np.testing.assert_array_equal(out[i], data[s : s + 10])
