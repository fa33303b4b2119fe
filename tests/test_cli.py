"""`rwm --help` and every command's help explain arguments and defaults; a command and its library stage write
the same manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rwm_core import stages
from rwm_core.artifacts import manifest_path, read_manifest
from rwm_core.cli import build_parser, main
from rwm_core.config import DatasetConfig, parse_params
from rwm_core.errors import RwmError
from rwm_core.evaluation.sweep import sweep_figure_data, sweep_table


def test_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("validate", "simulate", "pretrain", "evaluate-dynamics"):
        assert cmd in out


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(sub.choices)


@pytest.mark.parametrize("command", _commands())
def test_command_help_shows_defaults(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: rwm " + command in out
    assert "(default:" in out
    assert len(out) > 300


def test_no_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2


@pytest.mark.parametrize("workers", ["0", "-2", "two"])
def test_evaluate_policy_workers_must_be_a_positive_number(workers: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["evaluate-policy", "--policy", "p", "--out", "o.json", "--workers", workers])
    assert e.value.code == 2
    assert f"--workers: expected a whole number >= 1, got '{workers}'" in capsys.readouterr().err


def test_plot_offers_every_registered_figure() -> None:
    """The parser lists the figures itself (so `rwm --help` needs no matplotlib); they must be the registry's."""
    from rwm_core.plots.dispatch import FIGURES

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    figure = next(a for a in sub.choices["plot"]._actions if a.dest == "figure")
    assert sorted(figure.choices) == sorted(FIGURES)


def test_an_unknown_figure_is_an_error_that_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(RwmError, match=r"unknown figure 'nope'; known figures: \['noise', 'online'"):
        stages.plot("nope", tmp_path / "x.pdf")
    assert not list(tmp_path.iterdir())


def _manifest(path: Path) -> dict:
    m = read_manifest(path)
    assert m["started"] <= m["finished"]
    return {k: v for k, v in m.items() if k not in ("started", "finished")}


def test_a_library_stage_call_writes_the_manifest_the_cli_writes(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "artifact"
    argv = ["validate", str(data_dir), "--out", str(out), "--quiet", "--params", '{"history": 8}']
    assert main(argv) == 0
    by_cli = _manifest(out)
    assert by_cli["command"] == ["rwm", *argv] and by_cli["stage"] == "validate_dataset"
    shutil.rmtree(out)
    cfg = parse_params(DatasetConfig, '{"history": 8}', "dataset")
    done = stages.validate(data_dir, out, cfg, progress=False, run=stages.Invocation(command=["rwm", *argv]))
    assert done.manifests == [out / "manifest.json"]
    assert _manifest(out) == by_cli
    # from Python without a command line: the same provenance, no command
    stages.validate(data_dir, out, cfg, progress=False)
    assert _manifest(out) == {**by_cli, "command": None}


def _policy_dir(root: Path, name: str, rng: np.random.Generator, sim: dict | None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    n = 4
    pd.DataFrame(
        {
            "iteration": np.arange(1, n + 1),
            "reward_penalised": rng.normal(size=n),
            "reward_unpenalised": rng.normal(size=n),
            "uncertainty": rng.random(n),
            "episode.length": rng.uniform(10, 50, size=n),
            "episode_reward.termination": -rng.random(n),
        }
    ).to_csv(d / "metrics.csv", index=False)
    if sim is not None:
        (d / "sim_eval.json").write_text(json.dumps(sim))
    return d


def test_sweep_table_and_figure_with_their_manifests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)

    def sim(ret: float, standing: float, **more: object) -> dict:
        return {"return_mean": ret, "standing": {"return_mean": standing}, "episode_length_mean": 40.0, **more}

    checkpoints = [{"iteration": 2, "return_mean": 0.5}, {"iteration": 4, "return_mean": 0.25}]
    dirs = [
        _policy_dir(tmp_path, "lambda2_seed0", rng, sim(1.0, -1.0, checkpoints=checkpoints)),
        _policy_dir(tmp_path, "lambda0_seed0", rng, sim(3.0, -2.0)),
        _policy_dir(tmp_path, "lambda0_seed1", rng, None),  # not scored in the simulator yet
    ]
    ppo = _policy_dir(tmp_path, "ppo", rng, sim(5.0, -1.5))
    csv, pdf = tmp_path / "sweep.csv", tmp_path / "sweep.pdf"
    argv = [*map(str, dirs), "--model-free", str(ppo), "--out-csv", str(csv), "--out-pdf", str(pdf), "--tail", "2"]
    assert main(["sweep", *argv]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(csv)
    assert table["method"].tolist() == ["mopo-ppo"] * 3 + ["model-free-ppo", "standing"]
    assert table["penalty"].tolist()[:3] == [0.0, 0.0, 2.0] and "mopo-ppo" in printed
    inputs = [str(p) for d in [*dirs, ppo] for p in sorted(d.iterdir())]  # metrics.csv, then sim_eval.json
    for out, stage in ((csv, "penalty_sweep"), (pdf, "plot_penalty_sweep")):
        m = read_manifest(out)
        assert m["stage"] == stage and m["command"] == ["rwm", "sweep", *argv]
        assert [i["path"] for i in m["inputs"]] == inputs
    # what the figure draws beside the table
    full = sweep_table(dirs, tail=2, model_free=[ppo])
    data = sweep_figure_data(full, dirs, tail=2)
    assert sorted(data.curves) == sorted(data.gaps) == [(0.0, 0), (0.0, 1), (2.0, 0)]
    assert sorted(data.true_curves) == [(0.0, 0), (2.0, 0)] and len(data.true_curves[(0.0, 0)]) == 0
    assert data.true_curves[(2.0, 0)]["return_mean"].tolist() == [0.5, 0.25]
    assert data.references == {"sim_return_mean_standing": -1.5, "sim_return_mean_model_free": 5.0}

    # the library call writes the same manifests (but for the PDF's hash: a PDF holds the time it was drawn)
    def manifests() -> list[dict]:
        table, figure = _manifest(csv), _manifest(pdf)
        return [table, {**figure, "outputs": [o["path"] for o in figure["outputs"]]}]

    by_cli = manifests()
    run = stages.Invocation(command=["rwm", "sweep", *argv])
    done = stages.sweep(dirs, model_free=[ppo], out_csv=csv, out_pdf=pdf, tail=2, run=run)
    assert done.manifests == [manifest_path(csv), manifest_path(pdf)]
    assert manifests() == by_cli
    assert done.message == printed.rstrip("\n")
    with pytest.raises(RwmError, match="nothing to write"):
        stages.sweep(dirs)
