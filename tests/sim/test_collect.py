"""simulate(): files, layout conventions, determinism across reruns and worker counts, summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rwm_core.sim.collect import CollectionConfig, generate_rows, simulate
from rwm_core.sim.robot import KP
from rwm_core.tasks import anymal_d_flat as task

L = task.LAYOUT
ROWS, PER_FILE, SEED = 2500, 1000, 7


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sim1")
    summary = simulate(out, rows=ROWS, seed=SEED, rows_per_file=PER_FILE, workers=1, progress=False)
    return out, summary


def _load(out: Path) -> list[np.ndarray]:
    files = sorted(out.glob("state_action_data_*.csv"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    return [np.loadtxt(f, delimiter=",", ndmin=2) for f in files]


def test_files_and_layout(run):
    out, _ = run
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"state_action_data_{i}.csv" for i in range(3)] + ["streams.json"]
    assert json.loads((out / "streams.json").read_text())["independent_files"] is True
    tables = _load(out)
    assert [len(t) for t in tables] == [1000, 1000, 500]
    for t in tables:
        assert t.shape[1] == 66 and np.all(np.isfinite(t))
        binary = t[:, L.binary_columns()]
        assert np.all((binary == 0) | (binary == 1))
        assert np.all(t[0, L.action] == 0.0)  # each file starts with a fresh episode
    first_line = (out / "state_action_data_0.csv").read_text().splitlines()[0]
    assert len(first_line.split(",")) == 66 and "-0," not in first_line


def test_rows_follow_each_other_physically(run):
    out, _ = run
    for t in _load(out):
        term = t[:, L.termination_column]
        q, qd = t[:, L.block("joint_pos")], t[:, L.block("joint_vel")]
        cont = np.flatnonzero(term[:-1] == 0) + 1  # rows that follow their predecessor
        dq = q[cont] - q[cont - 1]
        mid = 0.5 * (qd[cont] + qd[cont - 1]) * task.STEP_DT
        assert np.median(np.abs(dq - mid)) < 0.01
        # after a termination the next row is a reset state: zero last action, joints near default, at rest
        for r in np.flatnonzero(term[:-1] == 1) + 1:
            assert np.all(t[r, L.action] == 0.0)
            assert np.all(np.abs(q[r]) < 0.06) and np.all(qd[r] == 0.0)
            # the reset row's torque is the PD law at the reset state with target = default pose
            assert np.allclose(t[r, L.block("joint_torque")], -KP * q[r], atol=1e-3)


def test_torque_consistent_with_action_column(run):
    """In the files, the torque of a row is consistent with that row's action (the target it was produced by)."""
    out, _ = run
    t = _load(out)[0]
    term = t[:, L.termination_column]
    ok = np.flatnonzero(term[:-1] == 0) + 1
    target = task.DEFAULT_JOINT_POS + task.ACTION_SCALE * t[ok][:, L.action]
    q = t[ok][:, L.block("joint_pos")] + task.DEFAULT_JOINT_POS
    qd = t[ok][:, L.block("joint_vel")]
    approx = np.clip(KP * (target - q) - 2.0 * qd, -80, 80)
    assert np.corrcoef(approx.ravel(), t[ok][:, L.block("joint_torque")].ravel())[0, 1] > 0.9


def test_byte_identical_rerun_and_workers(run, tmp_path):
    out, _ = run
    a = tmp_path / "rerun"
    b = tmp_path / "workers2"
    simulate(a, rows=ROWS, seed=SEED, rows_per_file=PER_FILE, workers=1, progress=False)
    simulate(b, rows=ROWS, seed=SEED, rows_per_file=PER_FILE, workers=2, progress=False)
    for i in range(3):
        ref = (out / f"state_action_data_{i}.csv").read_bytes()
        assert (a / f"state_action_data_{i}.csv").read_bytes() == ref
        assert (b / f"state_action_data_{i}.csv").read_bytes() == ref
    c = tmp_path / "other_seed"
    simulate(c, rows=PER_FILE, seed=SEED + 1, rows_per_file=PER_FILE, progress=False)
    assert (c / "state_action_data_0.csv").read_bytes() != (out / "state_action_data_0.csv").read_bytes()


def test_summary(run):
    _, s = run
    json.dumps(s)
    assert s["rows"] == ROWS and s["files"] == 3 and s["rows_per_s"] > 0
    for key in ("falls", "mean_abs_vx", "mean_abs_vy", "mean_abs_yaw_rate", "command_correlation", "foot_contact_duty"):
        assert key in s
    assert s["command_correlation"]["vx"] > 0.6 and s["command_correlation"]["yaw_rate"] > 0.5
    assert all(0.3 < v < 0.8 for v in s["foot_contact_duty"].values())


def test_action_column_is_the_action_sent_one_step_earlier(monkeypatch):
    """Row t+1's action column holds exactly the action the controller returned at step t."""
    import rwm_core.sim.collect as collect_mod

    sent: list[np.ndarray] = []

    class Recording(collect_mod.TrotController):
        def act(self) -> np.ndarray:
            a = super().act()
            sent.append(a.copy())
            return a

    monkeypatch.setattr(collect_mod, "TrotController", Recording)
    table, _, _ = generate_rows(400, np.random.default_rng(1))
    term = table[:, L.termination_column]
    stepped = [k for k in range(1, len(table)) if term[k - 1] == 0]
    assert len(stepped) == len(sent)
    for k, a in zip(stepped, sent, strict=True):
        assert np.array_equal(table[k, L.action], a)


def test_stale_files_are_removed(tmp_path):
    simulate(tmp_path, rows=600, seed=0, rows_per_file=200, progress=False)
    s = simulate(tmp_path, rows=300, seed=0, rows_per_file=200, progress=False)
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == ["state_action_data_0.csv", "state_action_data_1.csv"]
    assert s["removed_stale_files"] == ["state_action_data_2.csv"]


def test_falls_are_terminations():
    """A stream with violent exploration noise falls; every fall row is followed by a reset row."""
    cfg = CollectionConfig(noise_levels=(3.0, 3.0), noiseless_probability=0.0, noise_tau=0.1)
    table, cmds, falls = generate_rows(1500, np.random.default_rng(0), cfg)
    term = table[:, L.termination_column]
    assert falls > 0 and term.sum() == falls
    g = table[term == 1][:, L.block("projected_gravity")]
    assert g.shape[0] == falls and cmds.shape == (1500, 3)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        simulate(tmp_path, rows=1, seed=0, progress=False)


def test_passive_segments_send_noise_around_the_default_pose():
    """Passive segments replace the controller by noise (what a fresh policy sends) and follow no command."""
    cfg = CollectionConfig(
        noise_levels=(0.0, 0.0), passive_probability=1.0, passive_white_noise=(0.4, 0.4), command_steps=(50, 50)
    )
    table, cmds, _ = generate_rows(400, np.random.default_rng(0), cfg)
    actions = table[1:, L.action]
    assert abs(float(actions.mean())) < 0.05 and 0.35 < float(actions.std()) < 0.45
    assert np.all(np.isnan(cmds[1:]))
    cfg = CollectionConfig(noise_levels=(0.0, 0.0), passive_probability=0.0)
    active = generate_rows(400, np.random.default_rng(0), cfg)[1]
    assert np.all(np.isfinite(active[1:])) and np.all(np.isnan(active[0]))  # row 0 is a reset row
