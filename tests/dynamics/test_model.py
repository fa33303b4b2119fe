"""Model structure, upstream-compatible forward semantics, lean inference step, custom GRU recurrence."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from helpers import SMALL

from rwm_core.dynamics.gru import gru_sequence
from rwm_core.dynamics.model import ModelSpec, SystemDynamicsEnsemble
from rwm_core.dynamics.rollout import EnsembleRollout


def expected_upstream_shapes(b: int = 5, hid: int = 256, k: int = 128, d: int = 45, a: int = 12) -> dict:
    """Keys and shapes of upstream's RWM-U dynamics state dict, written out from SPEC §2."""
    out: dict[str, tuple[int, ...]] = {}
    for base in ("state_base", "auxiliary_base"):
        for layer, ins in ((0, d + a), (1, hid)):
            p = f"{base}.memory.rnn."
            out[p + f"weight_ih_l{layer}"] = (3 * hid, ins)
            out[p + f"weight_hh_l{layer}"] = (3 * hid, hid)
            out[p + f"bias_ih_l{layer}"] = (3 * hid,)
            out[p + f"bias_hh_l{layer}"] = (3 * hid,)
    for i in range(b):
        for mlp, width in (("state_mean_layers", d), ("state_logstd_layers", d)):
            out[f"state_heads.{i}.{mlp}.0.weight"] = (k, hid)
            out[f"state_heads.{i}.{mlp}.0.bias"] = (k,)
            out[f"state_heads.{i}.{mlp}.2.weight"] = (width, k)
            out[f"state_heads.{i}.{mlp}.2.bias"] = (width,)
        out[f"state_heads.{i}.state_min_logstd"] = (1, d)
        out[f"state_heads.{i}.state_log_delta_logstd"] = (1, d)
        for mlp, width in (("contact_layers", 8), ("termination_layers", 1)):
            out[f"auxiliary_heads.{i}.{mlp}.0.weight"] = (k, hid)
            out[f"auxiliary_heads.{i}.{mlp}.0.bias"] = (k,)
            out[f"auxiliary_heads.{i}.{mlp}.2.weight"] = (width, k)
            out[f"auxiliary_heads.{i}.{mlp}.2.bias"] = (width,)
    return out


def test_full_size_state_dict_matches_upstream_keys_and_shapes() -> None:
    model = SystemDynamicsEnsemble(ModelSpec())
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == expected_upstream_shapes()
    sd = model.state_dict()
    assert torch.all(sd["state_heads.0.state_min_logstd"] == -5.0)
    assert torch.all(sd["state_heads.0.state_log_delta_logstd"] == 0.0)


class UpstreamStyle:
    """Straightforward per-member re-statement of upstream's stateful forward, on the same modules."""

    def __init__(self, m: SystemDynamicsEnsemble) -> None:
        self.m = m
        self.hs = None
        self.ha = None

    def __call__(self, s: torch.Tensor, a: torch.Tensor, ids: torch.Tensor | None = None):
        m = self.m
        x = torch.cat([s, a], -1)
        out, self.hs = m.state_base.memory.rnn(x, self.hs)
        feat = out[:, -1]
        means, stds = [], []
        for head in m.state_heads:
            mean = head.state_mean_layers(feat) + s[:, -1]
            raw = head.state_logstd_layers(feat)
            mx = head.state_min_logstd + torch.exp(head.state_log_delta_logstd)
            ls = mx - F.softplus(mx - raw)
            ls = head.state_min_logstd + F.softplus(ls - head.state_min_logstd)
            means.append(mean.unsqueeze(0))
            stds.append(torch.exp(ls).unsqueeze(0))
        out_a, self.ha = m.auxiliary_base.memory.rnn(x, self.ha)
        fa = out_a[:, -1]
        contacts = torch.cat([h.contact_layers(fa).unsqueeze(0) for h in m.auxiliary_heads])
        terms = torch.cat([h.termination_layers(fa).unsqueeze(0) for h in m.auxiliary_heads])
        means_t, stds_t = torch.cat(means), torch.cat(stds)
        if ids is None:
            sel = means_t.mean(0), contacts.mean(0), terms.mean(0)
        else:
            g = ids.view(1, -1, 1)
            sel = (
                torch.gather(means_t, 0, g.repeat(1, 1, means_t.shape[-1])).squeeze(0),
                torch.gather(contacts, 0, g.repeat(1, 1, contacts.shape[-1])).squeeze(0),
                torch.gather(terms, 0, g.repeat(1, 1, terms.shape[-1])).squeeze(0),
            )
        ale = stds_t.mean(0).sum(1)
        epi = means_t.std(0).sum(1)
        return sel[0], ale, epi, sel[1], sel[2]


def _inputs(n: int = 7, t: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, t, 45, generator=g), torch.randn(n, t, 12, generator=g)


def test_forward_sequence_reproduces_upstream_semantics() -> None:
    torch.manual_seed(0)
    m = SystemDynamicsEnsemble(SMALL)
    ref = UpstreamStyle(m)
    s, a = _inputs(t=9)
    ids = torch.tensor([0, 2, 1, 1, 0, 2, 2])
    with torch.no_grad():
        m.reset()
        for k, (sl, use_ids) in enumerate(
            [(slice(0, 6), None), (slice(6, 7), ids), (slice(7, 8), None), (slice(8, 9), ids)]
        ):
            got = m(s[:, sl], a[:, sl], member_ids=use_ids)
            exp = ref(s[:, sl], a[:, sl], use_ids)
            for g_, e_ in zip(got, exp, strict=True):
                torch.testing.assert_close(g_, e_, rtol=1e-5, atol=1e-5, msg=f"call {k}")


def test_history_then_steps_equals_one_pass() -> None:
    torch.manual_seed(1)
    m = SystemDynamicsEnsemble(SMALL)
    s, a = _inputs(t=8)
    with torch.no_grad():
        m.reset()
        m(s[:, :6], a[:, :6])
        m(s[:, 6:7], a[:, 6:7])
        stepped = m(s[:, 7:8], a[:, 7:8])
        m.reset()
        m(s[:, :7], a[:, :7])
        whole = m(s[:, 7:8], a[:, 7:8])
    for x, y in zip(stepped, whole, strict=True):
        torch.testing.assert_close(x, y)


def test_reset_rows_and_single_member_epistemic() -> None:
    torch.manual_seed(2)
    m = SystemDynamicsEnsemble(SMALL)
    s, a = _inputs()
    with torch.no_grad():
        m(s, a)
        m.reset(rows=[1, 3])
        assert m._h_state is not None and torch.all(m._h_state[:, [1, 3]] == 0)
        assert torch.any(m._h_state[:, 0] != 0)
        one = SystemDynamicsEnsemble(ModelSpec(ensemble_size=1, hidden_size=16, head_hidden=8))
        out = one(s, a)
    assert torch.all(out.epistemic == 0) and out.state_mean.shape == (7, 45)


def test_lean_rollout_step_matches_full_forward() -> None:
    torch.manual_seed(3)
    m = SystemDynamicsEnsemble(SMALL)
    s, a = _inputs(t=8)
    ids = torch.tensor([2, 0, 1, 2, 1, 0, 0])
    roll = EnsembleRollout(m, ids)
    with torch.no_grad():
        m.reset()
        full0 = m(s[:, :6], a[:, :6], member_ids=ids)
        lean0 = roll.warmup(s[:, :6], a[:, :6], lean=True)
        full1 = m(s[:, 6:7], a[:, 6:7], member_ids=ids)
        lean1 = roll.step(s[:, 6], a[:, 6], lean=True)
        fat1 = EnsembleRollout(m, ids)
        fat1.warmup(s[:, :6], a[:, :6])
        fat = fat1.step(s[:, 6], a[:, 6], lean=False)
    for full, lean in ((full0, lean0), (full1, lean1)):
        torch.testing.assert_close(lean.state, full.state_mean)
        torch.testing.assert_close(lean.epistemic, full.epistemic)
        torch.testing.assert_close(lean.contact_logits, full.contact_logits)
        torch.testing.assert_close(lean.termination_logits, full.termination_logits)
        assert lean.aleatoric is None
    torch.testing.assert_close(fat.aleatoric, full1.aleatoric)


def test_bfloat16_rollout_step_tracks_float32() -> None:
    """Mixed-precision imagination step: float32 hidden states and outputs, within bf16 rounding of float32 after
    several autoregressive steps (a wrong gate or weight slice in the bf16 branch would be off by O(1))."""
    torch.manual_seed(4)
    m = SystemDynamicsEnsemble(SMALL)
    s, a = _inputs(t=12)
    ids = torch.tensor([2, 0, 1, 2, 1, 0, 0])
    out = {}
    with torch.no_grad():
        for dt in (None, torch.bfloat16):
            roll = EnsembleRollout(m, ids, dt)
            state = roll.warmup(s[:, :6], a[:, :6], lean=True).state
            steps = []
            for k in range(6, 12):
                steps.append(roll.step(state, a[:, k], lean=True))
                state = steps[-1].state
            assert roll.h is not None and roll.h.dtype == torch.float32
            out[dt] = steps
    for ref, low in zip(out[None], out[torch.bfloat16], strict=True):
        assert low.state.dtype == low.epistemic.dtype == torch.float32
        assert not torch.equal(low.state, ref.state)  # bf16 was used
        torch.testing.assert_close(low.state, ref.state, rtol=0.03, atol=0.03)
        torch.testing.assert_close(low.epistemic, ref.epistemic, rtol=0.03, atol=0.03)
        torch.testing.assert_close(low.termination_logits, ref.termination_logits, rtol=0.03, atol=0.03)


def test_rollout_partial_warmup_keeps_other_rows() -> None:
    torch.manual_seed(4)
    m = SystemDynamicsEnsemble(SMALL)
    s, a = _inputs(t=8)
    roll = EnsembleRollout(m)
    roll.warmup(s[:, :6], a[:, :6])
    before = roll.h_state.clone()
    rows = torch.tensor([1, 4])
    res = roll.warmup(s[rows, 1:7], a[rows, 1:7], rows=rows)
    keep = [0, 2, 3, 5, 6]
    torch.testing.assert_close(roll.h_state[:, keep], before[:, keep])
    fresh = EnsembleRollout(m).warmup(s[rows, 1:7], a[rows, 1:7])
    torch.testing.assert_close(res.state, fresh.state)


def test_custom_gru_matches_torch_gru_values_and_gradients() -> None:
    torch.manual_seed(5)
    g = torch.nn.GRU(7, 16, 2, batch_first=True).double()
    x = torch.randn(5, 6, 7, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(2, 5, 16, dtype=torch.double, requires_grad=True)
    o1, h1 = g(x, h0)
    o2, h2 = gru_sequence(g, x, list(h0))
    torch.testing.assert_close(o1, o2)
    torch.testing.assert_close(h1, torch.stack(h2))
    w, w2 = torch.randn_like(o1), torch.randn_like(h1)
    params = [x, h0, *g.parameters()]
    g1 = torch.autograd.grad((o1 * w).sum() + (h1 * w2).sum(), params)
    g2 = torch.autograd.grad((o2 * w).sum() + (torch.stack(h2) * w2).sum(), params)
    for p, q in zip(g1, g2, strict=True):
        torch.testing.assert_close(p, q)
