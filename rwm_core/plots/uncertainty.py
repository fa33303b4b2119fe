"""RWM-U Fig. 3 at our scale: epistemic uncertainty and prediction error along the forecast horizon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages

import rwm_core.plots  # noqa: F401  (selects the Agg backend)
from rwm_core.artifacts import atomic_path


def plot_uncertainty_error(report: dict[str, Any], path: str | Path, step_dt: float = 0.02, dpi: int = 150) -> None:
    """Page 1: error and uncertainty against forecast step (two y axes). Page 2: scatter of all pairs with a fit."""
    err = np.asarray(report["per_step_error"])
    unc = np.asarray(report["per_step_uncertainty"])
    err_sd = np.asarray(report["per_step_error_std"])
    unc_sd = np.asarray(report["per_step_uncertainty_std"])
    steps = np.arange(1, len(err) + 1)
    sa, po = report["step_averaged"], report["pooled"]
    with atomic_path(path) as tmp, PdfPages(tmp) as pdf:
        fig, ax1 = plt.subplots(figsize=(8, 4.8))
        c1, c2 = "tab:red", "tab:blue"
        ax1.plot(steps, err, color=c1, label="prediction error")
        ax1.fill_between(steps, err - err_sd, err + err_sd, color=c1, alpha=0.15)
        ax1.set_xlabel(f"forecast step (× {step_dt * 1000:.0f} ms)")
        ax1.set_ylabel("prediction error, L1 over state dims [normalised]", color=c1)
        ax1.tick_params(axis="y", labelcolor=c1)
        ax2 = ax1.twinx()
        ax2.plot(steps, unc, color=c2, label="epistemic uncertainty")
        ax2.fill_between(steps, np.maximum(unc - unc_sd, 0), unc + unc_sd, color=c2, alpha=0.15)
        ax2.set_ylabel("epistemic uncertainty, Σ std over members [normalised]", color=c2)
        ax2.tick_params(axis="y", labelcolor=c2)
        lines = ax1.get_lines()[:1] + ax2.get_lines()[:1]
        ax1.legend(lines, [ln.get_label() for ln in lines], loc="upper left")
        ax1.set_title(
            f"Uncertainty vs error over {report['windows']} held-out windows × {report['steps']} steps\n"
            f"step-averaged Pearson r = {sa['pearson']:.2f}, Spearman ρ = {sa['spearman']:.2f}"
        )
        ax1.grid(alpha=0.3)
        fig.tight_layout()
        pdf.savefig(fig, dpi=dpi)
        plt.close(fig)

        pts = np.asarray(report.get("scatter_sample") or np.zeros((0, 2)))
        fig, ax = plt.subplots(figsize=(6.5, 5))
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.3, color="tab:gray", label="window-steps (sample)")
            if np.std(pts[:, 0]) > 0:
                slope, intercept = np.polyfit(pts[:, 0], pts[:, 1], 1)
                xs = np.linspace(pts[:, 0].min(), pts[:, 0].max(), 50)
                ax.plot(xs, slope * xs + intercept, color="k", label=f"least-squares fit (slope {slope:.2f})")
        ax.set_xlabel("epistemic uncertainty [normalised]")
        ax.set_ylabel("prediction error [normalised]")
        ax.set_title(f"All window-steps: Pearson r = {po['pearson']:.2f}, Spearman ρ = {po['spearman']:.2f}")
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        pdf.savefig(fig, dpi=dpi)
        plt.close(fig)
