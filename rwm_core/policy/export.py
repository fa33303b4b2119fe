"""Export the trained actor as TorchScript and ONNX, so a robot (or our simulator) can run it without rwm_core.

Both exports map a (N, 48) float32 observation to the deterministic (N, 12) action (the Gaussian's mean).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rwm_core.artifacts import atomic_path
from rwm_core.loaders import fail, load_torchscript_file, one_line, open_onnx_session
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
