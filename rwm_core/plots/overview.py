"""Dataset overview: per-block histograms, a few seconds of time series, and the foot-contact pattern."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages

import rwm_core.plots  # noqa: F401  (selects the Agg backend)
from rwm_core.artifacts import atomic_path

_HIST_BLOCKS = (
    "base_lin_vel",
    "base_ang_vel",
    "projected_gravity",
    "joint_pos",
    "joint_vel",
    "joint_torque",
    "action",
)


def plot_overview(data: np.ndarray, task: Any, path: str | Path, seconds: float = 4.0, dpi: int = 120) -> None:
    """Three pages: distributions, time series of the first episode stretch, gait (contact) diagram."""
    layout = task.LAYOUT
    dt = task.STEP_DT
    n_show = max(2, min(len(data), int(round(seconds / dt))))
    t = np.arange(n_show) * dt
    with atomic_path(path) as tmp, PdfPages(tmp) as pdf:
        # Page 1: histograms per block
        fig, axes = plt.subplots(3, 3, figsize=(11, 8.5))
        for ax, name in zip(axes.flat, _HIST_BLOCKS, strict=False):
            block = data[:, layout.block(name)]
            elems = task.ELEMENT_NAMES.get(name, [])
            for i in range(block.shape[1]):
                label = elems[i] if i < len(elems) else str(i)
                ax.hist(block[:, i], bins=60, histtype="step", label=label if block.shape[1] <= 3 else None)
            ax.set_title(name.replace("_", " "))
            ax.set_xlabel(f"value [{layout.unit(name)}]")
            ax.set_ylabel("rows")
            if block.shape[1] <= 3:
                ax.legend(fontsize=7)
        ax = axes.flat[len(_HIST_BLOCKS)]
        duty = data[:, layout.block("foot_contact")].mean(0)
        thigh = data[:, layout.block("thigh_contact")].mean(0)
        x = np.arange(len(task.LEGS))
        ax.bar(x - 0.2, duty, 0.4, label="foot")
        ax.bar(x + 0.2, thigh, 0.4, label="thigh")
        ax.set_xticks(x, task.LEGS)
        ax.set_ylim(0, 1)
        ax.set_ylabel("fraction of rows in contact")
        ax.set_title("contact rates")
        ax.legend(fontsize=7)
        ax = axes.flat[len(_HIST_BLOCKS) + 1]
        term = data[:, layout.termination_column]
        ends = np.flatnonzero(term)
        lengths = np.diff(np.concatenate([[-1], ends])) * dt if len(ends) else np.array([len(data) * dt])
        ax.hist(lengths, bins=30)
        ax.set_xlabel("episode length [s]")
        ax.set_ylabel("episodes")
        ax.set_title(f"{len(ends)} terminations in {len(data)} rows")
        fig.suptitle("Dataset overview: distributions per column block", fontsize=13)
        fig.tight_layout()
        pdf.savefig(fig, dpi=dpi)
        plt.close(fig)

        # Page 2: time series
        seg = data[:n_show]
        fig, axes = plt.subplots(4, 1, figsize=(11, 8.5), sharex=True)
        for ax, name, idx in (
            (axes[0], "base_lin_vel", None),
            (axes[1], "base_ang_vel", None),
            (axes[2], "joint_pos", [0, 4, 8]),
            (axes[3], "joint_torque", [0, 4, 8]),
        ):
            block = seg[:, layout.block(name)]
            elems = task.ELEMENT_NAMES.get(name, [])
            for i in idx if idx is not None else range(block.shape[1]):
                ax.plot(t, block[:, i], label=elems[i] if i < len(elems) else str(i), lw=1)
            ax.set_ylabel(f"{name.replace('_', ' ')}\n[{layout.unit(name)}]")
            ax.legend(fontsize=7, loc="upper right", ncol=3)
            ax.grid(alpha=0.3)
        axes[-1].set_xlabel("time [s]")
        fig.suptitle(f"First {n_show * dt:.1f} s of the series (LF leg joints shown)", fontsize=13)
        fig.tight_layout()
        pdf.savefig(fig, dpi=dpi)
        plt.close(fig)

        # Page 3: gait diagram
        fig, ax = plt.subplots(figsize=(11, 3.5))
        feet = seg[:, layout.block("foot_contact")].T
        ax.imshow(
            feet,
            aspect="auto",
            cmap="Greys",
            interpolation="nearest",
            extent=(0, n_show * dt, len(task.LEGS), 0),
            vmin=0,
            vmax=1,
        )
        ax.set_yticks(np.arange(len(task.LEGS)) + 0.5, task.LEGS)
        ax.set_xlabel("time [s]")
        ax.set_ylabel("foot")
        ax.set_title("Foot-contact pattern (black = in contact)")
        fig.tight_layout()
        pdf.savefig(fig, dpi=dpi)
        plt.close(fig)
