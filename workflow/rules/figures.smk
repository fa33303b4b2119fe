# Figures: the dataset overview, the world model's predictions, uncertainty vs error and noise robustness, online
# RWM, the penalty sweep. Only the plot_* rules receive the `figures` section, so a figure-only edit reruns figures
# and nothing else.


rule plot_overview:
    input:
        rows=f"{RESULTS}/data/rows.npy",
        meta=DATASET_META,
    output:
        pdf=report(f"{RESULTS}/overview.pdf", caption="../report/overview.rst", category="Dataset"),
        manifest=manifest_of(f"{RESULTS}/overview.pdf"),
    log:
        f"{RESULTS}/logs/plot_overview.log",
    params:
        dpi=CFG.figures.dpi,
        seconds=CFG.figures.overview_seconds,
        dataset=lambda wildcards, input: str(Path(input.meta).parent),
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/rwm.yaml"
    shell:
        "rwm plot overview --dataset {params.dataset} --out {output.pdf} --seconds {params.seconds}"
        " --dpi {params.dpi} > {log} 2>&1"


rule plot_uncertainty:
    input:
        rules.evaluate_uncertainty.output.report,
    output:
        pdf=report(f"{RESULTS}/uncertainty_error.pdf", caption="../report/uncertainty_error.rst", category="World model"),
        manifest=manifest_of(f"{RESULTS}/uncertainty_error.pdf"),
    log:
        f"{RESULTS}/logs/plot_uncertainty.log",
    params:
        dpi=CFG.figures.dpi,
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/rwm.yaml"
    shell:
        "rwm plot uncertainty --input {input} --out {output.pdf} --dpi {params.dpi} > {log} 2>&1"


rule plot_noise_robustness:
    input:
        rules.evaluate_dynamics.output.report,
    output:
        pdf=report(f"{RESULTS}/noise_robustness.pdf", caption="../report/noise_robustness.rst", category="World model"),
        manifest=manifest_of(f"{RESULTS}/noise_robustness.pdf"),
    log:
        f"{RESULTS}/logs/plot_noise_robustness.log",
    params:
        dpi=CFG.figures.dpi,
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/rwm.yaml"
    shell:
        "rwm plot noise --input {input} --out {output.pdf} --dpi {params.dpi} > {log} 2>&1"


rule plot_prediction:
    input:
        model=rules.pretrain_dynamics.output.model,
        meta=DATASET_META,
    output:
        pdf=report(f"{RESULTS}/prediction.pdf", caption="../report/prediction.rst", category="World model"),
        manifest=manifest_of(f"{RESULTS}/prediction.pdf"),
    log:
        f"{RESULTS}/logs/plot_prediction.log",
    params:
        windows=CFG.figures.prediction_windows,
        val_fraction=CFG.dynamics.val_fraction,
        seed=CFG.seeds.evaluation,
        dpi=CFG.figures.dpi,
        dataset=lambda wildcards, input: str(Path(input.meta).parent),
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/rwm.yaml"
    shell:
        "rwm plot prediction --model {input.model} --dataset {params.dataset} --out {output.pdf}"
        " --windows {params.windows} --val-fraction {params.val_fraction} --seed {params.seed} --dpi {params.dpi}"
        " > {log} 2>&1"


rule plot_online:
    input:
        metrics=rules.train_online.output.metrics,
    output:
        pdf=report(f"{RESULTS}/online.pdf", caption="../report/online.rst", category="Policies"),
        manifest=manifest_of(f"{RESULTS}/online.pdf"),
    log:
        f"{RESULTS}/logs/plot_online.log",
    params:
        dpi=CFG.figures.dpi,
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/rwm.yaml"
    shell:
        "rwm plot online --input {input.metrics} --out {output.pdf} --dpi {params.dpi} > {log} 2>&1"


rule plot_penalty_sweep:
    input:
        **SWEEP_INPUTS,
    output:
        pdf=report(f"{RESULTS}/penalty_sweep.pdf", caption="../report/penalty_sweep.rst", category="Policies"),
        manifest=manifest_of(f"{RESULTS}/penalty_sweep.pdf"),
    log:
        f"{RESULTS}/logs/plot_penalty_sweep.log",
    params:
        dirs=policy_dirs,
        references=sweep_references,
        dpi=CFG.figures.dpi,
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/rwm.yaml"
    shell:
        "rwm sweep {params.dirs} {params.references} --out-pdf {output.pdf} --dpi {params.dpi} > {log} 2>&1"
