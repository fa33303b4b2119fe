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


class EnsembleRollout:
    """Hidden states of both GRU bases for N rows, plus each row's assigned ensemble member (or None = mean)."""

    def __init__(self, model: SystemDynamicsEnsemble, member_ids: torch.Tensor | None = None) -> None:
        self.model = model
        self.member_ids = member_ids
        self.h_state: torch.Tensor | None = None  # (L, N, hidden)
        self.h_aux: torch.Tensor | None = None

    def reset(self, rows: torch.Tensor | Sequence[int] | None = None) -> None:
        """Forget the context of all rows (or zero the given rows)."""
        if rows is None:
            self.h_state = self.h_aux = None
            return
        for name in ("h_state", "h_aux"):
            h = getattr(self, name)
            if h is not None:
                h[:, rows] = 0.0

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
            self.h_state, self.h_aux = hs, ha
        else:
            if self.h_state is None or self.h_aux is None:
                raise RuntimeError("warmup(rows=...) needs a previous full warmup")
            self.h_state[:, rows] = hs
            self.h_aux[:, rows] = ha
            ids = None if ids is None else ids[rows]
        return self._heads(fs, fa, states[:, -1], ids, lean)

    @torch.no_grad()
    def step(self, states: torch.Tensor, actions: torch.Tensor, lean: bool = True) -> StepResult:
        """One step for every row: ``states`` (N, D) the current state, ``actions`` (N, A) the next action."""
        if self.h_state is None:
            raise RuntimeError("call warmup() before step()")
        fs, fa, self.h_state, self.h_aux = self.model.encode(
            states.unsqueeze(1), actions.unsqueeze(1), self.h_state, self.h_aux
        )
        return self._heads(fs, fa, states, self.member_ids, lean)

    def _heads(
        self, fs: torch.Tensor, fa: torch.Tensor, last: torch.Tensor, ids: torch.Tensor | None, lean: bool
    ) -> StepResult:
        m = self.model
        means, logstd = m.state_heads_all(fs, last, with_std=not lean)
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
