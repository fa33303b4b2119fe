"""Behaviour cloning from the dataset with hindsight commands: the warm start of MOPO-PPO (``policy.bc_epochs``).

Why: PPO from scratch in imagination finds standing, not the gait, and its updates carry even a walking policy into
states the world model gets wrong (docs/experiments.md, tenth session). The `mixed` data hold the model-free
learner's whole run, walking included, so the actor can start from what the data did. The data hold no commands:
each row's command is what its robot then did, the mean planar velocity and yaw rate over the next
``command_horizon`` rows of the same episode (hindsight relabelling; the simulator holds a command for 100–120
steps). Row pairs follow the data's convention: state t, with action t as the last action, is followed by action
t + 1, the action the policy chose there.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rwm_core.artifacts import atomic_write_text
from rwm_core.config import PolicyConfig
from rwm_core.data.dataset import Dataset
from rwm_core.errors import RwmError

BC_FILE = "bc.csv"  # per-epoch training and held-out MSE of the warm start, beside metrics.csv


class CloningError(RwmError):
    """The dataset cannot give the pairs behaviour cloning needs."""


@dataclass(frozen=True)
class ClonePairs:
    """Noise-free policy observations (N, obs_dim), with their target actions (N, action_dim)."""

    obs: torch.Tensor
    actions: torch.Tensor
    commands: torch.Tensor  # (N, 3): the hindsight command inside ``obs``


def hindsight_pairs(data: Dataset, command_horizon: int) -> ClonePairs:
    """Every (observation, next action) pair of ``data`` whose episode goes on ``command_horizon`` rows after it."""
    if command_horizon < 1:
        raise CloningError(f"policy.bc_command_horizon must be >= 1, got {command_horizon}")
    lay, mdp = data.layout, data.task.mdp
    rows = torch.from_numpy(np.ascontiguousarray(data.data, dtype=np.float32))
    n = rows.shape[0]
    ends = torch.from_numpy(np.asarray(data.episode_ends(), dtype=bool))
    episode = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(ends.long(), 0)[:-1]])  # episode id per row
    last = n - command_horizon - 1  # pair t needs rows t + 1 .. t + command_horizon
    if last <= 0:
        raise CloningError(
            f"dataset has {n} rows; behaviour cloning with policy.bc_command_horizon {command_horizon} needs more"
        )
    t = torch.arange(last)
    t = t[episode[t] == episode[t + command_horizon]]
    if t.numel() == 0:
        raise CloningError(
            f"no episode of the dataset is longer than policy.bc_command_horizon + 1 = {command_horizon + 1} rows"
        )

    def block(name: str) -> torch.Tensor:
        return rows[:, lay.block(name)]

    lin, ang = block("base_lin_vel"), block("base_ang_vel")
    velocity = torch.cat([lin[:, :2], ang[:, 2:3]], dim=1).double()
    csum = torch.cat([torch.zeros(1, 3, dtype=torch.float64), torch.cumsum(velocity, 0)])
    commands = ((csum[t + 1 + command_horizon] - csum[t + 1]) / command_horizon).float()
    obs = mdp.observation(
        lin[t],
        ang[t],
        block("projected_gravity")[t],
        commands,
        block("joint_pos")[t],
        block("joint_vel")[t],
        rows[t, lay.action],
    )
    return ClonePairs(obs=obs, actions=rows[t + 1, lay.action].clone(), commands=commands)


def clone(
    mlp: torch.nn.Module,
    pairs: ClonePairs,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    noise_scale: torch.Tensor | None,
    generator: torch.Generator,
    val_fraction: float = 0.05,
    progress: bool = False,
) -> list[dict[str, float]]:
    """Fit ``mlp`` (the actor's mean) to the pairs by MSE; the observations are noised as the policy will see them.

    Returns one row per epoch: the training MSE and the MSE on a held-out random share of the pairs (noise-free).
    """
    dev = next(mlp.parameters()).device
    n = pairs.obs.shape[0]
    order = torch.randperm(n, generator=generator)
    n_val = max(1, int(n * val_fraction)) if n > 1 else 0
    val, train = order[:n_val], order[n_val:]
    obs, target = pairs.obs.to(dev), pairs.actions.to(dev)
    scale = None if noise_scale is None else noise_scale.to(dev)
    opt = torch.optim.Adam(mlp.parameters(), lr=learning_rate)
    history: list[dict[str, float]] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=epochs, desc="behaviour cloning", unit="epoch", dynamic_ncols=True)
    for epoch in range(epochs):
        perm = train[torch.randperm(len(train), generator=generator)]
        total = 0.0
        for start in range(0, len(perm), batch_size):
            idx = perm[start : start + batch_size].to(dev)
            x = obs[idx]
            if scale is not None:
                x = x + (torch.rand(x.shape, generator=generator).to(dev) * 2 - 1) * scale
            loss = torch.mean((mlp(x) - target[idx]) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        with torch.no_grad():
            val_mse = float(torch.mean((mlp(obs[val.to(dev)]) - target[val.to(dev)]) ** 2)) if n_val else float("nan")
        history.append({"epoch": epoch + 1, "train_mse": total / max(1, len(perm)), "val_mse": val_mse})
        if bar is not None:
            bar.set_postfix(train=f"{history[-1]['train_mse']:.4f}", val=f"{val_mse:.4f}")
            bar.update(1)
    if bar is not None:
        bar.close()
    return history


def warm_start(
    actor: torch.nn.Module, data: Dataset, cfg: PolicyConfig, seed: int, out_csv: Path, progress: bool = True
) -> list[dict[str, float]]:
    """Clone the dataset's actions into ``actor`` (an rsl-rl MLPModel: its ``mlp`` is the action mean) and write
    the per-epoch MSE to ``out_csv``; the actor's std stays what the PPO config set (``init_noise_std``)."""
    pairs = hindsight_pairs(data, cfg.bc_command_horizon)
    mlp = getattr(actor, "mlp", None)
    if not isinstance(mlp, torch.nn.Module):
        raise CloningError(f"behaviour cloning needs an actor with an `mlp` action mean, got {type(actor).__name__}")
    scale = data.task.mdp.observation_noise_scale() if cfg.observation_noise else None
    gen = torch.Generator().manual_seed(seed)
    history = clone(mlp, pairs, cfg.bc_epochs, cfg.bc_learning_rate, cfg.bc_batch_size, scale, gen, progress=progress)
    lines = ["epoch,train_mse,val_mse,pairs"]
    lines += [f"{h['epoch']},{h['train_mse']:.6g},{h['val_mse']:.6g},{pairs.obs.shape[0]}" for h in history]
    atomic_write_text(out_csv, "\n".join(lines) + "\n")
    return history


class CloneAnchor:
    """Behaviour-regularised PPO (``policy.bc_regularization``): coefficient × the MSE between the actor's action mean
    and the frozen clone's, on each mini-batch's imagined observations.

    Why: PPO's updates in the world model carry even a walking actor into postures the model gets wrong (the real
    robot sits down from them); a penalty on leaving the clone's behaviour keeps the search near what the data did,
    the offline-RL remedy of BRAC and TD3+BC. It plugs into rsl-rl's PPO through the slot its symmetry extension
    uses (``alg.symmetry``: an extra loss term added to the PPO loss of every mini-batch, logged as ``loss.bc``), so
    the PPO update stays rsl-rl's own.
    """

    use_data_augmentation = False
    use_mirror_loss = True  # rsl-rl adds ``mirror_loss_coeff * compute_loss(...)`` to the PPO loss

    def __init__(self, clone: torch.nn.Module, coefficient: float) -> None:
        self.anchor = copy.deepcopy(clone).eval()
        for p in self.anchor.parameters():
            p.requires_grad_(False)
        self.mirror_loss_coeff = float(coefficient)

    def augment_batch(self, batch: Any, original_batch_size: int) -> None:
        """No augmentation: the mini-batch stays PPO's own."""

    def compute_loss(self, actor: torch.nn.Module, batch: Any, original_batch_size: int) -> torch.Tensor:
        obs = batch.observations[:original_batch_size]
        with torch.no_grad():
            target = self.anchor(obs)
        return torch.mean((actor(obs) - target) ** 2)
