# Shared by workflow/rules/*.smk: the checked configuration (CFG), path helpers, per-section params and every
# input or params function (the stage files hold only their rules). Each job gets only the config it depends on, as
# a JSON string, so that Snakemake's params trigger reruns exactly the stale stages. Figure-only options (the
# `figures` section) reach only the plot_* rules. Every job writes the manifest it declares (README: "What the stages
# write"); its command's output (progress, summary, errors) goes to its log, results/logs/<name>[/<wildcards>].log.

import json
from dataclasses import asdict
from glob import glob
from pathlib import Path

import yaml
from snakemake.utils import update_config

from rwm_core.config import ConfigError, validate_config

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


def dataset_source_dir():
    """Directory the validation stage reads: PPO's experience or rollouts, the controller's data, or the user's."""
    if CFG.dataset.source == "ppo":
        return f"{RESULTS}/ppo/experience" if CFG.dataset.kind == "mixed" else f"{RESULTS}/ppo_data/{CFG.dataset.kind}"
    if CFG.dataset.source == "sim":
        return f"{RESULTS}/sim"
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


wildcard_constraints:
    lam=r"[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?",
    seed="[0-9]+",
