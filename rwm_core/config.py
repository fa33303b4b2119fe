"""Typed config sections. The YAML file has one section per stage; each rule passes only its own section.

Defaults here equal the shipped ``config.yaml`` (a test checks it), so a library user can call any stage
without a config file, and the CLI's ``--params JSON`` overrides only the keys it names.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rwm_core.errors import RwmError

T = TypeVar("T")


class ConfigError(RwmError, ValueError):
    """A config value is missing, unknown or of the wrong type; the message names the key."""


@dataclass
class SimConfig:
    """The MuJoCo data-collection run (``dataset.sim``)."""

    rows: int = 200_000
    rows_per_file: int = 50_000
    workers: int = 2  # processes; the output does not depend on it


@dataclass
class DatasetConfig:
    """Where the rows come from and how they are windowed and normalised."""

    source: str = "ppo"  # "ppo": the experience of model-free PPO; "sim": the trotting controller; "dir": `dir`
    kind: str = "mixed"  # with source ppo (RWM-U's kinds): mixed | random | medium | expert
    policy_rows: int = 200_000  # rows rolled out for the random, medium and expert kinds
    medium_fraction: float = 0.3  # medium: the PPO checkpoint nearest this fraction of the run
    dir: str = "assets/data"
    task: str = "anymal_d_flat"
    history: int = 32
    forecast: int = 8
    normalization: str = "fixed"  # "fixed": the task's constants; "data": mean/std of the rows
    gravity_norm_tolerance: float = 0.1  # warn when |projected gravity| deviates from 1 by more than this
    sim: SimConfig = field(default_factory=SimConfig)


@dataclass
class DynamicsConfig:
    """Ensemble GRU world model and its dual-autoregressive pretraining (SPEC §2, §3)."""

    ensemble_size: int = 5
    hidden_size: int = 256
    num_layers: int = 2
    head_hidden: int = 128
    learning_rate: float = 1.0e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    batches_per_iteration: int = 4
    iterations: int = 160
    val_fraction: float = 0.1
    val_batches: int = 2
    checkpoint_every: int = 50
    bootstrap: bool = True
    max_grad_norm: float = 1.0
    state_loss: str = "mse"  # "mse" on the reparameterised sample (upstream default) or "gaussian_nll"
    state_loss_weight: float = 1.0
    bound_loss_weight: float = 1.0
    contact_loss_weight: float = 1.0
    termination_loss_weight: float = 1.0
    termination_pos_weight: float = 1.0  # weight of the rare positive (fall) labels in the termination BCE
    val_every: int = 1  # iterations between validation-loss evaluations
    micro_batch_size: int = 256  # gradient accumulation chunk (same gradient, bounded memory); 0 = whole batch
    precision: str = "float32"  # "float32", or "bfloat16": bf16 GEMMs, float32 weights/gates/optimiser (mixed)


@dataclass
class EvaluationConfig:
    """Autoregressive-error and uncertainty–error studies of the world model."""

    horizon: int = 200
    n_windows: int = 32
    noise_scales: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.4, 0.5, 0.8])
    uncertainty_windows: int = 32
    uncertainty_steps: int = 200
    compare_steps: int = 50  # report whether the model beats the hold-last-state baseline at every step up to this


@dataclass
class PPOHyperparams:
    """rsl-rl-lib PPO with MLP actor and critic (SPEC §5); shared by MOPO-PPO in imagination and model-free PPO."""

    actor_hidden: list[int] = field(default_factory=lambda: [128, 128, 128])
    critic_hidden: list[int] = field(default_factory=lambda: [128, 128, 128])
    activation: str = "elu"
    init_noise_std: float = 1.0
    learning_epochs: int = 5
    mini_batches: int = 4
    clip_param: float = 0.2
    value_loss_coef: float = 1.0
    use_clipped_value_loss: bool = True
    entropy_coef: float = 0.005
    learning_rate: float = 1.0e-3
    schedule: str = "adaptive"
    desired_kl: float = 0.01
    gamma: float = 0.99
    lam: float = 0.95
    max_grad_norm: float = 1.0


@dataclass
class PolicyConfig(PPOHyperparams):
    """MOPO-PPO in imagination (SPEC §4, §5) and closed-loop evaluation in the simulator."""

    num_envs: int = 1024
    iterations: int = 100
    steps_per_env: int = 24
    checkpoint_every: int = 10
    episode_length: int = 256
    observation_noise: bool = True
    tilt_termination: bool = True
    termination_penalty: float = 0.0  # one-off training cost of an imagined fall (not in the task reward)
    height_termination: bool = False  # also end imagined episodes whose kinematic base height is below the limit
    kinematic_thigh_contacts: bool = False  # also flag thigh contacts that leg kinematics put on the floor
    precision: str = "float32"  # "bfloat16": bf16 world-model steps in imagination and PPO update (mixed precision)
    # closed-loop evaluation in the MuJoCo simulator
    eval_episodes: int = 8
    eval_episode_steps: int = 500


@dataclass
class PPOConfig(PPOHyperparams):
    """Model-free PPO from scratch in the batched MuJoCo simulator; its recorded experience is the dataset."""

    num_envs: int = 256
    iterations: int = 1000
    steps_per_env: int = 24
    checkpoint_every: int = 50
    episode_length: int = 1000  # 20 s, as upstream's real env
    observation_noise: bool = True
    pushes: bool = True
    termination_penalty: float = 0.0  # one-off training cost of a fall, logged as its own term
    threads: int = 2  # MuJoCo rollout threads
    record_envs: int = 16  # envs whose whole experience (every stage of learning) becomes the `mixed` dataset


@dataclass
class OnlineConfig(PPOHyperparams):
    """Online RWM (MBPO-PPO): real envs fill a replay buffer, the model is refined on it, PPO learns in imagination."""

    iterations: int = 300
    warmup_iterations: int = 20  # iterations that only collect real data and train the model
    real_envs: int = 16  # simulated robots stepping the current policy (one replay stream each)
    real_steps: int = 24  # steps per real env per iteration
    real_episode_length: int = 1000
    buffer_capacity: int = 4000  # rows per real env kept in the replay buffer
    model_updates: int = 5  # world-model gradient steps per iteration
    model_batch_size: int = 256  # windows per model step
    model_learning_rate: float = 1.0e-3
    offline_fraction: float = 0.0  # share of each model batch drawn from the offline dataset
    num_envs: int = 1024  # imagined robots
    steps_per_env: int = 24  # imagined steps per env per iteration (each iteration restarts from the buffer)
    penalty: float = 0.0  # λ: RWM is λ = 0
    observation_noise: bool = True
    tilt_termination: bool = True
    termination_penalty: float = 0.0
    precision: str = "float32"
    threads: int = 2  # MuJoCo rollout threads of the real envs
    checkpoint_every: int = 20
    init_policy: str = ""  # a policy checkpoint to fine-tune (e.g. results/ppo/policy_checkpoint.pt); "" = fresh
    eval_episodes: int = 16
    eval_episode_steps: int = 500


@dataclass
class SweepConfig:
    """The penalty sweep: one policy per (λ, seed)."""

    penalties: list[float] = field(default_factory=lambda: [0.0, 1.0, 5.0])
    seeds: list[int] = field(default_factory=lambda: [0])


@dataclass
class TrackingConfig:
    """Metrics always go to CSV; wandb only when enabled (offline unless mode says otherwise)."""

    wandb: bool = False
    wandb_mode: str = "offline"
    wandb_project: str = "rwm-pipeline"


@dataclass
class FiguresConfig:
    """Options that change only how figures look."""

    dpi: int = 150
    overview_seconds: float = 4.0
    prediction_windows: int = 3


@dataclass
class SeedsConfig:
    """One seed per stage (policies take theirs from ``sweep.seeds``); torch, numpy and MuJoCo use it."""

    dataset: int = 1
    ppo: int = 0
    dynamics: int = 0
    evaluation: int = 0


@dataclass
class Config:
    device: str = "auto"  # "auto" picks CUDA when present, else "cpu"; or "cpu", "cuda", "cuda:1"
    seeds: SeedsConfig = field(default_factory=SeedsConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    online: OnlineConfig = field(default_factory=OnlineConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    figures: FiguresConfig = field(default_factory=FiguresConfig)


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
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
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


def validate_config(config: dict[str, Any], schema_path: str | Path, source: str = "config") -> Config:
    """Check a raw config dict against the JSON schema, then build the typed :class:`Config`.

    Used by the Snakefile before any job runs: every problem is reported with its key path, e.g.
    ``config: dynamics.batch_size: 'x' is not of type 'integer'``.
    """
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
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
