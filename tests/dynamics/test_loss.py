"""Fast batched ensemble loss == straightforward per-member reference (values and gradients)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from helpers import SMALL

from rwm_core.dynamics.loss import LossWeights, bootstrap_weights, ensemble_loss
from rwm_core.dynamics.model import SystemDynamicsEnsemble, bound_logstd


def reference_loss(m, states, actions, contacts, terms, h, w, noise, weights=None):
    """Per-member loop in the style of upstream, but every member starts from a zero hidden state and the
    bootstrap is expressed as per-sample weights (so it can be compared exactly with the fast path)."""
    weights = weights or LossWeights()
    n, length, _ = states.shape
    f = length - h
    per = {k: [] for k in ("state", "bound", "contact", "termination")}
    for b in range(m.ensemble_size):
        head, aux = m.state_heads[b], m.auxiliary_heads[b]
        wb = w[b]

        def wmean(v, wb=wb):
            return (v * wb).sum() / wb.sum()

        hs = None  # zero initial hidden for this member
        x_s, x_a = states[:, :h], actions[:, 1 : h + 1]
        s_terms = []
        for k in range(f):
            if k > 0:
                x_a = actions[:, h + k : h + k + 1]
            out, hs = m.state_base.memory.rnn(torch.cat([x_s, x_a], -1), hs)
            feat = out[:, -1]
            mean = head.state_mean_layers(feat) + x_s[:, -1]
            logstd = bound_logstd(head.state_logstd_layers(feat), head.state_min_logstd, head.state_log_delta_logstd)
            sample = mean + torch.exp(logstd) * noise[k, b]
            s_terms.append(wmean((sample - states[:, h + k]).square().sum(-1)))
            x_s = sample.unsqueeze(1)
        per["state"].append(torch.stack(s_terms).mean())
        mx = head.state_min_logstd + torch.exp(head.state_log_delta_logstd)
        per["bound"].append(mx.mean() - head.state_min_logstd.mean())
        ha = None
        x_s, x_a = states[:, :h], actions[:, 1 : h + 1]
        c_terms, t_terms = [], []
        for k in range(f):
            if k > 0:
                x_a = actions[:, h + k : h + k + 1]
            out, ha = m.auxiliary_base.memory.rnn(torch.cat([x_s, x_a], -1), ha)
            feat = out[:, -1]
            c = F.binary_cross_entropy_with_logits(aux.contact_layers(feat), contacts[:, h + k], reduction="none")
            t = F.binary_cross_entropy_with_logits(aux.termination_layers(feat), terms[:, h + k], reduction="none")
            t = t * (1 + (weights.termination_pos_weight - 1) * terms[:, h + k])  # positive labels weighted
            c_terms.append(wmean(c.mean(-1)))
            t_terms.append(wmean(t.mean(-1)))
            x_s = states[:, h + k : h + k + 1]  # teacher forcing
        per["contact"].append(torch.stack(c_terms).mean())
        per["termination"].append(torch.stack(t_terms).mean())
    out = {k: torch.stack(v).mean() for k, v in per.items()}
    out["total"] = (
        weights.state * out["state"]
        + weights.bound * out["bound"]
        + weights.contact * out["contact"]
        + weights.termination * out["termination"]
    )
    return out


def _batch(n=10, h=6, f=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, h + f, 45, generator=g, dtype=dtype)
    a = torch.randn(n, h + f, 12, generator=g, dtype=dtype)
    c = (torch.rand(n, h + f, 8, generator=g) > 0.5).to(dtype)
    t = (torch.rand(n, h + f, 1, generator=g) > 0.9).to(dtype)
    return s, a, c, t


def _float32_problem(model_seed: int, batch_seed: int, draw_seed: int):
    """A float32 model, batch, bootstrap weights and noise (3 members, 10 windows of 6 + 3 rows)."""
    torch.manual_seed(model_seed)
    m = SystemDynamicsEnsemble(SMALL)
    s, a, c, t = _batch(dtype=torch.float32, seed=batch_seed)
    g = torch.Generator().manual_seed(draw_seed)
    w = bootstrap_weights(3, 10, g)
    noise = torch.randn(3, 3, 10, 45, generator=g)
    return m, (s, a, c, t), w, noise


def test_fast_loss_equals_reference_losses_and_gradients() -> None:
    torch.manual_seed(0)
    m = SystemDynamicsEnsemble(SMALL).double()
    with torch.no_grad():  # non-trivial bounds so the bound loss and the clamp have gradients
        for hd in m.state_heads:
            hd.state_log_delta_logstd.uniform_(-1, 1)
            hd.state_min_logstd.uniform_(-3, -1)
    s, a, c, t = _batch()
    g = torch.Generator().manual_seed(1)
    w = bootstrap_weights(3, 10, g).double()
    noise = torch.randn(3, 3, 10, 45, generator=g, dtype=torch.float64)
    weights = LossWeights(state=1.0, bound=0.5, contact=2.0, termination=1.5, termination_pos_weight=40.0)
    fast = ensemble_loss(m, s, a, c, t, 6, w, noise, weights)
    ref = reference_loss(m, s, a, c, t, 6, w, noise, weights)
    for k in ref:
        torch.testing.assert_close(fast[k], ref[k], rtol=1e-10, atol=1e-10, msg=k)
    params = [p for p in m.parameters()]
    g_fast = torch.autograd.grad(fast["total"], params)
    g_ref = torch.autograd.grad(ref["total"], params)
    names = [n for n, _ in m.named_parameters()]
    for name, x, y in zip(names, g_fast, g_ref, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-8, atol=1e-10, msg=name)


def test_float32_fast_path_close_to_reference() -> None:
    m, (s, a, c, t), w, noise = _float32_problem(3, 4, 2)
    fast = ensemble_loss(m, s, a, c, t, 6, w, noise)
    ref = reference_loss(m, s, a, c, t, 6, w, noise)
    torch.testing.assert_close(fast["total"], ref["total"], rtol=1e-5, atol=1e-5)


def test_every_member_starts_from_zero_hidden_state() -> None:
    """Members are independent: the loss is unchanged by a stale hidden state on the model and by member order."""
    torch.manual_seed(5)
    m = SystemDynamicsEnsemble(SMALL).double()
    s, a, c, t = _batch(seed=6)
    g = torch.Generator().manual_seed(7)
    w = bootstrap_weights(3, 10, g).double()
    noise = torch.randn(3, 3, 10, 45, generator=g, dtype=torch.float64)
    base = ensemble_loss(m, s, a, c, t, 6, w, noise)
    with torch.no_grad():
        m(s, a)  # leaves a non-zero hidden state in the stateful interface
    again = ensemble_loss(m, s, a, c, t, 6, w, noise)
    torch.testing.assert_close(base["total"], again["total"])
    # reversing member order (heads, weights, noise) gives the same loss: no carry-over between members
    m.state_heads = torch.nn.ModuleList(list(m.state_heads)[::-1])
    m.auxiliary_heads = torch.nn.ModuleList(list(m.auxiliary_heads)[::-1])
    rev = ensemble_loss(m, s, a, c, t, 6, w.flip(0), noise.flip(1))
    torch.testing.assert_close(base["total"], rev["total"])
    # a reference whose members share one history pass from zero equals the fast path
    ref = reference_loss(m, s, a, c, t, 6, w.flip(0), noise.flip(1))
    torch.testing.assert_close(rev["total"], ref["total"])


def test_bootstrap_weights_are_counts() -> None:
    w = bootstrap_weights(5, 64, torch.Generator().manual_seed(0))
    assert w.shape == (5, 64)
    assert torch.all(w.sum(1) == 64) and torch.all(w >= 0) and torch.all(w == w.round())
    assert not torch.equal(w[0], w[1])
    assert torch.all(bootstrap_weights(2, 8, enabled=False) == 1)


def test_micro_batches_give_the_whole_batch_gradient() -> None:
    from rwm_core.config import DynamicsConfig
    from rwm_core.data.dataset import WindowBatch
    from rwm_core.dynamics.train import training_step

    torch.manual_seed(8)
    s, a, c, t = _batch(n=12, seed=9)
    batch = WindowBatch(s, a, c, t)
    grads, losses = [], []
    for micro in (0, 5):
        torch.manual_seed(10)
        m = SystemDynamicsEnsemble(SMALL).double()
        opt = torch.optim.SGD(m.parameters(), lr=0.0)
        # float32 pinned: the default precision is auto, bf16 on machines with native bf16
        cfg = DynamicsConfig(
            ensemble_size=3, hidden_size=32, head_hidden=16, micro_batch_size=micro, precision="float32"
        )
        out, _ = training_step(m, opt, batch, 6, cfg, torch.Generator().manual_seed(11))
        losses.append(out)
        grads.append([p.grad.clone() for p in m.parameters()])
    for k in losses[0]:
        torch.testing.assert_close(losses[0][k], losses[1][k], msg=k)
    for x, y in zip(*grads, strict=True):
        torch.testing.assert_close(x, y)


def test_bfloat16_mixed_precision_tracks_float32() -> None:
    """``dynamics.precision: bfloat16``: same loss to ~1e-3 and gradients to a few %, hidden states stay float32.

    A wrong transpose or a dropped term in the bf16 branch of the GRU recurrence (forward or backward) would move
    the gradients by O(1), far outside these bounds; equality would mean bf16 was never used.
    """
    import warnings

    from rwm_core.runtime import autocast

    m, (s, a, c, t), w, noise = _float32_problem(12, 13, 14)
    params = list(m.parameters())
    out = {}
    for prec in ("float32", "bfloat16"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # CPUs without native bf16 warn that it is slow
            with autocast(torch.device("cpu"), prec):
                losses = ensemble_loss(m, s, a, c, t, 6, w, noise)
        assert losses["total"].dtype == torch.float32
        out[prec] = (losses, torch.autograd.grad(losses["total"], params))
    (l32, g32), (l16, g16) = out["float32"], out["bfloat16"]
    for k in l32:
        torch.testing.assert_close(l16[k], l32[k], rtol=2e-3, atol=1e-4, msg=k)
    flat32, flat16 = torch.cat([x.flatten() for x in g32]), torch.cat([x.flatten() for x in g16])
    rel = ((flat16 - flat32).norm() / flat32.norm()).item()
    assert 0 < rel < 0.03, rel
    names = [n for n, _ in m.named_parameters()]
    for name, x, y in zip(names, g16, g32, strict=True):
        assert x.dtype == torch.float32, name
        assert (x - y).norm() <= 0.1 * y.norm() + 1e-6, name


def test_autocast_rejects_unknown_precision() -> None:
    import pytest

    from rwm_core.runtime import autocast

    with pytest.raises(ValueError, match="precision"):
        autocast(torch.device("cpu"), "float16")


def test_autocast_sees_weights_updated_inside_the_region() -> None:
    """The PPO update runs forward, backward and optimiser steps inside one bf16 region: the second forward must
    use the updated weights (torch's default weight-cast cache would silently reuse the old bf16 copies)."""
    import warnings

    from rwm_core.runtime import autocast

    torch.manual_seed(15)
    lin = torch.nn.Linear(4, 4)
    opt = torch.optim.SGD(lin.parameters(), lr=1.0)
    x = torch.randn(2, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ctx = autocast(torch.device("cpu"), "bfloat16")
    with ctx:
        y1 = lin(x)
        assert y1.dtype == torch.bfloat16
        y1.float().sum().backward()
        opt.step()
        y2 = lin(x)
    assert not torch.equal(y1, y2)
