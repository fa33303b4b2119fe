# World-model stages: pretrain_dynamics (dual-autoregressive training) -> evaluate_dynamics (AR error vs horizon)
# and evaluate_uncertainty (uncertainty vs error).
# Training checkpoints (checkpoints/iter_N.pt) are deliberately not outputs: Snakemake deletes the outputs of a
# failed or killed job, and `--resume` continues from the checkpoints after such a job.

DATASET_META = f"{RESULTS}/data/dataset.json"
DYNAMICS_DIR = f"{RESULTS}/dynamics"


rule pretrain_dynamics:
    input:
        meta=DATASET_META,
        rows=f"{RESULTS}/data/rows.npy",
    output:
        model=f"{DYNAMICS_DIR}/model.pt",
        metrics=f"{DYNAMICS_DIR}/metrics.csv",
        manifest=f"{DYNAMICS_DIR}/manifest.json",
    log:
        f"{RESULTS}/logs/pretrain_dynamics.log",
    params:
        section=section_json(CFG.dynamics),
        tracking=section_json(CFG.tracking),
        seed=CFG.seeds.dynamics,
        device=CFG.device,
        dataset=lambda wildcards, input: str(Path(input.meta).parent),
        out_dir=lambda wildcards, output: str(Path(output.manifest).parent),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        "../envs/rwm.yaml"
    shell:
        "RWM_THREADS={threads} rwm pretrain --dataset {params.dataset} --out {params.out_dir} --resume"
        " --seed {params.seed} --device {params.device} --params {params.section:q} --tracking {params.tracking:q}"
        " > {log} 2>&1"


rule evaluate_dynamics:
    input:
        model=rules.pretrain_dynamics.output.model,
        meta=DATASET_META,
    output:
        report=report(f"{RESULTS}/eval/dynamics.json", caption="../report/dynamics_json.rst", category="Numbers"),
        manifest=manifest_of(f"{RESULTS}/eval/dynamics.json"),
    log:
        f"{RESULTS}/logs/evaluate_dynamics.log",
    params:
        section=section_json(CFG.evaluation),
        val_fraction=CFG.dynamics.val_fraction,
        seed=CFG.seeds.evaluation,
        device=CFG.device,
        dataset=lambda wildcards, input: str(Path(input.meta).parent),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/rwm.yaml"
    shell:
        "RWM_THREADS={threads} rwm evaluate-dynamics --model {input.model} --dataset {params.dataset}"
        " --out {output.report} --val-fraction {params.val_fraction} --seed {params.seed} --device {params.device}"
        " --params {params.section:q} > {log} 2>&1"


rule evaluate_uncertainty:
    input:
        model=rules.pretrain_dynamics.output.model,
        meta=DATASET_META,
    output:
        report=report(
            f"{RESULTS}/eval/uncertainty_error.json", caption="../report/uncertainty_json.rst", category="Numbers"
        ),
        manifest=manifest_of(f"{RESULTS}/eval/uncertainty_error.json"),
    log:
        f"{RESULTS}/logs/evaluate_uncertainty.log",
    params:
        section=section_json(CFG.evaluation),
        val_fraction=CFG.dynamics.val_fraction,
        seed=CFG.seeds.evaluation,
        device=CFG.device,
        dataset=lambda wildcards, input: str(Path(input.meta).parent),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/rwm.yaml"
    shell:
        "RWM_THREADS={threads} rwm evaluate-uncertainty --model {input.model} --dataset {params.dataset}"
        " --out {output.report} --val-fraction {params.val_fraction} --seed {params.seed} --device {params.device}"
        " --params {params.section:q} > {log} 2>&1"
