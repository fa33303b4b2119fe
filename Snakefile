# rwm-pipeline workflow. Rules only wire files together; the work is done by `rwm <command>` (rwm_core).
# Usage: snakemake --cores 2 [TARGET]   (see README.md; profiles in workflow/profiles/)

from pathlib import Path

from rwm_core.config import ConfigError, validate_config


configfile: "config.yaml"


try:
    CFG = validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml", "config")
except ConfigError as err:
    raise WorkflowError(str(err)) from None


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/ppo.smk"
include: "workflow/rules/dynamics.smk"
include: "workflow/rules/policy.smk"
include: "workflow/rules/figures.smk"


rule all:
    input:
        f"{RESULTS}/penalty_sweep.csv",
        f"{RESULTS}/penalty_sweep.pdf",
        f"{RESULTS}/eval/dynamics.json",
