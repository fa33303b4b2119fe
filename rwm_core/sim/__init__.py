"""MuJoCo simulator of an ANYmal-D-like quadruped: data collection in the 66-column layout and policy evaluation.

Modules: ``robot`` (MuJoCo wrapper, PD actuation, state rows), ``gait`` (trotting data-collection controller),
``collect`` (``simulate``: CSV files for the world model), ``env`` (``SimEnv``: the single-robot env policies are
scored in, by :mod:`rwm_core.evaluation.policy`).
"""
