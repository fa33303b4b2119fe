"""The penalty sweep figure: what λ does to the true return, to imagined reward and to uncertainty, over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.patches import Patch

import rwm_core.plots  # noqa: F401  (selects the Agg backend)
from rwm_core.artifacts import atomic_path
from rwm_core.evaluation.sweep import seed_curves, seed_summary

# the reference lines of every true-return panel: (key of the table's attrs, label, line style)
REFERENCES = (
    ("sim_return_mean_model_free", "model-free PPO", {"color": "tab:green", "ls": ":"}),
    ("sim_return_mean_online", "online RWM", {"color": "tab:cyan", "ls": "-."}),
    ("sim_return_mean_standing", "standing (zero action)", {"color": "0.4", "ls": "--"}),
)
RETURN_LABEL = "true episode return (unpenalised)"


def reference_lines(ax: Axes, refs: dict[str, Any]) -> None:
    """Draw the references ``refs`` holds (table attrs, see :data:`REFERENCES`) as labelled horizontal lines."""
    for key, label, style in REFERENCES:
        if key in refs:
            ax.axhline(refs[key], lw=1.4, label=f"{label}: {refs[key]:.2f}", **style)


def category_axis(ax: Axes, labels: list[str], xlabel: str) -> None:
    """One evenly spaced column per value (λ = 0 shows, unlike on a log axis; the values need not be spaced alike)."""
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_xlabel(xlabel)


def seed_dots(ax: Axes, x: float, values: np.ndarray, width: float = 0.16, **style: Any) -> None:
    """Each seed's value as a dot, spread sideways around ``x`` so that equal values stay visible."""
    values = np.asarray(values, dtype=float)
    offsets = np.linspace(-width / 2, width / 2, len(values)) if len(values) > 1 else np.zeros(1)
    ax.scatter(x + offsets, values, s=16, zorder=3, **style)


def plot_penalty_sweep(
    table: pd.DataFrame,
    curves: dict[tuple[float, int], pd.DataFrame],
    path: str | Path,
    dpi: int = 150,
    gaps: dict[tuple[float, int], pd.DataFrame] | None = None,
    true_curves: dict[tuple[float, int], pd.DataFrame] | None = None,
) -> None:
    """Page 1: the true return over training per λ, from ``true_curves`` (iteration, return_mean of each scored
    checkpoint): mean over seeds, the seeds' range shaded, the references (``table.attrs``) as lines. Page 2: imagined
    reward per iteration, every run. Page 3: final true return, imagined reward and uncertainty against λ (mean ±
    std over seeds, each seed a dot). Page 4 (with ``gaps``, from :func:`rwm_core.evaluation.sweep.term_gap`): each
    reward term in imagination against the simulator."""
    refs = table.attrs
    runs = table[table["method"] == "mopo-ppo"] if "method" in table.columns else table
    lams = sorted({k[0] for k in curves} | set(runs["penalty"]))
    cmap = plt.get_cmap("plasma")
    colour = {lam: cmap(i / max(1, len(lams) - 1) * 0.85) for i, lam in enumerate(lams)}
    with atomic_path(path) as tmp, PdfPages(tmp) as pdf:
        save_page(pdf, _true_over_training(true_curves or {}, refs, colour), dpi)
        save_page(pdf, _imagined_over_training(curves, colour), dpi)
        save_page(pdf, _against_penalty(runs, refs), dpi)
        if gaps:
            _plot_gaps(pdf, gaps, dpi)


def _true_over_training(true_curves: dict, refs: dict[str, Any], colour: dict) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(11, 5))
    by_lam = seed_curves(true_curves)
    banded = False
    for lam, c in by_lam.groupby("penalty"):
        n = int(c["n_seeds"].max())
        label = f"λ = {lam:g}" + (f" (mean of {n} seeds)" if n > 1 else " (1 seed)")
        ax.plot(c["iteration"], c["return_mean"], color=colour[lam], marker="o", ms=3.5, lw=1.6, label=label)
        if n > 1:
            ax.fill_between(c["iteration"], c["return_min"], c["return_max"], color=colour[lam], alpha=0.18, lw=0)
            banded = True
    reference_lines(ax, refs)
    handles, _ = ax.get_legend_handles_labels()
    if banded:
        handles.append(Patch(color="0.5", alpha=0.3, label="shaded: range (min–max) over seeds"))
    if by_lam.empty:
        ax.text(0.5, 0.5, "no checkpoint was scored\n(rwm evaluate-policy --checkpoints)", transform=ax.transAxes,
                ha="center", va="center", color="0.4")  # fmt: skip
    ax.set_xlabel("PPO iteration (in imagination)")
    ax.set_ylabel(RETURN_LABEL)
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title("true return of each training checkpoint in the MuJoCo simulator")
    fig.suptitle(
        "Policies trained in imagination, scored in the simulator during training\n"
        "(the imagined reward of the same runs is on page 2)",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


def _imagined_over_training(curves: dict, colour: dict) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharex=True)
    seeds = {lam: sum(1 for k in curves if k[0] == lam) for lam in {k[0] for k in curves}}
    labelled: set[float] = set()
    for (lam, _seed), m in sorted(curves.items()):
        label = None
        if lam not in labelled:
            label = f"λ = {lam:g}" + (f" ({seeds[lam]} seeds)" if seeds[lam] > 1 else "")
            labelled.add(lam)
        axes[0].plot(m["iteration"], m["reward_penalised"], color=colour[lam], lw=1.1, alpha=0.85, label=label)
        axes[1].plot(m["iteration"], m["reward_unpenalised"], color=colour[lam], lw=1.1, alpha=0.85, label=label)
    axes[0].set_title("penalised imagined reward  r − λ·u·dt")
    axes[1].set_title("unpenalised imagined reward  r")
    for ax in axes:
        ax.set_ylabel("mean reward per step")
        ax.set_xlabel("PPO iteration")
        ax.grid(alpha=0.3)
    if labelled:
        axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.suptitle("Imagined reward over training for each uncertainty penalty λ (one line per seed)", fontsize=11)
    fig.tight_layout()
    return fig


def _against_penalty(runs: pd.DataFrame, refs: dict[str, Any]) -> plt.Figure:
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), sharex=True)
    summary = seed_summary(runs).set_index("penalty").sort_index()
    lams = summary.index.tolist()
    n_seeds = int(summary["n_seeds"].max()) if len(summary) else 0
    spread = f"mean ± std over {n_seeds} seeds, dots: each seed" if n_seeds > 1 else "one seed per λ"
    by_lam = {lam: runs[runs["penalty"] == lam] for lam in lams}
    x = np.arange(len(lams))

    def mean_and_dots(ax: Axes, col: str, std: str, shift: float, label: str, **style: Any) -> None:
        sd = summary[std].fillna(0.0).to_numpy() if summary[std].notna().any() else None  # none for one seed
        ax.errorbar(x + shift, summary[col], yerr=sd, capsize=4, lw=1.4, label=label, **style)
        for i, lam in enumerate(lams):
            seed_dots(ax, i + shift, by_lam[lam][col], color=style.get("color"), alpha=0.55)

    mean_and_dots(axes[0], "sim_return_mean", "sim_return_seed_std", 0.0, "MOPO-PPO policy", color="tab:blue",
                  marker="D")  # fmt: skip
    reference_lines(axes[0], refs)
    axes[0].set_title("true return in the MuJoCo simulator")
    axes[0].set_ylabel(RETURN_LABEL)
    mean_and_dots(axes[1], "imagined_reward_unpenalised", "imagined_reward_unpenalised_seed_std", -0.15,
                  "unpenalised  r", color="tab:orange", marker="s")  # fmt: skip
    mean_and_dots(axes[1], "imagined_reward_penalised", "imagined_reward_penalised_seed_std", 0.15,
                  "penalised  r − λ·u·dt", color="tab:red", marker="o")  # fmt: skip
    axes[1].set_title("final imagined reward (last iterations)")
    axes[1].set_ylabel("mean reward per step")
    mean_and_dots(axes[2], "imagined_uncertainty", "imagined_uncertainty_seed_std", 0.0, "mean u",
                  color="tab:purple", marker="o")  # fmt: skip
    axes[2].set_title("mean epistemic uncertainty u in imagination")
    axes[2].set_ylabel("u [normalised state units]")
    for ax in axes:
        category_axis(ax, [f"{lam:g}" for lam in lams], "uncertainty penalty λ")
        ax.grid(alpha=0.3)
    for ax in axes[:2]:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.suptitle(f"Penalty sweep: final outcomes against λ ({spread})", fontsize=11)
    fig.tight_layout()
    return fig


def _plot_gaps(pdf: PdfPages, gaps: dict[tuple[float, int], pd.DataFrame], dpi: int) -> None:
    """One panel per λ (its first seed): reward per step of every term, imagined vs simulator, as paired bars."""
    first: dict[float, tuple[float, int]] = {}
    for key in sorted(gaps):
        first.setdefault(key[0], key)
    keys = list(first.values())
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys) + 1.5, 5.2), sharey=True, squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        g = gaps[key]
        y = np.arange(len(g))
        ax.barh(y - 0.2, g["imagined"], height=0.4, color="tab:blue", label="imagination (last iterations)")
        ax.barh(y + 0.2, g["simulator"].fillna(0.0), height=0.4, color="tab:green", label="MuJoCo simulator")
        ax.axvline(0.0, color="0.3", lw=0.8)
        ax.set_yticks(y, g["term"])
        ax.invert_yaxis()
        ax.set_title(f"λ = {key[0]:g}" + (f" (seed {key[1]})" if len({k[1] for k in gaps}) > 1 else ""))
        ax.set_xlabel("reward per step (weight · term · dt)")
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.suptitle(
        "Where imagination and the simulator disagree: reward per step of each term\n"
        "(a term the model misses is one the policy can exploit; 'termination' is a training-only cost)",
        fontsize=11,
    )
    fig.tight_layout()
    save_page(pdf, fig, dpi)


def save_page(pdf: PdfPages, fig: plt.Figure, dpi: int) -> None:
    """Add ``fig`` as the next page of ``pdf`` and free it."""
    pdf.savefig(fig, dpi=dpi)
    plt.close(fig)
