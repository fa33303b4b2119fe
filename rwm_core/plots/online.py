"""RWM's figure of online training (MBPO-PPO): the model's error on fresh data and imagined against true reward."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages

import rwm_core.plots  # noqa: F401  (selects the Agg backend)
from rwm_core.artifacts import atomic_path


def _smooth(x: pd.Series, window: int) -> np.ndarray:
    return x.rolling(window, min_periods=1, center=True).mean().to_numpy()


def plot_online(metrics: pd.DataFrame, path: str | Path, dpi: int = 150, smooth: int = 5) -> None:
    """Left: 1- and 8-step relative error of the world model on each iteration's fresh real data, measured before
    the model learns from it. Right: imagined reward per step (dashed) and true reward per step of the real envs
    (solid). Warm-up iterations (model only) are shaded. Thin lines: per iteration; thick: a running mean."""
    it = metrics["iteration"].to_numpy()
    warm = metrics["warmup"].to_numpy().astype(bool) if "warmup" in metrics else np.zeros(len(it), bool)
    with atomic_path(path) as tmp, PdfPages(tmp) as pdf:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharex=True)
        for col, colour in (("model_error_1", "tab:blue"), ("model_error_8", "tab:red")):
            steps = col.rsplit("_", 1)[1]
            axes[0].plot(it, metrics[col], color=colour, lw=0.6, alpha=0.4)
            axes[0].plot(it, _smooth(metrics[col], smooth), color=colour, lw=2, label=f"{steps} step(s) ahead")
        axes[0].set_title("world-model error on fresh real data (before the update)")
        axes[0].set_ylabel("relative error (normalised)")
        axes[1].plot(it, metrics["true_reward"], color="tab:green", lw=0.6, alpha=0.4)
        axes[1].plot(it, _smooth(metrics["true_reward"], smooth), color="tab:green", lw=2, label="true (simulator)")
        axes[1].plot(it, metrics["imagined_reward"], color="tab:purple", lw=0.6, alpha=0.4, ls="--")
        axes[1].plot(
            it, _smooth(metrics["imagined_reward"], smooth), color="tab:purple", lw=2, ls="--", label="imagined"
        )
        axes[1].set_title("reward per step: imagined (dashed) and true (solid)")
        axes[1].set_ylabel("reward per step (unpenalised)")
        for ax in axes:
            if warm.any():
                ax.axvspan(it[warm].min() - 0.5, it[warm].max() + 0.5, color="0.85", label="warm-up (model only)")
            ax.set_xlabel("online iteration")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle("Online RWM (MBPO-PPO): model error on fresh real data, and imagined against true reward")
        fig.tight_layout()
        pdf.savefig(fig, dpi=dpi)
        plt.close(fig)
