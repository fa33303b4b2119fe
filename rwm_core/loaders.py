"""Reading input files (checkpoints, exported actors, dataset arrays) with one clear error instead of a traceback.

Every loader in rwm_core reads its files through here, so a file that is missing, empty, truncated, not of the
expected format or of another kind always fails the same way: one :class:`~rwm_core.errors.InputError` line that
names the file, what was expected and what was found, e.g.
``runs/m/model.pt: expected a world-model checkpoint, found a policy checkpoint (from `rwm train-policy`)``.

Kinds of torch files are told apart by a ``kind`` field where we write one, else by their keys (older files and
upstream ones have none): see :func:`detect_kind`.
"""

from __future__ import annotations

import json
import pickle
import re
import warnings
import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from rwm_core.artifacts import check_format_version
from rwm_core.errors import InputError

# kinds of torch files (the ``kind`` field, or what detect_kind infers from the keys)
WORLD_MODEL = "rwm_core.dynamics"
UPSTREAM_WORLD_MODEL = "upstream.dynamics"
POLICY = "rwm_core.policy"
UPSTREAM_POLICY = "upstream.policy"
TORCHSCRIPT = "torchscript"
WORLD_MODEL_STATE_KEY = "system_dynamics_state_dict"  # upstream's key; ours keeps it so our files are upstream files

KIND_NAMES = {
    WORLD_MODEL: "a world-model checkpoint (from `rwm pretrain`)",
    UPSTREAM_WORLD_MODEL: f"an upstream-format world-model file (weights under '{WORLD_MODEL_STATE_KEY}' only)",
    POLICY: "a policy checkpoint (from `rwm train-policy`, `train-ppo` or `train-online`)",
    UPSTREAM_POLICY: "an rsl-rl policy checkpoint of the old format ('model_state_dict')",
    TORCHSCRIPT: "a TorchScript module (an exported actor such as policy.pt)",
}
_VERSIONED = {WORLD_MODEL: "world-model checkpoint format", POLICY: "policy checkpoint format"}
_MAX_DETAIL = 160  # characters of a library's own error message kept in ours


def fail(path: str | Path, expected: str, found: str, hint: str = "") -> InputError:
    """The one-line error every loader raises: ``PATH: expected X, found Y[; hint]``."""
    msg = f"{path}: expected {expected}, found {found}"
    return InputError(one_line(f"{msg}; {hint}" if hint else msg, limit=None))


def one_line(text: str, limit: int | None = _MAX_DETAIL) -> str:
    """``text`` on one line (a library's multi-line message would otherwise break the CLI's one-line error)."""
    flat = " ".join(str(text).split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 3] + "..."


# noise in torch's and onnxruntime's messages: "[enforce fail at file.cc:230] . ", "/onnxruntime_src/...(args) "
_NOISE = re.compile(
    r"\[enforce fail at [^\]]*\]\s*\.?\s*"
    r"|/onnxruntime_src/\S+ .*?\)\s(?=[A-Z])"
    r"|Load model from .*? failed:"
    r"|\[ONNXRuntimeError\] : \d+ : \w+ : "
)


def _detail(e: BaseException, name: bool = True) -> str:
    """A library's error as a short clause: type and the first words of its message, without source locations."""
    text = _NOISE.sub("", str(e)).strip()
    if not name:
        return one_line(text or type(e).__name__)
    return one_line(f"{type(e).__name__}: {text}" if text else type(e).__name__)


def check_file(path: str | Path, expected: str, hint: str = "") -> Path:
    """``path`` as a Path if it is a non-empty regular file; else the one-line error (missing, a directory, empty)."""
    p = Path(path)
    if not p.exists():
        raise fail(p, expected, "nothing (file not found)", hint)
    if p.is_dir():
        raise fail(p, expected, "a directory", hint)
    if p.stat().st_size == 0:
        raise fail(p, expected, "an empty file (0 bytes)", hint)
    return p


def _head(path: Path, n: int = 512) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def sniff(path: str | Path) -> str:
    """What a file looks like from its first bytes, for the "found ..." part of an error."""
    p = Path(path)
    head = _head(p)
    if not head:
        return "an empty file (0 bytes)"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a plain pickle"
    if p.suffix == ".onnx" and head[:1] == b"\x08":  # protobuf field 1 (ir_version), varint
        return "an ONNX model"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # not just a character cut at the end of the sample
            return "unrecognised binary data"
        text = head[: e.start].decode("utf-8")
    return "unrecognised binary data" if "\x00" in text else "a text file"


def _zip_names(path: Path, expected: str, hint: str = "") -> list[str] | None:
    """The member names of a zip file (torch's format), None if it is no zip, an error if it is a broken one."""
    if not _head(path, 4).startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError):
        raise fail(path, expected, "a truncated or corrupt file (an incomplete zip archive)", hint) from None


def _is_torchscript(names: list[str]) -> bool:
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def detect_kind(obj: Any) -> str | None:
    """The kind of a loaded torch object: the ``kind`` field, else inferred from the keys; None if unknown.

    Why keys: policy checkpoints written before the ``kind`` field, and every upstream file, carry none.
    """
    import torch

    if isinstance(obj, torch.jit.ScriptModule):
        return TORCHSCRIPT
    if not isinstance(obj, dict):
        return None
    kind = obj.get("kind")
    if isinstance(kind, str):
        return kind
    if WORLD_MODEL_STATE_KEY in obj:  # first: upstream world-model files may also hold the policy's weights
        return WORLD_MODEL if "format_version" in obj and "spec" in obj else UPSTREAM_WORLD_MODEL
    if "actor_state_dict" in obj:  # rsl-rl >= 3 PPO.save(), plus our extras
        return POLICY
    if "model_state_dict" in obj:  # rsl-rl < 3 runner checkpoint
        return UPSTREAM_POLICY
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        if any(str(k).startswith("state_base.memory.rnn.") for k in obj):
            return UPSTREAM_WORLD_MODEL  # a bare upstream state dict
    return None


def describe(obj: Any, kind: str | None = None) -> str:
    """The "found ..." text for a loaded object."""
    kind = kind if kind is not None else detect_kind(obj)
    if kind in KIND_NAMES:
        return KIND_NAMES[kind]
    if kind is not None:
        return f"a file of kind {kind!r}"
    if isinstance(obj, dict):
        keys = sorted(map(str, obj))
        shown = ", ".join(repr(k) for k in keys[:6]) + (", ..." if len(keys) > 6 else "")
        return f"a dict with keys [{shown}], neither an rwm_core checkpoint nor an upstream file"
    return f"a pickled {type(obj).__name__}, not a checkpoint dict"


def _torch_load(path: Path, expected: str, map_location: Any, trust_pickle: bool, hint: str = "") -> Any:
    """torch.load with every failure turned into the one-line error; no kind check."""
    import torch

    names = _zip_names(path, expected, hint)
    if names is not None:
        if _is_torchscript(names):
            raise fail(path, expected, KIND_NAMES[TORCHSCRIPT], hint)
        if not any(n.endswith("data.pkl") for n in names):
            raise fail(path, expected, "a zip archive that is not a torch file (no data.pkl)", hint)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if names is None or not trust_pickle or "weights only load failed" not in str(e).lower():
            raise fail(path, expected, _not_torch(path, names, e), hint) from None
    # a complete torch file holding objects other than tensors and containers (upstream 'infos' may)
    warnings.warn(
        f"{path}: not loadable with weights_only=True; loading with full unpickling - only do this for files you trust",
        stacklevel=3,
    )
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        raise fail(path, expected, f"a torch file that cannot be unpickled ({_detail(e)})", hint) from None


def _not_torch(path: Path, names: list[str] | None, e: BaseException) -> str:
    if names is None:
        return f"{sniff(path)}, not a torch file"
    return f"a torch file that this torch cannot read, corrupt or of a newer version ({_detail(e)})"


def load_torch_file(
    path: str | Path,
    expected_kind: str | Collection[str],
    *,
    expected: str | None = None,
    supported_version: int | None = None,
    map_location: Any = "cpu",
    trust_pickle: bool = True,
    hint: str = "",
) -> dict[str, Any]:
    """Load a torch checkpoint dict of one of ``expected_kind`` (see :func:`detect_kind`), or fail in one line.

    ``expected`` is the text after "expected" (default: the name of the first kind). ``supported_version`` refuses
    files with a newer ``format_version``. ``trust_pickle`` lets a complete file with non-tensor objects load with
    full unpickling (with a warning), as upstream files need.
    """
    kinds = {expected_kind} if isinstance(expected_kind, str) else set(expected_kind)
    first = expected_kind if isinstance(expected_kind, str) else next(iter(expected_kind))
    what = expected or KIND_NAMES.get(first, f"a file of kind {first!r}")
    p = check_file(path, what, hint)
    try:
        obj = _torch_load(p, what, map_location, trust_pickle, hint)
    except InputError:
        raise
    except Exception as e:  # legacy (non-zip) reader errors: EOFError, KeyError, RuntimeError, ...
        raise fail(p, what, _not_torch(p, _zip_names(p, what, hint), e), hint) from None
    kind = detect_kind(obj)
    if kind not in kinds:
        raise fail(p, what, describe(obj, kind), hint)
    if supported_version is not None:
        check_format_version(format_version(obj, p, what), supported_version, p, _VERSIONED.get(kind, "format"))
    return obj


def format_version(obj: dict[str, Any], path: str | Path, expected: str, key: str = "format_version") -> int:
    """The file's format version under ``key`` (0 when absent, as in files written before it existed)."""
    raw = obj.get(key, 0)
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise fail(path, expected, f"{key} {raw!r}, not an integer") from None


def require_keys(obj: dict[str, Any], keys: Collection[str], path: str | Path, expected: str, found: str) -> None:
    """Fail in one line when ``obj`` lacks any of ``keys`` (a file of the right kind but missing parts)."""
    missing = [k for k in keys if k not in obj]
    if missing:
        raise fail(path, expected, f"{found} without {', '.join(repr(k) for k in missing)}")


def load_json_file(path: str | Path, expected: str, hint: str = "") -> dict[str, Any]:
    """A JSON object from ``path``, or the one-line error (missing, empty, truncated, not JSON, not an object)."""
    p = check_file(path, expected, hint)
    try:
        obj = json.loads(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise fail(p, expected, f"{sniff(p)}, not JSON", hint) from None
    except json.JSONDecodeError as e:
        found = f"invalid or truncated JSON ({e.msg}, line {e.lineno} column {e.colno})"
        raise fail(p, expected, found, hint) from None
    if not isinstance(obj, dict):
        raise fail(p, expected, f"a JSON {type(obj).__name__}, not an object", hint)
    return obj


def load_npy_file(path: str | Path, expected: str, mmap: bool = False, hint: str = "") -> np.ndarray:
    """A NumPy array from a ``.npy`` file (no pickles), or the one-line error (missing, empty, truncated, other)."""
    p = check_file(path, expected, hint)
    if not _head(p, 6).startswith(b"\x93NUMPY"):
        raise fail(p, expected, f"{sniff(p)}, not a .npy array", hint)
    try:
        return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise fail(p, expected, f"a truncated or corrupt .npy file ({_detail(e)})", hint) from None


def _describe_torch_zip(path: Path) -> str:
    """What a torch zip file that is not the expected format holds (its kind when it is a checkpoint)."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return "a zip archive that is neither a TorchScript module nor a readable torch file"
    return describe(obj)


def load_torchscript_file(path: str | Path, expected: str, hint: str = "") -> Any:
    """A TorchScript module (``torch.jit.load``, CPU, eval mode), or the one-line error.

    A torch checkpoint given instead (a policy checkpoint, a world model) is named by its kind.
    """
    import torch

    p = check_file(path, expected, hint)
    names = _zip_names(p, expected, hint)
    if names is None:
        raise fail(p, expected, f"{sniff(p)}, not a TorchScript archive", hint)
    if not _is_torchscript(names):
        raise fail(p, expected, _describe_torch_zip(p), hint)
    try:
        return torch.jit.load(str(p), map_location="cpu").eval()
    except Exception as e:
        raise fail(p, expected, f"a TorchScript archive that this torch cannot load ({_detail(e)})", hint) from None


def open_onnx_session(path: str | Path, expected: str, hint: str = "") -> Any:
    """An onnxruntime CPU ``InferenceSession`` over ``path``, or the one-line error."""
    import onnxruntime as ort

    p = check_file(path, expected, hint)
    names = _zip_names(p, expected, hint)
    if names is not None:  # a torch file (TorchScript or checkpoint), not ONNX
        found = KIND_NAMES[TORCHSCRIPT] if _is_torchscript(names) else _describe_torch_zip(p)
        raise fail(p, expected, found, hint)
    try:
        return ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    except Exception as e:
        looks = sniff(p)
        if looks == "an ONNX model":  # truncated, corrupt, or of a newer IR/opset version than this onnxruntime
            found = f"an ONNX model that this onnxruntime cannot load ({_detail(e, name=False)})"
        else:
            found = f"{looks}, not ONNX"
        raise fail(p, expected, found, hint) from None
