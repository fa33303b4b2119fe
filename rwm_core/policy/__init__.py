"""Policy optimisation in imagination (MOPO-PPO on rsl-rl-lib's PPO) and actor export."""
