"""Killing the workflow mid-training: nothing is left that Snakemake treats as complete, and the rerun resumes.

A real run of the tiny config (longer training, a checkpoint every 2 iterations) through the local profile is
killed with SIGKILL (process group: Snakemake and its job) as soon as the first training checkpoint exists. Then:
the final outputs are missing, a dry run schedules the training job again, and the rerun continues from the last
checkpoint (its log line, in the job's log file, and the manifest's ``resumed_from`` say which iteration), with the
full metrics history.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import SNAKEMAKE, run_snakemake, scheduled_jobs, snakemake_env, tiny_workdir

from rwm_core import artifacts

pytestmark = pytest.mark.slow

PRETRAIN_ITERATIONS = 60
POLICY_ITERATIONS = 40
PROFILE = ("--profile", "workflow/profiles/local")
MODEL = "results/dynamics/model.pt"
POLICY = "results/policies/lambda0_seed0"


def run_until_checkpoint(work: Path, target: str, checkpoints: Path, timeout: float = 300) -> tuple[int, str]:
    """Start Snakemake on ``target``, SIGKILL its process group once a checkpoint past iteration 0 appears (a policy
    run writes its behaviour-cloned actor as iteration 0 first); (last iteration, log)."""
    log = work / f"killed_{Path(target).name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [SNAKEMAKE, *PROFILE, target],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=snakemake_env(),
            start_new_session=True,  # its own process group, so the kill reaches the job too
        )
        try:
            deadline = time.monotonic() + timeout
            while _iteration(artifacts.latest_checkpoint(checkpoints)) < 1:
                if proc.poll() is not None:
                    pytest.fail(
                        f"snakemake ended (rc {proc.returncode}) before a checkpoint:\n{log.read_text()[-3000:]}"
                    )
                if time.monotonic() > deadline:
                    pytest.fail(f"no checkpoint in {checkpoints} within {timeout} s:\n{log.read_text()[-3000:]}")
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    assert not _survivors(proc.pid), f"processes of the killed run survive: {_survivors(proc.pid)}"
    last = artifacts.latest_checkpoint(checkpoints)
    assert last is not None
    return _iteration(last), log.read_text()


def _iteration(checkpoint: Path | None) -> int:
    """The iteration of a checkpoint file ``iter_<k>.pt``; -1 for none."""
    return -1 if checkpoint is None else int(checkpoint.stem.split("_")[1])


def _survivors(pgid: int, wait: float = 10.0) -> list[int]:
    """Live processes in group ``pgid`` after the kill (killed children need a moment to be reaped)."""
    deadline = time.monotonic() + wait
    while True:
        left = []
        for p in Path("/proc").iterdir():
            try:
                if (
                    p.name.isdigit()
                    and os.getpgid(int(p.name)) == pgid
                    and "State:\tZ" not in (p / "status").read_text()
                ):
                    left.append(int(p.name))
            except (ProcessLookupError, FileNotFoundError):
                pass
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def rerun(work: Path, target: str) -> tuple[str, str]:
    """What a user does after a crash: remove the stale lock, run again (the profile reruns incomplete jobs).

    Returns the output of a dry run before the rerun and of the rerun itself.
    """
    unlock = run_snakemake(work, *PROFILE, "--unlock", target, timeout=120)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    dry = run_snakemake(work, *PROFILE, "--dry-run", target, timeout=120)
    assert dry.returncode == 0, dry.stderr[-2000:]
    proc = run_snakemake(work, *PROFILE, target, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return dry.stdout + dry.stderr, proc.stdout + proc.stderr


def metric_iterations(path: Path) -> list[int]:
    import csv

    with path.open() as f:
        return [int(r["iteration"]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    overrides = {
        "dynamics": {"iterations": PRETRAIN_ITERATIONS, "checkpoint_every": 2},
        "policy": {"iterations": POLICY_ITERATIONS, "checkpoint_every": 2},
        "sweep": {"penalties": [0.0], "seeds": [0]},
    }
    return tiny_workdir(tmp_path_factory.mktemp("killed"), overrides)


def test_killed_pretraining_resumes_from_its_last_checkpoint(work: Path) -> None:
    out = work / "results/dynamics"
    k, _ = run_until_checkpoint(work, MODEL, out / "checkpoints")
    assert 0 < k < PRETRAIN_ITERATIONS
    assert not (out / "model.pt").exists() and not (out / "manifest.json").exists()
    dry, _ = rerun(work, MODEL)
    assert scheduled_jobs(dry) == {"pretrain_dynamics": 1}, dry[-3000:]
    log = (work / "results/logs/pretrain_dynamics.log").read_text()  # the rerun job's stdout and stderr
    assert f"pretrain: resuming from results/dynamics/checkpoints/iter_{k:06d}.pt (iteration {k} of" in log
    manifest = artifacts.read_manifest(out)
    assert manifest["resumed_from"] == k
    assert metric_iterations(out / "metrics.csv") == list(range(1, PRETRAIN_ITERATIONS + 1))


def test_killed_policy_training_resumes_from_its_last_checkpoint(work: Path) -> None:
    if not (work / MODEL).exists():
        pytest.skip("needs the world model of the pretraining test")
    out = work / POLICY
    k, _ = run_until_checkpoint(work, f"{POLICY}/policy.pt", out / "checkpoints")
    assert 0 < k < POLICY_ITERATIONS
    for name in ("policy.pt", "policy.onnx", "policy_checkpoint.pt", "manifest.json"):
        assert not (out / name).exists(), name
    dry, _ = rerun(work, f"{POLICY}/policy.pt")
    assert scheduled_jobs(dry) == {"train_policy": 1}, dry[-3000:]
    log = (work / "results/logs/train_policy/lambda0_seed0.log").read_text()
    assert f"train-policy: resuming from {POLICY}/checkpoints/iter_{k:06d}.pt (iteration {k} of" in log
    manifest = artifacts.read_manifest(out)
    assert manifest["resumed_from"] == k
    assert metric_iterations(out / "metrics.csv") == list(range(1, POLICY_ITERATIONS + 1))
