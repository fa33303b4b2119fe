"""Checkpoint round trips: our format (with metadata and version check) and upstream-format files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SMALL

from rwm_core.artifacts import CHECKPOINT_FORMAT_VERSION
from rwm_core.data.normalizer import Normalizer
from rwm_core.dynamics import checkpoint
from rwm_core.dynamics.model import ModelSpec, SystemDynamicsEnsemble
from rwm_core.errors import InputError
from rwm_core.tasks import anymal_d_flat as task


def _same_outputs(a: SystemDynamicsEnsemble, b: SystemDynamicsEnsemble) -> None:
    g = torch.Generator().manual_seed(0)
    s, act = torch.randn(4, 5, 45, generator=g), torch.randn(4, 5, 12, generator=g)
    with torch.no_grad():
        a.reset()
        b.reset()
        for x, y in zip(a(s, act), b(s, act), strict=True):
            torch.testing.assert_close(x, y)


def test_own_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    m = SystemDynamicsEnsemble(SMALL)
    norm = Normalizer(
        np.arange(45, dtype=np.float32),
        np.ones(45, np.float32) * 2,
        np.zeros(12, np.float32),
        np.ones(12, np.float32),
        source="data",
    )
    p = checkpoint.save(tmp_path / "m.pt", m, norm, task=task.NAME, training_config={"lr": 1e-3}, meta={"history": 6})
    loaded = checkpoint.load(p)
    assert loaded.source == "rwm_core" and loaded.spec == SMALL
    assert loaded.format_version == CHECKPOINT_FORMAT_VERSION
    assert loaded.training_config == {"lr": 1e-3} and loaded.meta["history"] == 6
    np.testing.assert_array_equal(loaded.normalizer.state_mean, norm.state_mean)
    model, normalizer = loaded  # unpacks as a pair
    assert normalizer.source == "data" and not model.training
    _same_outputs(m, model)
    # our file is also an upstream-style dict: the weights sit under the upstream key
    raw = torch.load(p, weights_only=True)
    assert set(raw["system_dynamics_state_dict"]) == set(m.state_dict())


def test_future_format_version_fails_clearly(tmp_path: Path) -> None:
    m = SystemDynamicsEnsemble(SMALL)
    p = checkpoint.save(tmp_path / "m.pt", m, Normalizer.from_task(task), task=task.NAME)
    raw = torch.load(p, weights_only=True)
    raw["format_version"] = CHECKPOINT_FORMAT_VERSION + 1
    torch.save(raw, p)
    with pytest.raises(ValueError, match="newer than this rwm_core supports"):
        checkpoint.load(p)


def test_upstream_format_file_loads_with_task_normalisation(tmp_path: Path) -> None:
    torch.manual_seed(1)
    m = SystemDynamicsEnsemble(ModelSpec(ensemble_size=2, hidden_size=24, head_hidden=12))
    upstream = {
        "system_dynamics_state_dict": m.state_dict(),
        "model_state_dict": {"actor.0.weight": torch.zeros(2, 2)},
        "optimizer_state_dict": {},
        "system_dynamics_optimizer_state_dict": {},
        "iter": 123,
        "infos": None,
    }
    p = tmp_path / "pretrain_rnn_ens.pt"
    torch.save(upstream, p)
    loaded = checkpoint.load(p)
    assert loaded.source == "upstream" and loaded.meta == {"upstream_iter": 123}
    assert loaded.spec == ModelSpec(ensemble_size=2, hidden_size=24, head_hidden=12)
    np.testing.assert_array_equal(loaded.normalizer.state_std, task.STATE_STD)
    _same_outputs(m, loaded.model)


def test_full_size_upstream_state_dict_round_trip(tmp_path: Path) -> None:
    m = SystemDynamicsEnsemble(ModelSpec())
    p = tmp_path / "full.pt"
    torch.save({"system_dynamics_state_dict": m.state_dict()}, p)
    loaded = checkpoint.load(p)
    assert loaded.spec == ModelSpec()
    for k, v in m.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    p = tmp_path / "x.pt"
    torch.save({"foo": 1}, p)
    with pytest.raises(ValueError, match="neither an rwm_core checkpoint"):
        checkpoint.load(p)
    with pytest.raises(InputError, match="not found"):
        checkpoint.load(tmp_path / "missing.pt")
