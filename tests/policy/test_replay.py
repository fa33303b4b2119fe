"""Online replay buffer: sampled windows stay inside one stream, one episode and the held, time-ordered rows."""

from __future__ import annotations

import time

import pytest
import torch

from rwm_core.policy.replay import ReplayBuffer
from rwm_core.tasks import get_task

LAYOUT = get_task("anymal_d_flat").LAYOUT
D = LAYOUT.n_columns
TERM = LAYOUT.termination_column
STREAM_COL, COUNTER_COL = 0, 1  # test markers written into state columns


def _rows(num_streams: int, step: int, term: torch.Tensor | None = None) -> torch.Tensor:
    """One row per stream marked with its stream id and the global write counter."""
    rows = torch.zeros(num_streams, D)
    rows[:, STREAM_COL] = torch.arange(num_streams, dtype=torch.float32)
    rows[:, COUNTER_COL] = float(step)
    if term is not None:
        rows[:, TERM] = term.float()
    return rows


def _fill(buf: ReplayBuffer, steps: int, term: torch.Tensor | None = None, start: torch.Tensor | None = None) -> None:
    """Append ``steps`` rows per stream one at a time; ``term``/``start`` are (num_streams, steps) masks."""
    s = buf.num_streams
    for t in range(steps):
        es = start[:, t] if start is not None else torch.zeros(s, dtype=torch.bool)
        buf.append(_rows(s, buf.total_appended, None if term is None else term[:, t]), es)


def reference_starts(buf: ReplayBuffer, length: int) -> set[tuple[int, int]]:
    """Slow pure-Python statement of the validity rule over the buffer's raw storage."""
    size, cap, pos = len(buf), buf.capacity, buf.position
    oldest = (pos - size) % cap
    out = set()
    for s in range(buf.num_streams):
        for p in range(size - length + 1):  # logical start; p + length - 1 <= newest
            phys = [(oldest + p + k) % cap for k in range(length)]
            if any(bool(buf.episode_start[s, i]) for i in phys[1:]):
                continue
            if any(float(buf.data[s, i, TERM]) != 0 for i in phys[:-1]):
                continue
            out.add((s, phys[0]))
    return out


def _as_set(starts: torch.Tensor) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in starts.tolist()}


def test_windows_never_cross_a_stream_boundary() -> None:
    buf = ReplayBuffer.from_layout(LAYOUT, num_streams=5, capacity=30)
    _fill(buf, 47)  # wrapped: many windows run past the physical end of a stream's storage
    w = buf.sample(2000, 12, torch.Generator().manual_seed(0))
    ids = w[:, :, STREAM_COL]
    assert (ids == ids[:, :1]).all()
    assert set(ids[:, 0].long().tolist()) == set(range(5))  # every stream is sampled
    # streams are independent sequences: each holds 30 - 12 + 1 windows, none spanning two streams
    oldest = 47 % 30
    expected = {(s, (oldest + p) % 30) for s in range(5) for p in range(30 - 12 + 1)}
    assert _as_set(buf.valid_starts(12)) == expected


def test_windows_never_cross_a_termination_but_may_end_on_one() -> None:
    steps, length = 60, 8
    term = torch.zeros(3, steps, dtype=torch.bool)
    term[0, 20] = term[1, 35] = term[2, 20] = term[2, 45] = True
    start = torch.zeros(3, steps, dtype=torch.bool)
    start[:, 1:] = term[:, :-1]  # the row after a fall begins the next episode
    buf = ReplayBuffer(3, 100, D, TERM)
    _fill(buf, steps, term, start)
    w = buf.sample(3000, length, torch.Generator().manual_seed(1))
    assert not w[:, :-1, TERM].any()  # no termination before the last row
    ends_on_fall = w[:, -1, TERM] == 1
    assert ends_on_fall.any()  # windows ending on the termination row are sampled
    valid = _as_set(buf.valid_starts(length))
    for s, t in ((0, 20), (1, 35), (2, 20), (2, 45)):
        assert (s, t - length + 1) in valid  # ends exactly on the fall
        assert (s, t - length + 2) not in valid and (s, t) not in valid  # would continue past it
        assert (s, t + 1) in valid  # the new episode
    # the episode_start after the fall is not what excludes these: terminations alone must
    buf2 = ReplayBuffer(3, 100, D, TERM)
    _fill(buf2, steps, term)
    assert (0, 20 - length + 2) not in _as_set(buf2.valid_starts(length))


def test_windows_never_cross_an_episode_start_from_a_time_out() -> None:
    steps, length = 50, 10
    start = torch.zeros(2, steps, dtype=torch.bool)
    start[0, 25] = start[1, 10] = start[1, 30] = True  # time-out resets: no termination flag
    buf = ReplayBuffer(2, 64, D)
    _fill(buf, steps, start=start)
    assert bool(buf.episode_start[:, 0].all())  # the first row ever written is a start
    w = buf.sample(3000, length, torch.Generator().manual_seed(2))
    episode = torch.zeros(2, steps, dtype=torch.long)
    episode[:] = start.long().cumsum(1)
    ep = episode[w[:, :, STREAM_COL].long(), w[:, :, COUNTER_COL].long()]
    assert (ep == ep[:, :1]).all()
    valid = _as_set(buf.valid_starts(length))
    assert (0, 25 - length) in valid and (0, 25 - length + 1) not in valid and (0, 25) in valid
    assert (1, 10 - length + 1) not in valid and (1, 10) in valid


def test_windows_never_cross_the_write_position_after_wrap_around() -> None:
    cap, length = 50, 16
    buf = ReplayBuffer(4, cap, D)
    _fill(buf, 173)  # wraps three times; the write position is mid-buffer
    assert len(buf) == cap and buf.size_total == 4 * cap and buf.position == 173 % cap
    w = buf.sample(4000, length, torch.Generator().manual_seed(3))
    counter = w[:, :, COUNTER_COL]
    assert (counter.diff(dim=1) == 1).all()  # strictly consecutive in time
    assert counter.min() >= 173 - cap and counter.max() == 172  # only held rows; the newest one is reached
    assert counter[:, 0].min() == 173 - cap  # and the oldest one
    assert len(buf.valid_starts(length)) == 4 * (cap - length + 1)
    # same via extend(): one call larger than the capacity keeps only the newest rows
    buf2 = ReplayBuffer(4, cap, D)
    rows = torch.stack([_rows(4, t) for t in range(173)], 1)
    buf2.extend(rows, torch.zeros(4, 173, dtype=torch.bool))
    assert torch.equal(buf2.data, buf.data) and buf2.position == buf.position and len(buf2) == len(buf)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_valid_starts_match_python_reference(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    cap, streams = 37, 3
    buf = ReplayBuffer(streams, cap, D)
    checked_wrapped = False
    for steps in (5, 20, 30, 41, 3):  # partially filled, then wrapped (more than capacity), then more
        term = torch.rand(streams, steps, generator=g) < 0.08
        start = torch.rand(streams, steps, generator=g) < 0.08
        start[:, 1:] |= term[:, :-1]
        _fill(buf, steps, term, start)
        checked_wrapped |= buf.total_appended > cap
        for length in (1, 2, 5, 13, cap, cap + 1):
            got = buf.valid_starts(length)
            assert got.dtype == torch.long and got.shape[1] == 2
            assert len(_as_set(got)) == len(got)  # no duplicates
            assert _as_set(got) == reference_starts(buf, length), (steps, length)
    assert checked_wrapped and buf.position != 0


def test_sampling_is_deterministic_for_a_seeded_generator() -> None:
    buf = ReplayBuffer(4, 40, D)
    _fill(buf, 55, start=torch.rand(4, 55, generator=torch.Generator().manual_seed(9)) < 0.05)
    a = buf.sample(300, 8, torch.Generator().manual_seed(7))
    b = buf.sample(300, 8, torch.Generator().manual_seed(7))
    c = buf.sample(300, 8, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    starts = buf.sample_starts(300, 8, torch.Generator().manual_seed(7))
    assert torch.equal(buf.windows(starts, 8), a)


def test_state_dict_round_trip_gives_identical_samples() -> None:
    gen = torch.Generator().manual_seed(4)
    buf = ReplayBuffer(3, 32, D)
    _fill(buf, 45, torch.rand(3, 45, generator=gen) < 0.1, torch.rand(3, 45, generator=gen) < 0.1)
    state = buf.state_dict()
    restored = ReplayBuffer(3, 32, D)
    restored.load_state_dict(state)
    assert torch.equal(restored.valid_starts(6), buf.valid_starts(6))
    assert torch.equal(
        restored.sample(500, 6, torch.Generator().manual_seed(5)), buf.sample(500, 6, torch.Generator().manual_seed(5))
    )
    # the resumed run continues identically: same next writes, same samples
    for b in (buf, restored):
        _fill(b, 7, start=torch.tensor([[True, False, False, False, False, False, False]] * 3))
    assert restored.position == buf.position and len(restored) == len(buf)
    assert torch.equal(restored.data, buf.data) and torch.equal(restored.episode_start, buf.episode_start)
    assert torch.equal(
        restored.sample(500, 6, torch.Generator().manual_seed(6)), buf.sample(500, 6, torch.Generator().manual_seed(6))
    )
    state["data"].zero_()  # the state is a copy, not a view of the live buffer
    assert buf.data.abs().sum() > 0
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(3, 33, D).load_state_dict(buf.state_dict())


def test_error_when_no_window_is_valid() -> None:
    buf = ReplayBuffer(2, 20, D)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="no valid window"):
        buf.sample(4, 5, g)  # empty
    _fill(buf, 4, start=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="no valid window"):
        buf.sample(4, 5, g)  # shorter than a window
    _fill(buf, 8, start=torch.ones(2, 8, dtype=torch.bool))  # every row begins an episode
    assert len(buf.valid_starts(2)) == 0 and len(buf.valid_starts(1)) == 2 * 12
    with pytest.raises(ValueError, match="no valid window"):
        buf.sample(4, 2, g)
    with pytest.raises(ValueError, match="length"):
        buf.valid_starts(0)


def test_sampling_is_fast_and_loop_free() -> None:
    g = torch.Generator().manual_seed(0)
    buf = ReplayBuffer(16, 2000, D)
    rows = torch.randn(16, 2500, D)
    rows[:, :, TERM] = (torch.rand(16, 2500, generator=g) < 0.005).float()
    buf.extend(rows, torch.rand(16, 2500, generator=g) < 0.005)
    best = float("inf")
    for _ in range(3):
        buf.extend(rows[:, :1], torch.zeros(16, 1, dtype=torch.bool))  # invalidate the cached valid starts
        t0 = time.perf_counter()
        w = buf.sample(5000, 40, g)
        best = min(best, time.perf_counter() - t0)
    assert w.shape == (5000, 40, D)
    assert best < 0.2, f"sampling 5000 windows took {best * 1e3:.0f} ms"  # ~30 ms on one core; loose for shared CI
