# rwm-pipeline workflow. Rules only wire files together; the work is done by `rwm <command>` (rwm_core).
# Usage: snakemake --cores 2 [TARGET]   (default target: all, every final product; see README.md; profiles in
# workflow/profiles/). Every job logs to results/logs/; --software-deployment-method conda runs each job in
# workflow/envs/rwm.yaml, without it jobs use the current environment.


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"  # checks the config (schema) before anything else: CFG
include: "workflow/rules/data.smk"
include: "workflow/rules/ppo.smk"
include: "workflow/rules/dynamics.smk"
include: "workflow/rules/policy.smk"
include: "workflow/rules/online.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/ablation.smk"  # the dataset ablation: its own target, dataset_ablation (not in all)


# The final products: the figures, the sweep table and the world-model reports (what `snakemake --report` collects).
rule all:
    default_target: True
    input:
        rules.plot_overview.output.pdf,
        rules.evaluate_dynamics.output.report,
        rules.evaluate_uncertainty.output.report,
        rules.plot_prediction.output.pdf,
        rules.plot_uncertainty.output.pdf,
        rules.plot_noise_robustness.output.pdf,
        rules.penalty_sweep.output.csv,
        rules.plot_penalty_sweep.output.pdf,
        rules.plot_online.output.pdf if CFG.sweep.online else [],
