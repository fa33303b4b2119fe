"""Judge a trained policy where it matters: closed loop in the MuJoCo simulator, under the true (unpenalised) reward.

The exported actor (TorchScript, or ONNX) is run by :func:`rwm_core.sim.evaluate.evaluate_policy`; a standing
policy (zero actions) is evaluated with the same seed, i.e. the same command and push sequences, as the reference
every useful policy must beat.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rwm_core.artifacts import atomic_write_json
from rwm_core.config import PolicyConfig
from rwm_core.errors import RwmError
from rwm_core.policy.export import JIT_FILE, ONNX_FILE, OnnxPolicy, TorchScriptPolicy

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


def evaluate_policy_dir(
    policy_dir: str | Path,
    out_json: str | Path,
    cfg: PolicyConfig,
    seed: int = 0,
    backend: str = "torchscript",
    progress: bool = True,
    model: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate ``policy_dir``'s exported actor and a standing policy in the simulator; write JSON atomically.

    With ``model`` (a world-model checkpoint) the report also says how well that model predicts both policies'
    simulator trajectories (``model_error``): where it is much worse than on the data, the policy has left them.
    """
    from rwm_core.sim.evaluate import evaluate_policy

    d = Path(policy_dir)
    path = d / (JIT_FILE if backend == "torchscript" else ONNX_FILE)
    if backend not in ("torchscript", "onnx"):
        raise RwmError(f"backend must be 'torchscript' or 'onnx', got {backend!r}")
    if not path.exists():
        raise RwmError(f"{path}: no exported policy; run `rwm train-policy` first")
    policy = TorchScriptPolicy(path) if backend == "torchscript" else OnnxPolicy(path)
    kwargs = dict(
        episodes=cfg.eval_episodes,
        episode_steps=cfg.eval_episode_steps,
        seed=seed,
        observation_noise=cfg.observation_noise,
        record_rows=model is not None,
    )
    loaded = None
    if model is not None:
        from rwm_core.dynamics.checkpoint import load as load_model

        if not Path(model).exists():
            raise RwmError(f"{model}: no world-model checkpoint")
        loaded = load_model(model)
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
    atomic_write_json(out_json, report)
    return report
