"""`rwm <command>`: argument parsing only; every command is one library call.

Each stage takes its config section as ``--params JSON`` (what the Snakemake rules pass); keys left out keep the
defaults of :mod:`rwm_core.config`, which equal the shipped ``config.yaml``. A command parses its config, calls
its stage in :mod:`rwm_core.stages` (which writes the artifact's manifest, with this command line) and prints
what the stage says.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rwm_core import __version__
from rwm_core.errors import RwmError

if TYPE_CHECKING:
    from rwm_core.config import EvaluationConfig
    from rwm_core.stages import StageResult, TrainOptions

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


def _add_training_args(p: argparse.ArgumentParser, section: str) -> None:
    """Arguments every trainer takes: seed, output, its config section and tracking, device, resume, quiet."""
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--params", default=None, help=PARAMS_HELP.format(section=section))
    p.add_argument("--tracking", default=None, help=PARAMS_HELP.format(section="tracking"))
    p.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda[:N]'")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in OUT")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_model_evaluation_args(p: argparse.ArgumentParser) -> None:
    """Arguments shared by the world-model studies (held-out windows of a dataset artifact)."""
    p.add_argument("--model", required=True, help="world-model checkpoint (ours or upstream format)")
    p.add_argument("--dataset", required=True, help="dataset artifact directory")
    p.add_argument("--out", required=True, help="output JSON file")
    p.add_argument("--params", default=None, help=PARAMS_HELP.format(section="evaluation"))
    p.add_argument("--val-fraction", type=float, default=0.1, help="held-out fraction (as in pretraining)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda[:N]'")


def _add_table_args(p: argparse.ArgumentParser, more_csv: dict[str, str], give: str) -> None:
    """The reference, output and figure arguments of the table commands (sweep, ablation); ``more_csv``: further
    output CSVs (flag -> help), ``give``: which outputs are enough."""
    p.add_argument(
        "--model-free", action="append", default=[], metavar="PPO_DIR",
        help="a `rwm train-ppo` directory scored by `rwm evaluate-policy`: a reference row and line (repeatable)",
    )  # fmt: skip
    p.add_argument("--out-csv", default=None, help="output CSV (the table)")
    for flag, help in more_csv.items():
        p.add_argument(flag, default=None, help=help)
    p.add_argument("--out-pdf", default=None, help=f"output PDF (the figure); {give}")
    p.add_argument("--tail", type=int, default=10, help="final imagined values average the last TAIL iterations")
    p.add_argument("--dpi", type=int, default=150, help="figure resolution")


def _show(done: StageResult) -> int:
    """Print what a stage did (its warnings to stderr); the exit status of a command that got this far is 0."""
    print(done.message)
    for w in done.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def _training(args: argparse.Namespace) -> TrainOptions:
    """The options every training command passes on as they are."""
    from rwm_core.stages import TrainOptions

    return TrainOptions(seed=args.seed, device=args.device, resume=args.resume, progress=not args.quiet)


def _evaluation(args: argparse.Namespace) -> tuple[EvaluationConfig, dict[str, Any]]:
    """The config and options of the world-model studies (see :func:`_add_model_evaluation_args`)."""
    from rwm_core.config import EvaluationConfig, parse_params

    cfg = parse_params(EvaluationConfig, args.params, "evaluation")
    return cfg, {"val_fraction": args.val_fraction, "seed": args.seed, "device": args.device, "run": args.run}


# ---------------------------------------------------------------- commands
def cmd_validate(args: argparse.Namespace) -> int:
    from rwm_core import stages
    from rwm_core.config import DatasetConfig, parse_params

    cfg = parse_params(DatasetConfig, args.params, "dataset")
    return _show(stages.validate(args.data_dir, args.out, cfg, progress=not args.quiet, run=args.run))


def cmd_simulate(args: argparse.Namespace) -> int:
    from rwm_core import stages
    from rwm_core.config import SimConfig, parse_params

    cfg = parse_params(SimConfig, args.params, "dataset.sim")
    return _show(
        stages.simulate(
            args.out, cfg, rows=args.rows, workers=args.workers, seed=args.seed, progress=not args.quiet, run=args.run
        )
    )


def cmd_pretrain(args: argparse.Namespace) -> int:
    from rwm_core import stages
    from rwm_core.config import DynamicsConfig, TrackingConfig, parse_params

    cfg = parse_params(DynamicsConfig, args.params, "dynamics")
    tracking = parse_params(TrackingConfig, args.tracking, "tracking")
    return _show(stages.pretrain(args.dataset, args.out, cfg, tracking, _training(args), run=args.run))


def cmd_evaluate_model(args: argparse.Namespace) -> int:
    from rwm_core import stages

    cfg, options = _evaluation(args)
    study = args.command.removeprefix("evaluate-")  # evaluate-dynamics, evaluate-uncertainty
    return _show(stages.evaluate_model(study, args.model, args.dataset, args.out, cfg, **options))


def cmd_train_policy(args: argparse.Namespace) -> int:
    from rwm_core import stages
    from rwm_core.config import PolicyConfig, TrackingConfig, parse_params

    cfg = parse_params(PolicyConfig, args.params, "policy")
    tracking = parse_params(TrackingConfig, args.tracking, "tracking")
    return _show(
        stages.train_policy(
            args.model, args.dataset, args.out, cfg, tracking, _training(args), penalty=args.penalty, run=args.run
        )
    )


def cmd_train_ppo(args: argparse.Namespace) -> int:
    from rwm_core import stages
    from rwm_core.config import PPOConfig, TrackingConfig, parse_params

    cfg = parse_params(PPOConfig, args.params, "ppo")
    tracking = parse_params(TrackingConfig, args.tracking, "tracking")
    return _show(stages.train_ppo(args.out, cfg, tracking, _training(args), run=args.run))


def cmd_train_online(args: argparse.Namespace) -> int:
    from rwm_core import stages
    from rwm_core.config import OnlineConfig, TrackingConfig, parse_params

    cfg = parse_params(OnlineConfig, args.params, "online")
    tracking = parse_params(TrackingConfig, args.tracking, "tracking")
    return _show(stages.train_online(args.model, args.dataset, args.out, cfg, tracking, _training(args), run=args.run))


def cmd_collect_ppo(args: argparse.Namespace) -> int:
    from rwm_core import stages
    from rwm_core.config import PPOConfig, parse_params

    cfg = parse_params(PPOConfig, args.params, "ppo")
    return _show(
        stages.collect_ppo(
            args.policy, args.kind, args.out, args.rows, cfg, seed=args.seed, envs=args.envs,
            medium_fraction=args.medium_fraction, progress=not args.quiet, run=args.run,
        )
    )  # fmt: skip


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return n


def cmd_evaluate_policy(args: argparse.Namespace) -> int:
    from rwm_core import stages
    from rwm_core.config import PolicyConfig, parse_params

    cfg = parse_params(PolicyConfig, args.params, "policy")
    return _show(
        stages.evaluate_policy(
            args.policy, args.out, cfg, seed=args.seed, backend=args.backend, model=args.model,
            checkpoints=args.checkpoints, workers=args.workers, progress=not args.quiet, run=args.run,
        )
    )  # fmt: skip


def cmd_sweep(args: argparse.Namespace) -> int:
    from rwm_core import stages

    return _show(
        stages.sweep(
            args.policies, model_free=args.model_free, online=args.online, out_csv=args.out_csv,
            out_summary=args.out_summary, out_pdf=args.out_pdf, tail=args.tail, dpi=args.dpi, run=args.run,
        )
    )  # fmt: skip


def cmd_ablation(args: argparse.Namespace) -> int:
    from rwm_core import stages
    from rwm_core.evaluation.ablation import parse_run

    runs = [parse_run(spec) for spec in args.runs]
    return _show(
        stages.ablation(
            runs, model_free=args.model_free, out_csv=args.out_csv, out_pdf=args.out_pdf, tail=args.tail,
            dpi=args.dpi, run=args.run,
        )
    )  # fmt: skip


def cmd_plot(args: argparse.Namespace) -> int:
    from rwm_core import stages
    from rwm_core.plots.dispatch import FigureOptions

    options = FigureOptions(
        input=args.input, model=args.model, dataset=args.dataset, windows=args.windows, horizon=args.horizon,
        val_fraction=args.val_fraction, seed=args.seed, seconds=args.seconds, task=args.task, dpi=args.dpi,
    )  # fmt: skip
    return _show(stages.plot(args.figure, args.out, options, run=args.run))


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
        cmd_evaluate_model,
        "autoregressive prediction error of a world model",
        "Roll the world model autoregressively over held-out windows and write the relative error per forecast "
        "step (also under observation noise, and for a hold-the-last-state baseline) as JSON.",
    )
    _add_model_evaluation_args(p)

    p = _add(
        sub,
        "evaluate-uncertainty",
        cmd_evaluate_model,
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
    _add_training_args(p, "policy")

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
    _add_training_args(p, "ppo")

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
    _add_training_args(p, "online")

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
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="processes that score the policy, standing and the checkpoints side by side (one core each); the "
        "numbers do not depend on it",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = _add(
        sub,
        "sweep",
        cmd_sweep,
        "collect the penalty sweep into a table and a figure",
        "Summarise policy directories named lambda<λ>_seed<s> (metrics.csv, sim_eval.json) into one CSV row per "
        "λ and seed and a summary over seeds (one row per method and λ: seeds, mean true return and its std, min "
        "and max over seeds, mean fall rate, tracking errors and imagined rewards), print both, and draw the sweep "
        "figure: the true return over training per λ (mean over seeds, their range shaded), imagined reward curves, "
        "and the final true return, imagined reward and uncertainty against λ.",
    )
    p.add_argument("policies", nargs="+", metavar="POLICY_DIR", help="policy directories")
    p.add_argument(
        "--online", action="append", default=[], metavar="ONLINE_DIR",
        help="a `rwm train-online` directory scored by `rwm evaluate-policy`: an online-rwm row (repeatable)",
    )  # fmt: skip
    summary = {"--out-summary": "output CSV (the summary over seeds per method and λ)"}
    _add_table_args(p, summary, "give any of the three")

    p = _add(
        sub,
        "ablation",
        cmd_ablation,
        "collect the dataset ablation (RWM-U Fig. 5) into a table and a figure",
        "Summarise MOPO-PPO policy directories named lambda<λ>_seed<s>, each given with the dataset kind its world "
        "model was trained on (KIND=POLICY_DIR), into one CSV row per kind and λ over seeds (seeds, mean true "
        "return and its std, min and max over seeds, mean fall rate, tracking errors, imagined rewards), and draw "
        "the figure: true return and fall rate per kind, one bar per λ. Kinds keep the order they are first named.",
    )
    p.add_argument("runs", nargs="+", metavar="KIND=POLICY_DIR", help="a dataset kind and a policy directory")
    _add_table_args(p, {}, "give either or both")

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
    from rwm_core.stages import Invocation  # after parsing: `--help` needs none of the library

    args.run = Invocation(command=["rwm", *(sys.argv[1:] if argv is None else argv)])
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
