"""RWM Fig. 3 and Fig. 4 at our scale: autoregressive predictions vs truth, and error vs horizon under noise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages

import rwm_core.plots  # noqa: F401  (selects the Agg backend)
from rwm_core.artifacts import atomic_path

# (block, element index within the block, label) shown per window: one signal per state block
_SIGNALS = (
    ("base_lin_vel", 0, "base lin. vel. x"),
    ("base_ang_vel", 2, "base ang. vel. z"),
    ("projected_gravity", 0, "projected gravity x"),
    ("joint_pos", 4, "joint pos. LF_HFE"),
    ("joint_vel", 8, "joint vel. LF_KFE"),
    ("joint_torque", 8, "joint torque LF_KFE"),
)


def plot_prediction(traces: dict[str, Any], task: Any, path: str | Path, dpi: int = 150) -> None:
    """One page per window: one panel per state block, truth vs ensemble mean with the members' spread."""
    lay = task.LAYOUT
    dt = task.STEP_DT
    h, horizon = traces["history"], traces["horizon"]
    t_hist = (np.arange(h) - h + 1) * dt
    t_pred = np.arange(1, horizon + 1) * dt
    with atomic_path(path) as tmp, PdfPages(tmp) as pdf:
        for w, start in enumerate(traces["window_starts"]):
            fig, axes = plt.subplots(3, 2, figsize=(11, 8.5), sharex=True)
            for ax, (block, idx, label) in zip(axes.flat, _SIGNALS, strict=True):
                col = lay.block(block).start + idx
                truth = traces["truth"][w, :, col]
                members = traces["members"][:, w, :, col]
                ax.plot(t_hist, truth[:h], color="0.5", lw=1, label="history (input)")
                ax.plot(t_pred, truth[h:], color="k", lw=1.3, label="ground truth")
                ax.fill_between(
                    t_pred,
                    members.min(0),
                    members.max(0),
                    color="tab:blue",
                    alpha=0.2,
                    label="ensemble members (range)",
                )
                ax.plot(t_pred, traces["mean"][w, :, col], color="tab:blue", lw=1.3, label="ensemble mean")
                ax.axvline(0, color="0.7", ls="--", lw=0.8)
                ax.set_title(label)
                ax.set_ylabel(lay.unit(block))
                ax.grid(alpha=0.3)
            for ax in axes[-1]:
                ax.set_xlabel("time from the last history step [s]")
            axes[0, 0].legend(fontsize=7, loc="best")
            fig.suptitle(
                f"Autoregressive prediction, held-out window starting at row {start} "
                f"(H = {h} history steps, {horizon} predicted steps)",
                fontsize=12,
            )
            fig.tight_layout()
            pdf.savefig(fig, dpi=dpi)
            plt.close(fig)


def plot_noise_robustness(report: dict[str, Any], path: str | Path, step_dt: float = 0.02, dpi: int = 150) -> None:
    """Relative autoregressive error against forecast step for each input-noise scale, with the hold baseline."""
    rel = report["relative_error"]
    steps = np.asarray(report["steps"])
    with atomic_path(path) as tmp, PdfPages(tmp) as pdf:
        fig, ax = plt.subplots(figsize=(8.5, 5.2))
        ax.plot(steps, rel["model"], color="k", lw=2, label="no noise")
        noise = rel.get("noise", {})
        cmap = plt.get_cmap("viridis")
        for i, (scale, curve) in enumerate(sorted(noise.items(), key=lambda kv: float(kv[0]))):
            ax.plot(steps, curve, color=cmap(i / max(1, len(noise) - 1)), lw=1.2, label=f"noise σ = {float(scale):g}")
        ax.plot(steps, rel["baseline_hold_last"], color="tab:red", ls="--", lw=1.2, label="hold last state")
        ax.set_xlabel(f"forecast step (× {step_dt * 1000:.0f} ms)")
        ax.set_ylabel("relative AR error  Σ|pred − true| / Σ|true|")
        ax.set_yscale("log")
        ax.set_title(
            f"Robustness to input noise ({report.get('n_windows', '?')} held-out windows)\n"
            "Gaussian noise of std σ on the states and actions fed to the model (normalised units)"
        )
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, ncol=2)
        fig.tight_layout()
        pdf.savefig(fig, dpi=dpi)
        plt.close(fig)
