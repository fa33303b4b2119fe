"""The dataset ablation (RWM-U Fig. 5): MOPO-PPO policies trained on world models of different dataset kinds, scored
in the simulator; one row per (kind, λ) with the true return's mean and spread over seeds.

Why its own table: the penalty sweep varies λ on one dataset; the ablation varies the dataset (random, medium, expert,
mixed, the trotting controller's), each with its own validated dataset and pretrained world model, at a few λ. The
rows are the sweep's (:func:`rwm_core.evaluation.sweep.policy_row`) with the kind in front, summarised over seeds by
:func:`rwm_core.evaluation.sweep.seed_summary`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from rwm_core.errors import InputError
from rwm_core.evaluation.sweep import SWEEP_COLUMNS, policy_row, reference_row, seed_summary, standing_rows

ABLATION_COLUMNS = ("kind", *SWEEP_COLUMNS)
Run = tuple[str, str | Path]  # (dataset kind, policy directory lambda<λ>_seed<s>)


def parse_run(spec: str) -> tuple[str, Path]:
    """``KIND=POLICY_DIR`` (how `rwm ablation` names a run) as (kind, directory)."""
    kind, sep, directory = spec.partition("=")
    if not sep or not kind or not directory:
        raise InputError(f"{spec!r}: expected KIND=POLICY_DIR (e.g. expert=path/to/lambda0_seed0)")
    return kind, Path(directory)


def ablation_runs(runs: Sequence[Run], tail: int = 10, model_free: Sequence[str | Path] = ()) -> pd.DataFrame:
    """One row per run (kind, then the sweep table's columns), kinds in the order given, each kind's runs by (λ, seed);
    then the model-free PPO rows and standing (kind empty), as in the sweep table."""
    order: dict[str, int] = {}
    rows = []
    for kind, d in runs:
        order.setdefault(kind, len(order))
        rows.append({"kind": kind, **policy_row(d, tail)})
    rows.sort(key=lambda r: (order[r["kind"]], r["penalty"], r["seed"]))
    rows += [{"kind": "", **reference_row(d, "model-free-ppo")} for d in model_free]
    rows += [{"kind": "", **row} for row in standing_rows([*(d for _, d in runs), *model_free])]
    return pd.DataFrame(rows, columns=list(ABLATION_COLUMNS)).reset_index(drop=True)


def ablation_table(per_run: pd.DataFrame) -> pd.DataFrame:
    """The ablation's CSV: :func:`ablation_runs` summarised over seeds per (kind, method, λ)."""
    return seed_summary(per_run, by=("kind", "method", "penalty"))
