"""Judge a trained policy where it matters: closed loop in the MuJoCo simulator, under the true (unpenalised) reward.

The exported actor (TorchScript, or ONNX) is run by :func:`rwm_core.sim.evaluate.evaluate_policy`; a standing
policy (zero actions) is evaluated with the same seed, i.e. the same command and push sequences, as the reference
every useful policy must beat. Optionally every training checkpoint is scored the same way: imagined reward that
rises while the true return falls is the signature of a policy exploiting the world model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rwm_core.artifacts import atomic_write_json
from rwm_core.config import PolicyConfig
from rwm_core.errors import RwmError
from rwm_core.loaders import POLICY, describe, detect_kind, fail, one_line
from rwm_core.policy.export import ACTION_DIM, JIT_FILE, OBS_DIM, ONNX_FILE, OnnxPolicy, TorchScriptPolicy

EVAL_FILE = "sim_eval.json"
EVAL_CONFIG_KEYS = ("eval_episodes", "eval_episode_steps", "observation_noise")  # the policy keys evaluation reads


def _summary(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "return_mean": raw["mean_return"],
        "return_std": float(np.std(raw["returns"])),
        "fall_rate": raw["fall_rate"],
        "episode_length_mean": raw["mean_length"],
        "lin_vel_error": raw["mean_lin_vel_xy_error"],
        "yaw_rate_error": raw["mean_yaw_rate_error"],
        "mean_terms": raw["mean_terms"],
        "returns": raw["returns"],
        "lengths": raw["lengths"],
    }


ACTOR_EXPECTED = f"a policy checkpoint of `rwm train-policy` (an MLP actor, {OBS_DIM} inputs, {ACTION_DIM} outputs)"


def actor_from_checkpoint(
    checkpoint: str | Path | dict[str, Any], cfg: PolicyConfig, name: str | Path | None = None
) -> torch.nn.Module:
    """The deterministic actor (Gaussian mean) of a training checkpoint (path or loaded dict), as exported.

    The architecture is the one the checkpoint was trained with (``actor_cfg``, stored in checkpoints since it was
    added), else the one ``cfg`` describes. A file that is not such a checkpoint, or an actor of other dimensions
    than the simulator's observation and action, fails with one :class:`InputError` line naming ``name`` (the
    file a loaded dict came from) or the path.
    """
    from rsl_rl.models import MLPModel
    from tensordict import TensorDict

    from rwm_core.policy.train import ppo_config, read_checkpoint

    if isinstance(checkpoint, dict):
        where, state = str(name or "checkpoint"), checkpoint
        if detect_kind(state) != POLICY:
            raise fail(where, ACTOR_EXPECTED, describe(state))
    else:
        where, state = str(checkpoint), read_checkpoint(checkpoint)
    weights = state.get("actor_state_dict")
    keys = ("mlp.0.weight", "distribution.std_param")
    if not isinstance(weights, dict) or not all(isinstance(weights.get(k), torch.Tensor) for k in keys):
        found = "an actor_state_dict without an MLP ('mlp.0.weight', 'distribution.std_param')"
        raise fail(where, ACTOR_EXPECTED, found)
    in_dim, out_dim = int(weights["mlp.0.weight"].shape[-1]), int(weights["distribution.std_param"].shape[0])
    if (in_dim, out_dim) != (OBS_DIM, ACTION_DIM):
        raise fail(where, ACTOR_EXPECTED, f"an actor with {in_dim} inputs and {out_dim} outputs")
    actor_cfg = dict(state.get("actor_cfg") or ppo_config(cfg)["actor"])
    actor_cfg.pop("class_name", None)
    obs = TensorDict({"policy": torch.zeros(1, in_dim)}, batch_size=[1])
    try:
        actor = MLPModel(obs, {"actor": ["policy"]}, "actor", out_dim, **actor_cfg)
        actor.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError, KeyError) as e:
        raise fail(where, ACTOR_EXPECTED + " matching its actor_cfg", one_line(str(e))) from None
    return actor.as_jit().eval()


def checkpoint_actors(policy_dir: str | Path, cfg: PolicyConfig) -> list[tuple[int, Path, torch.nn.Module]]:
    """(iteration, path, actor) of every checkpoint of the final run, by iteration; every file checked on the way.

    Checkpoints another run left behind (another fingerprint, or past the final iteration) are left out. Building
    them all first means a broken or mismatched one fails before any simulation ran.
    """
    from rwm_core.artifacts import list_checkpoints
    from rwm_core.policy.train import CHECKPOINT_DIR, FINAL_CHECKPOINT, read_checkpoint

    d = Path(policy_dir)
    final_path = d / FINAL_CHECKPOINT
    final = read_checkpoint(final_path) if final_path.exists() else {}
    out = []
    for iteration, f in list_checkpoints(d / CHECKPOINT_DIR):
        state = read_checkpoint(f)
        stale = bool(final) and (
            state.get("fingerprint") != final.get("fingerprint") or iteration > int(final.get("iter", iteration))
        )
        if not stale:
            out.append((iteration, f, actor_from_checkpoint(state, cfg, name=f)))
    return out


def evaluate_checkpoints(
    policy_dir: str | Path,
    cfg: PolicyConfig,
    seed: int = 0,
    progress: bool = True,
    actors: list[tuple[int, Path, torch.nn.Module]] | None = None,
) -> list[dict[str, Any]]:
    """True return, fall rate and episode length of every checkpoint of the final run, by iteration.

    Same seed, episodes and noise as the final evaluation, so the last checkpoint scores as the exported actor does.
    ``actors`` is what :func:`checkpoint_actors` returned (built here when not given).
    """
    from rwm_core.sim.evaluate import evaluate_policy

    actors = checkpoint_actors(policy_dir, cfg) if actors is None else actors
    bar = None
    if progress and actors:
        from tqdm import tqdm

        bar = tqdm(total=len(actors), desc="checkpoints in the simulator", unit="ckpt")
    out = []
    for iteration, f, actor in actors:
        with torch.inference_mode():
            raw = evaluate_policy(
                actor,
                episodes=cfg.eval_episodes,
                episode_steps=cfg.eval_episode_steps,
                seed=seed,
                observation_noise=cfg.observation_noise,
            )
        out.append(
            {
                "iteration": iteration,
                "path": str(f),
                "return_mean": raw["mean_return"],
                "fall_rate": raw["fall_rate"],
                "episode_length_mean": raw["mean_length"],
            }
        )
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


def evaluate_policy_dir(
    policy_dir: str | Path,
    out_json: str | Path,
    cfg: PolicyConfig,
    seed: int = 0,
    backend: str = "torchscript",
    progress: bool = True,
    model: str | Path | None = None,
    checkpoints: bool = False,
) -> dict[str, Any]:
    """Evaluate ``policy_dir``'s exported actor and a standing policy in the simulator; write JSON atomically.

    With ``model`` (a world-model checkpoint) the report also says how well that model predicts both policies'
    simulator trajectories (``model_error``): where it is much worse than on the data, the policy has left them.
    With ``checkpoints`` it also scores every training checkpoint (``checkpoints``: the true return over training).
    """
    from rwm_core.sim.evaluate import evaluate_policy

    if backend not in ("torchscript", "onnx"):
        raise RwmError(f"backend must be 'torchscript' or 'onnx', got {backend!r}")
    d = Path(policy_dir)
    if not d.is_dir():
        raise fail(d, "a policy directory written by `rwm train-policy`", "nothing (directory not found)")
    path = d / (JIT_FILE if backend == "torchscript" else ONNX_FILE)
    if not path.exists():
        raise fail(path, f"the exported actor {path.name}", "nothing (file not found)", "run `rwm train-policy` first")
    policy = TorchScriptPolicy(path) if backend == "torchscript" else OnnxPolicy(path)
    actors = checkpoint_actors(d, cfg) if checkpoints else None  # every input is checked before the simulations
    kwargs = dict(
        episodes=cfg.eval_episodes,
        episode_steps=cfg.eval_episode_steps,
        seed=seed,
        observation_noise=cfg.observation_noise,
        record_rows=model is not None,
    )
    loaded = None
    if model is not None:
        from rwm_core.dynamics.checkpoint import check_layout
        from rwm_core.dynamics.checkpoint import load as load_model
        from rwm_core.tasks import get_task

        loaded = load_model(model)
        check_layout(loaded, get_task(loaded.task).LAYOUT, model, "the simulator")
        loaded.model.eval()
    trained = evaluate_policy(policy, progress=progress, **kwargs)
    standing = evaluate_policy(lambda obs: np.zeros(12, dtype=np.float32), **kwargs)
    report: dict[str, Any] = {
        "policy": str(path),
        "backend": backend,
        "episodes": cfg.eval_episodes,
        "episode_steps": cfg.eval_episode_steps,
        "seed": seed,
        **_summary(trained),
        "standing": _summary(standing),
        "beats_standing": bool(trained["mean_return"] > standing["mean_return"]),
    }
    if loaded is not None:
        from rwm_core.config import DatasetConfig
        from rwm_core.evaluation.prediction import trajectory_error

        history = int(loaded.meta.get("history", DatasetConfig().history))
        report["model_error"] = {
            "model": str(model),
            "metric": "relative autoregressive error (normalised state) on the simulator trajectories, per step",
            "policy": trajectory_error(loaded, trained["rows"], history),
            "standing": trajectory_error(loaded, standing["rows"], history),
        }
    if checkpoints:
        report["checkpoints"] = evaluate_checkpoints(d, cfg, seed=seed, progress=progress, actors=actors)
    atomic_write_json(out_json, report)
    return report
