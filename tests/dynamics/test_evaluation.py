"""evaluate_dynamics: JSON contents, held-out windows only, horizon reduction, time alignment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SMALL, H, make_dataset

from rwm_core.config import EvaluationConfig
from rwm_core.data.windows import contiguous_split, valid_window_starts
from rwm_core.dynamics import checkpoint
from rwm_core.dynamics.model import SystemDynamicsEnsemble
from rwm_core.dynamics.rollout import autoregressive_predict
from rwm_core.evaluation.prediction import evaluate_dynamics, relative_error


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("eval")
    ds = make_dataset(2000)
    ds.save(tmp / "dataset")
    torch.manual_seed(0)
    model = SystemDynamicsEnsemble(SMALL)
    checkpoint.save(tmp / "model.pt", model, ds.normalizer, task=ds.task_name, meta={"history": H})
    return tmp / "dataset", tmp / "model.pt"


def test_json_contents(setup: tuple[Path, Path], tmp_path: Path) -> None:
    data, model = setup
    cfg = EvaluationConfig(horizon=20, n_windows=5, noise_scales=[0.1, 0.5])
    res = evaluate_dynamics(model, data, tmp_path / "e.json", cfg, val_fraction=0.2)
    on_disk = json.loads((tmp_path / "e.json").read_text())
    assert on_disk == json.loads(json.dumps(res))
    assert res["horizon"] == 20 and res["n_windows"] == 5 and res["steps"] == list(range(1, 21))
    for space in ("relative_error", "relative_error_raw"):
        assert len(res[space]["model"]) == 20 and len(res[space]["baseline_hold_last"]) == 20
        assert set(res[space]["noise"]) == {"0.1", "0.5"}
    assert {"model_mean", "baseline_mean", "beats_baseline_every_step"} <= set(res["summary"])
    # windows lie inside the held-out blocks
    term = np.load(data / "rows.npy")[:, -1]
    starts = valid_window_starts(term, H + 20)
    _, val = contiguous_split(starts, len(term), H + 20, 0.2)
    assert set(res["window_starts"]) <= set(val.tolist())


def test_horizon_reduced_with_warning(setup: tuple[Path, Path], tmp_path: Path) -> None:
    data, model = setup
    with pytest.warns(UserWarning, match="horizon"):
        res = evaluate_dynamics(
            model,
            data,
            tmp_path / "e.json",
            EvaluationConfig(horizon=5000, n_windows=2, noise_scales=[]),
            val_fraction=0.2,
        )
    assert res["horizon"] < 5000 and len(res["relative_error"]["model"]) == res["horizon"]


def test_autoregressive_alignment_and_metric() -> None:
    """A model that is exactly 'next state = current state' must score 0 on a constant window;
    and the first prediction must depend on action row H (not H - 1)."""
    torch.manual_seed(0)
    model = SystemDynamicsEnsemble(SMALL)
    s = torch.randn(2, H + 4, 45)
    a = torch.randn(2, H + 4, 12)
    base = autoregressive_predict(model, s, a, H).states
    a2 = a.clone()
    a2[:, H - 1] += 10.0  # action row H-1 is only used for history input state row H-2
    a3 = a.clone()
    a3[:, H + 1] += 10.0  # first used at the second forecast step
    p3 = autoregressive_predict(model, s, a3, H).states
    torch.testing.assert_close(p3[:, 0], base[:, 0])
    assert not torch.allclose(p3[:, 1], base[:, 1])
    a0 = a.clone()
    a0[:, 0] += 10.0  # action row 0 is never an input
    torch.testing.assert_close(autoregressive_predict(model, s, a0, H).states, base)
    x = torch.ones(1, 2, 3)
    assert torch.all(relative_error(x, x) == 0)
    torch.testing.assert_close(relative_error(2 * x, x), torch.ones(1, 2))


def test_trajectory_error_matches_a_per_window_reference(setup: tuple[Path, Path]) -> None:
    """The model error on given trajectories (a policy's own simulator rollouts) equals rolling each window alone,
    skips episodes too short for a window, and reads the recorded actions (perturbing them changes it)."""
    from rwm_core.evaluation.prediction import trajectory_error

    data, model = setup
    loaded = checkpoint.load(model)
    loaded.model.eval()
    rows = np.load(data / "rows.npy")
    trajs = [rows[0:120], rows[300:345], rows[500 : 500 + H + 7]]  # the last is shorter than H + 8 rows
    res = trajectory_error(loaded, trajs, H, steps=(1, 8), stride=7)
    from rwm_core.tasks import get_task

    lay, norm = get_task(loaded.task).LAYOUT, loaded.normalizer
    errs = []
    for t in trajs:
        for s in range(0, len(t) - (H + 8) + 1, 7):
            w = torch.as_tensor(t[s : s + H + 8][None], dtype=torch.float32)
            st, ac = norm.normalize_state(w[..., lay.state]), norm.normalize_action(w[..., lay.action])
            pred = autoregressive_predict(loaded.model, st, ac, H).states
            errs.append(relative_error(pred, st[:, H:])[0])
    ref = torch.stack(errs).mean(0)
    assert res["n_windows"] == len(errs) == len(range(0, 120 - H - 8 + 1, 7)) + len(range(0, 45 - H - 8 + 1, 7))
    assert res["at"]["1"] == pytest.approx(float(ref[0]), rel=1e-5)
    assert res["at"]["8"] == pytest.approx(float(ref[7]), rel=1e-5)
    # actions the data never paired with these states
    shaken = [t.copy() for t in trajs[:2]]
    rng = np.random.default_rng(0)
    for t in shaken:
        t[:, lay.action] += rng.normal(0.0, 3.0, t[:, lay.action].shape)
    worse = trajectory_error(loaded, shaken, H, steps=(1, 8), stride=7)
    assert worse["at"]["8"] != pytest.approx(res["at"]["8"], rel=1e-3)
    empty = trajectory_error(loaded, [rows[: H + 7]], H)
    assert empty["n_windows"] == 0 and empty["at"] == {"1": None, "8": None}
    with pytest.raises(ValueError, match="steps"):
        trajectory_error(loaded, trajs, H, steps=(0,))
