"""The pipeline's stages as library calls: each runs one stage, writes its artifact's manifest and says what it did.

Why here and not in the CLI: a stage run from Python (a notebook, a test, another tool) must leave the same
provenance as `rwm <command>`. The CLI only parses arguments, calls one of these with the command line as an
:class:`Invocation`, and prints :attr:`StageResult.message`. Manifests are written last, through :func:`record`,
so a manifest on disk means a complete artifact (format and location: :mod:`rwm_core.artifacts.manifest`).
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from rwm_core.artifacts import write_manifest
from rwm_core.config import to_dict
from rwm_core.errors import RwmError

if TYPE_CHECKING:
    from rwm_core.config import (
        DatasetConfig,
        DynamicsConfig,
        EvaluationConfig,
        OnlineConfig,
        PolicyConfig,
        PPOConfig,
        SimConfig,
        TrackingConfig,
    )
    from rwm_core.plots.dispatch import FigureOptions

PathLike = str | Path


@dataclass(frozen=True)
class Invocation:
    """How a stage was started: the command line its manifest records (None from Python) and the start time."""

    command: list[str] | None = None
    started: float = field(default_factory=time.time)


@dataclass
class StageResult:
    """A stage's result (its report, summary or table), the lines to show a user and the manifests it wrote."""

    result: Any
    message: str
    warnings: list[str] = field(default_factory=list)
    manifests: list[Path] = field(default_factory=list)


def record(
    artifact: PathLike,
    *,
    stage: str,
    config: Any,
    inputs: list[Any],
    run: Invocation,
    seed: int | None = None,
    device: str = "cpu",
    outputs: list[PathLike] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``artifact``'s manifest; called last, so a manifest on disk means its artifact is complete."""
    return write_manifest(
        artifact,
        outputs=outputs,
        stage=stage,
        command=run.command,
        config=config,
        inputs=inputs,
        seed=seed,
        device=device,
        started=run.started,
        extra=extra,
    )


def summary_line(summary: dict[str, Any], keys: Sequence[str]) -> str:
    """``key=value; ...`` of the ``keys`` a summary has: the one line a training stage ends with."""
    return "; ".join(f"{k}={summary[k]}" for k in keys if k in summary)


def _device(name: str) -> str:
    """The device ``name`` resolves to (what a manifest records)."""
    from rwm_core.runtime import resolve_device

    return str(resolve_device(name))


@dataclass(frozen=True)
class TrainOptions:
    """How a training stage runs, as opposed to what it learns (its config section); every trainer takes these."""

    seed: int = 0
    device: str = "auto"  # 'auto' (CUDA when present), 'cpu' or 'cuda[:N]'
    resume: bool = False  # continue from the latest checkpoint in OUT
    progress: bool = True


def _record_training(
    out: Path,
    stage: str,
    cfg: Any,
    tracking: TrackingConfig,
    how: TrainOptions,
    summary: dict[str, Any],
    run: Invocation,
    *,
    inputs: list[Any],
    outputs: list[PathLike],
    device: str | None = None,
    **more: Any,
) -> Path:
    """A training manifest: besides the config, the tracking section, where it resumed from and the run's summary."""
    return record(
        out,
        stage=stage,
        config=to_dict(cfg),
        inputs=inputs,
        run=run,
        seed=how.seed,
        device=device or _device(how.device),
        outputs=outputs,
        extra={**more, "tracking": to_dict(tracking), "resumed_from": summary["resumed_from"], "summary": summary},
    )


# ---------------------------------------------------------------- data
def validate(
    data_dir: PathLike, out: PathLike, cfg: DatasetConfig, *, progress: bool = True, run: Invocation | None = None
) -> StageResult:
    """`rwm validate`: check a CSV directory and write the dataset artifact."""
    from rwm_core.data.io import STREAMS_FILE
    from rwm_core.data.validate import validate_dataset

    run = run or Invocation()
    report = validate_dataset(data_dir, out, cfg, progress=progress)
    data_dir = Path(data_dir)
    inputs: list[Any] = [{"path": str(data_dir / f["file"]), "sha256": f["sha256"]} for f in report["files"]]
    if (data_dir / STREAMS_FILE).exists():
        inputs.append(data_dir / STREAMS_FILE)
    manifest = record(out, stage="validate_dataset", config=to_dict(cfg), inputs=inputs, run=run)
    message = (
        f"validated {report['rows']} rows in {len(report['files'])} file(s): {report['episodes']} episode(s), "
        f"{report['valid_windows']} valid windows (H={report['history']}, F={report['forecast']}), "
        f"{len(report['warnings'])} warning(s) -> {out}"
    )
    return StageResult(report, message, warnings=list(report["warnings"]), manifests=[manifest])


def simulate(
    out: PathLike,
    cfg: SimConfig,
    *,
    rows: int | None = None,
    workers: int | None = None,
    seed: int = 1,
    progress: bool = True,
    run: Invocation | None = None,
) -> StageResult:
    """`rwm simulate`: controller data from the MuJoCo quadruped (``rows`` / ``workers`` default to ``cfg``'s)."""
    from rwm_core.data.io import STREAMS_FILE, list_data_files
    from rwm_core.sim.collect import simulate as collect

    run = run or Invocation()
    rows = rows if rows is not None else cfg.rows
    workers = workers if workers is not None else cfg.workers
    summary = collect(out, rows=rows, seed=seed, rows_per_file=cfg.rows_per_file, workers=workers, progress=progress)
    manifest = record(
        out,
        stage="simulate_dataset",
        config={**to_dict(cfg), "rows": rows, "workers": workers},
        inputs=[],
        run=run,
        seed=seed,
        outputs=[f.path for f in list_data_files(out)] + [Path(out) / STREAMS_FILE],
        extra={"summary": summary},
    )
    return StageResult(summary, json.dumps(summary, indent=2), manifests=[manifest])


def collect_ppo(
    policy: PathLike,
    kind: str,
    out: PathLike,
    rows: int,
    cfg: PPOConfig,
    *,
    seed: int = 0,
    envs: int = 64,
    medium_fraction: float = 0.3,
    progress: bool = True,
    run: Invocation | None = None,
) -> StageResult:
    """`rwm collect-ppo`: a random / medium / expert dataset from a checkpoint of a train-ppo run."""
    from rwm_core.policy.ppo import collect_dataset

    run = run or Invocation()
    summary = collect_dataset(
        policy, kind, out, rows, cfg, seed=seed, num_envs=envs, medium_fraction=medium_fraction, progress=progress
    )
    manifest = record(
        out,
        stage="collect_ppo_dataset",
        config={"ppo": to_dict(cfg), "kind": kind, "rows": rows, "medium_fraction": medium_fraction},
        inputs=[summary["checkpoint"]],
        run=run,
        seed=seed,
        extra={"summary": summary},
    )
    message = summary_line(summary, ["kind", "iteration", "files", "rows", "falls", "time_outs"])
    return StageResult(summary, message, manifests=[manifest])


# ---------------------------------------------------------------- world model
def pretrain(
    dataset: PathLike,
    out: PathLike,
    cfg: DynamicsConfig,
    tracking: TrackingConfig,
    how: TrainOptions | None = None,
    *,
    run: Invocation | None = None,
) -> StageResult:
    """`rwm pretrain`: train the ensemble GRU world model on a dataset artifact."""
    from rwm_core.dynamics.train import METRICS_FILE, MODEL_FILE
    from rwm_core.dynamics.train import pretrain as train

    how, run = how or TrainOptions(), run or Invocation()
    summary = train(dataset, out, cfg, tracking=tracking, **asdict(how))
    out = Path(out)
    outputs: list[PathLike] = [out / MODEL_FILE, out / METRICS_FILE]
    manifest = _record_training(
        out, "pretrain_dynamics", cfg, tracking, how, summary, run, inputs=[dataset], outputs=outputs
    )
    return StageResult(summary, json.dumps(summary, indent=2, default=str), manifests=[manifest])


def _dynamics_message(report: dict[str, Any], out: PathLike) -> str:
    s = report["summary"]
    at = ", ".join(f"step {step}: {s['model_at'][step]:.3f} vs {s['baseline_at'][step]:.3f}" for step in s["model_at"])
    return (
        f"relative AR error over {report['n_windows']} held-out windows x {report['horizon']} steps: model "
        f"{s['model_mean']:.3f} vs hold-last-state {s['baseline_mean']:.3f} ({at}); beats the baseline at every "
        f"step up to {s['compare_steps']}: {s['beats_baseline_every_step']} -> {out}"
    )


def _uncertainty_message(report: dict[str, Any], out: PathLike) -> str:
    sa, po = report["step_averaged"], report["pooled"]
    return (
        f"{report['windows']} windows x {report['steps']} steps: step-averaged Pearson {sa['pearson']:.3f} "
        f"Spearman {sa['spearman']:.3f}; pooled Pearson {po['pearson']:.3f} Spearman {po['spearman']:.3f}"
    )


class ModelStudy(NamedTuple):
    """A world-model study on held-out windows, as `rwm evaluate-<name>` runs it."""

    module: str  # where its function lives (imported when it runs: it needs torch)
    function: str
    stage: str  # the workflow rule (its manifest's stage)
    message: Callable[[dict[str, Any], PathLike], str]


MODEL_STUDIES = {
    "dynamics": ModelStudy(
        "rwm_core.evaluation.prediction", "evaluate_dynamics", "evaluate_dynamics", _dynamics_message
    ),
    "uncertainty": ModelStudy(
        "rwm_core.evaluation.uncertainty", "uncertainty_error", "evaluate_uncertainty", _uncertainty_message
    ),
}


def evaluate_model(
    study: str,
    model: PathLike,
    dataset: PathLike,
    out: PathLike,
    cfg: EvaluationConfig,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    device: str = "auto",
    run: Invocation | None = None,
) -> StageResult:
    """`rwm evaluate-dynamics` (``study="dynamics"``: autoregressive error against the hold-last-state baseline) and
    `rwm evaluate-uncertainty` (``"uncertainty"``: how well the epistemic uncertainty tracks that error).

    Why one function: both roll the model over the same held-out windows and record the same facts.
    """
    if study not in MODEL_STUDIES:
        raise RwmError(f"unknown world-model study {study!r}; known studies: {sorted(MODEL_STUDIES)}")
    spec, run = MODEL_STUDIES[study], run or Invocation()
    report = getattr(importlib.import_module(spec.module), spec.function)(
        model, dataset, out, cfg, val_fraction=val_fraction, seed=seed, device=device
    )
    manifest = record(
        out,
        stage=spec.stage,
        config=to_dict(cfg),
        inputs=[model, dataset],
        run=run,
        seed=seed,
        device=_device(device),
        extra={"val_fraction": val_fraction},
    )
    return StageResult(report, spec.message(report, out), manifests=[manifest])


# ---------------------------------------------------------------- policies
def train_policy(
    model: PathLike,
    dataset: PathLike,
    out: PathLike,
    cfg: PolicyConfig,
    tracking: TrackingConfig,
    how: TrainOptions | None = None,
    *,
    penalty: float = 0.0,
    run: Invocation | None = None,
) -> StageResult:
    """`rwm train-policy`: MOPO-PPO in imagination for one penalty λ."""
    from rwm_core.policy.train import OUTPUT_FILES
    from rwm_core.policy.train import train_policy as train

    how, run = how or TrainOptions(), run or Invocation()
    summary = train(model, dataset, out, cfg, penalty=penalty, tracking=tracking, **asdict(how))
    out = Path(out)
    manifest = _record_training(
        out, "train_policy", cfg, tracking, how, summary, run, inputs=[model, dataset],
        outputs=[out / name for name in OUTPUT_FILES], device=summary["device"], penalty=penalty,
    )  # fmt: skip
    keys = [
        "penalty",
        "seed",
        "iterations",
        "resumed_from",
        "reward_penalised",
        "reward_unpenalised",
        "uncertainty",
        "env_steps_per_s",
    ]
    return StageResult(summary, summary_line(summary, keys), manifests=[manifest])


def _policy_outputs(out: Path, *more: str) -> list[PathLike]:
    """What a PPO trainer leaves in ``out``: the exported actor, its final checkpoint and metrics, and ``more``."""
    from rwm_core.policy.export import JIT_FILE, ONNX_FILE
    from rwm_core.policy.train import FINAL_CHECKPOINT, METRICS_FILE

    return [out / name for name in (JIT_FILE, ONNX_FILE, FINAL_CHECKPOINT, METRICS_FILE, *more)]


def train_ppo(
    out: PathLike,
    cfg: PPOConfig,
    tracking: TrackingConfig,
    how: TrainOptions | None = None,
    *,
    run: Invocation | None = None,
) -> StageResult:
    """`rwm train-ppo`: model-free PPO in the batched simulator (and, with record_envs, the `mixed` dataset)."""
    from rwm_core.policy.ppo import EXPERIENCE_DIR
    from rwm_core.policy.ppo import train_ppo as train

    how, run = how or TrainOptions(), run or Invocation()
    summary = train(out, cfg, tracking=tracking, **asdict(how))
    out = Path(out)
    outputs = _policy_outputs(out, *([EXPERIENCE_DIR] if cfg.record_envs else []))
    manifest = _record_training(out, "train_ppo", cfg, tracking, how, summary, run, inputs=[], outputs=outputs)
    keys = ["seed", "iterations", "resumed_from", "reward", "episode.length", "env_steps_per_s"]
    return StageResult(summary, summary_line(summary, keys), manifests=[manifest])


def train_online(
    model: PathLike,
    dataset: PathLike,
    out: PathLike,
    cfg: OnlineConfig,
    tracking: TrackingConfig,
    how: TrainOptions | None = None,
    *,
    run: Invocation | None = None,
) -> StageResult:
    """`rwm train-online`: online RWM (MBPO-PPO), the simulator in the loop and the world model refined."""
    from rwm_core.policy.online import MODEL_FILE
    from rwm_core.policy.online import train_online as train

    how, run = how or TrainOptions(), run or Invocation()
    summary = train(model, dataset, out, cfg, tracking=tracking, **asdict(how))
    out = Path(out)
    inputs = [model, dataset] + ([cfg.init_policy] if cfg.init_policy else [])
    outputs = _policy_outputs(out, MODEL_FILE)
    manifest = _record_training(out, "train_online", cfg, tracking, how, summary, run, inputs=inputs, outputs=outputs)
    keys = ["seed", "iterations", "resumed_from", "true_reward", "imagined_reward", "model_error_1", "model_error_8"]
    return StageResult(summary, summary_line(summary, keys), manifests=[manifest])


# the workflow rule that scores a policy directory, by the stage that trained it
_EVALUATION_STAGE = {"train_ppo": "evaluate_ppo", "train_online": "evaluate_online"}


def evaluate_policy(
    policy: PathLike,
    out: PathLike,
    cfg: PolicyConfig,
    *,
    seed: int = 0,
    backend: str = "torchscript",
    model: PathLike | None = None,
    checkpoints: bool = False,
    workers: int = 1,
    progress: bool = True,
    run: Invocation | None = None,
) -> StageResult:
    """`rwm evaluate-policy`: a policy directory's true return in the simulator, next to standing's."""
    from rwm_core.evaluation.policy import EVAL_CONFIG_KEYS, evaluate_policy_dir
    from rwm_core.policy.export import JIT_FILE, ONNX_FILE

    run = run or Invocation()
    r = evaluate_policy_dir(
        policy, out, cfg, seed=seed, backend=backend, progress=progress, model=model, checkpoints=checkpoints,
        workers=workers,
    )  # fmt: skip
    trained_by = Path(policy) / "manifest.json"
    trainer = json.loads(trained_by.read_text()).get("stage") if trained_by.exists() else None
    manifest = record(
        out,
        stage=_EVALUATION_STAGE.get(trainer, "evaluate_policy"),
        config={k: getattr(cfg, k) for k in EVAL_CONFIG_KEYS},
        inputs=[Path(policy) / (JIT_FILE if backend == "torchscript" else ONNX_FILE)]
        + ([Path(model)] if model else [])
        + [Path(c["path"]) for c in r.get("checkpoints", [])],
        run=run,
        seed=seed,
        extra={"backend": backend, "checkpoints": checkpoints},
    )
    return StageResult(r, "\n".join(_policy_lines(r)), manifests=[manifest])


def _policy_lines(r: dict[str, Any]) -> list[str]:
    lines = [
        f"true return {r['return_mean']:.3f} ± {r['return_std']:.3f} (standing: {r['standing']['return_mean']:.3f}), "
        f"fall rate {r['fall_rate']:.2f}, lin. vel. error {r['lin_vel_error']:.3f} m/s, "
        f"yaw-rate error {r['yaw_rate_error']:.3f} rad/s over {r['episodes']} episodes"
    ]
    falls = {k: n for k, n in r.get("fall_causes", {}).items() if n}
    if falls:
        lines.append("falls by cause (one fall can have several): " + ", ".join(f"{k} {n}" for k, n in falls.items()))
    if "model_error" in r:
        me = r["model_error"]

        def fmt(e: dict) -> str:
            return " / ".join("-" if v is None else f"{v:.3f}" for v in e["at"].values())

        steps = " / ".join(me["policy"]["at"])
        lines.append(
            f"world-model relative error at steps {steps} on the policy's trajectories: {fmt(me['policy'])} "
            f"({me['policy']['n_windows']} windows); on standing's: {fmt(me['standing'])}"
        )
    if r.get("checkpoints"):
        lines.append(
            "true return by checkpoint: "
            + ", ".join(f"it {c['iteration']}: {c['return_mean']:.2f}" for c in r["checkpoints"])
        )
    return lines


# ---------------------------------------------------------------- tables and figures
def sweep(
    policies: Sequence[PathLike],
    *,
    model_free: Sequence[PathLike] = (),
    online: Sequence[PathLike] = (),
    out_csv: PathLike | None = None,
    out_summary: PathLike | None = None,
    out_pdf: PathLike | None = None,
    tail: int = 10,
    dpi: int = 150,
    run: Invocation | None = None,
) -> StageResult:
    """`rwm sweep`: the penalty sweep table (CSV), its summary over seeds (CSV) and figure (PDF), each with its
    manifest; the message shows the table and the summary."""
    from rwm_core.evaluation.sweep import seed_summary, sweep_figure_data, sweep_inputs, sweep_table, write_sweep_csv

    if not out_csv and not out_summary and not out_pdf:
        raise RwmError("nothing to write: give --out-csv, --out-summary, --out-pdf or any of them")
    run = run or Invocation()
    dirs, model_free, online = [Path(d) for d in policies], [Path(d) for d in model_free], [Path(d) for d in online]
    inputs = sweep_inputs([*dirs, *online, *model_free])
    table = sweep_table(dirs, tail=tail, model_free=model_free, online=online)
    summary = seed_summary(table)
    manifests = []
    for out, df in ((out_csv, table), (out_summary, summary)):
        if out:
            write_sweep_csv(df, out)
            manifests.append(record(out, stage="penalty_sweep", config={"tail": tail}, inputs=inputs, run=run))
    if out_pdf:
        from rwm_core.plots.sweep import plot_penalty_sweep

        data = sweep_figure_data(table, dirs, tail)
        table.attrs.update(data.references)
        plot_penalty_sweep(table, data.curves, out_pdf, dpi=dpi, gaps=data.gaps, true_curves=data.true_curves)
        config = {"tail": tail, "dpi": dpi}
        manifests.append(record(out_pdf, stage="plot_penalty_sweep", config=config, inputs=inputs, run=run))
    message = f"{_table_text(table)}\n\nsummary over seeds (per method and λ):\n{_table_text(summary)}"
    return StageResult(table, message, manifests=manifests)


def _table_text(df: Any) -> str:
    """A table as the sweep commands print it (4 significant digits)."""
    return df.to_string(index=False, float_format=lambda x: f"{x:.4g}")


def ablation(
    runs: Sequence[tuple[str, PathLike]],
    *,
    model_free: Sequence[PathLike] = (),
    out_csv: PathLike | None = None,
    out_pdf: PathLike | None = None,
    tail: int = 10,
    dpi: int = 150,
    run: Invocation | None = None,
) -> StageResult:
    """`rwm ablation`: the dataset ablation's table (one row per kind and λ, over seeds) and figure, with manifests.

    ``runs`` are (dataset kind, policy directory) pairs; their order gives the kinds' order.
    """
    from rwm_core.evaluation.ablation import ablation_runs, ablation_table
    from rwm_core.evaluation.sweep import sweep_inputs, write_sweep_csv

    if not out_csv and not out_pdf:
        raise RwmError("nothing to write: give --out-csv, --out-pdf or both")
    run = run or Invocation()
    runs = [(kind, Path(d)) for kind, d in runs]
    model_free = [Path(d) for d in model_free]
    inputs = sweep_inputs([*(d for _, d in runs), *model_free])
    per_run = ablation_runs(runs, tail=tail, model_free=model_free)
    table = ablation_table(per_run)
    config = {"tail": tail, "kinds": list(dict.fromkeys(kind for kind, _ in runs))}
    manifests = []
    if out_csv:
        write_sweep_csv(table, out_csv)
        manifests.append(record(out_csv, stage="ablation_table", config=config, inputs=inputs, run=run))
    if out_pdf:
        from rwm_core.plots.ablation import plot_dataset_ablation

        plot_dataset_ablation(per_run, table, out_pdf, dpi=dpi)
        config = {**config, "dpi": dpi}
        manifests.append(record(out_pdf, stage="plot_dataset_ablation", config=config, inputs=inputs, run=run))
    return StageResult(table, _table_text(table), manifests=manifests)


def plot(
    figure: str, out: PathLike, options: FigureOptions | None = None, *, run: Invocation | None = None
) -> StageResult:
    """`rwm plot FIGURE`: draw one evaluation figure (:data:`rwm_core.plots.dispatch.FIGURES`) into ``out``."""
    from rwm_core.plots.dispatch import draw_figure

    run = run or Invocation()
    drawn = draw_figure(figure, out, options)
    manifest = record(out, stage=drawn.stage, config=drawn.config, inputs=drawn.inputs, run=run, seed=drawn.seed)
    return StageResult(drawn, f"wrote {out}", manifests=[manifest])
