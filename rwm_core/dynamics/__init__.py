"""Ensemble GRU world model: model, loss, training, autoregressive rollout, checkpoints (SPEC §2, §3)."""

from rwm_core.dynamics.model import DynamicsOutput, ModelSpec, SystemDynamicsEnsemble

__all__ = ["DynamicsOutput", "ModelSpec", "SystemDynamicsEnsemble"]
