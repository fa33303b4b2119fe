"""Typed config sections: the one description of the configuration. The YAML file has one section per stage; each
rule passes only its own section.

Every key is a dataclass field made by :func:`opt`: its default, its help text and its constraints (``minimum``,
``enum``, ...). From them come the JSON schema that checks a whole config file (:func:`config_schema`, used by
:func:`validate_config`; ``workflow/schemas/config.schema.yaml`` is the same schema written out by
``python -m rwm_core.config --write-schema``), and the defaults, which equal the shipped ``config.yaml`` (tests
check both), so a library user can call any stage without a config file and the CLI's ``--params JSON`` overrides
only the keys it names.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rwm_core.errors import RwmError

T = TypeVar("T")

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA_DESCRIPTION = "rwm-pipeline configuration (config.yaml). One section per stage; unknown keys are errors."
WRITE_SCHEMA_COMMAND = "python -m rwm_core.config --write-schema"
PRECISIONS = ["float32", "bfloat16", "auto"]  # as rwm_core.runtime.PRECISIONS (which imports torch)
MEMBER_SAMPLING = ("episode", "step")  # ImaginationEnv: one member per episode or per step


class ConfigError(RwmError, ValueError):
    """A config value is missing, unknown or of the wrong type; the message names the key."""


def opt(default: Any, help: str, **schema: Any) -> Any:
    """A config key: its default, its help text and its JSON-schema constraints beyond the type (which comes from
    the annotation), e.g. ``minimum=1``, ``enum=[...]``, ``minItems=1, items={"minimum": 0}``."""
    metadata = {"help": help, "schema": schema}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def section(cls: type, help: str) -> Any:
    """A nested config section (a dataclass of its own keys)."""
    return field(default_factory=cls, metadata={"help": help})


@dataclass
class SimConfig:
    """The MuJoCo data-collection run with the trotting controller (``dataset.sim``)."""

    rows: int = opt(200_000, "control steps at 50 Hz (200,000 rows = 66 min of walking)", minimum=1)
    rows_per_file: int = opt(50_000, "rows per state_action_data_<N>.csv file", minimum=1)
    workers: int = opt(2, "processes; the data do not depend on it", minimum=1)


@dataclass
class DatasetConfig:
    """Where the rows come from and how they are windowed and normalised."""

    source: str = opt(
        "ppo",
        "ppo: the experience of model-free PPO in the simulator (section ppo); sim: the trotting controller "
        "(dataset.sim); dir: your CSVs in dataset.dir",
        enum=["ppo", "sim", "dir"],
    )
    kind: str = opt(
        "mixed",
        "with source ppo (RWM-U's dataset kinds): mixed (the whole run's experience), random (the initial policy), "
        "medium (a checkpoint partway), expert (the final policy)",
        enum=["mixed", "random", "medium", "expert"],
    )
    policy_rows: int = opt(200_000, "rows rolled out for the random, medium and expert kinds", minimum=2)
    medium_fraction: float = opt(
        0.3, "medium: the PPO checkpoint nearest this fraction of ppo.iterations", minimum=0, maximum=1
    )
    dir: str = opt("assets/data", "state_action_data_<N>.csv files (no header, 66 columns), used when source is dir")
    task: str = opt("anymal_d_flat", "the robot task: state layout, MDP and rewards", enum=["anymal_d_flat"])
    history: int = opt(32, "H: history steps a training window starts with", minimum=1)
    forecast: int = opt(8, "F: autoregressive forecast steps per training window", minimum=1)
    normalization: str = opt(
        "fixed", "fixed: the task's constants (as upstream); data: mean/std of the rows", enum=["fixed", "data"]
    )
    gravity_norm_tolerance: float = opt(
        0.1, "warn when |projected gravity| differs from 1 by more than this", exclusiveMinimum=0
    )
    sim: SimConfig = section(SimConfig, "the trotting-controller data collection (source sim)")


@dataclass
class DynamicsConfig:
    """Ensemble GRU world model and its dual-autoregressive pretraining (RWM, RWM-U)."""

    ensemble_size: int = opt(5, "B: ensemble members; 1 = RWM, 5 = RWM-U", minimum=1)
    hidden_size: int = opt(256, "GRU hidden units per layer", minimum=1)
    num_layers: int = opt(2, "GRU layers", minimum=1)
    head_hidden: int = opt(128, "hidden units of the output and auxiliary heads", minimum=1)
    learning_rate: float = opt(1.0e-3, "Adam learning rate", exclusiveMinimum=0)
    weight_decay: float = opt(0.0, "Adam weight decay", minimum=0)
    batch_size: int = opt(256, "windows per mini-batch", minimum=1)
    batches_per_iteration: int = opt(4, "mini-batches (gradient steps) per iteration", minimum=1)
    iterations: int = opt(480, "training iterations", minimum=1)
    val_fraction: float = opt(
        0.1,
        "share of the rows held out for validation, as contiguous blocks of the series",
        minimum=0,
        exclusiveMaximum=1,
    )
    val_batches: int = opt(2, "validation mini-batches per evaluation", minimum=0)
    checkpoint_every: int = opt(50, "iterations between checkpoints", minimum=1)
    bootstrap: bool = opt(True, "each member trains on its own bootstrap resample of the windows")
    max_grad_norm: float = opt(1.0, "gradient-norm clipping", exclusiveMinimum=0)
    state_loss: str = opt(
        "mse",
        "mse on the reparameterised sample (upstream default) or gaussian_nll",
        enum=["mse", "gaussian_nll"],
    )
    state_loss_weight: float = opt(1.0, "weight of the state loss", minimum=0)
    bound_loss_weight: float = opt(1.0, "weight of the loss that keeps the learnt log-std bounds tight", minimum=0)
    contact_loss_weight: float = opt(1.0, "weight of the contact-head loss", minimum=0)
    termination_loss_weight: float = opt(1.0, "weight of the termination-head loss", minimum=0)
    termination_pos_weight: float = opt(
        1.0,
        "weight of the rare positive (fall) labels in the termination BCE; 1 (upstream) teaches the head 'never'",
        exclusiveMinimum=0,
    )
    val_every: int = opt(1, "iterations between validation-loss evaluations", minimum=1)
    micro_batch_size: int = opt(
        256, "gradient accumulation chunk (same gradient, bounded memory); 0 = whole mini-batch", minimum=0
    )
    precision: str = opt(
        "auto",
        "float32; bfloat16: bf16 matrix products, float32 weights, gates and optimiser (mixed precision); auto: "
        "bfloat16 where bf16 is native (AVX512-BF16/AMX CPUs, recent GPUs), else float32",
        enum=PRECISIONS,
    )


@dataclass
class EvaluationConfig:
    """Autoregressive-error and uncertainty–error studies of the world model."""

    horizon: int = opt(200, "autoregressive steps after the H-step warm-up", minimum=1)
    n_windows: int = opt(32, "held-out windows the autoregressive error is averaged over", minimum=1)
    noise_scales: list[float] = opt(
        [0.1, 0.2, 0.4, 0.5, 0.8], "input-noise scales of the noise-robustness study", items={"minimum": 0}
    )
    uncertainty_windows: int = opt(32, "windows of the uncertainty–error study", minimum=1)
    uncertainty_steps: int = opt(200, "autoregressive steps of the uncertainty–error study", minimum=1)
    compare_steps: int = opt(
        50, "report whether the model beats the hold-last-state baseline at every step up to this", minimum=1
    )


_HIDDEN = {"minItems": 1, "items": {"minimum": 1}}


@dataclass
class PPOHyperparams:
    """rsl-rl-lib PPO with MLP actor and critic (the papers' settings); shared by MOPO-PPO, online RWM and
    model-free PPO."""

    actor_hidden: list[int] = opt([128, 128, 128], "hidden layer sizes of the actor MLP", **_HIDDEN)
    critic_hidden: list[int] = opt([128, 128, 128], "hidden layer sizes of the critic MLP", **_HIDDEN)
    activation: str = opt("elu", "activation of both MLPs", enum=["elu", "relu", "tanh", "selu", "lrelu"])
    init_noise_std: float = opt(1.0, "initial std of the Gaussian action noise", exclusiveMinimum=0)
    learning_epochs: int = opt(5, "passes over the rollout per update", minimum=1)
    mini_batches: int = opt(4, "mini-batches per pass", minimum=1)
    clip_param: float = opt(0.2, "PPO ratio clipping", exclusiveMinimum=0)
    value_loss_coef: float = opt(1.0, "weight of the value loss", minimum=0)
    use_clipped_value_loss: bool = opt(True, "clip the value-function update as PPO clips the policy ratio")
    entropy_coef: float = opt(0.005, "weight of the entropy bonus", minimum=0)
    learning_rate: float = opt(1.0e-3, "Adam learning rate (adapted by the schedule)", exclusiveMinimum=0)
    schedule: str = opt("adaptive", "adaptive (KL-based learning rate) or fixed", enum=["adaptive", "fixed"])
    desired_kl: float = opt(0.01, "target KL of the adaptive schedule", exclusiveMinimum=0)
    gamma: float = opt(0.99, "discount factor", minimum=0, maximum=1)
    lam: float = opt(0.95, "GAE lambda", minimum=0, maximum=1)
    max_grad_norm: float = opt(1.0, "gradient-norm clipping", exclusiveMinimum=0)


@dataclass
class PolicyConfig(PPOHyperparams):
    """MOPO-PPO in imagination (RWM-U) and closed-loop evaluation in the simulator."""

    num_envs: int = opt(1024, "imagined robots stepped in parallel", minimum=1)
    iterations: int = opt(100, "PPO iterations", minimum=1)
    steps_per_env: int = opt(24, "PPO rollout length per iteration", minimum=1)
    # Imagined robots acting with std 1 leave the data at once (uncertainty 2.7x its in-data level), the penalty
    # and the fall cost then make ending the episode as good as living on; with the PPO learner's own later std
    # they stay where the model knows the dynamics (docs/experiments.md, fourth session).
    init_noise_std: float = opt(
        0.3, "initial std of the Gaussian action noise (the simulator PPO starts at 1.0)", exclusiveMinimum=0
    )
    checkpoint_every: int = opt(
        10, "iterations between checkpoints; each is scored in the simulator (true return over training)", minimum=1
    )
    episode_length: int = opt(256, "steps before a time-out (bootstrapped in PPO)", minimum=1)
    observation_noise: bool = opt(True, "add the task's uniform observation noise to the policy's observations")
    # The rule that labelled the falls in simulated data. The termination head sees one positive row per fall, and a
    # model rolled past a fall has no data to follow: it drifts to states no robot reaches (|g| far from 1).
    tilt_termination: bool = opt(
        True, "also end an imagined episode when the predicted tilt passes the simulator's limit (60 deg)"
    )
    # Early on every task-reward step is negative (noisy actions are penalised more than tracking pays), so without
    # it ending an episode early is the best the policy can do, and it learns to fall.
    termination_penalty: float = opt(
        10.0,
        "one-off training cost of a predicted fall (not a time-out), logged as its own term, not in the task reward",
        minimum=0,
    )
    # Height from the predicted joint positions and gravity (task.ground_clearance). The simulator ends episodes
    # there, but base height is not in the state, so the model cannot predict a crouch ending in a "fall".
    height_termination: bool = opt(
        False,
        "also end an imagined episode when the base, set on its lowest foot by leg kinematics, is below the "
        "simulator's minimum height (0.2 m)",
    )
    # Within task.TRUNK_CONTACT_GAP of the floor (task.trunk_gap). Every simulator fall of the imagination-trained
    # policies and of model-free PPO we scored was a trunk or hip-housing contact (a sit or a kneel), with neither
    # the tilt nor the height limit met; the data hold one contact row per fall, so the model never predicts one.
    trunk_contact_termination: bool = opt(
        False,
        "also end an imagined episode (as a fall) when leg kinematics put the trunk or a hip housing on the floor, "
        "as the simulator does",
    )
    # Within task.THIGH_CONTACT_GAP of the floor (task.ground_clearance). The data hold a thigh contact in 1-2 rows
    # per 10,000, so the contact head never predicts one, and a policy learns to walk on its knees at no imagined
    # cost (docs/history-controller-data.md).
    kinematic_thigh_contacts: bool = opt(
        False, "also count a thigh contact when leg kinematics put a thigh or upper shank on the floor"
    )
    # An ensemble trained on a few hundred thousand rows disagrees even on the data: about 2.2 (summed std over the
    # 45 state dims) under the PPO policy that produced them, 5-6 under an exploring one; with an offset near the
    # in-data level λ prices only the excess, so a policy that stays in the data pays nothing (docs/experiments.md).
    uncertainty_offset: float = opt(
        0.0,
        "u0 >= 0: the penalty is λ·max(u - u0, 0)·dt (0: MOPO's λ·u·dt)",
        minimum=0,
    )
    # A model rolled where its data never went predicts states no robot reaches (|g| > 1, torques past the 80 Nm
    # limit): under an exploring policy about 8% of imagined robots per step have some state outside the data's range
    # (docs/experiments.md). MOReL's "unknown state": the episode ends there, charged as a fall.
    out_of_data_termination: bool = opt(
        False,
        "also end an imagined episode (as a fall) when a predicted state dimension leaves the dataset's range "
        "(between its out_of_data_quantile and 1 - out_of_data_quantile quantiles), widened on each side by "
        "out_of_data_margin of its width",
    )
    out_of_data_quantile: float = opt(
        0.0, "quantile of each state dimension's data that bounds the range (0: min and max)", minimum=0, maximum=0.5
    )
    out_of_data_margin: float = opt(0.0, "widening of the data range for out_of_data_termination", minimum=0)
    # Upstream keeps one member per imagined episode, so a policy can learn one member's errors over a whole
    # episode; MBPO draws a member for every step, so only what all members agree on pays off consistently.
    member_sampling: str = opt(
        "episode",
        "which ensemble member predicts an imagined step: episode (one random member per episode, as upstream) | "
        "step (a new random member every step, as MBPO)",
        enum=list(MEMBER_SAMPLING),
    )
    precision: str = opt(
        "float32",
        "bfloat16: bf16 world-model steps in imagination and PPO update (mixed precision; hidden states, states, "
        "rewards and weights stay float32); auto: bfloat16 where bf16 is native, else float32",
        enum=PRECISIONS,
    )
    # A deviation from upstream, which starts PPO from a fresh actor: PPO from scratch in imagination finds standing,
    # not the gait, while the `mixed` data hold the model-free learner's walking (docs/experiments.md).
    bc_epochs: int = opt(
        15,
        "epochs of behaviour cloning of the dataset's actions, with hindsight commands, into the actor before PPO "
        "(0: a fresh actor, as upstream)",
        minimum=0,
    )
    bc_command_horizon: int = opt(
        50, "rows after a state whose mean planar velocity and yaw rate are its hindsight command", minimum=1
    )
    bc_learning_rate: float = opt(1.0e-3, "Adam learning rate of behaviour cloning", exclusiveMinimum=0)
    bc_batch_size: int = opt(1024, "pairs per behaviour-cloning step", minimum=1)
    critic_warmup_iterations: int = opt(
        20, "first PPO iterations that update only the critic, the actor (a cloned one) held as it is", minimum=0
    )
    bc_regularization: float = opt(
        30.0,
        "weight of the MSE between the actor's action mean and the cloned actor's, added to PPO's loss on every "
        "mini-batch (behaviour-regularised PPO; needs bc_epochs > 0; 0: off)",
        minimum=0,
    )
    eval_episodes: int = opt(16, "closed-loop evaluation episodes in the MuJoCo simulator", minimum=1)
    eval_episode_steps: int = opt(500, "steps per closed-loop evaluation episode", minimum=1)


@dataclass
class PPOConfig(PPOHyperparams):
    """Model-free PPO from scratch in the batched MuJoCo simulator; its recorded experience is the dataset."""

    num_envs: int = opt(1024, "simulated robots stepped together (mujoco.rollout)", minimum=1)
    iterations: int = opt(700, "PPO iterations (700 x 1024 envs x 24 steps = 17.2M env-steps: walks)", minimum=1)
    steps_per_env: int = opt(24, "PPO rollout length per iteration", minimum=1)
    checkpoint_every: int = opt(100, "iterations between checkpoints", minimum=1)
    episode_length: int = opt(1000, "steps before a time-out (20 s at 50 Hz, as upstream's real env)", minimum=1)
    observation_noise: bool = opt(True, "add the task's uniform observation noise to the policy's observations")
    pushes: bool = opt(True, "push the robots on the task's schedule")
    termination_penalty: float = opt(
        2.0, "one-off training cost of a fall, logged as its own term (stops PPO learning to fall first)", minimum=0
    )
    threads: int = opt(2, "MuJoCo rollout threads", minimum=1)
    record_envs: int = opt(
        16, "envs whose whole experience (every stage of learning) becomes the `mixed` dataset", minimum=0
    )


@dataclass
class OnlineConfig(PPOHyperparams):
    """Online RWM (MBPO-PPO): real envs fill a replay buffer, the model is refined on it, PPO learns in imagination."""

    iterations: int = opt(100, "MBPO-PPO iterations (warm-up included)", minimum=1)
    warmup_iterations: int = opt(10, "iterations that only collect real data and train the model", minimum=0)
    real_envs: int = opt(
        256,
        "simulated robots stepping the current policy (one replay-buffer stream each); with ppo_real, "
        "real_envs / (real_envs + num_envs) of every PPO batch is real (1/5 by default)",
        minimum=1,
    )
    real_steps: int = opt(24, "steps per real env per iteration (unused with ppo_real: steps_per_env then)", minimum=1)
    real_episode_length: int = opt(1000, "steps before a real env times out", minimum=1)
    buffer_capacity: int = opt(4000, "rows per real env kept in the replay buffer", minimum=2)
    model_updates: int = opt(1, "world-model gradient steps per iteration", minimum=0)
    model_batch_size: int = opt(256, "windows per world-model step", minimum=1)
    model_learning_rate: float = opt(1.0e-3, "Adam learning rate of the world-model refinement", exclusiveMinimum=0)
    offline_fraction: float = opt(0.0, "share of each model batch drawn from the offline dataset", minimum=0, maximum=1)
    num_envs: int = opt(1024, "imagined robots, restarted from replay-buffer histories every iteration", minimum=1)
    steps_per_env: int = opt(24, "imagined steps per env per iteration (also the imagined episode length)", minimum=1)
    penalty: float = opt(0.0, "λ: imagined reward r - λ·u·dt (RWM: 0)", minimum=0)
    observation_noise: bool = opt(True, "add the task's uniform observation noise to the policy's observations")
    tilt_termination: bool = opt(
        True, "also end an imagined episode when the predicted tilt passes the simulator's limit (60 deg)"
    )
    termination_penalty: float = opt(2.0, "one-off training cost of a predicted fall in imagination", minimum=0)
    precision: str = opt(
        "float32",
        "bfloat16: bf16 world-model steps in imagination (mixed precision), the PPO update stays float32; auto: "
        "bfloat16 where bf16 is native, else float32",
        enum=PRECISIONS,
    )
    threads: int = opt(2, "MuJoCo rollout threads of the real envs", minimum=1)
    checkpoint_every: int = opt(10, "iterations between checkpoints", minimum=1)
    # Measured (docs/experiments.md): from a fresh policy the loop never got above a standing robot (best 2.52,
    # every later checkpoint lower); fine-tuning the walking PPO policy keeps it walking. Upstream's Finetune task
    # does the same.
    init_policy: str = opt(
        "results/ppo/policy_checkpoint.pt",
        "a policy checkpoint to fine-tune (the workflow's model-free PPO policy by default, as upstream's Finetune "
        "task; its actor and critic sizes must match this section's); empty: a fresh policy",
    )
    # Upstream's MBPO-PPO mixes a real and an imagined mini-batch in each PPO update. Measured fine-tuning the PPO
    # policy for 100 iterations: on imagined data alone it fell from 9.99 to 3.73 (10 of 16 episodes fall); with a
    # real fifth of every batch to 7.91 (6 falls).
    ppo_real: bool = opt(
        True,
        "PPO also learns from the real envs' transitions (task reward less the termination_penalty fall cost), "
        "mixed with the imagined ones in its mini-batches; the real envs then step steps_per_env steps per "
        "iteration inside PPO's rollout (real_steps is unused); needs warmup_iterations >= 1",
    )


@dataclass
class SweepConfig:
    """The penalty sweep: one policy per (λ, seed)."""

    penalties: list[float] = opt(
        [0.0, 1.0, 5.0],
        "λ >= 0: imagined reward r - λ·u·dt, u = epistemic uncertainty",
        minItems=1,
        items={"minimum": 0},
    )
    seeds: list[int] = opt(
        [0, 1, 2],
        "policy training seeds, one policy per λ and seed (penalty_sweep_summary.csv: mean and spread over seeds)",
        minItems=1,
        items={"minimum": 0},
    )
    online: bool = opt(
        False,
        "also train the online RWM policy (section online, ~40 min here) and score it in the sweep table; off in "
        "the default job to keep it within its time (README: `--config 'sweep={\"online\": true}'`)",
    )


DATASET_KINDS = ["random", "medium", "expert", "mixed", "controller"]


@dataclass
class AblationConfig:
    """The dataset ablation (RWM-U Fig. 5; target dataset_ablation, not part of all): policies per dataset kind."""

    kinds: list[str] = opt(
        list(DATASET_KINDS),
        "dataset kinds, each validated and pretrained on its own: random, medium, expert (rollouts of the PPO run's "
        "checkpoints, dataset.policy_rows rows), mixed (the PPO run's experience), controller (the trotting "
        "controller, dataset.sim); the kind the main job uses (dataset.kind with source ppo, controller with sim) "
        "reuses its dataset, world model and policies",
        minItems=1,
        uniqueItems=True,
        items={"enum": list(DATASET_KINDS)},
    )
    penalties: list[float] = opt([0.0, 1.0], "λ of the policies trained per kind", minItems=1, items={"minimum": 0})
    seeds: list[int] = opt([0], "policy training seeds per kind and λ", minItems=1, items={"minimum": 0})
    dynamics_iterations: int = opt(
        0,
        "world-model pretraining iterations per kind; 0: dynamics.iterations (another number also retrains the main "
        "job's kind: its world model and policies are not reused)",
        minimum=0,
    )
    policy_iterations: int = opt(
        0,
        "MOPO-PPO iterations per policy; 0: policy.iterations (another number also retrains the main job's kind's "
        "policies)",
        minimum=0,
    )


@dataclass
class TrackingConfig:
    """Metrics always go to CSV; wandb only when enabled (offline unless mode says otherwise)."""

    wandb: bool = opt(False, "also log metrics to Weights & Biases")
    wandb_mode: str = opt("offline", "wandb mode", enum=["offline", "online", "disabled"])
    wandb_project: str = opt("rwm-pipeline", "wandb project name")


@dataclass
class FiguresConfig:
    """Options that change only how figures look."""

    dpi: int = opt(150, "figure resolution (dots per inch)", minimum=30)
    overview_seconds: float = opt(4.0, "seconds of the series shown in the overview figure", exclusiveMinimum=0)
    prediction_windows: int = opt(3, "windows drawn (one page each) in the prediction figure", minimum=1)


@dataclass
class SeedsConfig:
    """One seed per stage (policies take theirs from ``sweep.seeds``); torch, numpy and MuJoCo use it."""

    dataset: int = opt(1, "seed of the dataset collection", minimum=0)
    ppo: int = opt(0, "seed of model-free PPO", minimum=0)
    dynamics: int = opt(0, "seed of world-model pretraining", minimum=0)
    online: int = opt(0, "seed of online RWM", minimum=0)
    evaluation: int = opt(0, "seed of the world-model evaluation", minimum=0)


@dataclass
class Config:
    """The whole configuration file: one section per stage, plus ``device`` and ``seeds``."""

    device: str = opt(
        "auto",
        "auto picks CUDA when present, else cpu; or cpu, cuda, cuda:N",
        pattern="^(auto|cpu|cuda(:[0-9]+)?)$",
    )
    seeds: SeedsConfig = section(SeedsConfig, "one seed per stage; policies take theirs from sweep.seeds")
    dataset: DatasetConfig = section(DatasetConfig, "where the rows come from and how they are windowed")
    dynamics: DynamicsConfig = section(DynamicsConfig, "the ensemble GRU world model and its pretraining")
    evaluation: EvaluationConfig = section(EvaluationConfig, "studies of the world model's prediction error")
    ppo: PPOConfig = section(PPOConfig, "model-free PPO from scratch in the batched MuJoCo simulator")
    policy: PolicyConfig = section(PolicyConfig, "MOPO-PPO in imagination and closed-loop evaluation")
    online: OnlineConfig = section(OnlineConfig, "online RWM (MBPO-PPO): the simulator in the loop")
    sweep: SweepConfig = section(SweepConfig, "the penalty sweep: one policy per (λ, seed)")
    ablation: AblationConfig = section(AblationConfig, "the dataset ablation: policies on each dataset kind")
    tracking: TrackingConfig = section(TrackingConfig, "metrics tracking (CSV always, wandb optionally)")
    figures: FiguresConfig = section(FiguresConfig, "options that change only how figures look")


# ---------------------------------------------------------------------------------------------------- JSON schema
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _field_default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]


def _value_schema(tp: Any, constraints: dict[str, Any]) -> dict[str, Any]:
    constraints = copy.deepcopy(constraints)  # every node its own (fields share enum lists)
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        items = _value_schema(item, constraints.pop("items", {}))
        return {"type": "array", **constraints, "items": items}
    return {"type": _JSON_TYPES[tp], **constraints}


def section_schema(cls: type) -> dict[str, Any]:
    """The JSON schema of config section ``cls``: its fields' types, constraints, defaults and help; no other keys."""
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp = hints[f.name]
        doc = {"description": f.metadata["help"]} if "help" in f.metadata else {}
        if dataclasses.is_dataclass(tp):
            properties[f.name] = {**doc, **section_schema(tp)}  # type: ignore[arg-type]
        else:
            value = _value_schema(tp, f.metadata.get("schema", {}))
            properties[f.name] = {**value, "default": _field_default(f), **doc}
    return {"type": "object", "additionalProperties": False, "properties": properties}


def config_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of a whole config file, generated from :class:`Config`."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "description": SCHEMA_DESCRIPTION,
        **section_schema(Config),
    }


class _SchemaDumper(yaml.SafeDumper):
    """One line per key (flow style for every value schema and list), block style for objects; no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    flow = data.get("type") not in (None, "object")
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_SchemaDumper.add_representer(dict, _represent_dict)
_SchemaDumper.add_representer(list, _represent_list)


def schema_text() -> str:
    """``workflow/schemas/config.schema.yaml`` as :func:`write_schema` writes it."""
    body = yaml.dump(config_schema(), Dumper=_SchemaDumper, sort_keys=False, allow_unicode=True, width=10_000)
    return (
        f"# Generated from the dataclasses in rwm_core/config.py by `{WRITE_SCHEMA_COMMAND}`: edit those, not this.\n"
        + body
    )


def write_schema(path: str | Path = SCHEMA_FILE) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text(), encoding="utf-8")
    return path


def check_schema_file(path: str | Path = SCHEMA_FILE) -> None:
    """Raise :class:`ConfigError` unless ``path`` holds the schema the dataclasses generate (not stale, not edited)."""
    path = Path(path)
    try:
        written = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(
            f"{path}: cannot read the config schema ({e}); regenerate it: {WRITE_SCHEMA_COMMAND}"
        ) from None
    if written != config_schema():
        raise ConfigError(
            f"{path} differs from the schema generated from rwm_core/config.py (stale or edited by hand); "
            f"regenerate it: {WRITE_SCHEMA_COMMAND}"
        )


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a (partial) dict; unknown keys and wrong types raise :class:`ConfigError`."""
    data = dict(data or {})
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown key(s) {unknown}; expected some of {sorted(fields)}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            continue
        key = f"{where}.{name}" if where else name
        value = data[name]
        default = _field_default(f)
        if dataclasses.is_dataclass(default):
            kwargs[name] = from_dict(type(default), value, key)
        else:
            kwargs[name] = _check_type(key, value, default)
    return cls(**kwargs)


def _check_type(key: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if isinstance(default, list):
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return list(value)
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def load_config(path: str | Path) -> Config:
    """Load and type-check a whole config file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    try:
        return from_dict(Config, raw)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def parse_params(cls: type[T], params: str | None, where: str) -> T:
    """Parse a CLI ``--params`` JSON string (or ``@file.json``) into section ``cls``."""
    if not params:
        return cls()
    text = Path(params[1:]).read_text() if params.startswith("@") else params
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--params: not valid JSON ({e})") from None
    return from_dict(cls, data, where)


def validate_config(config: dict[str, Any], schema_path: str | Path | None = None, source: str = "config") -> Config:
    """Check a raw config dict against :func:`config_schema`, then build the typed :class:`Config`.

    Used by the Snakefile before any job runs: every problem is reported with its key path, e.g.
    ``config: dynamics.batch_size: 'x' is not of type 'integer'``. ``schema_path`` (the workflow's
    ``workflow/schemas/config.schema.yaml``), when given, is only checked to be the generated schema.
    """
    import jsonschema

    if schema_path is not None:
        check_schema_file(schema_path)
    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for e in errors:
            key = ".".join(str(p) for p in e.absolute_path) or "(top level)"
            if e.validator == "additionalProperties":
                extra = sorted(set(e.instance) - set(e.schema.get("properties", {})))
                for k in extra:
                    full = f"{key}.{k}" if e.absolute_path else k
                    lines.append(f"{full}: unknown key (allowed here: {sorted(e.schema.get('properties', {}))})")
            else:
                lines.append(f"{key}: {e.message}")
        raise ConfigError(f"{source}: invalid configuration:\n  " + "\n  ".join(lines))
    try:
        return from_dict(Config, config)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


REFERENCE_FILE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def config_reference() -> str:
    """docs/configuration.md: every key of every section with its default and help, from the dataclasses."""

    def fmt(v: Any) -> str:
        return "`" + (json.dumps(v) if not isinstance(v, str) else (v or '""')) + "`"

    lines = [
        "# Configuration reference",
        "",
        "Generated from the dataclasses in `rwm_core/config.py` (`python -m rwm_core.config --write-reference`); a",
        "test fails when it is stale. `config.yaml` holds exactly these defaults; each Snakemake rule receives only",
        "the section it depends on, so an edit reruns only the stale stages.",
        "",
    ]

    def table(cls: type, prefix: str) -> None:
        rows, nested = [], []
        defaults = cls()
        for f in dataclasses.fields(cls):
            value = getattr(defaults, f.name)
            if dataclasses.is_dataclass(value):
                nested.append((f, type(value)))
                continue
            rows.append(f"| `{f.name}` | {fmt(value)} | {f.metadata.get('help', '')} |")
        if rows:
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            lines.extend([f"## `{prefix}`" if prefix else "## top level", "", doc, "", "| key | default | meaning |",
                          "|---|---|---|", *rows, ""])  # fmt: skip
        for f, sub in nested:
            table(sub, f"{prefix}.{f.name}" if prefix else f.name)

    table(Config, "")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m rwm_core.config",
        description="Write or check the JSON schema and the configuration reference generated from the dataclasses.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write-schema", action="store_true", help="write the schema file")
    action.add_argument("--check-schema", action="store_true", help="exit 1 if the schema file is not up to date")
    action.add_argument("--write-reference", action="store_true", help="write docs/configuration.md")
    parser.add_argument("--path", type=Path, default=SCHEMA_FILE, help="schema file (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.write_reference:
        REFERENCE_FILE.write_text(config_reference())
        print(f"wrote {REFERENCE_FILE}")
        return 0
    if args.write_schema:
        print(f"wrote {write_schema(args.path)}")
        return 0
    try:
        check_schema_file(args.path)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"{args.path} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
