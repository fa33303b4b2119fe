"""Dual-autoregressive ensemble loss (SPEC §3), computed without a loop over members.

Upstream runs both bases ``(H + F)`` steps per member. Here (same maths, correct zero initial hidden state):

- the state base consumes the history once; its hidden state is then broadcast to every member for the forecast,
  where each member feeds back its own reparameterised sample (``F - 1`` one-step calls on ``B·N`` rows);
- the auxiliary base is teacher-forced, so its whole forecast is one ``H + F - 1`` step pass shared by all members;
- bootstrap resampling becomes per-sample multinomial count weights, so all members see one batch;
- member heads run batched over stacked weights (see :mod:`rwm_core.dynamics.model`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from rwm_core.dynamics.gru import gru_sequence
from rwm_core.dynamics.model import SystemDynamicsEnsemble

LOSS_TERMS = ("state", "bound", "contact", "termination")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the summed loss terms (upstream: all 1; sequence/kl/extension terms are zero for this model)."""

    state: float = 1.0
    bound: float = 1.0
    contact: float = 1.0
    termination: float = 1.0
    # weight of a positive termination label in its BCE (upstream: 1). Falls are rare (a few hundred in 200k rows,
    # one labelled row each), so with weight 1 the head learns "never" and imagination never predicts a fall.
    termination_pos_weight: float = 1.0


def bootstrap_weights(
    n_members: int, n: int, generator: torch.Generator | None = None, enabled: bool = True
) -> torch.Tensor:
    """(B, N) multinomial counts: how often each sample appears in each member's bootstrap resample."""
    if not enabled:
        return torch.ones(n_members, n)
    ids = torch.randint(0, n, (n_members, n), generator=generator)
    return torch.zeros(n_members, n).scatter_add_(1, ids, torch.ones(n_members, n))


def _wmean(per_sample: torch.Tensor, w: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """Weighted mean over samples of (B, N) values (divided by ``norm``, (B,)), then mean over members."""
    return ((per_sample * w).sum(-1) / norm).mean()


def state_step_loss(
    sample: torch.Tensor, mean: torch.Tensor, logstd: torch.Tensor, target: torch.Tensor, kind: str
) -> torch.Tensor:
    """Per-sample state loss (…, N): squared error of the sample summed over dims, or Gaussian NLL mean over dims."""
    if kind == "mse":
        return (sample - target).square().sum(-1)
    if kind == "gaussian_nll":
        var = torch.exp(2 * logstd).clamp_min(1e-6)
        return 0.5 * (torch.log(var) + (mean - target).square() / var).mean(-1)
    raise ValueError(f"state_loss must be 'mse' or 'gaussian_nll', got {kind!r}")


def ensemble_loss(
    model: SystemDynamicsEnsemble,
    states: torch.Tensor,
    actions: torch.Tensor,
    contacts: torch.Tensor,
    terminations: torch.Tensor,
    history: int,
    sample_weights: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    weights: LossWeights | None = None,
    state_loss: str = "mse",
    weight_norm: torch.Tensor | None = None,
    include_bound: bool = True,
) -> dict[str, torch.Tensor]:
    """Loss terms and weighted ``total`` for windows ``(N, H + F, ·)`` (normalised states/actions, raw labels).

    ``sample_weights`` (B, N): bootstrap counts (None = all ones). ``noise`` (F, B, N, D): the reparameterisation
    draws (None = zeros, i.e. feed back the mean; used for validation). The sample fed back is the one scored.

    Micro-batching: pass the whole mini-batch's per-member weight sums as ``weight_norm`` and ``include_bound`` only
    for the first chunk; the terms of the chunks then add up exactly to the mini-batch's terms.
    """
    weights = weights or LossWeights()
    n, length, d = states.shape
    h, f = history, length - history
    nb = model.ensemble_size
    w = torch.ones(nb, n, device=states.device) if sample_weights is None else sample_weights.to(states.device)
    wn = w.sum(-1) if weight_norm is None else weight_norm.to(states.device)

    # --- state branch: shared history pass, then per-member outer autoregression ---
    x_hist = torch.cat([states[:, :h], actions[:, 1 : h + 1]], dim=-1)
    out, hid = gru_sequence(model.state_base.memory.rnn, x_hist)
    stacked = model.stacked_state_params()  # stack the member heads once, reuse at every step
    mean, logstd = model.state_heads_all(out[:, -1], states[:, h - 1], stacked=stacked)
    assert logstd is not None
    state_terms = []
    sample = mean
    for k in range(f):
        if k > 0:
            x = torch.cat([sample.reshape(nb * n, d), actions[:, h + k].repeat(nb, 1)], dim=-1)
            out, hid = gru_sequence(model.state_base.memory.rnn, x.unsqueeze(1), hid)
            mean, logstd = model.state_heads_all(out[:, 0].view(nb, n, -1), sample, stacked=stacked)
            assert logstd is not None
        elif f > 1:
            hid = [x.repeat(nb, 1) for x in hid]  # (B*N, hidden) per layer: member-major like sample.reshape
        eps = noise[k] if noise is not None else None
        sample = mean if eps is None else mean + torch.exp(logstd) * eps
        state_terms.append(_wmean(state_step_loss(sample, mean, logstd, states[:, h + k], state_loss), w, wn))
    loss_state = torch.stack(state_terms).mean()

    # bound loss: mean over members of mean(max_logstd) - mean(min_logstd) = mean(exp(log_delta))
    loss_bound = torch.stack([torch.exp(hd.state_log_delta_logstd).mean() for hd in model.state_heads]).mean()
    if not include_bound:
        loss_bound = loss_bound * 0.0

    # --- auxiliary branch: teacher forced, one pass over (state[j], action[j+1]), j = 0 .. H + F - 2 ---
    x_aux = torch.cat([states[:, : length - 1], actions[:, 1:]], dim=-1)
    out_a, _ = gru_sequence(model.auxiliary_base.memory.rnn, x_aux)
    feat = out_a[:, h - 1 :]  # (N, F, hidden): step k predicts row h + k
    contact, term = model.aux_heads_all(feat.reshape(n * f, -1))
    zero = states.new_zeros(())
    loss_contact, loss_term = zero, zero
    if contact is not None:
        target = contacts[:, h:].reshape(n * f, -1).expand(nb, -1, -1)
        bce = F.binary_cross_entropy_with_logits(contact, target, reduction="none").mean(-1)
        loss_contact = _wmean(bce.view(nb, n, f).mean(-1), w, wn)
    if term is not None:
        target = terminations[:, h:].reshape(n * f, -1).expand(nb, -1, -1)
        pos_weight = term.new_tensor(weights.termination_pos_weight) if weights.termination_pos_weight != 1 else None
        bce = F.binary_cross_entropy_with_logits(term, target, reduction="none", pos_weight=pos_weight).mean(-1)
        loss_term = _wmean(bce.view(nb, n, f).mean(-1), w, wn)

    total = (
        weights.state * loss_state
        + weights.bound * loss_bound
        + weights.contact * loss_contact
        + weights.termination * loss_term
    )
    return {
        "state": loss_state,
        "bound": loss_bound,
        "contact": loss_contact,
        "termination": loss_term,
        "total": total,
    }
