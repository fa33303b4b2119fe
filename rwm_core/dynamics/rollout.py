"""Autoregressive stepping of the world model: the one place that owns hidden states and history feeding.

Time alignment (SPEC §1): the input pair (state row t, action row t+1) predicts state row t+1. A warm-up feeds the
H history pairs (state[i], action[i+1]), i < H, and predicts row H; each later step feeds (predicted state, next
action). Evaluation uses :func:`autoregressive_predict`; the imagination env drives :class:`EnsembleRollout`
directly, usually in ``lean`` mode (no log-std heads, auxiliary heads only for each row's assigned member).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rwm_core.dynamics.model import SystemDynamicsEnsemble, epistemic_uncertainty, select_members


@dataclass
class StepResult:
    """One prediction per row. ``state`` is the assigned member's mean (or the ensemble mean without ids)."""

    state: torch.Tensor  # (N, D)
    member_means: torch.Tensor  # (B, N, D)
    epistemic: torch.Tensor  # (N,)
    aleatoric: torch.Tensor | None  # (N,), None in lean mode
    contact_logits: torch.Tensor | None  # (N, C)
    termination_logits: torch.Tensor | None  # (N, 1)


class _FusedBases:
    """Both GRU bases advanced one step together (inference only): the hot path of imagination.

    The bases read the same input, so the first layer's input projection is one GEMM for both; every other product
    runs as one batched GEMM over the two bases, and the gate arithmetic runs once on the stacked (2, N, ·) tensors.
    The weights are a snapshot taken at construction: build a new rollout after changing the model's weights.
    ``mm_dtype`` (bf16 mixed precision): the snapshot, the products and the gate arithmetic are in that dtype
    (the products accumulate in float32); the hidden state carried from step to step stays float32.
    """

    def __init__(self, model: SystemDynamicsEnsemble, mm_dtype: torch.dtype | None = None) -> None:
        rnns = (model.state_base.memory.rnn, model.auxiliary_base.memory.rnn)
        self.layers = rnns[0].num_layers
        self.hidden = rnns[0].hidden_size
        self.mm_dtype = mm_dtype

        def cast(w: torch.Tensor) -> torch.Tensor:
            return w if mm_dtype is None else w.to(mm_dtype)

        def stack(name: str) -> torch.Tensor:
            return torch.stack([getattr(r, name).detach() for r in rnns])

        # layer 0: one (in, 2 * 3H) projection shared by both bases
        self.w_ih0 = cast(torch.cat([r.weight_ih_l0.detach() for r in rnns]).t().contiguous())
        self.b_ih0 = cast(torch.cat([r.bias_ih_l0.detach() for r in rnns]))
        self.w_ih = [None] + [
            cast(stack(f"weight_ih_l{i}").transpose(1, 2).contiguous()) for i in range(1, self.layers)
        ]
        self.b_ih = [None] + [cast(stack(f"bias_ih_l{i}").unsqueeze(1)) for i in range(1, self.layers)]
        self.w_hh = [cast(stack(f"weight_hh_l{i}").transpose(1, 2).contiguous()) for i in range(self.layers)]
        self.b_hh = [cast(stack(f"bias_hh_l{i}").unsqueeze(1)) for i in range(self.layers)]

    def step(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``x`` (N, in), ``h`` (2, L, N, H) -> new hidden (2, L, N, H); [:, -1] are the features of each base."""
        n, hd = x.shape[0], self.hidden
        dt = self.mm_dtype
        out = torch.empty_like(h)
        hm = h if dt is None else h.to(dt)
        inp = x if dt is None else x.to(dt)
        for layer in range(self.layers):
            if layer == 0:
                gi = torch.addmm(self.b_ih0, inp, self.w_ih0).view(n, 2, 3 * hd).transpose(0, 1)
            else:
                gi = torch.baddbmm(self.b_ih[layer], inp, self.w_ih[layer])
            gh = torch.baddbmm(self.b_hh[layer], hm[:, layer], self.w_hh[layer])
            rz = torch.sigmoid(gi[..., : 2 * hd] + gh[..., : 2 * hd])
            r, z = rz[..., :hd], rz[..., hd:]
            cand = torch.tanh(torch.addcmul(gi[..., 2 * hd :], r, gh[..., 2 * hd :]))
            # h' = (1 - z) * n + z * h = n + z * (h - n), written as float32 into the new hidden state
            new = torch.addcmul(cand, z, h[:, layer] - cand, out=out[:, layer])
            inp = new if dt is None else new.to(dt)
        return out


class EnsembleRollout:
    """Hidden states of both GRU bases for N rows, plus each row's assigned ensemble member (or None = mean)."""

    def __init__(
        self,
        model: SystemDynamicsEnsemble,
        member_ids: torch.Tensor | None = None,
        mm_dtype: torch.dtype | None = None,
    ) -> None:
        """``mm_dtype=torch.bfloat16``: :meth:`step` runs its matrix products in bf16 (mixed precision, see
        :class:`_FusedBases`); states, uncertainties and hidden states stay float32. Warm-ups stay float32."""
        self.model = model
        self.member_ids = member_ids
        self.mm_dtype = mm_dtype
        self.h: torch.Tensor | None = None  # (2, L, N, hidden): state base, auxiliary base
        self._fused: _FusedBases | None = None
        self._stacked: dict[bool, dict[str, torch.Tensor]] = {}  # bf16 head snapshots, by with_std

    def refresh(self) -> None:
        """Drop the cached copies of the weights (fused bases, bf16 heads): call after the model was trained."""
        self._fused = None
        self._stacked = {}

    @property
    def h_state(self) -> torch.Tensor | None:
        return None if self.h is None else self.h[0]

    @property
    def h_aux(self) -> torch.Tensor | None:
        return None if self.h is None else self.h[1]

    def reset(self, rows: torch.Tensor | Sequence[int] | None = None) -> None:
        """Forget the context of all rows (or zero the given rows)."""
        if rows is None:
            self.h = None
        elif self.h is not None:
            self.h[:, :, rows] = 0.0

    @torch.no_grad()
    def warmup(
        self,
        states: torch.Tensor,
        actions: torch.Tensor,
        rows: torch.Tensor | None = None,
        lean: bool = False,
    ) -> StepResult:
        """Consume a history from a zero hidden state: ``states`` (n, H, D) rows 0..H-1, ``actions`` (n, H, A)
        rows 1..H. With ``rows`` (indices into N), only those rows are re-initialised (hidden states of the
        others are kept) and the result covers those rows only."""
        fs, fa, hs, ha = self.model.encode(states, actions)
        ids = self.member_ids
        if rows is None:
            self.h = torch.stack([hs, ha])
        else:
            if self.h is None:
                raise RuntimeError("warmup(rows=...) needs a previous full warmup")
            self.h[0][:, rows] = hs
            self.h[1][:, rows] = ha
            ids = None if ids is None else ids[rows]
        return self._heads(fs, fa, states[:, -1], ids, lean)

    @torch.no_grad()
    def step(self, states: torch.Tensor, actions: torch.Tensor, lean: bool = True) -> StepResult:
        """One step for every row: ``states`` (N, D) the current state, ``actions`` (N, A) the next action."""
        if self.h is None:
            raise RuntimeError("call warmup() before step()")
        if self._fused is None:
            self._fused = _FusedBases(self.model, self.mm_dtype)
        self.h = self._fused.step(torch.cat([states, actions], dim=-1), self.h)
        return self._heads(self.h[0, -1], self.h[1, -1], states, self.member_ids, lean, self.mm_dtype)

    def _heads(
        self,
        fs: torch.Tensor,
        fa: torch.Tensor,
        last: torch.Tensor,
        ids: torch.Tensor | None,
        lean: bool,
        mm_dtype: torch.dtype | None = None,
    ) -> StepResult:
        m = self.model
        if mm_dtype is None:
            means, logstd = m.state_heads_all(fs, last, with_std=not lean)
        else:  # bf16 products; the residual mean (last state + bf16 increment) and the log-std come out float32
            if (not lean) not in self._stacked:
                p = m.stacked_state_params(with_std=not lean)
                self._stacked[not lean] = {k: v.detach().to(mm_dtype) for k, v in p.items()}
            means, logstd = m.state_heads_all(fs.to(mm_dtype), last, not lean, self._stacked[not lean])
            logstd = None if logstd is None else logstd.float()
        if lean and ids is not None:
            contact, term = m.aux_heads_assigned(fa, ids)
        else:
            c_all, t_all = m.aux_heads_all(fa)
            contact = None if c_all is None else select_members(c_all, ids)
            term = None if t_all is None else select_members(t_all, ids)
        return StepResult(
            state=select_members(means, ids),
            member_means=means,
            epistemic=epistemic_uncertainty(means),
            aleatoric=None if logstd is None else torch.exp(logstd).mean(0).sum(-1),
            contact_logits=contact,
            termination_logits=term,
        )


@dataclass
class RolloutResult:
    states: torch.Tensor  # (N, T, D) predicted normalised states for rows H .. H+T-1
    epistemic: torch.Tensor  # (N, T)


@torch.no_grad()
def autoregressive_predict(
    model: SystemDynamicsEnsemble,
    states: torch.Tensor,
    actions: torch.Tensor,
    history: int,
    member_ids: torch.Tensor | None = None,
    input_noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> RolloutResult:
    """Predict rows H .. L-1 of (N, L, ·) normalised windows from their first H rows, feeding back the mean.

    ``input_noise``: std of Gaussian noise added to every state and action fed to the model (normalised units);
    targets stay clean. No sampling from the predicted distribution.
    """
    n, length, _ = states.shape
    horizon = length - history
    if horizon < 1:
        raise ValueError(f"window length {length} leaves no forecast after history {history}")

    def noisy(x: torch.Tensor) -> torch.Tensor:
        if input_noise <= 0:
            return x
        eps = torch.randn(x.shape, generator=generator, device=generator.device if generator else x.device)
        return x + input_noise * eps.to(x.device)

    roll = EnsembleRollout(model, member_ids)
    res = roll.warmup(noisy(states[:, :history]), noisy(actions[:, 1 : history + 1]), lean=True)
    preds = [res.state]
    unc = [res.epistemic]
    for k in range(1, horizon):
        res = roll.step(noisy(preds[-1]), noisy(actions[:, history + k]), lean=True)
        preds.append(res.state)
        unc.append(res.epistemic)
    return RolloutResult(torch.stack(preds, 1), torch.stack(unc, 1))
