"""The penalty sweep table: one row per (λ, seed) with imagined and true (simulator) outcomes, and its summary over
seeds (one row per method and λ).

Imagined figures are the mean over the last ``tail`` training iterations (single iterations are noisy); true
figures come from the policy's closed-loop evaluation in the MuJoCo simulator (``sim_eval.json``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rwm_core.artifacts import atomic_path
from rwm_core.errors import InputError

_DIR_RE = re.compile(r"lambda(?P<lam>[^_]+)_seed(?P<seed>\d+)$")
SWEEP_COLUMNS = (
    "method",  # mopo-ppo (in imagination, per λ), model-free-ppo (in the simulator), standing (zero action)
    "penalty",
    "seed",
    "iterations",
    "imagined_reward_penalised",
    "imagined_reward_unpenalised",
    "imagined_uncertainty",
    "imagined_episode_length",
    "sim_return_mean",
    "sim_return_std",
    "sim_fall_rate",
    "sim_lin_vel_error",
    "sim_yaw_rate_error",
    "sim_model_error_1",  # world-model relative error 1 / 8 steps ahead on the policy's simulator trajectories
    "sim_model_error_8",
)


def _sim_columns(sim: dict[str, Any]) -> dict[str, Any]:
    nan = float("nan")
    row = {
        "sim_return_mean": sim.get("return_mean", nan),
        "sim_return_std": sim.get("return_std", nan),
        "sim_fall_rate": sim.get("fall_rate", nan),
        "sim_lin_vel_error": sim.get("lin_vel_error", nan),
        "sim_yaw_rate_error": sim.get("yaw_rate_error", nan),
    }
    at = sim.get("model_error", {}).get("policy", {}).get("at", {})
    for k in ("1", "8"):
        v = at.get(k)
        row[f"sim_model_error_{k}"] = nan if v is None else float(v)
    return row


def reference_row(policy_dir: str | Path, method: str = "model-free-ppo") -> dict[str, Any]:
    """Summarise a `rwm train-ppo` or `rwm train-online` directory by its simulator score (no λ sweep figures)."""
    from rwm_core.loaders import load_json_file

    d = Path(policy_dir)
    metrics = pd.read_csv(d / "metrics.csv")
    manifest = d / "manifest.json"
    seed = load_json_file(manifest, "a stage manifest").get("seed") if manifest.exists() else None
    sim_path = d / "sim_eval.json"
    sim = load_json_file(sim_path, "a policy evaluation (rwm evaluate-policy)") if sim_path.exists() else {}
    return {
        "method": method,
        "penalty": float("nan"),
        "seed": -1 if seed is None else int(seed),
        "iterations": int(metrics["iteration"].max()),
        **_sim_columns(sim),
    }


def policy_row(policy_dir: str | Path, tail: int = 10) -> dict[str, Any]:
    """Summarise one policy directory (metrics.csv and sim_eval.json)."""
    d = Path(policy_dir)
    m = _DIR_RE.search(d.name)
    if not m:
        raise InputError(f"{d}: not a policy directory named lambda<λ>_seed<seed>")
    metrics = pd.read_csv(d / "metrics.csv")
    last = metrics.tail(tail)
    row: dict[str, Any] = {
        "method": "mopo-ppo",
        "penalty": float(m.group("lam")),
        "seed": int(m.group("seed")),
        "iterations": int(metrics["iteration"].max()),
        "imagined_reward_penalised": float(last["reward_penalised"].mean()),
        "imagined_reward_unpenalised": float(last["reward_unpenalised"].mean()),
        "imagined_uncertainty": float(last["uncertainty"].mean()),
        "imagined_episode_length": float(last["episode.length"].mean()),
    }
    sim_path = d / "sim_eval.json"
    sim = json.loads(sim_path.read_text()) if sim_path.exists() else {}
    row.update(_sim_columns(sim))
    return row


def term_gap(policy_dir: str | Path, tail: int = 10) -> pd.DataFrame:
    """Per reward term, the mean reward per step in imagination (last ``tail`` iterations) and in the simulator.

    Why: a policy that scores well in imagination and badly in the simulator exploits the world model; the terms
    where the two disagree say what the model gets wrong (e.g. thigh contacts it never predicts).
    Columns: term, imagined, simulator (weight * term * dt per step; NaN where a side has no value).
    """
    d = Path(policy_dir)
    metrics = pd.read_csv(d / "metrics.csv").tail(tail)
    sim_path = d / "sim_eval.json"
    sim = json.loads(sim_path.read_text()) if sim_path.exists() else {}
    sim_terms = sim.get("mean_terms", {})
    sim_len = sim.get("episode_length_mean", float("nan"))
    rows = []
    for col in metrics.columns:
        if not col.startswith("episode_reward."):
            continue
        name = col.split(".", 1)[1]
        # per-step rate of the ended episodes: Σ sums / Σ lengths, estimated per iteration then averaged
        imagined = float((metrics[col] / metrics["episode.length"]).mean())
        simulated = float(sim_terms[name]) / sim_len if name in sim_terms and sim_len else float("nan")
        rows.append({"term": name, "imagined": imagined, "simulator": simulated})
    return pd.DataFrame(rows, columns=["term", "imagined", "simulator"])


def sweep_table(
    policy_dirs: list[str | Path],
    tail: int = 10,
    model_free: list[str | Path] | tuple = (),
    online: list[str | Path] | tuple = (),
) -> pd.DataFrame:
    """MOPO-PPO rows sorted by (λ, seed), then the online RWM and model-free PPO policies, then standing (one row:
    every evaluation scores standing on the same episodes)."""
    rows = [policy_row(d, tail) for d in policy_dirs]
    rows.sort(key=lambda r: (r["penalty"], r["seed"]))
    rows += [reference_row(d, "online-rwm") for d in online]
    rows += [reference_row(d, "model-free-ppo") for d in model_free]
    rows += standing_rows([*policy_dirs, *online, *model_free])
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS)).reset_index(drop=True)


def standing_rows(policy_dirs: Iterable[str | Path]) -> list[dict[str, Any]]:
    """The standing (zero-action) row, from the first scored directory; none when no directory is scored yet.

    Why one row: every evaluation scores standing on the same simulator episodes, so all of them hold the same one.
    """
    for d in policy_dirs:
        sim_path = Path(d) / "sim_eval.json"
        if sim_path.exists():
            standing = json.loads(sim_path.read_text())["standing"]
            return [{"method": "standing", "penalty": float("nan"), "seed": -1, **_sim_columns(standing)}]
    return []


# what the summary over seeds holds per group: (column, source column of the sweep table, aggregation); "seed_std" is
# the sample standard deviation over seeds (NaN for one seed: no spread can be measured), "mean" skips missing values
SUMMARY_STATS = (
    ("n_seeds", "seed", "size"),
    ("sim_return_mean", "sim_return_mean", "mean"),
    ("sim_return_seed_std", "sim_return_mean", "std"),
    ("sim_return_seed_min", "sim_return_mean", "min"),
    ("sim_return_seed_max", "sim_return_mean", "max"),
    ("sim_fall_rate", "sim_fall_rate", "mean"),
    ("sim_lin_vel_error", "sim_lin_vel_error", "mean"),
    ("sim_yaw_rate_error", "sim_yaw_rate_error", "mean"),
    ("imagined_reward_penalised", "imagined_reward_penalised", "mean"),
    ("imagined_reward_penalised_seed_std", "imagined_reward_penalised", "std"),
    ("imagined_reward_unpenalised", "imagined_reward_unpenalised", "mean"),
    ("imagined_reward_unpenalised_seed_std", "imagined_reward_unpenalised", "std"),
    ("imagined_uncertainty", "imagined_uncertainty", "mean"),
    ("imagined_uncertainty_seed_std", "imagined_uncertainty", "std"),
    ("sim_model_error_1", "sim_model_error_1", "mean"),
)
SUMMARY_COLUMNS = ("method", "penalty", *(name for name, _, _ in SUMMARY_STATS))


def seed_summary(table: pd.DataFrame, by: Sequence[str] = ("method", "penalty")) -> pd.DataFrame:
    """One row per group of ``by`` (default: method and λ) of a table with one row per run: the number of seeds, the
    mean true return with its spread over seeds (std, min, max), and the mean fall rate, tracking errors and imagined
    rewards (with the spread of the imagined rewards).

    Why: one policy seed says little about a λ; what a sweep shows is the mean over seeds and how far they scatter.
    Groups keep the table's order; the reference rows (model-free PPO, online RWM, standing: λ is NaN) are groups of
    one.
    """
    by = list(by)
    spec = {name: (source, how) for name, source, how in SUMMARY_STATS}
    summary = table.groupby(by, sort=False, dropna=False).agg(**spec).reset_index()
    return summary[[*by, *(c for c in SUMMARY_COLUMNS if c not in by)]]


def write_sweep_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a sweep table (or its summary) atomically, with 6 significant digits."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


def sweep_inputs(policy_dirs: Iterable[str | Path]) -> list[Path]:
    """The files the sweep reads from each directory, in order: what its manifests list as inputs."""
    return [
        Path(d) / name for d in policy_dirs for name in ("metrics.csv", "sim_eval.json") if (Path(d) / name).exists()
    ]


Key = tuple[float, int]  # (λ, seed) of a MOPO-PPO run


@dataclass
class SweepFigureData:
    """What the sweep figure draws beside the table (:func:`rwm_core.plots.sweep.plot_penalty_sweep`)."""

    curves: dict[Key, pd.DataFrame] = field(default_factory=dict)  # metrics.csv per run
    gaps: dict[Key, pd.DataFrame] = field(default_factory=dict)  # term_gap per run
    true_curves: dict[Key, pd.DataFrame] = field(default_factory=dict)  # true return per scored checkpoint
    references: dict[str, float] = field(default_factory=dict)  # the table's attrs: reference lines of the figure


def sweep_figure_data(table: pd.DataFrame, policy_dirs: list[str | Path], tail: int = 10) -> SweepFigureData:
    """Load the training curves, reward-term gaps, true-return curves and reference returns of a sweep table.

    Why apart from :func:`sweep_table`: only the figure needs them, and the table alone stays cheap to write.
    ``references`` holds the mean true return of standing (over the runs' evaluations), of the model-free PPO
    and of the online RWM rows, where there are any: ``table.attrs`` for the figure.
    """
    data = SweepFigureData()
    standing = []
    for d in map(Path, policy_dirs):
        row = policy_row(d, tail)
        key = (row["penalty"], row["seed"])
        data.curves[key] = pd.read_csv(d / "metrics.csv")
        data.gaps[key] = term_gap(d, tail)
        sim = d / "sim_eval.json"
        if sim.exists():
            report = json.loads(sim.read_text())
            standing.append(report["standing"]["return_mean"])
            # the true return of every checkpoint (`rwm evaluate-policy --checkpoints`), when scored
            data.true_curves[key] = pd.DataFrame(report.get("checkpoints", []), columns=["iteration", "return_mean"])
    if standing:
        data.references["sim_return_mean_standing"] = float(sum(standing) / len(standing))
    for method, key in (("model-free-ppo", "sim_return_mean_model_free"), ("online-rwm", "sim_return_mean_online")):
        ref = table[table["method"] == method]["sim_return_mean"].dropna()
        if len(ref):
            data.references[key] = float(ref.mean())
    return data


def seed_curves(true_curves: dict[Key, pd.DataFrame]) -> pd.DataFrame:
    """The true return over training per λ across seeds: at each scored iteration, the number of seeds scored there
    and the mean, min and max of their true returns (columns penalty, iteration, n_seeds, return_mean, return_min,
    return_max; sorted by λ and iteration).

    Why: the seeds of one λ score their checkpoints at the same iterations (same config); the figure draws one line
    per λ with the seeds' range as a band instead of one line per run.
    """
    columns = ["penalty", "iteration", "n_seeds", "return_mean", "return_min", "return_max"]
    frames = [c.assign(penalty=lam) for (lam, _seed), c in sorted(true_curves.items()) if len(c)]
    if not frames:
        return pd.DataFrame(columns=columns)
    g = pd.concat(frames, ignore_index=True).groupby(["penalty", "iteration"])["return_mean"]
    out = g.agg(n_seeds="size", return_mean="mean", return_min="min", return_max="max").reset_index()
    return out[columns]
