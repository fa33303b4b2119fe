# World-model stages: pretrain_dynamics (dual-autoregressive training) -> evaluate_dynamics (AR error vs horizon).
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
    params:
        section=section_json(CFG.dynamics),
        tracking=section_json(CFG.tracking),
        seed=CFG.seeds.dynamics,
        device=CFG.device,
        dataset=f"{RESULTS}/data",
        out_dir=DYNAMICS_DIR,
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
    shell:
        "RWM_THREADS={threads} rwm pretrain --dataset {params.dataset} --out {params.out_dir} --resume"
        " --seed {params.seed} --device {params.device} --params {params.section:q} --tracking {params.tracking:q}"


rule evaluate_dynamics:
    input:
        model=rules.pretrain_dynamics.output.model,
        meta=DATASET_META,
    output:
        report=report(f"{RESULTS}/eval/dynamics.json", caption="../report/dynamics_json.rst", category="Numbers"),
        manifest=manifest_of(f"{RESULTS}/eval/dynamics.json"),
    params:
        section=section_json(CFG.evaluation),
        val_fraction=CFG.dynamics.val_fraction,
        seed=CFG.seeds.evaluation,
        device=CFG.device,
        dataset=f"{RESULTS}/data",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "RWM_THREADS={threads} rwm evaluate-dynamics --model {input.model} --dataset {params.dataset}"
        " --out {output.report} --val-fraction {params.val_fraction} --seed {params.seed} --device {params.device}"
        " --params {params.section:q}"
