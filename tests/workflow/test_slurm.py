"""The tiny-config workflow through the SLURM profile on a real (single-node) SLURM cluster.

Needs `sbatch` and a running cluster: `tests/slurm/local_cluster.sh install && tests/slurm/local_cluster.sh start`
as root on Debian/Ubuntu (.ci/run does this where it can); skipped with the reason otherwise. Checks that every job
was submitted with sbatch and completed under slurmctld, and that the results equal those of a local run of the
same config (same machine, same thread counts: the pipeline is deterministic).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import TINY_TARGETS, run_snakemake, tiny_workdir

from rwm_core import artifacts

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

INIT_SECONDS = 5  # slurm-init-seconds-before-status-checks for the test; squeue needs MinJobAge >= 3x this
TIMING_COLUMNS = {"windows_per_s", "elapsed_s", "collect_steps_per_s", "env_steps_per_s", "wall_s"}


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)


def slurm_config() -> dict[str, str]:
    """``scontrol show config`` as a dict (key -> value text)."""
    out = _run("scontrol", "show", "config").stdout
    return {m[1]: m[2].strip() for m in re.finditer(r"^(\w+)\s+= (.*)$", out, re.M)}


def cluster_problem() -> str | None:
    """Why the SLURM test cannot run here, or None."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return (
            "no SLURM client (sbatch) on this machine; as root with apt: "
            "tests/slurm/local_cluster.sh install && tests/slurm/local_cluster.sh start"
        )
    try:
        proc = _run("sinfo", "-h", "-o", "%T")
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 30 s: no SLURM controller is up (tests/slurm/local_cluster.sh start)"
    states = proc.stdout.split()
    if proc.returncode != 0 or not any(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states):
        why = (proc.stderr.strip() or " ".join(states) or "no nodes").splitlines()[0]
        return f"no usable SLURM cluster ({why}); start one with tests/slurm/local_cluster.sh start"
    return None


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The tiny DAG through workflow/profiles/slurm: (workdir, Snakemake's output, slurmctld's log of the run)."""
    problem = cluster_problem()
    if problem:
        pytest.skip(problem)
    conf = slurm_config()
    min_job_age = int(conf.get("MinJobAge", "0").split()[0])
    assert min_job_age >= 3 * INIT_SECONDS, (
        f"slurm.conf MinJobAge={min_job_age} s: squeue forgets finished jobs before the plugin looks, and its "
        "sacct fallback hangs without accounting; set MinJobAge=300 (tests/slurm/local_cluster.sh does)"
    )
    ctld_log = Path(conf.get("SlurmctldLogFile", "/nonexistent"))
    offset = ctld_log.stat().st_size if ctld_log.exists() else 0
    work = tiny_workdir(tmp_path_factory.mktemp("slurm"))
    proc = run_snakemake(
        work,
        "--profile",
        "workflow/profiles/slurm",
        "--slurm-init-seconds-before-status-checks",
        str(INIT_SECONDS),
        "--slurm-keep-successful-logs",
        *TINY_TARGETS,
        timeout=1500,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    ctld = ""
    if ctld_log.exists():
        with ctld_log.open() as f:
            f.seek(offset)
            ctld = f.read()
    return work, log, ctld


def test_every_job_went_through_sbatch_and_completed(slurm_run: tuple[Path, str, str], tiny_run: Path) -> None:
    work, log, ctld = slurm_run
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", log)
    # `all`, the default target, has no command: Snakemake finishes it itself, as a local rule
    local_jobs = [r for r in re.findall(r"^localrule (\w+):", log, re.M) if r != "all"]
    assert not local_jobs, f"jobs ran outside SLURM: {local_jobs}"
    rules = {m for m in re.findall(r"/slurm_logs/rule_(\w+)/", " ".join(p for _, p in submitted))}
    all_rules = {r for r in re.findall(r"^rule (\w+):", log, re.M)}
    assert len(submitted) == 19 and rules == all_rules and len(rules) == 17, (submitted, all_rules)
    for job_id, path in submitted:
        assert Path(path).is_file() and Path(path).stat().st_size > 0, f"SLURM job {job_id}: no log {path}"
        assert path.startswith(str(work / ".snakemake" / "slurm_logs"))
        if ctld:  # the controller's own record (its log is on this machine for a single-node cluster)
            assert f"_slurm_rpc_submit_batch_job: JobId={job_id} " in ctld, job_id
            assert f"_job_complete: JobId={job_id} WEXITSTATUS 0" in ctld, job_id


def _json_same(a: Path, b: Path) -> None:
    assert json.loads(a.read_text()) == json.loads(b.read_text()), (a, b)


def _metrics_same(a: Path, b: Path) -> None:
    ta, tb = pd.read_csv(a), pd.read_csv(b)
    cols = [c for c in ta.columns if c not in TIMING_COLUMNS]
    assert list(tb.columns) == list(ta.columns) and len(ta) == len(tb) > 0
    pd.testing.assert_frame_equal(ta[cols], tb[cols], check_exact=True)


def test_results_equal_a_local_run(slurm_run: tuple[Path, str, str], tiny_run: Path) -> None:
    work, _, _ = slurm_run
    s, loc = work / "results", tiny_run / "results"
    for name in ("data/rows.npy", "data/window_starts.npy", "data/normalization.json", "data/dataset.json"):
        assert artifacts.sha256_file(s / name) == artifacts.sha256_file(loc / name), name
    for csv in sorted((loc / "ppo/experience").glob("state_action_data_*.csv")):
        assert artifacts.sha256_file(s / "ppo/experience" / csv.name) == artifacts.sha256_file(csv), csv.name
    ws = torch.load(s / "dynamics/model.pt", weights_only=True)["system_dynamics_state_dict"]
    wl = torch.load(loc / "dynamics/model.pt", weights_only=True)["system_dynamics_state_dict"]
    assert ws.keys() == wl.keys() and all(torch.equal(ws[k], wl[k]) for k in ws)
    _metrics_same(s / "dynamics/metrics.csv", loc / "dynamics/metrics.csv")
    for name in ("eval/dynamics.json", "eval/uncertainty_error.json"):
        _json_same(s / name, loc / name)
    policies = sorted(p.name for p in (loc / "policies").iterdir())
    assert policies and sorted(p.name for p in (s / "policies").iterdir()) == policies
    for p in policies:
        _metrics_same(s / "policies" / p / "metrics.csv", loc / "policies" / p / "metrics.csv")
        _json_same(s / "policies" / p / "sim_eval.json", loc / "policies" / p / "sim_eval.json")
    pd.testing.assert_frame_equal(pd.read_csv(s / "penalty_sweep.csv"), pd.read_csv(loc / "penalty_sweep.csv"))
    for manifest in sorted(loc.rglob("*manifest.json")):  # same config sections, recorded by the same code
        other = artifacts.read_manifest(s / manifest.relative_to(loc))
        assert other["config_hash"] == artifacts.read_manifest(manifest)["config_hash"], manifest
