"""`rwm validate`: the artifact it writes, and one test per kind of bad input (clear message, no output left)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import TASK, write_rows

from rwm_core.cli import main
from rwm_core.data.dataset import Dataset
from rwm_core.data.validate import validate_dataset


def run_validate(data_dir: Path, out: Path, params: str | None = None) -> int:
    argv = ["validate", str(data_dir), "--out", str(out), "--quiet"]
    if params:
        argv += ["--params", params]
    return main(argv)


def test_artifact_contents(data_dir: Path, tmp_path: Path, rows: np.ndarray) -> None:
    out = tmp_path / "out"
    assert run_validate(data_dir, out) == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "rows.npy",
        "window_starts.npy",
        "normalization.json",
        "dataset.json",
        "validation.json",
        "manifest.json",
    } <= names
    ds = Dataset.load(out)
    np.testing.assert_array_equal(ds.data, rows.astype(np.float32))
    assert ds.data.flags["C_CONTIGUOUS"] and ds.data.dtype == np.float32
    report = json.loads((out / "validation.json").read_text())
    assert report["rows"] == len(rows)
    assert [f["file"] for f in report["files"]] == ["state_action_data_0.csv", "state_action_data_1.csv"]
    term = rows[:, TASK.LAYOUT.termination_column]
    assert report["terminations"] == int(term.sum())
    assert report["valid_windows"] == len(ds.window_starts)
    # every listed window is free of terminations in its first H+F-1 rows, every other start is not
    length = ds.window_length
    ok = np.array([term[s : s + length - 1].sum() == 0 for s in range(len(rows) - length + 1)])
    np.testing.assert_array_equal(np.flatnonzero(ok), ds.window_starts)
    stats = report["column_stats"]["joint_pos[LF_HFE]"]
    assert stats["mean"] == pytest.approx(float(rows[:, 13].astype(np.float64).mean()), rel=1e-5)
    assert set(report["foot_contact_duty"]) == {"LF", "LH", "RF", "RH"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["inputs"]) == 2 and all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    assert manifest["config"]["history"] == 32 and manifest["rwm_core_version"]
    assert {Path(o["path"]).name for o in manifest["outputs"]} == names - {"manifest.json"}


def test_overview_figure_is_drawn_from_the_artifact(data_dir: Path, tmp_path: Path) -> None:
    """The figure is its own command (and rule), so figure options never invalidate the dataset."""
    out = tmp_path / "out"
    assert run_validate(data_dir, out) == 0
    pdf = tmp_path / "overview.pdf"
    assert main(["plot", "overview", "--dataset", str(out), "--out", str(pdf), "--seconds", "1", "--dpi", "50"]) == 0
    assert pdf.read_bytes()[:4] == b"%PDF"
    manifest = json.loads((tmp_path / "overview.pdf.manifest.json").read_text())
    assert manifest["config"] == {"figure": "overview", "dpi": 50, "seconds": 1.0}
    assert {Path(i["path"]).name for i in manifest["inputs"]} >= {"rows.npy", "dataset.json"}


def test_normalization_fixed_vs_data(data_dir: Path, tmp_path: Path, rows: np.ndarray) -> None:
    assert run_validate(data_dir, tmp_path / "fixed") == 0
    assert run_validate(data_dir, tmp_path / "data", '{"normalization": "data"}') == 0
    fixed = Dataset.load(tmp_path / "fixed").normalizer
    data = Dataset.load(tmp_path / "data").normalizer
    np.testing.assert_allclose(fixed.state_std, TASK.STATE_STD)
    np.testing.assert_allclose(data.state_mean, rows[:, :45].astype(np.float64).mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(data.state_std, rows[:, :45].astype(np.float64).std(0) + 1e-6, rtol=1e-4)


def test_window_batch_alignment(data_dir: Path, tmp_path: Path, rows: np.ndarray) -> None:
    out = tmp_path / "out"
    validate_dataset(data_dir, out, progress=False)
    ds = Dataset.load(out)
    starts = ds.window_starts[[0, 5, -1]]
    batch = ds.batch(starts)
    assert batch.states.shape == (3, 40, 45) and batch.actions.shape == (3, 40, 12)
    np.testing.assert_allclose(batch.actions[1, 0].numpy(), rows[starts[1], 45:57], rtol=1e-6)
    expect = (rows[starts[2] + 7, :45] - TASK.STATE_MEAN) / TASK.STATE_STD
    np.testing.assert_allclose(batch.states[2, 7].numpy(), expect, rtol=1e-5, atol=1e-5)
    assert batch.contacts.shape == (3, 40, 8) and batch.terminations.shape == (3, 40, 1)


# ------------------------------------------------------------------ bad input: one test per case
def expect_error(capsys: pytest.CaptureFixture[str], data_dir: Path, out: Path, *fragments: str) -> str:
    code = run_validate(data_dir, out)
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    for frag in fragments:
        assert frag in err, f"{frag!r} not in {err!r}"
    assert not out.exists(), "output left behind"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")], "temp dir left behind"
    return err


def test_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expect_error(capsys, tmp_path / "nope", tmp_path / "out", "nope", "does not exist")


def test_directory_without_data_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    expect_error(capsys, tmp_path / "empty", tmp_path / "out", "empty", "no data files")


def test_gap_in_file_numbering(tmp_path: Path, rows: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    d = write_rows(tmp_path / "data", rows, n_files=3)
    (d / "state_action_data_1.csv").unlink()
    expect_error(capsys, d, tmp_path / "out", "state_action_data_1.csv", "missing")


def _edit_line(path: Path, line_no: int, new: str) -> None:
    lines = path.read_text().splitlines()
    lines[line_no - 1] = new
    path.write_text("\n".join(lines) + "\n")


def _edit_cell(path: Path, line_no: int, col: int, value: str) -> None:
    lines = path.read_text().splitlines()
    cells = lines[line_no - 1].split(",")
    cells[col] = value
    lines[line_no - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def test_header_line(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = data_dir / "state_action_data_1.csv"
    f.write_text(",".join(TASK.COLUMN_NAMES) + "\n" + f.read_text())
    expect_error(capsys, data_dir, tmp_path / "out", "state_action_data_1.csv", "line 1", "column 0", "header")


def test_non_numeric_cell(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = data_dir / "state_action_data_0.csv"
    _edit_cell(f, 17, 12, "abc")
    expect_error(capsys, data_dir, tmp_path / "out", "state_action_data_0.csv", "line 17", "column 12", "'abc'")


def test_wrong_number_of_columns(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = data_dir / "state_action_data_0.csv"
    line = f.read_text().splitlines()[9]
    _edit_line(f, 10, line.rsplit(",", 1)[0])
    expect_error(
        capsys, data_dir, tmp_path / "out", "state_action_data_0.csv", "line 10", "expected 66 columns", "found 65"
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", ""])
def test_nan_or_inf(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    f = data_dir / "state_action_data_1.csv"
    _edit_cell(f, 5, 30, value)
    expect_error(capsys, data_dir, tmp_path / "out", "state_action_data_1.csv", "line 5", "column 30", "finite number")


@pytest.mark.parametrize("col", [58, 63, 65])
def test_binary_column_not_zero_one(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], col: int
) -> None:
    f = data_dir / "state_action_data_0.csv"
    _edit_cell(f, 8, col, "0.5")
    expect_error(
        capsys,
        data_dir,
        tmp_path / "out",
        "state_action_data_0.csv",
        "line 8",
        f"column {col}",
        "expected 0 or 1",
        "0.5",
    )


def test_fewer_rows_than_one_window(tmp_path: Path, rows: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    d = write_rows(tmp_path / "data", rows[:30], n_files=1)
    expect_error(capsys, d, tmp_path / "out", "30 rows", "fewer than one window")


def test_no_valid_window(tmp_path: Path, rows: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    r = rows[:400].copy()
    r[:, TASK.LAYOUT.termination_column] = 0
    r[::20, TASK.LAYOUT.termination_column] = 1  # episodes of 20 rows < 40
    d = write_rows(tmp_path / "data", r, n_files=1)
    expect_error(capsys, d, tmp_path / "out", "no valid window")


def test_bad_input_keeps_previous_output(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert run_validate(data_dir, out) == 0
    before = (out / "rows.npy").read_bytes()
    _edit_cell(data_dir / "state_action_data_0.csv", 3, 3, "x")
    assert run_validate(data_dir, out) != 0
    assert (out / "rows.npy").read_bytes() == before


# ------------------------------------------------------------------ warnings, not errors
def test_gravity_and_constant_column_are_warnings(tmp_path: Path, rows: np.ndarray) -> None:
    r = rows.copy()
    r[100:110, 6:9] = [0.0, 0.0, -0.5]
    r[:, 40] = 3.0
    d = write_rows(tmp_path / "data", r)
    report = validate_dataset(d, tmp_path / "out", progress=False)
    text = " ".join(report["warnings"])
    assert "projected gravity" in text and "10 rows" in text and "row 100" in text
    assert "column 40" in text and "constant" in text
    saved = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert saved["warnings"] == report["warnings"]


def test_cli_exit_code_in_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rwm_core.cli", "validate", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "missing" in proc.stderr and "Traceback" not in proc.stderr


def test_independent_files_break_windows_without_termination_labels(tmp_path: Path, rows: np.ndarray) -> None:
    from rwm_core.data.io import write_streams_marker

    r = rows.copy()
    r[:, TASK.LAYOUT.termination_column] = 0
    d = write_rows(tmp_path / "data", r, n_files=3)
    joined = validate_dataset(d, tmp_path / "joined", progress=False)
    write_streams_marker(d)
    split = validate_dataset(d, tmp_path / "split", progress=False)
    assert joined["episodes"] == 1 and split["episodes"] == 3 and split["terminations"] == 0
    ds = Dataset.load(tmp_path / "split")
    bounds = np.cumsum([len(c) for c in np.array_split(r, 3)])[:-1]  # first rows of files 1 and 2
    for s in ds.window_starts:
        assert not any(s < b < s + ds.window_length for b in bounds)
    assert joined["valid_windows"] - split["valid_windows"] == 2 * (ds.window_length - 1)
    np.testing.assert_array_equal(np.flatnonzero(ds.episode_ends()), bounds - 1)
