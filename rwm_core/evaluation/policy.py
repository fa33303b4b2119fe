"""Scoring policies where it matters: closed loop in the MuJoCo simulator, under the true (unpenalised) reward.

Why: policies are trained in imagination under a (possibly penalised) reward computed from predicted states; the
honest score is the same unpenalised reward computed from the simulator's true states, in the single-robot
:class:`~rwm_core.sim.env.SimEnv` with the conventions of imagination. A policy directory's exported actor
(TorchScript, or ONNX) is scored beside a standing policy (zero actions) on the same seed, i.e. the same command and
push sequences: the reference every useful policy must beat. Optionally every training checkpoint is scored the
same way: imagined reward that rises while the true return falls is the signature of a policy exploiting the world
model.

One set of result names everywhere: :func:`evaluate_policy` returns all of them, ``sim_eval.json`` (and its
``standing``) holds :data:`SUMMARY_KEYS`, each scored checkpoint :data:`CHECKPOINT_KEYS`, and the sweep table
(:mod:`rwm_core.evaluation.sweep`) the scalars with the prefix ``sim_`` (``sim_return_mean``, ...). A scalar is
over all episodes; its plural holds one value per episode.

======================================  ==========================================================================
key (scalar / per episode)              meaning
======================================  ==========================================================================
``return_mean``, ``return_std``         true unpenalised return, Σ weight · term · dt (per episode: ``returns``)
``episode_length_mean`` / ``lengths``   control steps per episode (an episode ends early when the robot falls)
``fall_rate`` / ``falls``               fraction of episodes that ended in a fall
``lin_vel_error`` / ``lin_vel_errors``  mean per-step xy linear-velocity tracking error [m/s]
``yaw_rate_error`` / ``yaw_rate_errors``  mean per-step yaw-rate tracking error [rad/s]
``mean_terms`` / ``term_sums``          per reward term: the mean over episodes / each episode's sum
``fall_causes``                         episodes whose fall had each cause (``trunk_contact``, ``tilt``,
                                        ``low_base``; one fall can have several): how a policy falls
======================================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rwm_core.artifacts import atomic_write_json
from rwm_core.config import PolicyConfig
from rwm_core.errors import RwmError
from rwm_core.loaders import fail
from rwm_core.policy.export import JIT_FILE, ONNX_FILE, OnnxPolicy, TorchScriptPolicy, checkpoint_actors
from rwm_core.sim.env import SimEnv
from rwm_core.tasks.anymal_d_flat import mdp as task_mdp
from rwm_core.tasks.anymal_d_flat.rewards import TERM_NAMES

Policy = Callable[[np.ndarray], Any]


def _to_action(out: Any) -> np.ndarray:
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().numpy()
    a = np.asarray(out, dtype=np.float64).reshape(-1)
    if a.shape != (12,):
        raise ValueError(f"policy must return 12 actions, got shape {np.shape(out)}")
    return a


def evaluate_policy(
    policy: Policy,
    episodes: int,
    episode_steps: int,
    seed: int,
    observation_noise: bool = True,
    progress: bool = False,
    pushes: bool = True,
    record_rows: bool = False,
) -> dict:
    """Roll ``episodes`` episodes of at most ``episode_steps`` steps (an episode also ends when the robot falls).

    ``policy`` gets the 48-dim float32 observation of SPEC §4 and returns 12 actions (numpy or torch, shape (12,)
    or (1, 12)); a ``torch.nn.Module`` (or TorchScript module) is called with a (1, 48) tensor. A policy object
    with an ``attach(env)`` method is attached to the :class:`SimEnv` at every episode start (used by
    :func:`~rwm_core.sim.env.controller_policy`). Returns per-episode and mean true unpenalised returns (sum of
    weight * term * dt), per-term sums, lengths, fall rate and mean tracking errors; with ``record_rows`` also every
    episode's rows in the dataset layout (reset row first), for judging a world model on the policy's own
    trajectories.
    """
    from tqdm import tqdm

    if episodes < 1 or episode_steps < 1:
        raise ValueError("episodes and episode_steps must be >= 1")
    env = SimEnv(seed, observation_noise=observation_noise, pushes=pushes)
    if isinstance(policy, torch.nn.Module | torch.jit.ScriptModule):  # exported / trained torch policies
        module = policy

        def policy(obs: np.ndarray) -> Any:
            return module(torch.from_numpy(obs)[None])

    returns, lengths, falls = [], [], []
    term_sums: dict[str, list[float]] = {k: [] for k in TERM_NAMES if k in env.rewards.weights}
    lin_err, yaw_err = [], []
    causes = dict.fromkeys(FALL_CAUSES, 0)
    episode_rows: list[np.ndarray] = []
    for _ in tqdm(range(episodes), desc="evaluate", unit="episode", disable=not progress):
        obs = env.reset()
        attach = getattr(policy, "attach", None)
        if callable(attach):
            attach(env)
        ret = 0.0
        sums = dict.fromkeys(term_sums, 0.0)
        e_lin, e_yaw = 0.0, 0.0
        fell = False
        steps = 0
        rows = [env.sim.row()] if record_rows else None
        for _step in range(episode_steps):
            with torch.no_grad():
                action = _to_action(policy(obs))
            cmd = env.command.copy()
            obs, r, terms, fell = env.step(action)
            steps += 1
            ret += r
            for k, v in terms.items():
                sums[k] += v
            v = env.sim.base_lin_vel()
            w = env.sim.base_ang_vel()
            e_lin += float(np.hypot(cmd[0] - v[0], cmd[1] - v[1]))
            e_yaw += abs(float(cmd[2] - w[2]))
            if rows is not None:
                rows.append(env.sim.row(fell))
            if fell:
                for k, hit in _fall_causes(env).items():
                    causes[k] += int(hit)
                break
        returns.append(ret)
        lengths.append(steps)
        falls.append(bool(fell))
        for k in term_sums:
            term_sums[k].append(sums[k])
        lin_err.append(e_lin / steps)
        yaw_err.append(e_yaw / steps)
        if rows is not None:
            episode_rows.append(np.stack(rows))
    out = {
        "episodes": episodes,
        "episode_steps": episode_steps,
        "seed": seed,
        "observation_noise": observation_noise,
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "returns": returns,
        "lengths": lengths,
        "episode_length_mean": float(np.mean(lengths)),
        "falls": falls,
        "fall_rate": float(np.mean(falls)),
        "fall_causes": causes,
        "term_sums": term_sums,
        "mean_terms": {k: float(np.mean(v)) for k, v in term_sums.items()},
        "lin_vel_errors": lin_err,
        "yaw_rate_errors": yaw_err,
        "lin_vel_error": float(np.mean(lin_err)),
        "yaw_rate_error": float(np.mean(yaw_err)),
    }
    if record_rows:
        out["rows"] = episode_rows
    return out


FALL_CAUSES = ("trunk_contact", "tilt", "low_base")  # the simulator's termination conditions (task mdp.fallen)


def _fall_causes(env: SimEnv) -> dict[str, bool]:
    """Which of the simulator's termination conditions hold now: a crouch and a tip-over call for different fixes."""
    sim = env.sim
    return {
        "trunk_contact": bool(sim.trunk_contact),
        "tilt": bool(task_mdp.tilted(sim.projected_gravity())),
        "low_base": bool(task_mdp.too_low(np.float64(sim.base_height))),
    }


EVAL_FILE = "sim_eval.json"
EVAL_CONFIG_KEYS = ("eval_episodes", "eval_episode_steps", "observation_noise")  # the policy keys evaluation reads
SUMMARY_KEYS = (  # what sim_eval.json keeps of an evaluation, in this order
    "return_mean",
    "return_std",
    "fall_rate",
    "fall_causes",
    "episode_length_mean",
    "lin_vel_error",
    "yaw_rate_error",
    "mean_terms",
    "returns",
    "lengths",
)
CHECKPOINT_KEYS = (  # what is kept per scored checkpoint: the learning curve in true return and tracking
    "return_mean",
    "fall_rate",
    "episode_length_mean",
    "lin_vel_error",
    "yaw_rate_error",
)


def _summary(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: raw[k] for k in SUMMARY_KEYS}


def evaluate_checkpoints(
    policy_dir: str | Path,
    cfg: PolicyConfig,
    seed: int = 0,
    progress: bool = True,
    actors: list[tuple[int, Path, torch.nn.Module]] | None = None,
    workers: int = 1,
) -> list[dict[str, Any]]:
    """True return, fall rate and episode length of every checkpoint of the final run, by iteration.

    Same seed, episodes and noise as the final evaluation, so the last checkpoint scores as the exported actor does.
    ``actors`` is what :func:`checkpoint_actors` returned (built here when not given). ``workers`` > 1 scores the
    checkpoints in that many processes; each episode set is seeded on its own, so the numbers are the same.
    """
    actors = checkpoint_actors(policy_dir, cfg) if actors is None else actors
    kwargs = _episode_kwargs(cfg, seed)
    jobs = [("checkpoint", str(f), cfg) for _, f, _ in actors]
    if workers > 1 and len(jobs) > 1:
        raws = _score_in_processes(jobs, kwargs, workers, progress, "checkpoints in the simulator")
    else:
        raws = []
        bar = None
        if progress and actors:
            from tqdm import tqdm

            bar = tqdm(total=len(actors), desc="checkpoints in the simulator", unit="ckpt")
        for _, _, actor in actors:
            with torch.inference_mode():
                raws.append(evaluate_policy(actor, **kwargs))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
    return _checkpoint_rows(actors, raws)


def _checkpoint_rows(actors: list[tuple[int, Path, torch.nn.Module]], raws: list[dict[str, Any]]) -> list[dict]:
    return [
        {"iteration": iteration, "path": str(f), **{k: raw[k] for k in CHECKPOINT_KEYS}}
        for (iteration, f, _), raw in zip(actors, raws, strict=True)
    ]


def _episode_kwargs(cfg: PolicyConfig, seed: int, record_rows: bool = False) -> dict[str, Any]:
    return dict(
        episodes=cfg.eval_episodes,
        episode_steps=cfg.eval_episode_steps,
        seed=seed,
        observation_noise=cfg.observation_noise,
        record_rows=record_rows,
    )


def _standing(obs: np.ndarray) -> np.ndarray:
    return np.zeros(12, dtype=np.float32)


def _score_job(job: tuple[str, str | None, PolicyConfig | None], kwargs: dict[str, Any]) -> dict[str, Any]:
    """One evaluation in a worker process. The policy is rebuilt there from its file (TorchScript modules do not
    pickle); inference runs on one thread, as the rules run it in-process, which gives bit-identical numbers."""
    from rwm_core.policy.export import actor_from_checkpoint

    torch.set_num_threads(1)
    kind, path, cfg = job
    if kind == "standing":
        policy: Policy = _standing
    elif kind == "torchscript":
        policy = TorchScriptPolicy(str(path))
    elif kind == "onnx":
        policy = OnnxPolicy(str(path))
    else:  # a checkpoint's curve point needs no trajectories
        assert cfg is not None and path is not None
        policy = actor_from_checkpoint(path, cfg)
        kwargs = {**kwargs, "record_rows": False}
    with torch.inference_mode():
        return evaluate_policy(policy, **kwargs)


def _score_in_processes(
    jobs: list[tuple[str, str | None, PolicyConfig | None]],
    kwargs: dict[str, Any],
    workers: int,
    progress: bool,
    desc: str,
) -> list[dict[str, Any]]:
    """Run :func:`_score_job` for every job in ``workers`` spawned processes; results in the order of ``jobs``.

    Why processes: an evaluation steps one simulated robot from Python, so it keeps one core busy and no more.
    A worker's exception is re-raised here.
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    from tqdm import tqdm

    results = []
    with (
        ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool,
        tqdm(total=len(jobs), desc=desc, unit="policy", disable=not progress) as bar,
    ):
        for raw in pool.map(partial(_score_job, kwargs=kwargs), jobs):  # in the order of jobs
            results.append(raw)
            bar.update(1)
    return results


def evaluate_policy_dir(
    policy_dir: str | Path,
    out_json: str | Path,
    cfg: PolicyConfig,
    seed: int = 0,
    backend: str = "torchscript",
    progress: bool = True,
    model: str | Path | None = None,
    checkpoints: bool = False,
    workers: int = 1,
) -> dict[str, Any]:
    """Evaluate ``policy_dir``'s exported actor and a standing policy in the simulator; write JSON atomically.

    With ``model`` (a world-model checkpoint) the report also says how well that model predicts both policies'
    simulator trajectories (``model_error``): where it is much worse than on the data, the policy has left them.
    With ``checkpoints`` it also scores every training checkpoint (``checkpoints``: the true return over training).
    ``workers`` > 1 runs the evaluations in that many processes, with the same numbers (each is seeded on its own).
    """
    if backend not in ("torchscript", "onnx"):
        raise RwmError(f"backend must be 'torchscript' or 'onnx', got {backend!r}")
    d = Path(policy_dir)
    if not d.is_dir():
        raise fail(d, "a policy directory written by `rwm train-policy`", "nothing (directory not found)")
    path = d / (JIT_FILE if backend == "torchscript" else ONNX_FILE)
    if not path.exists():
        raise fail(path, f"the exported actor {path.name}", "nothing (file not found)", "run `rwm train-policy` first")
    policy = TorchScriptPolicy(path) if backend == "torchscript" else OnnxPolicy(path)
    actors = checkpoint_actors(d, cfg) if checkpoints else None  # every input is checked before the simulations
    kwargs = _episode_kwargs(cfg, seed, record_rows=model is not None)
    loaded = None
    if model is not None:
        from rwm_core.dynamics.checkpoint import check_layout
        from rwm_core.dynamics.checkpoint import load as load_model
        from rwm_core.tasks import get_task

        loaded = load_model(model)
        check_layout(loaded, get_task(loaded.task).LAYOUT, model, "the simulator")
        loaded.model.eval()
    scored = None
    if workers > 1:  # the policy, standing and every checkpoint share one pool
        jobs: list[tuple[str, str | None, PolicyConfig | None]] = [(backend, str(path), None), ("standing", None, None)]
        jobs += [("checkpoint", str(f), cfg) for _, f, _ in actors or []]
        trained, standing, *raws = _score_in_processes(jobs, kwargs, workers, progress, "policies in the simulator")
        scored = _checkpoint_rows(actors, raws) if checkpoints and actors is not None else None
    else:
        trained = evaluate_policy(policy, progress=progress, **kwargs)
        standing = evaluate_policy(_standing, **kwargs)
    report: dict[str, Any] = {
        "policy": str(path),
        "backend": backend,
        "episodes": cfg.eval_episodes,
        "episode_steps": cfg.eval_episode_steps,
        "seed": seed,
        **_summary(trained),
        "standing": _summary(standing),
        "beats_standing": bool(trained["return_mean"] > standing["return_mean"]),
    }
    if loaded is not None:
        from rwm_core.config import DatasetConfig
        from rwm_core.evaluation.prediction import trajectory_error

        history = int(loaded.meta.get("history", DatasetConfig().history))
        report["model_error"] = {
            "model": str(model),
            "metric": "relative autoregressive error (normalised state) on the simulator trajectories, per step",
            "policy": trajectory_error(loaded, trained["rows"], history),
            "standing": trajectory_error(loaded, standing["rows"], history),
        }
    if checkpoints:
        report["checkpoints"] = (
            scored if scored is not None else evaluate_checkpoints(d, cfg, seed=seed, progress=progress, actors=actors)
        )
    atomic_write_json(out_json, report)
    return report
