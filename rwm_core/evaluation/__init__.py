"""Evaluation of the world model: autoregressive prediction error (and later uncertainty studies)."""
