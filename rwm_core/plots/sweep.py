"""The penalty sweep figure: what λ does to imagined reward, to uncertainty, and to the true return."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages

import rwm_core.plots  # noqa: F401  (selects the Agg backend)
from rwm_core.artifacts import atomic_path


def _by_penalty(df: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = df.groupby("penalty")[col]
    lam = np.asarray(g.mean().index, dtype=float)
    return lam, g.mean().to_numpy(), g.std(ddof=0).fillna(0).to_numpy()


def plot_penalty_sweep(
    table: pd.DataFrame,
    curves: dict[tuple[float, int], pd.DataFrame],
    path: str | Path,
    dpi: int = 150,
    gaps: dict[tuple[float, int], pd.DataFrame] | None = None,
    true_curves: dict[tuple[float, int], pd.DataFrame] | None = None,
) -> None:
    """Page 1: imagined reward per iteration for each λ and, with ``true_curves`` (iteration, return_mean of each
    checkpoint in the simulator), the true return over training beside it. Page 2: final outcomes against λ.
    Page 3 (with ``gaps``, from :func:`rwm_core.evaluation.sweep.term_gap`): each reward term in imagination
    against the simulator."""
    refs = table.attrs
    table = table[table["method"] == "mopo-ppo"] if "method" in table.columns else table
    lams = sorted({k[0] for k in curves})
    cmap = plt.get_cmap("plasma")
    colour = {lam: cmap(i / max(1, len(lams) - 1) * 0.85) for i, lam in enumerate(lams)}
    n_seeds = table.groupby("penalty")["seed"].nunique().max() if len(table) else 1
    true_curves = {k: v for k, v in (true_curves or {}).items() if len(v)}  # runs scored without --checkpoints: none
    with atomic_path(path) as tmp, PdfPages(tmp) as pdf:
        fig, axes = plt.subplots(1, 3 if true_curves else 2, figsize=(16 if true_curves else 11, 4.6), sharex=True)
        for (lam, seed), m in sorted(curves.items()):
            label = f"λ = {lam:g}" + (f", seed {seed}" if n_seeds > 1 else "")
            axes[0].plot(m["iteration"], m["reward_penalised"], color=colour[lam], lw=1.2, label=label)
            axes[1].plot(m["iteration"], m["reward_unpenalised"], color=colour[lam], lw=1.2, label=label)
        axes[0].set_title("penalised imagined reward  r − λ·u·dt")
        axes[1].set_title("unpenalised imagined reward  r")
        for ax in axes[:2]:
            ax.set_ylabel("mean reward per step")
        if true_curves:
            for (lam, seed), c in sorted(true_curves.items()):
                label = f"λ = {lam:g}" + (f", seed {seed}" if n_seeds > 1 else "")
                axes[2].plot(
                    c["iteration"], c["return_mean"], color=colour.get(lam, "k"), marker="o", ms=3, label=label
                )
            if "sim_return_mean_standing" in refs:
                axes[2].axhline(refs["sim_return_mean_standing"], color="0.5", ls="--", label="standing")
            if "sim_return_mean_model_free" in refs:
                axes[2].axhline(refs["sim_return_mean_model_free"], color="tab:green", ls=":", label="model-free PPO")
            if "sim_return_mean_online" in refs:
                axes[2].axhline(refs["sim_return_mean_online"], color="tab:cyan", ls="-.", label="online RWM")
            axes[2].set_title("true return of each checkpoint (MuJoCo)")
            axes[2].set_ylabel("episode return (unpenalised)")
        for ax in axes:
            ax.set_xlabel("PPO iteration")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        title = "Training in imagination for each uncertainty penalty λ"
        if true_curves:
            title += "\n(a true return that falls while the imagined reward rises: the policy exploits the world model)"
        fig.suptitle(title, fontsize=12)
        fig.tight_layout()
        pdf.savefig(fig, dpi=dpi)
        plt.close(fig)

        fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
        spread = "mean ± std over seeds" if n_seeds > 1 else "one seed"
        lam, mean, sd = _by_penalty(table, "imagined_reward_penalised")
        axes[0].errorbar(lam, mean, yerr=sd, marker="o", capsize=3, label="penalised")
        lam, mean, sd = _by_penalty(table, "imagined_reward_unpenalised")
        axes[0].errorbar(lam, mean, yerr=sd, marker="s", capsize=3, label="unpenalised")
        axes[0].set_title("final imagined reward")
        axes[0].set_ylabel("mean reward per step")
        axes[0].legend(fontsize=8)
        lam, mean, sd = _by_penalty(table, "imagined_uncertainty")
        axes[1].errorbar(lam, mean, yerr=sd, marker="o", capsize=3, color="tab:purple")
        axes[1].set_title("mean epistemic uncertainty u in imagination")
        axes[1].set_ylabel("u [normalised state units]")
        lam, mean, sd = _by_penalty(table, "sim_return_mean")
        axes[2].errorbar(lam, mean, yerr=sd, marker="o", capsize=3, color="tab:green", label="policy")
        if "sim_return_mean_standing" in refs:
            axes[2].axhline(refs["sim_return_mean_standing"], color="0.5", ls="--", label="standing (zero action)")
        if "sim_return_mean_model_free" in refs:
            axes[2].axhline(refs["sim_return_mean_model_free"], color="tab:green", ls=":", label="model-free PPO")
        if "sim_return_mean_online" in refs:
            axes[2].axhline(refs["sim_return_mean_online"], color="tab:cyan", ls="-.", label="online RWM")
        if any(k in refs for k in ("sim_return_mean_standing", "sim_return_mean_model_free", "sim_return_mean_online")):
            axes[2].legend(fontsize=8)
        axes[2].set_title("true return in the MuJoCo simulator")
        axes[2].set_ylabel("episode return (unpenalised)")
        for ax in axes:
            ax.set_xlabel("uncertainty penalty λ")
            ax.grid(alpha=0.3)
        fig.suptitle(f"Penalty sweep ({spread})", fontsize=12)
        fig.tight_layout()
        pdf.savefig(fig, dpi=dpi)
        plt.close(fig)
        if gaps:
            _plot_gaps(pdf, gaps, dpi)


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
    pdf.savefig(fig, dpi=dpi)
    plt.close(fig)
