"""Closed-loop evaluation: zero-action standing vs the privileged trotting controller, same env and rewards."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rwm_core.evaluation.policy import evaluate_policy
from rwm_core.sim.env import SimEnv, controller_policy
from rwm_core.tasks import anymal_d_flat as task
from rwm_core.tasks.anymal_d_flat.rewards import TERM_NAMES

EPISODES, STEPS = 3, 150


@pytest.fixture(scope="module")
def results() -> tuple[dict, dict]:
    stand = evaluate_policy(lambda obs: np.zeros(12), EPISODES, STEPS, seed=3)
    walk = evaluate_policy(controller_policy(), EPISODES, STEPS, seed=3)
    return stand, walk


def test_result_structure(results):
    stand, _ = results
    json.dumps(stand)
    assert len(stand["returns"]) == EPISODES and len(stand["lengths"]) == EPISODES
    assert set(stand["term_sums"]) == set(TERM_NAMES)
    for i in range(EPISODES):
        total = sum(stand["term_sums"][k][i] for k in TERM_NAMES)
        assert total == pytest.approx(stand["returns"][i], rel=1e-5, abs=1e-6)
    assert 0.0 <= stand["fall_rate"] <= 1.0


def test_controller_beats_standing(results):
    stand, walk = results
    assert np.isfinite(stand["return_mean"])  # standing is a valid (poor) policy, not an error
    assert walk["return_mean"] > stand["return_mean"] + 0.5
    assert walk["fall_rate"] <= stand["fall_rate"]
    assert walk["lin_vel_error"] < stand["lin_vel_error"]
    assert walk["yaw_rate_error"] < stand["yaw_rate_error"]


def test_observation_layout_and_noise():
    env = SimEnv(seed=0, observation_noise=False)
    obs = env.reset()
    assert obs.shape == (task.OBS_DIM,) and obs.dtype == np.float32
    assert np.allclose(obs[6:9], [0, 0, -1], atol=1e-6)
    assert np.allclose(obs[9:12], env.command)
    noisy = SimEnv(seed=0, observation_noise=True)
    o2 = noisy.reset()
    assert np.allclose(o2[9:12], noisy.command)  # the command is never noised
    assert np.all(np.abs(o2[21:33] - 0.0) <= 1.5 + 1e-6)


def test_noise_does_not_change_the_command_stream():
    """With the privileged controller the outcome depends on commands and pushes only, not on observation noise."""
    a = evaluate_policy(controller_policy(), 1, 60, seed=2, observation_noise=True)
    b = evaluate_policy(controller_policy(), 1, 60, seed=2, observation_noise=False)
    assert a["returns"] == b["returns"]


def test_deterministic_and_accepts_torch_batch_output():
    pol = lambda obs: torch.zeros(1, 12)  # noqa: E731
    a = evaluate_policy(pol, 1, 30, seed=5)
    b = evaluate_policy(pol, 1, 30, seed=5)
    assert a["returns"] == b["returns"]


def test_torch_module_policy_gets_a_batch():
    net = torch.nn.Linear(task.OBS_DIM, 12)
    torch.nn.init.zeros_(net.weight)
    torch.nn.init.zeros_(net.bias)
    out = evaluate_policy(net, 1, 20, seed=1)
    stand = evaluate_policy(lambda obs: np.zeros(12), 1, 20, seed=1)
    assert out["returns"] == pytest.approx(stand["returns"])


def test_recorded_rows_are_the_episodes_in_the_dataset_layout():
    """``record_rows`` returns each episode's rows (reset row first, a fall flagged on the last) and changes nothing
    else; the world-model check of ``rwm evaluate-policy --model`` reads them."""
    rng = np.random.default_rng(0)
    pol = lambda obs: rng.normal(0.0, 2.0, 12)  # noqa: E731  falls within a few dozen steps
    a = evaluate_policy(pol, 2, 200, seed=4, record_rows=True)
    rng = np.random.default_rng(0)
    b = evaluate_policy(pol, 2, 200, seed=4)
    assert a["returns"] == b["returns"] and "rows" not in b
    lay = task.LAYOUT
    for rows, n, fell in zip(a["rows"], a["lengths"], a["falls"], strict=True):
        assert rows.shape == (n + 1, lay.n_columns)
        assert rows[0, lay.termination][0] == 0.0 and np.all(rows[0, lay.action] == 0.0)
        assert rows[-1, lay.termination][0] == float(fell)
        assert np.all(rows[:-1, lay.termination] == 0.0)
    assert any(a["falls"])


def test_every_fall_has_a_cause_and_only_falls_do():
    """``fall_causes`` counts, per simulator termination condition, the episodes whose fall met it; the recorded last
    row of each fallen episode must show that condition."""
    rng = np.random.default_rng(1)
    pol = lambda obs: rng.normal(0.0, 2.0, 12)  # noqa: E731  falls within a few dozen steps
    out = evaluate_policy(pol, 4, 300, seed=6, record_rows=True)
    causes = out["fall_causes"]
    assert set(causes) == {"trunk_contact", "tilt", "low_base"}
    n_falls = sum(out["falls"])
    assert n_falls >= 1
    assert max(causes.values()) <= n_falls <= sum(causes.values())  # each fall has one cause or more
    lay = task.LAYOUT
    tilts = sum(
        bool(task.mdp.tilted(rows[-1, lay.block("projected_gravity")]))
        for rows, fell in zip(out["rows"], out["falls"], strict=True)
        if fell
    )
    assert causes["tilt"] == tilts
    stand = evaluate_policy(lambda obs: np.zeros(12), 1, 50, seed=6)
    assert not any(stand["falls"]) and sum(stand["fall_causes"].values()) == 0
