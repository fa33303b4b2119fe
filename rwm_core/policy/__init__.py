"""Policy optimisation in imagination (MOPO-PPO on rsl-rl-lib's PPO), actor export and actor loading."""
