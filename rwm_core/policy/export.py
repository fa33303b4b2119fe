"""The trained actor outside training: exported as TorchScript and ONNX, and read back from files or checkpoints.

Why: a robot (or our simulator) runs the exports without rwm_core; scoring and data collection rebuild the actor of
any training checkpoint. Both map a (N, 48) float32 observation to the deterministic (N, 12) action (the mean).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rwm_core.artifacts import atomic_path
from rwm_core.config import PolicyConfig
from rwm_core.loaders import POLICY, describe, detect_kind, fail, load_torchscript_file, one_line, open_onnx_session
from rwm_core.tasks import get_task

JIT_FILE = "policy.pt"
ONNX_FILE = "policy.onnx"
OBS_DIM = int(get_task("anymal_d_flat").OBS_DIM)  # what the simulator (and imagination) feed the actor: 48
ACTION_DIM = int(get_task("anymal_d_flat").LAYOUT.action_dim)  # joint position targets: 12


def actor_expected(kind: str, obs_dim: int = OBS_DIM, action_dim: int = ACTION_DIM) -> str:
    """The "expected ..." text of an exported actor's errors."""
    return f"an exported actor ({kind}, mapping (N, {obs_dim}) observations to (N, {action_dim}) actions)"


def export_actor(actor: Any, out_dir: str | Path) -> dict[str, Path]:
    """Write ``policy.pt`` (TorchScript) and ``policy.onnx`` from an rsl-rl ``MLPModel`` actor, atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jit_module = actor.as_jit().to("cpu").eval()
    scripted = torch.jit.script(jit_module)
    with atomic_path(out / JIT_FILE) as tmp:
        scripted.save(str(tmp))
    onnx_module = actor.as_onnx(verbose=False).to("cpu").eval()
    with atomic_path(out / ONNX_FILE) as tmp:
        torch.onnx.export(
            onnx_module,
            onnx_module.get_dummy_inputs(),
            str(tmp),
            export_params=True,
            opset_version=18,
            input_names=onnx_module.input_names,
            output_names=onnx_module.output_names,
            dynamic_axes={"obs": {0: "batch"}, "actions": {0: "batch"}},
            dynamo=False,
        )
    return {"torchscript": out / JIT_FILE, "onnx": out / ONNX_FILE}


def _first_layer_inputs(module: Any) -> str:
    """The clause ", whose first layer takes K inputs" for a module with a 2-D weight (an MLP), else ""."""
    try:
        w = next(p for p in module.parameters() if p.dim() == 2)
    except (StopIteration, RuntimeError, AttributeError):
        return ""
    return f", whose first layer takes {int(w.shape[1])} inputs"


class TorchScriptPolicy:
    """Callable numpy policy over an exported TorchScript file (what the simulator evaluation runs).

    The file is checked when opened (readable TorchScript, (1, obs_dim) -> (1, action_dim)), so a wrong file fails
    with one line before any simulation runs.
    """

    def __init__(self, path: str | Path, obs_dim: int = OBS_DIM, action_dim: int = ACTION_DIM) -> None:
        expected = actor_expected("TorchScript", obs_dim, action_dim)
        self.module = load_torchscript_file(path, expected)
        try:
            with torch.inference_mode():
                y = self.module(torch.zeros(1, obs_dim))
        except Exception as e:
            found = f"a module that does not accept {obs_dim} inputs{_first_layer_inputs(self.module)}"
            raise fail(path, expected, f"{found} ({one_line(str(e).splitlines()[-1] if str(e) else '')})") from None
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else None
        if shape != (1, action_dim):
            raise fail(path, expected, f"one whose output is {shape or type(y).__name__} for a (1, {obs_dim}) input")

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
            squeeze = x.dim() == 1
            y = self.module(x.unsqueeze(0) if squeeze else x)
            return (y[0] if squeeze else y).numpy()


class OnnxPolicy:
    """Callable numpy policy over an exported ONNX file (onnxruntime, CPU); checked when opened, as above."""

    def __init__(self, path: str | Path, obs_dim: int = OBS_DIM, action_dim: int = ACTION_DIM) -> None:
        expected = actor_expected("ONNX, input 'obs', output 'actions'", obs_dim, action_dim)
        self.session = open_onnx_session(path, expected)
        ins = {i.name: list(i.shape) for i in self.session.get_inputs()}
        outs = {o.name: list(o.shape) for o in self.session.get_outputs()}
        if list(ins) != ["obs"] or "actions" not in outs:
            raise fail(path, expected, f"inputs {sorted(ins)} and outputs {sorted(outs)}")
        if ins["obs"][-1:] != [obs_dim] or outs["actions"][-1:] != [action_dim]:
            raise fail(path, expected, f"input shape {ins['obs']} and output shape {outs['actions']}")

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32)
        squeeze = x.ndim == 1
        (y,) = self.session.run(["actions"], {"obs": x[None] if squeeze else x})
        return y[0] if squeeze else y


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
