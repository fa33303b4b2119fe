"""Figures by name (`rwm plot FIGURE`): each entry loads its own inputs, draws, and says what its manifest records.

Why a registry: the CLI, the workflow and library callers name a figure; one table maps that name to the loading,
the drawing and the workflow rule (the manifest's stage), so adding a figure touches one place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from rwm_core.errors import RwmError


@dataclass(frozen=True)
class FigureOptions:
    """Everything a figure may read; each figure uses only its own (which ones: `rwm plot --help`)."""

    input: str | Path | None = None  # evaluate-uncertainty / evaluate-dynamics JSON, or metrics.csv (online)
    model: str | Path | None = None  # world-model checkpoint (prediction)
    dataset: str | Path | None = None  # dataset artifact directory (prediction, overview)
    windows: int = 3  # held-out windows to draw (prediction)
    horizon: int = 100  # predicted steps to draw (prediction)
    val_fraction: float = 0.1  # held-out fraction (prediction)
    seed: int = 0  # which windows (prediction)
    seconds: float = 4.0  # length of the time-series page (overview)
    task: str = "anymal_d_flat"  # units, time step
    dpi: int = 150


@dataclass(frozen=True)
class Drawn:
    """What the manifest of a drawn figure records."""

    stage: str  # the workflow rule that draws it
    config: dict[str, Any]
    inputs: list[Any]
    seed: int | None = None


Draw = Callable[[str | Path, FigureOptions, ModuleType], Drawn]
FIGURES: dict[str, Draw] = {}


def _figure(name: str) -> Callable[[Draw], Draw]:
    def register(draw: Draw) -> Draw:
        FIGURES[name] = draw
        return draw

    return register


def draw_figure(name: str, out: str | Path, options: FigureOptions | None = None) -> Drawn:
    """Draw the figure ``name`` into the PDF ``out``; what to record in its manifest comes back."""
    from rwm_core.tasks import get_task

    options = options or FigureOptions()
    if name not in FIGURES:
        raise RwmError(f"unknown figure {name!r}; known figures: {sorted(FIGURES)}")
    return FIGURES[name](out, options, get_task(options.task))


def _config(name: str, options: FigureOptions, **extra: Any) -> dict[str, Any]:
    return {"figure": name, "dpi": options.dpi, **extra}


def _input(name: str, options: FigureOptions) -> str | Path:
    if not options.input:
        raise RwmError(f"the {name} figure needs --input")
    return options.input


@_figure("uncertainty")
def _uncertainty(out: str | Path, options: FigureOptions, task: ModuleType) -> Drawn:
    from rwm_core.plots.uncertainty import plot_uncertainty_error

    path = _input("uncertainty", options)
    plot_uncertainty_error(json.loads(Path(path).read_text()), out, task.STEP_DT, dpi=options.dpi)
    return Drawn("plot_uncertainty", _config("uncertainty", options), [path])


@_figure("noise")
def _noise(out: str | Path, options: FigureOptions, task: ModuleType) -> Drawn:
    from rwm_core.plots.prediction import plot_noise_robustness

    path = _input("noise", options)
    plot_noise_robustness(json.loads(Path(path).read_text()), out, task.STEP_DT, dpi=options.dpi)
    return Drawn("plot_noise_robustness", _config("noise", options), [path])


@_figure("prediction")
def _prediction(out: str | Path, options: FigureOptions, task: ModuleType) -> Drawn:
    from rwm_core.evaluation.traces import prediction_traces
    from rwm_core.plots.prediction import plot_prediction

    if not options.model or not options.dataset:
        raise RwmError("the prediction figure needs --model and --dataset")
    traces = prediction_traces(
        options.model,
        options.dataset,
        n_windows=options.windows,
        horizon=options.horizon,
        val_fraction=options.val_fraction,
        seed=options.seed,
    )
    plot_prediction(traces, task, out, dpi=options.dpi)
    config = _config(
        "prediction", options, windows=options.windows, horizon=options.horizon, val_fraction=options.val_fraction
    )
    return Drawn("plot_prediction", config, [options.model, options.dataset], seed=options.seed)


@_figure("overview")
def _overview(out: str | Path, options: FigureOptions, task: ModuleType) -> Drawn:
    from rwm_core.data.dataset import Dataset
    from rwm_core.plots.overview import plot_overview
    from rwm_core.tasks import get_task

    if not options.dataset:
        raise RwmError("the overview figure needs --dataset")
    ds = Dataset.load(options.dataset)
    plot_overview(ds.data, get_task(ds.task_name), out, seconds=options.seconds, dpi=options.dpi)
    return Drawn("plot_overview", _config("overview", options, seconds=options.seconds), [options.dataset])


@_figure("online")
def _online(out: str | Path, options: FigureOptions, task: ModuleType) -> Drawn:
    import pandas as pd

    from rwm_core.plots.online import plot_online

    path = _input("online", options)
    plot_online(pd.read_csv(path), out, dpi=options.dpi)
    return Drawn("plot_online", _config("online", options), [path])
