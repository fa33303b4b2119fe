"""Ensemble GRU world model (SPEC §2) with upstream-compatible parameter names.

The module tree mirrors upstream's ``SystemDynamicsEnsemble`` so that ``state_dict()`` keys and shapes are identical
(``state_base.memory.rnn.*``, ``state_heads.<b>.state_mean_layers.{0,2}.*`` ...), which lets the released RWM-U
checkpoint load unchanged. The computation, however, never loops over members: the per-member head weights are
stacked at call time and applied with one GEMM / ``baddbmm``, which is what makes training and imagination fast.
The loss runs the bases' ``nn.GRU`` through :mod:`rwm_core.dynamics.gru` (same maths, far less autograd memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ModelSpec:
    """Dimensions and architecture; everything needed to rebuild the module tree from a state dict."""

    state_dim: int = 45
    action_dim: int = 12
    contact_dim: int = 8
    termination_dim: int = 1
    ensemble_size: int = 5
    hidden_size: int = 256
    num_layers: int = 2
    head_hidden: int = 128

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(**{k: int(v) for k, v in d.items() if k in cls.__dataclass_fields__})

    @classmethod
    def from_layout(cls, layout: Any, cfg: Any) -> ModelSpec:
        """Dims from a task's :class:`ColumnLayout`, architecture from a ``DynamicsConfig``."""
        return cls(
            state_dim=layout.state_dim,
            action_dim=layout.action_dim,
            contact_dim=layout.contact_dim,
            termination_dim=layout.termination_dim,
            ensemble_size=cfg.ensemble_size,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            head_hidden=cfg.head_hidden,
        )


class DynamicsOutput(NamedTuple):
    """What ``forward`` returns (upstream order, without the unused extension output)."""

    state_mean: torch.Tensor  # (N, D) ensemble mean, or the assigned member's mean
    aleatoric: torch.Tensor  # (N,) mean over members of the predicted std, summed over dims
    epistemic: torch.Tensor  # (N,) std over members of the predicted means, summed over dims
    contact_logits: torch.Tensor | None  # (N, C)
    termination_logits: torch.Tensor | None  # (N, 1)


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


class _Memory(nn.Module):
    """Holds the GRU under the attribute name upstream uses (``memory.rnn``)."""

    def __init__(self, input_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.rnn = nn.GRU(input_dim, hidden, layers, batch_first=True)


class RecurrentBase(nn.Module):
    """A multi-layer GRU over (state ⊕ action); hidden state is passed explicitly (the caller owns it)."""

    def __init__(self, input_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.memory = _Memory(input_dim, hidden, layers)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.memory.rnn(x, h)


class StateHead(nn.Module):
    """One member's mean and log-std MLPs plus its learned log-std bounds."""

    def __init__(self, in_dim: int, hidden: int, state_dim: int) -> None:
        super().__init__()
        self.state_mean_layers = _mlp(in_dim, hidden, state_dim)
        self.state_logstd_layers = _mlp(in_dim, hidden, state_dim)
        self.state_min_logstd = nn.Parameter(torch.full((1, state_dim), -5.0))
        self.state_log_delta_logstd = nn.Parameter(torch.zeros(1, state_dim))


class AuxiliaryHead(nn.Module):
    """One member's contact and termination logit MLPs."""

    def __init__(self, in_dim: int, hidden: int, contact_dim: int, termination_dim: int) -> None:
        super().__init__()
        if contact_dim > 0:
            self.contact_layers = _mlp(in_dim, hidden, contact_dim)
        if termination_dim > 0:
            self.termination_layers = _mlp(in_dim, hidden, termination_dim)


def bound_logstd(raw: torch.Tensor, min_logstd: torch.Tensor, log_delta: torch.Tensor) -> torch.Tensor:
    """Soft-clamp raw log-std between ``min`` and ``min + exp(log_delta)`` (upstream's two softplus steps)."""
    max_logstd = min_logstd + torch.exp(log_delta)
    logstd = max_logstd - F.softplus(max_logstd - raw)
    return min_logstd + F.softplus(logstd - min_logstd)


def _two_layer(h: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, n_members: int) -> torch.Tensor:
    """ReLU(first layer) for all members: ``h`` is (N, in) shared or (B, N, in) per member -> (B, N, out)."""
    if h.dim() == 2:
        n = h.shape[0]
        z = torch.addmm(b1.reshape(-1), h, w1.reshape(-1, w1.shape[-1]).t())
        z = z.view(n, n_members, -1).transpose(0, 1)
    else:
        z = torch.baddbmm(b1.unsqueeze(1), h, w1.transpose(1, 2))
    return torch.relu(z)


def _second(z: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    return torch.baddbmm(b2.unsqueeze(1), z, w2.transpose(1, 2))


class SystemDynamicsEnsemble(nn.Module):
    """Two GRU bases shared by B member heads; stateful ``forward`` with upstream semantics.

    ``forward`` keeps the GRU hidden state between calls (first call after :meth:`reset` consumes the history, later
    calls one step each). Training and :mod:`rwm_core.dynamics.rollout` use the stateless building blocks
    (:meth:`encode`, :meth:`state_heads_all`, :meth:`aux_heads_all`) and hold hidden states themselves.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        d_in = spec.state_dim + spec.action_dim
        self.state_base = RecurrentBase(d_in, spec.hidden_size, spec.num_layers)
        self.state_heads = nn.ModuleList(
            [StateHead(spec.hidden_size, spec.head_hidden, spec.state_dim) for _ in range(spec.ensemble_size)]
        )
        self.auxiliary_base = RecurrentBase(d_in, spec.hidden_size, spec.num_layers)
        self.auxiliary_heads = nn.ModuleList(
            [
                AuxiliaryHead(spec.hidden_size, spec.head_hidden, spec.contact_dim, spec.termination_dim)
                for _ in range(spec.ensemble_size)
            ]
        )
        self._h_state: torch.Tensor | None = None
        self._h_aux: torch.Tensor | None = None

    @property
    def ensemble_size(self) -> int:
        return self.spec.ensemble_size

    # ---- stacked head parameters (built from the per-member nn.Linear weights, differentiable) ----
    def stacked_state_params(self, with_std: bool = True) -> dict[str, torch.Tensor]:
        """Per-member head weights stacked along a leading member axis (differentiable copies, cheap)."""
        hs = self.state_heads
        if with_std:
            w1 = torch.stack([torch.cat([h.state_mean_layers[0].weight, h.state_logstd_layers[0].weight]) for h in hs])
            b1 = torch.stack([torch.cat([h.state_mean_layers[0].bias, h.state_logstd_layers[0].bias]) for h in hs])
        else:
            w1 = torch.stack([h.state_mean_layers[0].weight for h in hs])
            b1 = torch.stack([h.state_mean_layers[0].bias for h in hs])
        p = {
            "w1": w1,
            "b1": b1,
            "w2m": torch.stack([h.state_mean_layers[2].weight for h in hs]),
            "b2m": torch.stack([h.state_mean_layers[2].bias for h in hs]),
        }
        if with_std:
            p["w2s"] = torch.stack([h.state_logstd_layers[2].weight for h in hs])
            p["b2s"] = torch.stack([h.state_logstd_layers[2].bias for h in hs])
            p["lo"] = torch.stack([h.state_min_logstd for h in hs])  # (B, 1, D)
            p["delta"] = torch.stack([h.state_log_delta_logstd for h in hs])
        return p

    def state_heads_all(
        self,
        feat: torch.Tensor,
        last_state: torch.Tensor,
        with_std: bool = True,
        stacked: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every member's (mean, log-std), each (B, N, D). ``feat``: (N, H) shared or (B, N, H) per member.

        The mean is residual on ``last_state`` ((N, D) or (B, N, D)), the last state fed to the base. ``stacked``:
        the result of :meth:`stacked_state_params` when the caller reuses it over several steps.
        """
        p = stacked if stacked is not None else self.stacked_state_params(with_std)
        k = self.spec.head_hidden
        z = _two_layer(feat, p["w1"], p["b1"], self.ensemble_size)
        mean = _second(z[..., :k], p["w2m"], p["b2m"]) + last_state
        if not with_std:
            return mean, None
        raw = _second(z[..., k:], p["w2s"], p["b2s"])
        return mean, bound_logstd(raw, p["lo"], p["delta"])

    def _aux_names(self) -> list[str]:
        names = []
        if self.spec.contact_dim > 0:
            names.append("contact_layers")
        if self.spec.termination_dim > 0:
            names.append("termination_layers")
        return names

    def aux_heads_all(self, feat: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Every member's (contact logits, termination logits), each (B, N, dim), from (N, H) or (B, N, H)."""
        names = self._aux_names()
        if not names:
            return None, None
        hs = self.auxiliary_heads
        w1 = torch.stack([torch.cat([getattr(h, n)[0].weight for n in names]) for h in hs])
        b1 = torch.stack([torch.cat([getattr(h, n)[0].bias for n in names]) for h in hs])
        z = _two_layer(feat, w1, b1, self.ensemble_size)
        k = self.spec.head_hidden
        outs: dict[str, torch.Tensor] = {}
        for i, n in enumerate(names):
            w2 = torch.stack([getattr(h, n)[2].weight for h in hs])
            b2 = torch.stack([getattr(h, n)[2].bias for h in hs])
            outs[n] = _second(z[..., i * k : (i + 1) * k], w2, b2)
        return outs.get("contact_layers"), outs.get("termination_layers")

    def aux_heads_assigned(
        self, feat: torch.Tensor, member_ids: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Auxiliary logits of each row's assigned member only (one masked pass per member, no wasted heads)."""
        n = feat.shape[0]
        s = self.spec
        contact = feat.new_zeros(n, s.contact_dim) if s.contact_dim > 0 else None
        term = feat.new_zeros(n, s.termination_dim) if s.termination_dim > 0 else None
        for b, head in enumerate(self.auxiliary_heads):
            rows = (member_ids == b).nonzero(as_tuple=True)[0]
            if rows.numel() == 0:
                continue
            f = feat.index_select(0, rows)
            if contact is not None:
                contact = contact.index_copy(0, rows, head.contact_layers(f))
            if term is not None:
                term = term.index_copy(0, rows, head.termination_layers(f))
        return contact, term

    # ---- bases ----
    def encode(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        h_state: torch.Tensor | None = None,
        h_aux: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run both bases over (N, T, ·) inputs; returns last-step features of each base and the new hiddens."""
        x = torch.cat([states, actions], dim=-1)
        out_s, h_state = self.state_base(x, h_state)
        out_a, h_aux = self.auxiliary_base(x, h_aux)
        return out_s[:, -1], out_a[:, -1], h_state, h_aux

    # ---- stateful, upstream-compatible interface ----
    def reset(self, rows: torch.Tensor | Sequence[int] | None = None) -> None:
        """Clear the hidden state (all rows, or zero only the given batch rows)."""
        if rows is None:
            self._h_state = None
            self._h_aux = None
            return
        for name in ("_h_state", "_h_aux"):
            h = getattr(self, name)
            if h is not None:
                h = h.clone()
                h[:, rows] = 0.0
                setattr(self, name, h)

    def forward(
        self, states: torch.Tensor, actions: torch.Tensor, member_ids: torch.Tensor | None = None
    ) -> DynamicsOutput:
        """Predict the next normalised state from (N, T, D) states and (N, T, A) actions (T = H first, then 1)."""
        if states.dim() == 2:
            states, actions = states.unsqueeze(1), actions.unsqueeze(1)
        fs, fa, self._h_state, self._h_aux = self.encode(states, actions, self._h_state, self._h_aux)
        mean, logstd = self.state_heads_all(fs, states[:, -1])
        assert logstd is not None
        contact, term = self.aux_heads_all(fa)
        return summarize(mean, torch.exp(logstd), contact, term, member_ids)


def select_members(x: torch.Tensor, member_ids: torch.Tensor | None) -> torch.Tensor:
    """(B, N, d) -> (N, d): ensemble mean when ``member_ids`` is None, else row n takes member ``member_ids[n]``."""
    if member_ids is None:
        return x.mean(0)
    ids = member_ids.reshape(-1).to(device=x.device, dtype=torch.long)
    return x[ids, torch.arange(x.shape[1], device=x.device)]


def epistemic_uncertainty(means: torch.Tensor) -> torch.Tensor:
    """Std over members (unbiased, as ``torch.std``) of the predicted means, summed over dims; 0 for B = 1."""
    b = means.shape[0]
    if b < 2:
        return means.new_zeros(means.shape[1])
    # written out: torch.std over the leading (member) dim is an order of magnitude slower on CPU
    dev = means - means.mean(0, keepdim=True)
    return (dev.square().sum(0) / (b - 1)).sqrt().sum(-1)


def summarize(
    means: torch.Tensor,
    stds: torch.Tensor,
    contact: torch.Tensor | None,
    term: torch.Tensor | None,
    member_ids: torch.Tensor | None,
) -> DynamicsOutput:
    return DynamicsOutput(
        state_mean=select_members(means, member_ids),
        aleatoric=stds.mean(0).sum(-1),
        epistemic=epistemic_uncertainty(means),
        contact_logits=None if contact is None else select_members(contact, member_ids),
        termination_logits=None if term is None else select_members(term, member_ids),
    )


def spec_from_state_dict(sd: dict[str, torch.Tensor]) -> ModelSpec:
    """Infer dims and architecture from upstream-named keys (used to import upstream checkpoints)."""
    try:
        w_ih = sd["state_base.memory.rnn.weight_ih_l0"]
        w_hh = sd["state_base.memory.rnn.weight_hh_l0"]
        members = {int(k.split(".")[1]) for k in sd if k.startswith("state_heads.")}
        layers = {int(k.rsplit("_l", 1)[1]) for k in sd if k.startswith("state_base.memory.rnn.weight_ih_l")}
        mean0 = sd["state_heads.0.state_mean_layers.0.weight"]
        state_dim = sd["state_heads.0.state_mean_layers.2.weight"].shape[0]
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"not an upstream SystemDynamicsEnsemble (GRU) state dict: missing {e}") from None
    contact = sd.get("auxiliary_heads.0.contact_layers.2.weight")
    term = sd.get("auxiliary_heads.0.termination_layers.2.weight")
    if any(k.startswith("auxiliary_heads.0.extension_layers") for k in sd):
        raise ValueError("state dict has extension heads; rwm_core supports extension width 0 only")
    return ModelSpec(
        state_dim=int(state_dim),
        action_dim=int(w_ih.shape[1] - state_dim),
        contact_dim=0 if contact is None else int(contact.shape[0]),
        termination_dim=0 if term is None else int(term.shape[0]),
        ensemble_size=len(members),
        hidden_size=int(w_hh.shape[1]),
        num_layers=len(layers),
        head_hidden=int(mean0.shape[0]),
    )
