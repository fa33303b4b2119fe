"""Reward terms (SPEC §4): each term against a hand-computed value, and the stateful RewardComputer."""

from __future__ import annotations

import math

import pytest
import torch

from rwm_core.tasks import anymal_d_flat as task
from rwm_core.tasks.anymal_d_flat import rewards as R


def t(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_tracking_terms():
    v = t([0.5, 0.0, 0.3], [1.0, -1.0, 0.0])
    cmd = t([1.0, 0.0, 0.5], [1.0, -1.0, -1.0])
    # |cmd_xy - v_xy|^2 = 0.25 -> exp(-1); second env exact -> 1
    assert torch.allclose(R.track_lin_vel_xy_exp(v, cmd), t([math.exp(-1.0), 1.0])[0])
    w = t([0.0, 0.0, 0.0], [0.0, 0.0, -0.5])
    # (0.5 - 0)^2 / 0.25 = 1 ; (-1 + 0.5)^2 / 0.25 = 1
    assert torch.allclose(R.track_ang_vel_z_exp(w, cmd), t([math.exp(-1.0), math.exp(-1.0)])[0])


def test_l2_terms():
    v = t([0.1, 0.2, 0.3])
    w = t([1.0, -2.0, 5.0])
    g = t([0.1, -0.2, -0.97])
    assert R.lin_vel_z_l2(v).item() == pytest.approx(0.09)
    assert R.ang_vel_xy_l2(w).item() == pytest.approx(5.0)
    assert R.flat_orientation_l2(g).item() == pytest.approx(0.05)
    tau = torch.zeros(1, 12)
    tau[0, 0], tau[0, 11] = 3.0, -4.0
    assert R.dof_torques_l2(tau).item() == pytest.approx(25.0)


def test_dof_acc_and_action_rate():
    qd = torch.zeros(1, 12)
    qd[0, 3] = 0.2
    prev = torch.zeros(1, 12)
    # (0.2 / 0.02)^2 = 100
    assert R.dof_acc_l2(qd, prev, 0.02).item() == pytest.approx(100.0)
    a = torch.ones(1, 12)
    assert R.action_rate_l2(a, torch.zeros(1, 12)).item() == pytest.approx(12.0)


def test_feet_air_time_term():
    first = t([1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0])
    last = t([0.7, 0.9, 0.3, 0.0], [0.7, 0.0, 0.0, 0.0])
    cmd = t([0.5, 0.0, 0.0], [0.05, 0.05, 1.0])  # second env: |cmd_xy| = 0.0707 < 0.1 -> gated off
    out = R.feet_air_time(first, last, cmd)
    assert out[0].item() == pytest.approx((0.7 - 0.5) + (0.3 - 0.5))
    assert out[1].item() == 0.0


def test_contacts_stand_still_and_limits():
    assert R.undesired_contacts(t([1.0, 0.0, 1.0, 1.0])).item() == 3.0
    q = torch.zeros(2, 12)
    q[:, 0], q[:, 5] = 0.1, -0.2
    cmd = t([0.0, 0.04, 1.0], [0.1, 0.0, 0.0])
    out = R.stand_still(q, cmd)
    assert out[0].item() == pytest.approx(0.3)  # planar command 0.04 < 0.05 -> penalised
    assert out[1].item() == 0.0
    assert torch.equal(R.dof_pos_limits(q), torch.zeros(2))
    lo, hi = torch.full((12,), -0.15), torch.full((12,), 0.15)
    assert R.dof_pos_limits(q, lo, hi)[0].item() == pytest.approx(0.05)


def _step(rc: R.RewardComputer, feet: list[float], qd: float = 0.0, a: float = 0.0, cmd=(1.0, 0.0, 0.0)):
    n = rc.num_envs
    z3 = torch.zeros(n, 3)
    g = torch.tensor([[0.0, 0.0, -1.0]] * n)
    return rc.compute(
        lin_vel=z3,
        ang_vel=z3,
        projected_gravity=g,
        joint_pos_rel=torch.zeros(n, 12),
        joint_vel=torch.full((n, 12), qd),
        torque=torch.zeros(n, 12),
        action=torch.full((n, 12), a),
        foot_contact=torch.tensor([feet] * n),
        thigh_contact=torch.zeros(n, 4),
        command=torch.tensor([list(cmd)] * n),
    )


def test_reward_computer_weights_dt_and_history():
    rc = R.RewardComputer(2)
    total, terms = _step(rc, [1, 1, 1, 1], qd=0.5, a=1.0)
    assert set(terms) == set(task.REWARD_WEIGHTS)
    dt = task.STEP_DT
    # first step: joint acceleration is 0 (no previous velocity), action rate against a zero previous action
    assert terms["dof_acc_l2"][0].item() == 0.0
    assert terms["action_rate_l2"][0].item() == pytest.approx(-0.01 * 12.0 * dt)
    # |cmd - v|^2 = 1 -> exp(-4)
    assert terms["track_lin_vel_xy_exp"][0].item() == pytest.approx(math.exp(-4.0) * dt, rel=1e-5)
    assert torch.allclose(total, torch.stack(list(terms.values())).sum(0))
    total, terms = _step(rc, [1, 1, 1, 1], qd=0.7, a=1.0)
    assert terms["dof_acc_l2"][0].item() == pytest.approx(-2.5e-7 * 12 * (0.2 / dt) ** 2 * dt, rel=1e-4)
    assert terms["action_rate_l2"][0].item() == 0.0
    rc.reset([1])
    _, terms = _step(rc, [1, 1, 1, 1], qd=0.7, a=1.0)
    assert terms["dof_acc_l2"][1].item() == 0.0 and terms["dof_acc_l2"][0].item() == 0.0
    assert terms["action_rate_l2"][1].item() != 0.0 and terms["action_rate_l2"][0].item() == 0.0


def test_reward_computer_feet_air_time_tracking():
    rc = R.RewardComputer(1)
    dt = task.STEP_DT
    _step(rc, [1, 1, 1, 1])
    for _ in range(30):  # LF in the air for 30 control steps = 0.6 s
        _, terms = _step(rc, [0, 1, 1, 1])
        assert terms["feet_air_time"].item() == 0.0
    _, terms = _step(rc, [1, 1, 1, 1])
    assert terms["feet_air_time"].item() == pytest.approx(0.5 * (30 * dt - 0.5) * dt, rel=1e-4)
    _, terms = _step(rc, [1, 1, 1, 1])  # only the first contact step counts
    assert terms["feet_air_time"].item() == 0.0


def test_reward_computer_rejects_unknown_weight():
    with pytest.raises(KeyError):
        R.RewardComputer(1, weights={"nope": 1.0})
