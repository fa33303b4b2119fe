# Shared by workflow/rules/*.smk: the checked configuration (CFG), path helpers, per-section params and every
# input or params function (the stage files hold only their rules). Each job gets only the config it depends on, as
# a JSON string, so that Snakemake's params trigger reruns exactly the stale stages. Figure-only options (the
# `figures` section) reach only the plot_* rules. Every job writes the manifest it declares (README: "What the stages
# write"); its command's output (progress, summary, errors) goes to its log, results/logs/<name>[/<wildcards>].log.

import json
from dataclasses import asdict, replace
from glob import glob
from pathlib import Path

import yaml
from snakemake.utils import update_config

from rwm_core.config import DATASET_KINDS, ConfigError, validate_config

RESULTS = "results"
SCHEMA = Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"


def typed_cli_value(value, schema):
    """``value`` from ``--config``, with the types ``schema`` (a node of the JSON schema) asks for.

    Snakemake reads a nested ``--config`` value such as ``sweep={"penalties":[0,2]}`` with YAML's BaseLoader, which
    leaves every scalar in it a string ("0", "true"). Where the schema wants no string, such a string is read as
    YAML, as ``--configfile`` would read it; anything that is still wrong is left for the schema check to report.
    """
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        return {key: typed_cli_value(item, properties.get(key, {})) for key, item in value.items()}
    if isinstance(value, list):
        return [typed_cli_value(item, schema.get("items", {})) for item in value]
    wanted = schema.get("type")
    if not isinstance(value, str) or wanted in (None, "string"):
        return value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    if isinstance(parsed, str) and wanted == "number":  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            return value
    return parsed


# config.yaml, then --configfile, then --config (Snakemake's order), checked before any job runs.
update_config(config, typed_cli_value(dict(workflow.config_settings.config), yaml.safe_load(SCHEMA.read_text())))
try:
    CFG = validate_config(config, SCHEMA, "config")
except ConfigError as err:
    raise WorkflowError(str(err)) from None


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


def kind_source_dir(kind):
    """The CSV directory of a dataset kind: the PPO run's experience (mixed, train_ppo), rollouts of its checkpoints
    (random, medium, expert: collect_ppo_dataset) or the trotting controller's data (controller: simulate_dataset)."""
    if kind == "mixed":
        return f"{RESULTS}/ppo/experience"
    if kind == "controller":
        return f"{RESULTS}/sim"
    return f"{RESULTS}/ppo_data/{kind}"


def dataset_source_dir():
    """Directory the validation stage reads: PPO's experience or rollouts, the controller's data, or the user's."""
    if CFG.dataset.source == "ppo":
        return kind_source_dir(CFG.dataset.kind)
    if CFG.dataset.source == "sim":
        return kind_source_dir("controller")
    return CFG.dataset.dir


def dataset_inputs(wildcards):
    """Input of validate_dataset: the directory a stage writes (sources sim and ppo), or the user's files."""
    if CFG.dataset.source in ("sim", "ppo"):
        return dataset_source_dir()  # written by simulate_dataset, train_ppo or collect_ppo_dataset
    # The user's files; none (or a bad directory) makes `rwm validate` fail with a clear message.
    return sorted(glob(f"{CFG.dataset.dir}/state_action_data_*.csv"))


def dataset_dir(wildcards, input):
    """The directory `rwm validate` reads: its input directory, or dataset.dir (which holds its input files)."""
    return input[0] if CFG.dataset.source in ("sim", "ppo") else CFG.dataset.dir


def policy_dirs(wildcards, input):
    """The MOPO-PPO policy directories of the sweep, one per (λ, seed)."""
    return " ".join(sorted({str(Path(p).parent) for p in input.metrics}))


def sweep_references(wildcards, input):
    """The reference policies of the sweep table and figure: model-free PPO and, with sweep.online, online RWM."""
    references = f"--model-free {Path(input.ppo_sim).parent}"
    if CFG.sweep.online:
        references += f" --online {Path(input.online_sim).parent}"
    return references


def penalty_tag(value):
    """Directory name of a penalty λ: 0, 1, 5, 0.5 (the shortest exact decimal)."""
    return f"{float(value):g}"


PENALTIES = [penalty_tag(p) for p in CFG.sweep.penalties]
POLICY_SEEDS = [int(s) for s in CFG.sweep.seeds]

# The dataset ablation (ablation.smk): per kind its own dataset, world model and policies, under results/ablation/<kind>.
# The kind the main job uses keeps the main job's dataset and, where the ablation's budgets leave the main sections as
# they are, its world model and policies (results/data, results/dynamics, results/policies).
MAIN_KIND = {"ppo": CFG.dataset.kind, "sim": "controller"}.get(CFG.dataset.source)  # none for the user's CSVs
ABLATION_DYNAMICS = replace(CFG.dynamics, iterations=CFG.ablation.dynamics_iterations or CFG.dynamics.iterations)
ABLATION_POLICY = replace(CFG.policy, iterations=CFG.ablation.policy_iterations or CFG.policy.iterations)
REUSED_KIND = {"data": MAIN_KIND, "dynamics": MAIN_KIND if ABLATION_DYNAMICS == CFG.dynamics else None}
REUSED_KIND["policies"] = REUSED_KIND["dynamics"] if ABLATION_POLICY == CFG.policy else None


def ablation_dir(kind, stage):
    """Where the ablation keeps a kind's ``stage`` (data, dynamics, policies): the main job's for the reused kind."""
    return f"{RESULTS}/{stage}" if REUSED_KIND[stage] == kind else f"{RESULTS}/ablation/{kind}/{stage}"


def ablation_source(wildcards):
    """Input of ablation_validate_dataset: the kind's CSV directory."""
    return kind_source_dir(wildcards.kind)


def ablation_dataset(wildcards):
    """The dataset artifact a kind's world model trains on and its policies start from (``unpack``: meta, rows)."""
    data = ablation_dir(wildcards.kind, "data")
    return {"meta": f"{data}/dataset.json", "rows": f"{data}/rows.npy"}


def ablation_model(wildcards):
    """The world model a kind's policies train in and are judged with."""
    return f"{ablation_dir(wildcards.kind, 'dynamics')}/model.pt"


# every policy of the ablation (directory -> dataset kind), kinds in the config's order
ABLATION_RUNS = {
    f"{ablation_dir(kind, 'policies')}/lambda{penalty_tag(lam)}_seed{int(seed)}": kind
    for kind in CFG.ablation.kinds
    for lam in CFG.ablation.penalties
    for seed in CFG.ablation.seeds
}


def ablation_runs(wildcards, input):
    """`rwm ablation`'s runs, KIND=POLICY_DIR, of the scored policies among the inputs."""
    return " ".join(f"{ABLATION_RUNS[str(Path(p).parent)]}={Path(p).parent}" for p in input.sim)


wildcard_constraints:
    lam=r"[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?",
    seed="[0-9]+",
    kind="|".join(DATASET_KINDS),
