# Path helpers and per-section params. Each rule gets only the config it depends on, as a JSON string, so that
# Snakemake's params trigger reruns exactly the stale stages. Figure-only options (the `figures` section) reach only
# the plot_* rules. Every rule also declares the manifest its command writes (README: "What the stages write").

import json
from dataclasses import asdict

RESULTS = "results"


def section_json(obj, drop=(), keep=None):
    """JSON of a typed config section (rwm_core.config dataclass): without the keys in ``drop``, or only ``keep``."""
    data = asdict(obj)
    if keep is not None:
        data = {k: v for k, v in data.items() if k in keep}
    for key in drop:
        data.pop(key, None)
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def manifest_of(path):
    """The manifest beside a single-file output (rwm_core.artifacts.manifest_path); directory outputs hold theirs."""
    return f"{path}.manifest.json"


def dataset_source_dir():
    """Directory the validation stage reads: PPO's experience or rollouts, the controller's data, or the user's."""
    if CFG.dataset.source == "ppo":
        return f"{RESULTS}/ppo/experience" if CFG.dataset.kind == "mixed" else f"{RESULTS}/ppo_data/{CFG.dataset.kind}"
    if CFG.dataset.source == "sim":
        return f"{RESULTS}/sim"
    return CFG.dataset.dir


def penalty_tag(value):
    """Directory name of a penalty λ: 0, 1, 5, 0.5 (the shortest exact decimal)."""
    return f"{float(value):g}"


PENALTIES = [penalty_tag(p) for p in CFG.sweep.penalties]
POLICY_SEEDS = [int(s) for s in CFG.sweep.seeds]


wildcard_constraints:
    lam=r"[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?",
    seed="[0-9]+",
