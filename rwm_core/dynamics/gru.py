"""A GRU layer stack for training, lean in memory: a custom autograd function for the recurrence.

Why a module of its own: it is an implementation detail of the loss (:mod:`rwm_core.dynamics.loss`), computing the
same maths as ``torch.nn.GRU`` over an ``nn.GRU``'s own parameters, so the model's module tree and its checkpoint
keys (:mod:`rwm_core.dynamics.model`) do not depend on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class _GRURecurrence(torch.autograd.Function):
    """One GRU layer's recurrence over a time-major sequence, given the input gates ``gi = x W_ih^T + b_ih``.

    Why a custom function: autograd through ``nn.GRU`` on CPU keeps a dozen tensors per step and layer; this keeps
    only the gates r, z, n and the outputs, recomputes ``W_hn h + b_hn`` for all steps in one GEMM in backward, and
    computes the weight gradients as one large GEMM over all steps. Same maths as ``torch.nn.GRU``.
    """

    @staticmethod
    def forward(
        ctx: Any,
        gi: torch.Tensor,
        h0: torch.Tensor,
        w_hh: torch.Tensor,
        b_hh: torch.Tensor,
        mm_dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        steps, n_rows, three = gi.shape
        hd = three // 3
        hs = gi.new_empty(steps, n_rows, hd)
        rz = gi.new_empty(steps, n_rows, 2 * hd)
        ng = gi.new_empty(steps, n_rows, hd)
        low = mm_dtype is not None and mm_dtype != gi.dtype
        wt = (w_hh.to(mm_dtype) if low else w_hh).t()
        bh = b_hh.to(mm_dtype) if low else b_hh
        h = h0
        for t in range(steps):
            gh = torch.addmm(bh, h.to(mm_dtype) if low else h, wt)
            g = gi[t]
            gates = torch.sigmoid(torch.add(g[:, : 2 * hd], gh[:, : 2 * hd], out=rz[t]), out=rz[t])
            r, z = gates[:, :hd], gates[:, hd:]
            n = torch.tanh(torch.addcmul(g[:, 2 * hd :], r, gh[:, 2 * hd :], out=ng[t]), out=ng[t])
            h = torch.addcmul(n, z, h - n, out=hs[t])
        ctx.save_for_backward(h0, w_hh, b_hh, hs, rz, ng)
        ctx.mm_dtype = mm_dtype if low else None
        return hs

    @staticmethod
    def backward(
        ctx: Any, dhs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor, None]:
        h0, w_hh, b_hh, hs, rz, ng = ctx.saved_tensors
        low = ctx.mm_dtype

        def lo(x: torch.Tensor) -> torch.Tensor:  # GEMM operand in the reduced dtype (bf16 mixed precision)
            return x if low is None else x.to(low)

        steps, n_rows, hd = hs.shape
        r, z = rz[..., :hd], rz[..., hd:]
        # W_hn h_prev + b_hn for all steps in one GEMM (h_prev = h0 at t = 0, else hs[t - 1]; time-major, no copy)
        w_hn, b_hn = w_hh[2 * hd :], b_hh[2 * hd :]
        hn = hs.new_empty(steps, n_rows, hd)
        if low is None:
            torch.addmm(b_hn, h0, w_hn.t(), out=hn[0])
            if steps > 1:
                torch.addmm(b_hn, hs[:-1].reshape(-1, hd), w_hn.t(), out=hn[1:].view(-1, hd))
        else:
            hn[0] = torch.addmm(lo(b_hn), lo(h0), lo(w_hn).t())
            if steps > 1:
                hn[1:].view(-1, hd).copy_(torch.addmm(lo(b_hn), lo(hs[:-1].reshape(-1, hd)), lo(w_hn).t()))
        # the dh-independent factors of every gate gradient, vectorised over all steps
        a_n = (1 - z) * (1 - ng * ng)  # d n_pre / d h
        c_r = torch.mul(hn, r * (1 - r), out=hn)  # d r_pre / d n_pre
        b_z = ng.neg()
        b_z[1:] += hs[:-1]
        b_z[0] += h0
        b_z *= z * (1 - z)  # d z_pre / d h
        dgh = hs.new_empty(steps, n_rows, 3 * hd)
        dgi_n = hs.new_empty(steps, n_rows, hd)
        w_mm = lo(w_hh)
        dh = dhs[steps - 1]
        for t in range(steps - 1, -1, -1):
            if t < steps - 1:
                dh = dh + dhs[t]
            dn = torch.mul(dh, a_n[t], out=dgi_n[t])
            torch.mul(dh, b_z[t], out=dgh[t, :, hd : 2 * hd])
            torch.mul(dn, c_r[t], out=dgh[t, :, :hd])
            torch.mul(dn, r[t], out=dgh[t, :, 2 * hd :])
            if t > 0 or ctx.needs_input_grad[1]:  # no gradient for a constant (zero) initial state
                if low is None:
                    dh = torch.addmm(dh * z[t], dgh[t], w_hh)
                else:
                    dh = torch.add(dh * z[t], lo(dgh[t]) @ w_mm)
        dw_hh = (lo(dgh[0]).t() @ lo(h0)).to(hs.dtype)
        if steps > 1:
            dw_hh.add_(lo(dgh[1:].reshape(-1, 3 * hd)).t() @ lo(hs[:-1].reshape(-1, hd)))
        db_hh = dgh.sum((0, 1))
        dgh[..., 2 * hd :] = dgi_n  # the input-gate gradient differs from the hidden-gate one only in n
        return dgh, (dh if ctx.needs_input_grad[1] else None), dw_hh, db_hh, None


def gru_sequence(
    rnn: nn.GRU, x: torch.Tensor, h0: Sequence[torch.Tensor] | torch.Tensor | None = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Training-time equivalent of ``rnn(x, h0)`` for a batch-first ``nn.GRU``, lean in memory (see above).

    Returns the last layer's outputs (N, T, H) (a view of a time-major buffer) and the per-layer final hidden states
    as a list (not stacked, so no extra copy is kept alive by autograd).
    """
    # bf16 mixed precision: under ``torch.autocast(device, torch.bfloat16)`` the GEMMs run in bf16 while the gates,
    # hidden states and gradients stay float32 (autocast would otherwise make the whole recurrence bf16)
    dev = x.device.type
    mm_dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None
    inp = x.transpose(0, 1)
    finals = []
    for layer in range(rnn.num_layers):
        w_ih = getattr(rnn, f"weight_ih_l{layer}")
        b_ih = getattr(rnn, f"bias_ih_l{layer}")
        w_hh = getattr(rnn, f"weight_hh_l{layer}")
        b_hh = getattr(rnn, f"bias_hh_l{layer}")
        gi = F.linear(inp, w_ih, b_ih).to(x.dtype)
        h_init = x.new_zeros(x.shape[0], rnn.hidden_size) if h0 is None else h0[layer]
        with torch.autocast(dev, enabled=False):
            inp = _GRURecurrence.apply(gi, h_init, w_hh, b_hh, mm_dtype)
        finals.append(inp[-1])
    return inp.transpose(0, 1), finals
