"""Imagination: batched imagined robots on the world model, and the reward terms shared with the simulator."""
