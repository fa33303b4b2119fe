"""Evaluation: the world model's prediction error and uncertainty, policies' true returns in the simulator, sweeps."""
