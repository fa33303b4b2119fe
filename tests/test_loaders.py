"""Broken or mismatched checkpoints and artifacts fail with one clear InputError line, never a traceback.

For each kind of input file (world model, policy checkpoint, exported TorchScript and ONNX actor, dataset artifact)
every way of being unusable is checked: missing, empty, truncated, not that format at all (random bytes, text, a
pickle), of another kind, of a newer format version and built for other dimensions. Each error must be an
:class:`InputError` whose one line names the file, says what was expected and what was found.
"""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import tiny_world
from tensordict import TensorDict

from rwm_core.artifacts import CHECKPOINT_FORMAT_VERSION
from rwm_core.cli import main
from rwm_core.config import DynamicsConfig, EvaluationConfig, PolicyConfig
from rwm_core.data.dataset import META_FILE, NORMALIZATION_FILE, ROWS_FILE, WINDOWS_FILE, Dataset
from rwm_core.data.normalizer import Normalizer
from rwm_core.dynamics import checkpoint as ckpt
from rwm_core.dynamics.model import ModelSpec, SystemDynamicsEnsemble
from rwm_core.errors import InputError
from rwm_core.evaluation.policy import evaluate_policy_dir
from rwm_core.policy.export import OnnxPolicy, TorchScriptPolicy, actor_from_checkpoint, export_actor
from rwm_core.policy.train import POLICY_FORMAT_VERSION, _save, read_checkpoint

CFG = PolicyConfig()
ACTOR_CFG = {
    "class_name": "MLPModel",
    "hidden_dims": [16],
    "activation": "elu",
    "obs_normalization": False,
    "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 1.0},
}


# ------------------------------------------------------------------ small real files
def _actor(obs_dim: int = 48, action_dim: int = 12) -> Any:
    from rsl_rl.models import MLPModel

    cfg = {k: v for k, v in ACTOR_CFG.items() if k != "class_name"}
    obs = TensorDict({"policy": torch.zeros(1, obs_dim)}, batch_size=[1])
    return MLPModel(obs, {"actor": ["policy"]}, "actor", action_dim, **cfg)


class _FakePPO:
    """What `_save` needs of rsl-rl's PPO: ``save()`` returning the state dicts."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def save(self) -> dict[str, Any]:
        return {
            "actor_state_dict": self.actor.state_dict(),
            "critic_state_dict": {"mlp.0.weight": torch.zeros(1, 48)},
            "optimizer_state_dict": {"state": {}, "param_groups": []},
        }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One valid file of each kind, plus dimension-mismatched ones (read-only for the tests: copy to break)."""
    tmp = tmp_path_factory.mktemp("loaders")
    model, ds = tiny_world(tmp, 1500, rows_seed=4, history=6, model_seed=0)
    world = ckpt.save(tmp / "model.pt", model, ds.normalizer, task=ds.task_name, meta={"history": 6})
    torch.manual_seed(0)
    policy = tmp / "policy_checkpoint.pt"
    _save(policy, _FakePPO(_actor()), 2, {"actor_cfg": ACTOR_CFG, "fingerprint": "f", "penalty": 0.0, "seed": 0})
    exported = export_actor(_actor(), tmp / "export")
    narrow = SystemDynamicsEnsemble(ModelSpec(state_dim=30, ensemble_size=2, hidden_size=16, head_hidden=8))
    norm30 = Normalizer(np.zeros(30, np.float32), np.ones(30, np.float32), np.zeros(12, np.float32), np.ones(12))
    narrow_path = ckpt.save(tmp / "model30.pt", narrow, norm30, task=ds.task_name)
    wrong_in = tmp / "policy30.pt"
    _save(wrong_in, _FakePPO(_actor(obs_dim=30)), 2, {"actor_cfg": ACTOR_CFG})
    export30 = export_actor(_actor(obs_dim=30), tmp / "export30")
    export8 = export_actor(_actor(action_dim=8), tmp / "export8")
    return {
        "world": world,
        "dataset": tmp / "data",
        "policy": policy,
        "torchscript": exported["torchscript"],
        "onnx": exported["onnx"],
        "world30": narrow_path,
        "policy30": wrong_in,
        "torchscript30": export30["torchscript"],
        "torchscript8": export8["torchscript"],
        "onnx30": export30["onnx"],
        "onnx8": export8["onnx"],
    }


def expect_input_error(call: Callable[[], Any], path: Path, *found: str) -> str:
    """``call`` raises an InputError of one line naming ``path``, "expected" and every ``found`` fragment."""
    with pytest.raises(InputError) as info:
        call()
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert str(path) in msg, msg
    assert "expected" in msg, msg
    for fragment in found:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    return msg


# ------------------------------------------------------------------ ways a file can be broken
def _missing(good: Path, target: Path) -> None:
    target.unlink(missing_ok=True)


def _empty(good: Path, target: Path) -> None:
    target.write_bytes(b"")


def _truncated(good: Path, target: Path) -> None:
    data = good.read_bytes()
    target.write_bytes(data[: len(data) // 2])


def _random(good: Path, target: Path) -> None:
    target.write_bytes(b"\x01\xfe" + np.random.default_rng(0).bytes(998))  # neither zip, pickle, protobuf nor UTF-8


def _text(good: Path, target: Path) -> None:
    target.write_text("this is not a checkpoint\njust some text\n")


def _pickled_list(good: Path, target: Path) -> None:
    target.write_bytes(pickle.dumps([1, 2, 3]))


BROKEN = {
    "missing": _missing,
    "empty": _empty,
    "truncated": _truncated,
    "random bytes": _random,
    "text": _text,
    "pickled list": _pickled_list,
}


def _broken(files: dict[str, Path], key: str, how: str, tmp_path: Path) -> tuple[Path, Path]:
    good = files[key]
    target = tmp_path / good.name
    BROKEN[how](good, target)
    return good, target


# what each loader's message says it found, per way of breaking (torch files, TorchScript, ONNX)
TORCH_FOUND = {
    "missing": "not found",
    "empty": "empty file",
    "truncated": "truncated",
    "random bytes": "unrecognised binary data, not a torch file",
    "text": "a text file, not a torch file",
    "pickled list": "a plain pickle, not a torch file",
}
TORCHSCRIPT_FOUND = {
    **TORCH_FOUND,
    "random bytes": "not a TorchScript archive",
    "text": "a text file, not a TorchScript archive",
    "pickled list": "a plain pickle, not a TorchScript archive",
}
ONNX_FOUND = {
    **TORCH_FOUND,
    "truncated": "an ONNX model that this onnxruntime cannot load",
    "random bytes": "unrecognised binary data, not ONNX",
    "text": "a text file, not ONNX",
    "pickled list": "a plain pickle, not ONNX",
}


# ------------------------------------------------------------------ world model
@pytest.mark.parametrize("how", BROKEN)
def test_world_model_broken_file(files: dict[str, Path], tmp_path: Path, how: str) -> None:
    _, target = _broken(files, "world", how, tmp_path)
    expect_input_error(lambda: ckpt.load(target), target, "expected a world-model checkpoint", TORCH_FOUND[how])


def test_world_model_torch_list_and_foreign_dict(tmp_path: Path) -> None:
    p = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], p)
    expect_input_error(lambda: ckpt.load(p), p, "a pickled list, not a checkpoint dict")
    torch.save({"foo": 1, "bar": torch.zeros(1)}, p)
    expect_input_error(lambda: ckpt.load(p), p, "a dict with keys ['bar', 'foo']")


def test_world_model_of_another_kind(files: dict[str, Path]) -> None:
    expect_input_error(lambda: ckpt.load(files["policy"]), files["policy"], "found a policy checkpoint")
    expect_input_error(lambda: ckpt.load(files["torchscript"]), files["torchscript"], "found a TorchScript module")
    expect_input_error(lambda: ckpt.load(files["onnx"]), files["onnx"], "an ONNX model, not a torch file")
    expect_input_error(lambda: ckpt.load(files["dataset"]), files["dataset"], "found a directory")


def test_upstream_world_model_where_ours_is_required(files: dict[str, Path], tmp_path: Path) -> None:
    """Resuming needs our training state; an upstream file (or a final model.pt) cannot be continued."""
    upstream = tmp_path / "iter_000002.pt"
    torch.save({"system_dynamics_state_dict": ckpt.read(files["world"])["system_dynamics_state_dict"]}, upstream)
    assert ckpt.load(upstream).source == "upstream"  # fine where any world model does
    expect_input_error(
        lambda: ckpt.read_training_checkpoint(upstream), upstream, "training checkpoint", "found an upstream-format"
    )
    expect_input_error(
        lambda: ckpt.read_training_checkpoint(files["world"]),
        files["world"],
        "found a world-model checkpoint (from `rwm pretrain`) without 'iter'",
    )


def test_upstream_world_model_holding_a_policy_too_is_a_world_model(files: dict[str, Path], tmp_path: Path) -> None:
    """Upstream files may carry the policy next to the world model; told by keys, they are world models."""
    p = tmp_path / "pretrain_rnn_ens.pt"
    sd = ckpt.read(files["world"])["system_dynamics_state_dict"]
    torch.save({"system_dynamics_state_dict": sd, "actor_state_dict": {}, "model_state_dict": {}, "iter": 5}, p)
    assert ckpt.load(p).source == "upstream"
    expect_input_error(lambda: actor_from_checkpoint(p, CFG), p, "expected a policy", "upstream-format world-model")


def test_world_model_of_a_newer_format(files: dict[str, Path], tmp_path: Path) -> None:
    raw = ckpt.read(files["world"])
    raw["format_version"] = CHECKPOINT_FORMAT_VERSION + 1
    p = tmp_path / "new.pt"
    torch.save(raw, p)
    expect_input_error(
        lambda: ckpt.load(p),
        p,
        f"version {CHECKPOINT_FORMAT_VERSION} or older",
        f"found version {raw['format_version']}",
    )


def test_world_model_of_other_dims_than_the_dataset(files: dict[str, Path], tmp_path: Path) -> None:
    from rwm_core.evaluation.prediction import evaluate_dynamics

    out = tmp_path / "eval.json"
    model = files["world30"]
    expect_input_error(
        lambda: evaluate_dynamics(model, files["dataset"], out, EvaluationConfig(), device="cpu"),
        model,
        "dims 45/12/8/1",
        "found one with dims 30/12/8/1",
    )
    assert not out.exists()


def test_world_model_weights_that_do_not_fit_its_spec(files: dict[str, Path], tmp_path: Path) -> None:
    raw = ckpt.read(files["world"])
    raw["spec"] = {**raw["spec"], "hidden_size": raw["spec"]["hidden_size"] * 2}
    p = tmp_path / "bad_spec.pt"
    torch.save(raw, p)
    expect_input_error(lambda: ckpt.load(p), p, "weights matching the file's own spec", "size mismatch")


# ------------------------------------------------------------------ policy checkpoint
def test_policy_checkpoint_has_a_kind_and_loads(files: dict[str, Path]) -> None:
    state = read_checkpoint(files["policy"])
    assert state["kind"] == "rwm_core.policy" and state["format_version"] == POLICY_FORMAT_VERSION
    actor = actor_from_checkpoint(files["policy"], CFG)
    assert actor(torch.zeros(1, 48)).shape == (1, 12)


def test_old_policy_checkpoint_without_kind_still_loads(files: dict[str, Path], tmp_path: Path) -> None:
    state = read_checkpoint(files["policy"])
    del state["kind"]
    p = tmp_path / "old.pt"
    torch.save(state, p)
    assert actor_from_checkpoint(p, CFG)(torch.zeros(1, 48)).shape == (1, 12)


@pytest.mark.parametrize("how", BROKEN)
def test_policy_checkpoint_broken_file(files: dict[str, Path], tmp_path: Path, how: str) -> None:
    _, target = _broken(files, "policy", how, tmp_path)
    expect_input_error(lambda: actor_from_checkpoint(target, CFG), target, "expected a policy", TORCH_FOUND[how])


def test_policy_checkpoint_of_another_kind(files: dict[str, Path], tmp_path: Path) -> None:
    world = files["world"]
    expect_input_error(lambda: actor_from_checkpoint(world, CFG), world, "found a world-model checkpoint")
    ts = files["torchscript"]
    expect_input_error(lambda: actor_from_checkpoint(ts, CFG), ts, "found a TorchScript module")
    old = tmp_path / "model_1000.pt"  # rsl-rl < 3 runner checkpoint
    torch.save({"model_state_dict": {"actor.0.weight": torch.zeros(2, 48)}, "iter": 1000}, old)
    expect_input_error(lambda: actor_from_checkpoint(old, CFG), old, "of the old format ('model_state_dict')")
    expect_input_error(lambda: actor_from_checkpoint(ckpt.read(world), CFG), "checkpoint", "world-model checkpoint")


def test_policy_checkpoint_of_a_newer_format(files: dict[str, Path], tmp_path: Path) -> None:
    state = read_checkpoint(files["policy"])
    state["format_version"] = POLICY_FORMAT_VERSION + 1
    p = tmp_path / "new.pt"
    torch.save(state, p)
    expect_input_error(lambda: actor_from_checkpoint(p, CFG), p, "policy checkpoint format version 1 or older")


def test_policy_checkpoint_of_other_dims(files: dict[str, Path]) -> None:
    p = files["policy30"]
    expect_input_error(lambda: actor_from_checkpoint(p, CFG), p, "48 inputs, 12 outputs", "30 inputs and 12 outputs")


def test_policy_checkpoints_are_checked_before_any_simulation(files: dict[str, Path], tmp_path: Path) -> None:
    """`rwm evaluate-policy --checkpoints`: a broken iter_N.pt fails before the (long) simulator runs."""
    d = tmp_path / "policy"
    shutil.copytree(files["torchscript"].parent, d)
    shutil.copy(files["policy"], d / "policy_checkpoint.pt")
    (d / "checkpoints").mkdir()
    _truncated(files["policy"], d / "checkpoints" / "iter_000002.pt")
    out = tmp_path / "sim_eval.json"
    cfg = replace(CFG, eval_episodes=1, eval_episode_steps=2)
    bad = d / "checkpoints" / "iter_000002.pt"
    expect_input_error(lambda: evaluate_policy_dir(d, out, cfg, checkpoints=True, progress=False), bad, "truncated")
    torch.save({**read_checkpoint(files["policy30"]), "fingerprint": "f"}, bad)  # of this run, but other dims
    expect_input_error(lambda: evaluate_policy_dir(d, out, cfg, checkpoints=True, progress=False), bad, "30 inputs")
    assert not out.exists()


# ------------------------------------------------------------------ exported actors
@pytest.mark.parametrize("how", BROKEN)
def test_torchscript_actor_broken_file(files: dict[str, Path], tmp_path: Path, how: str) -> None:
    _, target = _broken(files, "torchscript", how, tmp_path)
    expect_input_error(lambda: TorchScriptPolicy(target), target, "exported actor (TorchScript", TORCHSCRIPT_FOUND[how])


def test_torchscript_actor_of_another_kind(files: dict[str, Path]) -> None:
    for key, found in (("policy", "found a policy checkpoint"), ("world", "found a world-model checkpoint")):
        expect_input_error(lambda: TorchScriptPolicy(files[key]), files[key], "exported actor", found)  # noqa: B023
    expect_input_error(lambda: TorchScriptPolicy(files["onnx"]), files["onnx"], "an ONNX model, not a TorchScript")


def test_torchscript_actor_of_a_newer_format(files: dict[str, Path], tmp_path: Path) -> None:
    """An archive stamped with a serialisation version newer than this torch reads (ours carry no version)."""
    p = tmp_path / "policy.pt"
    with zipfile.ZipFile(files["torchscript"]) as zin, zipfile.ZipFile(p, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, b"99\n" if name.endswith("/version") else zin.read(name))
    expect_input_error(lambda: TorchScriptPolicy(p), p, "TorchScript archive that this torch cannot load", "99")


def test_torchscript_actor_of_other_dims(files: dict[str, Path]) -> None:
    p = files["torchscript30"]
    expect_input_error(
        lambda: TorchScriptPolicy(p), p, "(N, 48) observations", "does not accept 48 inputs", "first layer takes 30"
    )
    p = files["torchscript8"]
    expect_input_error(lambda: TorchScriptPolicy(p), p, "(N, 12) actions", "output is (1, 8)")


@pytest.mark.parametrize("how", BROKEN)
def test_onnx_actor_broken_file(files: dict[str, Path], tmp_path: Path, how: str) -> None:
    _, target = _broken(files, "onnx", how, tmp_path)
    expect_input_error(lambda: OnnxPolicy(target), target, "exported actor (ONNX", ONNX_FOUND[how])


def test_onnx_actor_of_another_kind(files: dict[str, Path]) -> None:
    for key, found in (
        ("torchscript", "found a TorchScript module"),
        ("policy", "found a policy checkpoint"),
        ("world", "found a world-model checkpoint"),
    ):
        expect_input_error(lambda: OnnxPolicy(files[key]), files[key], "exported actor (ONNX", found)  # noqa: B023


def test_onnx_actor_of_a_newer_format(files: dict[str, Path], tmp_path: Path) -> None:
    import onnx

    model = onnx.load(str(files["onnx"]))
    model.ir_version = 99
    p = tmp_path / "policy.onnx"
    onnx.save(model, str(p))
    expect_input_error(lambda: OnnxPolicy(p), p, "cannot load", "IR version: 99")


def test_onnx_actor_of_other_dims(files: dict[str, Path]) -> None:
    p = files["onnx30"]
    expect_input_error(lambda: OnnxPolicy(p), p, "(N, 48) observations", "input shape ['batch', 30]")
    p = files["onnx8"]
    expect_input_error(lambda: OnnxPolicy(p), p, "(N, 12) actions", "output shape ['batch', 8]")


def test_exported_actors_still_load(files: dict[str, Path]) -> None:
    obs = np.zeros(48, np.float32)
    assert TorchScriptPolicy(files["torchscript"])(obs).shape == (12,)
    assert OnnxPolicy(files["onnx"])(obs).shape == (12,)


# ------------------------------------------------------------------ dataset artifact
@pytest.fixture
def dataset_copy(files: dict[str, Path], tmp_path: Path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(files["dataset"], d)
    return d


DATASET_FOUND = {
    ROWS_FILE: {
        **TORCH_FOUND,
        "truncated": "truncated or corrupt .npy",
        "random bytes": "unrecognised binary data, not a .npy array",
        "text": "a text file, not a .npy array",
        "pickled list": "a plain pickle, not a .npy array",
    },
    NORMALIZATION_FILE: {
        **TORCH_FOUND,
        "truncated": "invalid or truncated JSON",
        "random bytes": "unrecognised binary data, not JSON",
        "text": "invalid or truncated JSON",
        "pickled list": "not JSON",
    },
}
DATASET_FOUND[WINDOWS_FILE] = DATASET_FOUND[ROWS_FILE]
DATASET_FOUND[META_FILE] = {**DATASET_FOUND[NORMALIZATION_FILE], "missing": "no dataset.json"}


@pytest.mark.parametrize("name", [ROWS_FILE, WINDOWS_FILE, NORMALIZATION_FILE, META_FILE])
@pytest.mark.parametrize("how", BROKEN)
def test_dataset_broken_file(dataset_copy: Path, name: str, how: str) -> None:
    target = dataset_copy / name
    good = dataset_copy.parent / f"good_{name}"
    shutil.copy(target, good)
    BROKEN[how](good, target)
    where = dataset_copy if (name, how) == (META_FILE, "missing") else target
    expect_input_error(lambda: Dataset.load(dataset_copy), where, DATASET_FOUND[name][how])


def test_dataset_of_another_kind(files: dict[str, Path], tmp_path: Path) -> None:
    expect_input_error(lambda: Dataset.load(files["world"]), files["world"].parent, "expected a dataset artifact")
    expect_input_error(lambda: Dataset.load(tmp_path / "nope"), tmp_path / "nope", "not found")
    d = tmp_path / "wrong"
    d.mkdir()
    (d / META_FILE).write_text("[1, 2]")
    expect_input_error(lambda: Dataset.load(d), d / META_FILE, "a JSON list, not an object")


def test_dataset_of_a_newer_format(dataset_copy: Path) -> None:
    meta_path = dataset_copy / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["artifact_version"] = 99
    meta_path.write_text(json.dumps(meta))
    expect_input_error(lambda: Dataset.load(dataset_copy), meta_path, "newer than this rwm_core supports", "99")


def test_dataset_of_other_dims(dataset_copy: Path) -> None:
    rows = np.load(dataset_copy / ROWS_FILE)
    np.save(dataset_copy / ROWS_FILE, rows[:, :60])
    expect_input_error(lambda: Dataset.load(dataset_copy), dataset_copy / ROWS_FILE, "x 66 columns", "(1500, 60)")
    np.save(dataset_copy / ROWS_FILE, rows[:100])
    expect_input_error(lambda: Dataset.load(dataset_copy), dataset_copy / ROWS_FILE, "1500 rows", "found 100 rows")
    np.save(dataset_copy / ROWS_FILE, rows)
    np.save(dataset_copy / WINDOWS_FILE, np.array([0, 5000], np.int64))
    expect_input_error(lambda: Dataset.load(dataset_copy), dataset_copy / WINDOWS_FILE, "window starts in", "5000")
    np.save(dataset_copy / WINDOWS_FILE, np.zeros(3, np.float32))
    expect_input_error(lambda: Dataset.load(dataset_copy), dataset_copy / WINDOWS_FILE, "integer", "float32")
    np.save(dataset_copy / WINDOWS_FILE, np.arange(3, dtype=np.int64))
    norm = json.loads((dataset_copy / NORMALIZATION_FILE).read_text())
    norm["state_mean"] = norm["state_mean"][:30]
    (dataset_copy / NORMALIZATION_FILE).write_text(json.dumps(norm))
    expect_input_error(
        lambda: Dataset.load(dataset_copy), dataset_copy / NORMALIZATION_FILE, "45 state", "widths 30/45/12/12"
    )


# ------------------------------------------------------------------ resume paths
def test_pretrain_resume_refuses_a_foreign_checkpoint(files: dict[str, Path], tmp_path: Path) -> None:
    from rwm_core.dynamics.train import pretrain

    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    bad = out / "checkpoints" / "iter_000002.pt"
    shutil.copy(files["policy"], bad)
    cfg = DynamicsConfig(ensemble_size=2, hidden_size=16, head_hidden=8, iterations=4, batch_size=8)
    expect_input_error(
        lambda: pretrain(files["dataset"], out, cfg, device="cpu", resume=True, progress=False),
        bad,
        "world-model training checkpoint",
        "found a policy checkpoint",
        "remove it",
    )
    assert bad.exists() and sorted(p.name for p in out.iterdir()) == ["checkpoints"]  # nothing deleted or written


def test_train_policy_resume_refuses_a_foreign_checkpoint(files: dict[str, Path], tmp_path: Path) -> None:
    from rwm_core.policy.train import train_policy

    out = tmp_path / "p"
    (out / "checkpoints").mkdir(parents=True)
    bad = out / "checkpoints" / "iter_000002.pt"
    _truncated(files["world"], bad)
    cfg = replace(CFG, num_envs=4, iterations=2, steps_per_env=2, mini_batches=1, actor_hidden=[16], critic_hidden=[16])
    expect_input_error(
        lambda: train_policy(files["world"], files["dataset"], out, cfg, device="cpu", resume=True, progress=False),
        bad,
        "expected a policy checkpoint",
        "truncated",
        "remove it",
    )
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints"]


# ------------------------------------------------------------------ the CLI: exit 2, one line, nothing written
def _cli_error(capsys: pytest.CaptureFixture[str], argv: list[str], *fragments: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"rwm {argv[0]}: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def test_cli_evaluate_dynamics_with_a_truncated_model(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.pt"
    _truncated(files["world"], model)
    out = tmp_path / "eval" / "dynamics.json"
    argv = ["evaluate-dynamics", "--model", str(model), "--dataset", str(files["dataset"]), "--out", str(out)]
    _cli_error(capsys, [*argv, "--device", "cpu"], str(model), "expected a world-model checkpoint", "truncated")
    assert not out.parent.exists()


def test_cli_train_policy_with_a_policy_checkpoint_as_model(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "policy"
    argv = ["train-policy", "--model", str(files["policy"]), "--dataset", str(files["dataset"]), "--out", str(out)]
    _cli_error(
        capsys, [*argv, "--device", "cpu", "--quiet"], str(files["policy"]), "world-model", "found a policy checkpoint"
    )
    assert not out.exists()


def test_cli_pretrain_with_a_broken_dataset(
    files: dict[str, Path], dataset_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _truncated(files["dataset"] / ROWS_FILE, dataset_copy / ROWS_FILE)
    out = tmp_path / "run"
    argv = ["pretrain", "--dataset", str(dataset_copy), "--out", str(out), "--device", "cpu", "--quiet"]
    _cli_error(capsys, argv, str(dataset_copy / ROWS_FILE), "expected the dataset rows", "truncated")
    assert not out.exists()


def test_cli_evaluate_policy_with_a_mismatched_actor(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "policy"
    shutil.copytree(files["onnx8"].parent, d)
    out = tmp_path / "sim_eval.json"
    argv = ["evaluate-policy", "--policy", str(d), "--out", str(out), "--backend", "onnx", "--quiet"]
    _cli_error(capsys, argv, str(d / "policy.onnx"), "expected an exported actor", "['batch', 8]")
    assert not out.exists()
