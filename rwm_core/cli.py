"""`rwm <command>`: argument parsing only; every command is one library call.

Each stage takes its config section as ``--params JSON`` (what the Snakemake rules pass); keys left out keep the
defaults of :mod:`rwm_core.config`, which equal the shipped ``config.yaml``. Every command that writes an artifact
ends by writing its manifest through :func:`_record` (format and location: :mod:`rwm_core.artifacts`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rwm_core import __version__
from rwm_core.errors import RwmError

PARAMS_HELP = (
    "JSON object (or @file.json) overriding keys of the config section {section!r}; "
    "omitted keys keep the defaults of config.yaml"
)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _add(sub: Any, name: str, func: Callable[[argparse.Namespace], int], help: str, description: str) -> Any:
    p = sub.add_parser(name, help=help, description=description, formatter_class=_Formatter)
    p.set_defaults(func=func)
    return p


def _add_model_evaluation_args(p: argparse.ArgumentParser) -> None:
    """Arguments shared by the world-model studies (held-out windows of a dataset artifact)."""
    p.add_argument("--model", required=True, help="world-model checkpoint (ours or upstream format)")
    p.add_argument("--dataset", required=True, help="dataset artifact directory")
    p.add_argument("--out", required=True, help="output JSON file")
    p.add_argument("--params", default=None, help=PARAMS_HELP.format(section="evaluation"))
    p.add_argument("--val-fraction", type=float, default=0.1, help="held-out fraction (as in pretraining)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda[:N]'")


def _record(
    args: argparse.Namespace,
    artifact: str | Path,
    *,
    stage: str,
    config: Any,
    inputs: list[Any],
    seed: int | None = None,
    device: str = "cpu",
    outputs: list[str | Path] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``artifact``'s manifest; called last, so a manifest on disk means its artifact is complete."""
    from rwm_core.artifacts import write_manifest

    write_manifest(
        artifact,
        outputs=outputs,
        stage=stage,
        command=["rwm", *args.argv],
        config=config,
        inputs=inputs,
        seed=seed,
        device=device,
        started=args.started,
        extra=extra,
    )


def _device(name: str) -> str:
    """The device a command resolved ``--device`` to (what its manifest records)."""
    from rwm_core.runtime import resolve_device

    return str(resolve_device(name))


def _print_summary(summary: dict[str, Any], keys: Sequence[str]) -> None:
    parts = [f"{k}={summary[k]}" for k in keys if k in summary]
    print("; ".join(parts))


# ---------------------------------------------------------------- commands
def cmd_validate(args: argparse.Namespace) -> int:
    from rwm_core.config import DatasetConfig, parse_params, to_dict
    from rwm_core.data.io import STREAMS_FILE
    from rwm_core.data.validate import validate_dataset

    cfg = parse_params(DatasetConfig, args.params, "dataset")
    report = validate_dataset(args.data_dir, args.out, cfg, progress=not args.quiet)
    data_dir = Path(args.data_dir)
    inputs: list[Any] = [{"path": str(data_dir / f["file"]), "sha256": f["sha256"]} for f in report["files"]]
    if (data_dir / STREAMS_FILE).exists():
        inputs.append(data_dir / STREAMS_FILE)
    _record(args, args.out, stage="validate_dataset", config=to_dict(cfg), inputs=inputs)
    print(
        f"validated {report['rows']} rows in {len(report['files'])} file(s): {report['episodes']} episode(s), "
        f"{report['valid_windows']} valid windows (H={report['history']}, F={report['forecast']}), "
        f"{len(report['warnings'])} warning(s) -> {args.out}"
    )
    for w in report["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from rwm_core.config import SimConfig, parse_params, to_dict
    from rwm_core.data.io import STREAMS_FILE, list_data_files
    from rwm_core.sim.collect import simulate

    cfg = parse_params(SimConfig, args.params, "dataset.sim")
    rows = args.rows if args.rows is not None else cfg.rows
    workers = args.workers if args.workers is not None else cfg.workers
    summary = simulate(
        args.out,
        rows=rows,
        seed=args.seed,
        rows_per_file=cfg.rows_per_file,
        workers=workers,
        progress=not args.quiet,
    )
    _record(
        args,
        args.out,
        stage="simulate_dataset",
        config={**to_dict(cfg), "rows": rows, "workers": workers},
        inputs=[],
        seed=args.seed,
        outputs=[f.path for f in list_data_files(args.out)] + [Path(args.out) / STREAMS_FILE],
        extra={"summary": summary},
    )
    print(json.dumps(summary, indent=2))
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from rwm_core.config import DynamicsConfig, TrackingConfig, parse_params, to_dict
    from rwm_core.dynamics.train import METRICS_FILE, MODEL_FILE, pretrain

    cfg = parse_params(DynamicsConfig, args.params, "dynamics")
    tracking = parse_params(TrackingConfig, args.tracking, "tracking")
    summary = pretrain(
        args.dataset,
        args.out,
        cfg,
        tracking=tracking,
        seed=args.seed,
        device=args.device,
        resume=args.resume,
        progress=not args.quiet,
    )
    out = Path(args.out)
    _record(
        args,
        out,
        stage="pretrain_dynamics",
        config=to_dict(cfg),
        inputs=[args.dataset],
        seed=args.seed,
        device=_device(args.device),
        outputs=[out / MODEL_FILE, out / METRICS_FILE],
        extra={"tracking": to_dict(tracking), "resumed_from": summary["resumed_from"], "summary": summary},
    )
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_evaluate_dynamics(args: argparse.Namespace) -> int:
    from rwm_core.config import EvaluationConfig, parse_params, to_dict
    from rwm_core.evaluation.prediction import evaluate_dynamics

    cfg = parse_params(EvaluationConfig, args.params, "evaluation")
    report = evaluate_dynamics(
        args.model, args.dataset, args.out, cfg, val_fraction=args.val_fraction, seed=args.seed, device=args.device
    )
    _record(
        args,
        args.out,
        stage="evaluate_dynamics",
        config=to_dict(cfg),
        inputs=[args.model, args.dataset],
        seed=args.seed,
        device=_device(args.device),
        extra={"val_fraction": args.val_fraction},
    )
    s = report["summary"]
    k = s["compare_steps"]
    at = ", ".join(f"step {step}: {s['model_at'][step]:.3f} vs {s['baseline_at'][step]:.3f}" for step in s["model_at"])
    print(
        f"relative AR error over {report['n_windows']} held-out windows x {report['horizon']} steps: model "
        f"{s['model_mean']:.3f} vs hold-last-state {s['baseline_mean']:.3f} ({at}); beats the baseline at every "
        f"step up to {k}: {s['beats_baseline_every_step']} -> {args.out}"
    )
    return 0


def cmd_train_policy(args: argparse.Namespace) -> int:
    from rwm_core.config import PolicyConfig, TrackingConfig, parse_params, to_dict
    from rwm_core.policy.train import OUTPUT_FILES, train_policy

    cfg = parse_params(PolicyConfig, args.params, "policy")
    tracking = parse_params(TrackingConfig, args.tracking, "tracking")
    summary = train_policy(
        args.model,
        args.dataset,
        args.out,
        cfg,
        penalty=args.penalty,
        seed=args.seed,
        device=args.device,
        resume=args.resume,
        tracking=tracking,
        progress=not args.quiet,
    )
    out = Path(args.out)
    _record(
        args,
        out,
        stage="train_policy",
        config=to_dict(cfg),
        inputs=[args.model, args.dataset],
        seed=args.seed,
        device=summary["device"],
        outputs=[out / name for name in OUTPUT_FILES],
        extra={
            "penalty": args.penalty,
            "tracking": to_dict(tracking),
            "resumed_from": summary["resumed_from"],
            "summary": summary,
        },
    )
    _print_summary(
        summary,
        [
            "penalty",
            "seed",
            "iterations",
            "resumed_from",
            "reward_penalised",
            "reward_unpenalised",
            "uncertainty",
            "env_steps_per_s",
        ],
    )
    return 0


def cmd_train_ppo(args: argparse.Namespace) -> int:
    from rwm_core.config import PPOConfig, TrackingConfig, parse_params, to_dict
    from rwm_core.policy.export import JIT_FILE, ONNX_FILE
    from rwm_core.policy.ppo import EXPERIENCE_DIR, train_ppo
    from rwm_core.policy.train import FINAL_CHECKPOINT, METRICS_FILE

    cfg = parse_params(PPOConfig, args.params, "ppo")
    tracking = parse_params(TrackingConfig, args.tracking, "tracking")
    summary = train_ppo(
        args.out, cfg, seed=args.seed, device=args.device, resume=args.resume, tracking=tracking,
        progress=not args.quiet,
    )  # fmt: skip
    out = Path(args.out)
    outputs = [out / name for name in (JIT_FILE, ONNX_FILE, FINAL_CHECKPOINT, METRICS_FILE)]
    if cfg.record_envs:
        outputs.append(out / EXPERIENCE_DIR)
    _record(
        args,
        out,
        stage="train_ppo",
        config=to_dict(cfg),
        inputs=[],
        seed=args.seed,
        device=_device(args.device),
        outputs=outputs,
        extra={"tracking": to_dict(tracking), "resumed_from": summary["resumed_from"], "summary": summary},
    )
    _print_summary(summary, ["seed", "iterations", "resumed_from", "reward", "episode.length", "env_steps_per_s"])
    return 0


def cmd_train_online(args: argparse.Namespace) -> int:
    from rwm_core.config import OnlineConfig, TrackingConfig, parse_params, to_dict
    from rwm_core.policy.export import JIT_FILE, ONNX_FILE
    from rwm_core.policy.online import MODEL_FILE, train_online
    from rwm_core.policy.train import FINAL_CHECKPOINT, METRICS_FILE

    cfg = parse_params(OnlineConfig, args.params, "online")
    tracking = parse_params(TrackingConfig, args.tracking, "tracking")
    summary = train_online(
        args.model, args.dataset, args.out, cfg, seed=args.seed, device=args.device, resume=args.resume,
        tracking=tracking, progress=not args.quiet,
    )  # fmt: skip
    out = Path(args.out)
    _record(
        args,
        out,
        stage="train_online",
        config=to_dict(cfg),
        inputs=[args.model, args.dataset] + ([cfg.init_policy] if cfg.init_policy else []),
        seed=args.seed,
        device=_device(args.device),
        outputs=[out / name for name in (JIT_FILE, ONNX_FILE, FINAL_CHECKPOINT, METRICS_FILE, MODEL_FILE)],
        extra={"tracking": to_dict(tracking), "resumed_from": summary["resumed_from"], "summary": summary},
    )
    _print_summary(
        summary,
        ["seed", "iterations", "resumed_from", "true_reward", "imagined_reward", "model_error_1", "model_error_8"],
    )
    return 0


def cmd_collect_ppo(args: argparse.Namespace) -> int:
    from rwm_core.config import PPOConfig, parse_params, to_dict
    from rwm_core.policy.ppo import collect_dataset

    cfg = parse_params(PPOConfig, args.params, "ppo")
    summary = collect_dataset(
        args.policy, args.kind, args.out, args.rows, cfg, seed=args.seed, num_envs=args.envs,
        medium_fraction=args.medium_fraction, progress=not args.quiet,
    )  # fmt: skip
    _record(
        args,
        args.out,
        stage="collect_ppo_dataset",
        config={"ppo": to_dict(cfg), "kind": args.kind, "rows": args.rows, "medium_fraction": args.medium_fraction},
        inputs=[summary["checkpoint"]],
        seed=args.seed,
        extra={"summary": summary},
    )
    _print_summary(summary, ["kind", "iteration", "files", "rows", "falls", "time_outs"])
    return 0


def cmd_evaluate_uncertainty(args: argparse.Namespace) -> int:
    from rwm_core.config import EvaluationConfig, parse_params, to_dict
    from rwm_core.evaluation.uncertainty import uncertainty_error

    cfg = parse_params(EvaluationConfig, args.params, "evaluation")
    report = uncertainty_error(
        args.model, args.dataset, args.out, cfg, val_fraction=args.val_fraction, seed=args.seed, device=args.device
    )
    _record(
        args,
        args.out,
        stage="evaluate_uncertainty",
        config=to_dict(cfg),
        inputs=[args.model, args.dataset],
        seed=args.seed,
        device=_device(args.device),
        extra={"val_fraction": args.val_fraction},
    )
    sa, po = report["step_averaged"], report["pooled"]
    print(
        f"{report['windows']} windows x {report['steps']} steps: step-averaged Pearson {sa['pearson']:.3f} "
        f"Spearman {sa['spearman']:.3f}; pooled Pearson {po['pearson']:.3f} Spearman {po['spearman']:.3f}"
    )
    return 0


def cmd_evaluate_policy(args: argparse.Namespace) -> int:
    from rwm_core.config import PolicyConfig, parse_params
    from rwm_core.evaluation.policy import EVAL_CONFIG_KEYS, evaluate_policy_dir
    from rwm_core.policy.export import JIT_FILE, ONNX_FILE

    cfg = parse_params(PolicyConfig, args.params, "policy")
    r = evaluate_policy_dir(
        args.policy,
        args.out,
        cfg,
        seed=args.seed,
        backend=args.backend,
        progress=not args.quiet,
        model=args.model,
        checkpoints=args.checkpoints,
    )
    # the workflow rule that scores this kind of policy directory (by the stage that trained it)
    trained_by = Path(args.policy) / "manifest.json"
    trainer = json.loads(trained_by.read_text()).get("stage") if trained_by.exists() else None
    stage = {"train_ppo": "evaluate_ppo", "train_online": "evaluate_online"}.get(trainer, "evaluate_policy")
    _record(
        args,
        args.out,
        stage=stage,
        config={k: getattr(cfg, k) for k in EVAL_CONFIG_KEYS},
        inputs=[Path(args.policy) / (JIT_FILE if args.backend == "torchscript" else ONNX_FILE)]
        + ([Path(args.model)] if args.model else [])
        + [Path(c["path"]) for c in r.get("checkpoints", [])],
        seed=args.seed,
        extra={"backend": args.backend, "checkpoints": args.checkpoints},
    )
    print(
        f"true return {r['return_mean']:.3f} ± {r['return_std']:.3f} (standing: {r['standing']['return_mean']:.3f}), "
        f"fall rate {r['fall_rate']:.2f}, lin. vel. error {r['lin_vel_error']:.3f} m/s, "
        f"yaw-rate error {r['yaw_rate_error']:.3f} rad/s over {r['episodes']} episodes"
    )
    if "model_error" in r:
        me = r["model_error"]

        def fmt(e: dict) -> str:
            return " / ".join("-" if v is None else f"{v:.3f}" for v in e["at"].values())

        steps = " / ".join(me["policy"]["at"])
        print(
            f"world-model relative error at steps {steps} on the policy's trajectories: {fmt(me['policy'])} "
            f"({me['policy']['n_windows']} windows); on standing's: {fmt(me['standing'])}"
        )
    if r.get("checkpoints"):
        print(
            "true return by checkpoint: "
            + ", ".join(f"it {c['iteration']}: {c['return_mean']:.2f}" for c in r["checkpoints"])
        )
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from rwm_core.evaluation.sweep import policy_row, sweep_table, term_gap, write_sweep_csv
    from rwm_core.plots.sweep import plot_penalty_sweep

    if not args.out_csv and not args.out_pdf:
        raise RwmError("nothing to write: give --out-csv, --out-pdf or both")
    dirs = [Path(d) for d in args.policies]
    model_free = [Path(d) for d in args.model_free]
    online = [Path(d) for d in args.online]
    inputs = [
        d / name
        for d in [*dirs, *online, *model_free]
        for name in ("metrics.csv", "sim_eval.json")
        if (d / name).exists()
    ]
    table = sweep_table(dirs, tail=args.tail, model_free=model_free, online=online)
    if args.out_csv:
        write_sweep_csv(table, args.out_csv)
        _record(args, args.out_csv, stage="penalty_sweep", config={"tail": args.tail}, inputs=inputs)
    if args.out_pdf:
        curves, gaps, true_curves, standing = {}, {}, {}, []
        for d in dirs:
            row = policy_row(d, args.tail)
            key = (row["penalty"], row["seed"])
            curves[key] = pd.read_csv(d / "metrics.csv")
            gaps[key] = term_gap(d, args.tail)
            sim = d / "sim_eval.json"
            if sim.exists():
                report = json.loads(sim.read_text())
                standing.append(report["standing"]["return_mean"])
                # the true return of every checkpoint (`rwm evaluate-policy --checkpoints`), when scored
                true_curves[key] = pd.DataFrame(report.get("checkpoints", []), columns=["iteration", "return_mean"])
        if standing:
            table.attrs["sim_return_mean_standing"] = float(sum(standing) / len(standing))
        for method, key in (("model-free-ppo", "sim_return_mean_model_free"), ("online-rwm", "sim_return_mean_online")):
            ref = table[table["method"] == method]["sim_return_mean"].dropna()
            if len(ref):
                table.attrs[key] = float(ref.mean())
        plot_penalty_sweep(table, curves, args.out_pdf, dpi=args.dpi, gaps=gaps, true_curves=true_curves)
        config = {"tail": args.tail, "dpi": args.dpi}
        _record(args, args.out_pdf, stage="plot_penalty_sweep", config=config, inputs=inputs)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from rwm_core.tasks import get_task

    task = get_task(args.task)
    config: dict[str, Any] = {"figure": args.figure, "dpi": args.dpi}
    inputs: list[Any] = [args.input] if args.figure in ("uncertainty", "noise") else [args.model, args.dataset]
    if args.figure in ("uncertainty", "noise", "online") and not args.input:
        raise RwmError(f"the {args.figure} figure needs --input")
    if args.figure == "online":
        inputs = [args.input]
    if args.figure == "uncertainty":
        from rwm_core.plots.uncertainty import plot_uncertainty_error

        plot_uncertainty_error(json.loads(Path(args.input).read_text()), args.out, task.STEP_DT, dpi=args.dpi)
    elif args.figure == "noise":
        from rwm_core.plots.prediction import plot_noise_robustness

        plot_noise_robustness(json.loads(Path(args.input).read_text()), args.out, task.STEP_DT, dpi=args.dpi)
    elif args.figure == "online":
        import pandas as pd

        from rwm_core.plots.online import plot_online

        plot_online(pd.read_csv(args.input), args.out, dpi=args.dpi)
    elif args.figure == "overview":
        from rwm_core.data.dataset import Dataset
        from rwm_core.plots.overview import plot_overview

        if not args.dataset:
            raise RwmError("the overview figure needs --dataset")
        ds = Dataset.load(args.dataset)
        plot_overview(ds.data, get_task(ds.task_name), args.out, seconds=args.seconds, dpi=args.dpi)
        config["seconds"] = args.seconds
        inputs = [args.dataset]
    elif args.figure == "prediction":
        from rwm_core.evaluation.traces import prediction_traces
        from rwm_core.plots.prediction import plot_prediction

        if not args.model or not args.dataset:
            raise RwmError("the prediction figure needs --model and --dataset")
        traces = prediction_traces(
            args.model,
            args.dataset,
            n_windows=args.windows,
            horizon=args.horizon,
            val_fraction=args.val_fraction,
            seed=args.seed,
        )
        plot_prediction(traces, task, args.out, dpi=args.dpi)
        config.update(windows=args.windows, horizon=args.horizon, val_fraction=args.val_fraction)
    seed = args.seed if args.figure == "prediction" else None
    stage = "plot_noise_robustness" if args.figure == "noise" else f"plot_{args.figure}"  # the workflow's rule
    _record(args, args.out, stage=stage, config=config, inputs=inputs, seed=seed)
    print(f"wrote {args.out}")
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rwm",
        description=(
            "Robotic World Model pipeline: simulate or bring a dataset, validate it, pretrain the ensemble GRU "
            "world model, evaluate it, train policies in imagination and evaluate them in the simulator.\n"
            "The Snakemake workflow (Snakefile) calls these commands; each can also be run by hand."
        ),
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"rwm_core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _add(
        sub,
        "validate",
        cmd_validate,
        "check a CSV dataset directory and write the dataset artifact",
        "Read state_action_data_<N>.csv files (no header, 66 numeric columns, SPEC §1) in index order, check them, "
        "and write into OUT: rows.npy (all rows, float32), window_starts.npy (valid window index), "
        "normalization.json, dataset.json, validation.json (report with warnings) and manifest.json. "
        "Any error leaves OUT untouched. `rwm plot overview` draws the dataset figures.",
    )
    p.add_argument("data_dir", metavar="DATA_DIR", help="directory holding state_action_data_<N>.csv files")
    p.add_argument("--out", required=True, help="output directory for the dataset artifact")
    p.add_argument("--params", default=None, help=PARAMS_HELP.format(section="dataset"))
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = _add(
        sub,
        "simulate",
        cmd_simulate,
        "collect locomotion data with the MuJoCo quadruped",
        "Run the data-collection controller (a trotting gait under random velocity commands with exploration "
        "noise) on the MuJoCo quadruped and write state_action_data_<i>.csv files in the 66-column layout. "
        "The output is byte-identical for a seed, whatever the number of workers.",
    )
    p.add_argument("--rows", type=int, default=None, help="total rows (50 Hz control steps); default: dataset.sim.rows")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--out", required=True, help="output directory for the CSV files")
    p.add_argument("--workers", type=int, default=None, help="parallel processes; default: dataset.sim.workers")
    p.add_argument("--params", default=None, help=PARAMS_HELP.format(section="dataset.sim"))
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = _add(
        sub,
        "pretrain",
        cmd_pretrain,
        "pretrain the ensemble GRU world model (dual autoregression)",
        "Train the world model on the dataset artifact: model.pt (final checkpoint), checkpoints/ and metrics.csv "
        "in OUT. With --resume, training continues from the latest checkpoint in OUT/checkpoints.",
    )
    p.add_argument("--dataset", required=True, help="dataset artifact directory written by `rwm validate`")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--params", default=None, help=PARAMS_HELP.format(section="dynamics"))
    p.add_argument("--tracking", default=None, help=PARAMS_HELP.format(section="tracking"))
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="auto", help="'auto' (CUDA when present), 'cpu' or 'cuda[:N]'")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in OUT")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = _add(
        sub,
        "evaluate-dynamics",
        cmd_evaluate_dynamics,
        "autoregressive prediction error of a world model",
        "Roll the world model autoregressively over held-out windows and write the relative error per forecast "
        "step (also under observation noise, and for a hold-the-last-state baseline) as JSON.",
    )
    _add_model_evaluation_args(p)

    p = _add(
        sub,
        "evaluate-uncertainty",
        cmd_evaluate_uncertainty,
        "epistemic uncertainty against prediction error (RWM-U Fig. 3)",
        "Roll held-out windows with the ensemble mean, record per step the epistemic uncertainty and the prediction "
        "error, and write their Pearson and Spearman correlations (step-averaged and pooled) as JSON.",
    )
    _add_model_evaluation_args(p)

    p = _add(
        sub,
        "train-policy",
        cmd_train_policy,
        "train a policy in imagination with MOPO-PPO for one penalty λ",
        "Run PPO (rsl-rl-lib) on N imagined robots stepping through the world model, with reward r - λ·u·dt "
        "(u: epistemic uncertainty). Writes metrics.csv, checkpoints/, policy_checkpoint.pt and the actor as "
        "policy.pt (TorchScript) and policy.onnx into OUT.",
    )
    p.add_argument("--model", required=True, help="world-model checkpoint (ours or upstream format)")
    p.add_argument("--dataset", required=True, help="dataset artifact directory (history windows for resets)")
    p.add_argument("--penalty", type=float, default=0.0, help="uncertainty penalty λ >= 0")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--params", default=None, help=PARAMS_HELP.format(section="policy"))
    p.add_argument("--tracking", default=None, help=PARAMS_HELP.format(section="tracking"))
    p.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda[:N]'")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in OUT")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = _add(
        sub,
        "train-ppo",
        cmd_train_ppo,
        "train a policy from scratch with model-free PPO in the batched MuJoCo simulator",
        "Run PPO (rsl-rl-lib) on N simulated robots (mujoco.rollout) with the task's observation, commands, pushes, "
        "terminations and rewards. Writes metrics.csv, checkpoints/, policy_checkpoint.pt, policy.pt / policy.onnx "
        "and, with record_envs > 0, the recorded experience of the whole run as experience/state_action_data_<i>.csv "
        "(the `mixed` dataset the world model pretrains on).",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--params", default=None, help=PARAMS_HELP.format(section="ppo"))
    p.add_argument("--tracking", default=None, help=PARAMS_HELP.format(section="tracking"))
    p.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda[:N]'")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in OUT")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = _add(
        sub,
        "train-online",
        cmd_train_online,
        "online RWM (MBPO-PPO): the simulator in the loop, the world model refined while the policy learns",
        "From a pretrained world model: every iteration a few real envs of the batched simulator step the current "
        "policy into a replay buffer, the world model's error on that fresh data is measured and the model is "
        "refined on buffer windows, then PPO trains on imagined robots started from buffer histories. Writes "
        "metrics.csv, checkpoints/ (policy, model, buffer and simulator state together), policy_checkpoint.pt, "
        "policy.pt / policy.onnx and the refined model.pt into OUT.",
    )
    p.add_argument("--model", required=True, help="pretrained world-model checkpoint")
    p.add_argument("--dataset", required=True, help="its dataset artifact (layout, first histories, offline mix)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--params", default=None, help=PARAMS_HELP.format(section="online"))
    p.add_argument("--tracking", default=None, help=PARAMS_HELP.format(section="tracking"))
    p.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda[:N]'")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in OUT")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = _add(
        sub,
        "collect-ppo",
        cmd_collect_ppo,
        "roll out a checkpoint of a train-ppo run as a dataset (RWM-U's random / medium / expert kinds)",
        "Run the initial (random), a partway (medium) or the final (expert) policy of a `rwm train-ppo` directory "
        "with its own action noise in the batched simulator and write every env's rows as "
        "state_action_data_<i>.csv (one stream per env, time-outs in streams.json).",
    )
    p.add_argument("--policy", required=True, help="output directory of `rwm train-ppo`")
    p.add_argument("--kind", required=True, choices=["random", "medium", "expert"], help="which policy")
    p.add_argument("--rows", type=int, required=True, help="rows to collect (all envs together)")
    p.add_argument("--envs", type=int, default=64, help="simulated robots, one stream each")
    p.add_argument("--medium-fraction", type=float, default=0.3, help="medium: checkpoint nearest this fraction")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", required=True, help="output directory for the CSV files")
    p.add_argument("--params", default=None, help=PARAMS_HELP.format(section="ppo") + " (env keys are used)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = _add(
        sub,
        "evaluate-policy",
        cmd_evaluate_policy,
        "run a trained policy in the MuJoCo simulator under the true reward",
        "Run the exported actor of a policy directory in closed loop in the MuJoCo simulator (commands, pushes and "
        "observation noise as in imagination) and write the true unpenalised return, per-term sums, fall rate and "
        "tracking errors as JSON, next to the same figures for a standing (zero-action) policy.",
    )
    p.add_argument("--policy", required=True, help="policy directory written by `rwm train-policy`")
    p.add_argument("--out", required=True, help="output JSON file")
    p.add_argument("--params", default=None, help=PARAMS_HELP.format(section="policy"))
    p.add_argument("--seed", type=int, default=0, help="simulator seed (commands, pushes, noise)")
    p.add_argument("--backend", choices=["torchscript", "onnx"], default="torchscript", help="which export to run")
    p.add_argument(
        "--model",
        default=None,
        help="world-model checkpoint: also report its autoregressive error on both policies' simulator trajectories "
        "(model_error), to see whether the policy left the data",
    )
    p.add_argument(
        "--checkpoints",
        action="store_true",
        help="also score every training checkpoint (true return over training, 'checkpoints' in the JSON): a true "
        "return that falls while the imagined reward rises means the policy exploits the world model",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = _add(
        sub,
        "sweep",
        cmd_sweep,
        "collect the penalty sweep into a table and a figure",
        "Summarise policy directories named lambda<λ>_seed<s> (metrics.csv, sim_eval.json) into one CSV row per "
        "λ and seed, and draw the sweep figure: imagined reward curves per λ, final imagined reward, uncertainty "
        "and true simulator return against λ.",
    )
    p.add_argument("policies", nargs="+", metavar="POLICY_DIR", help="policy directories")
    p.add_argument(
        "--model-free", action="append", default=[], metavar="PPO_DIR",
        help="a `rwm train-ppo` directory scored by `rwm evaluate-policy`: a reference row (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--online", action="append", default=[], metavar="ONLINE_DIR",
        help="a `rwm train-online` directory scored by `rwm evaluate-policy`: an online-rwm row (repeatable)",
    )  # fmt: skip
    p.add_argument("--out-csv", default=None, help="output CSV (the table)")
    p.add_argument("--out-pdf", default=None, help="output PDF (the figure); give either or both")
    p.add_argument("--tail", type=int, default=10, help="final values average the last TAIL iterations")
    p.add_argument("--dpi", type=int, default=150, help="figure resolution")

    p = _add(
        sub,
        "plot",
        cmd_plot,
        "draw one of the evaluation figures",
        "uncertainty: from evaluate-uncertainty's JSON (RWM-U Fig. 3). noise: from evaluate-dynamics' JSON "
        "(RWM Fig. 4). prediction: rolls the model on held-out windows (RWM Fig. 3); needs --model and --dataset. "
        "overview: distributions, time series and gait pattern of a dataset artifact; needs --dataset.",
    )
    p.add_argument("figure", choices=["uncertainty", "noise", "prediction", "overview", "online"], help="which figure")
    p.add_argument("--input", default=None, help="input JSON (uncertainty, noise) or metrics.csv (online)")
    p.add_argument("--model", default=None, help="world-model checkpoint (prediction)")
    p.add_argument("--dataset", default=None, help="dataset artifact directory (prediction, overview)")
    p.add_argument("--out", required=True, help="output PDF")
    p.add_argument("--windows", type=int, default=3, help="held-out windows to draw (prediction)")
    p.add_argument("--horizon", type=int, default=100, help="predicted steps to draw (prediction)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="held-out fraction (prediction)")
    p.add_argument("--seed", type=int, default=0, help="which windows (prediction)")
    p.add_argument("--seconds", type=float, default=4.0, help="length of the time-series page (overview)")
    p.add_argument("--task", default="anymal_d_flat", help="task (units, time step)")
    p.add_argument("--dpi", type=int, default=150, help="figure resolution")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.started = time.time()
    try:
        return int(args.func(args) or 0)
    except RwmError as e:
        print(f"rwm {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rwm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
