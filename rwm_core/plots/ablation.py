"""The dataset ablation figure (RWM-U Fig. 5): the true return and fall rate of the policies of each dataset kind."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages

import rwm_core.plots  # noqa: F401  (selects the Agg backend)
from rwm_core.artifacts import atomic_path
from rwm_core.plots.sweep import RETURN_LABEL, category_axis, reference_lines, save_page, seed_dots


def plot_dataset_ablation(per_run: pd.DataFrame, table: pd.DataFrame, path: str | Path, dpi: int = 150) -> None:
    """One page: per dataset kind (a group of bars, one bar per λ), the true return in the simulator (mean ± std
    over seeds, each seed a dot; model-free PPO and standing as lines) and the fall rate (mean over seeds).

    ``per_run`` and ``table`` are :func:`rwm_core.evaluation.ablation.ablation_runs` and its
    :func:`~rwm_core.evaluation.ablation.ablation_table`.
    """
    runs = table[table["method"] == "mopo-ppo"]
    seeds = per_run[per_run["method"] == "mopo-ppo"]
    kinds = list(dict.fromkeys(runs["kind"]))
    lams = sorted(set(runs["penalty"]))
    refs = {
        f"sim_return_mean_{key}": float(row["sim_return_mean"])
        for key, method in (("model_free", "model-free-ppo"), ("standing", "standing"))
        for _, row in table[table["method"] == method].iterrows()
    }
    width = 0.8 / max(1, len(lams))
    colours = plt.get_cmap("viridis")(np.linspace(0.15, 0.75, max(1, len(lams))))
    n_seeds = int(runs["n_seeds"].max()) if len(runs) else 0
    with atomic_path(path) as tmp, PdfPages(tmp) as pdf:
        fig, axes = plt.subplots(1, 2, figsize=(14, 5.2), gridspec_kw={"width_ratios": [3, 2]})
        for j, (lam, colour) in enumerate(zip(lams, colours, strict=True)):
            shift = (j - (len(lams) - 1) / 2) * width
            at = runs[runs["penalty"] == lam].set_index("kind").reindex(kinds)  # a kind without this λ: a gap
            x = np.arange(len(kinds)) + shift
            sd = at["sim_return_seed_std"].fillna(0.0) if at["sim_return_seed_std"].notna().any() else None
            axes[0].bar(x, at["sim_return_mean"], width * 0.9, yerr=sd, capsize=3, color=colour, alpha=0.85,
                        label=f"λ = {lam:g}")  # fmt: skip
            axes[1].bar(x, at["sim_fall_rate"], width * 0.9, color=colour, alpha=0.85, label=f"λ = {lam:g}")
            for i, kind in enumerate(kinds):
                mine = seeds[(seeds["kind"] == kind) & (seeds["penalty"] == lam)]
                if len(mine) > 1:
                    seed_dots(axes[0], x[i], mine["sim_return_mean"], width=width * 0.5, color="k", alpha=0.6)
        reference_lines(axes[0], refs)
        axes[0].axhline(0.0, color="0.2", lw=0.6)
        axes[0].set_ylabel(RETURN_LABEL)
        axes[0].set_title("true return in the MuJoCo simulator" + (" (dots: seeds)" if n_seeds > 1 else ""))
        axes[1].set_ylabel("fraction of evaluation episodes that end in a fall")
        axes[1].set_ylim(0, 1.05)
        axes[1].set_title("fall rate" + (" (mean over seeds)" if n_seeds > 1 else ""))
        for ax in axes:
            category_axis(ax, kinds, "dataset kind (its own world model)")
            ax.grid(alpha=0.3, axis="y")
        axes[0].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
        spread = f"mean ± std over {n_seeds} seeds" if n_seeds > 1 else "one seed"
        fig.suptitle(f"Dataset ablation: MOPO-PPO policies trained on each dataset kind ({spread})", fontsize=11)
        fig.tight_layout()
        save_page(pdf, fig, dpi)
