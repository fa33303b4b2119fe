"""Export the trained actor as TorchScript and ONNX, so a robot (or our simulator) can run it without rwm_core.

Both exports map a (N, 48) float32 observation to the deterministic (N, 12) action (the Gaussian's mean).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rwm_core.artifacts import atomic_path

JIT_FILE = "policy.pt"
ONNX_FILE = "policy.onnx"


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


class TorchScriptPolicy:
    """Callable numpy policy over an exported TorchScript file (what the simulator evaluation runs)."""

    def __init__(self, path: str | Path) -> None:
        self.module = torch.jit.load(str(path), map_location="cpu").eval()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
            squeeze = x.dim() == 1
            y = self.module(x.unsqueeze(0) if squeeze else x)
            return (y[0] if squeeze else y).numpy()


class OnnxPolicy:
    """Callable numpy policy over an exported ONNX file (onnxruntime, CPU)."""

    def __init__(self, path: str | Path) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32)
        squeeze = x.ndim == 1
        (y,) = self.session.run(["actions"], {"obs": x[None] if squeeze else x})
        return y[0] if squeeze else y
