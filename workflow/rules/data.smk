# Data stages: simulate_dataset (MuJoCo) -> validate_dataset (checks + the dataset artifact).
# Its figure is plot_overview (figures.smk), so figure options never invalidate the dataset.


rule simulate_dataset:
    output:
        csv_dir=directory(f"{RESULTS}/sim"),
    log:
        f"{RESULTS}/logs/simulate_dataset.log",
    params:
        sim=section_json(CFG.dataset.sim, drop=("workers",)),
        seed=CFG.seeds.dataset,
    threads: CFG.dataset.sim.workers
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../envs/rwm.yaml"
    shell:
        "rwm simulate --out {output.csv_dir} --seed {params.seed} --workers {threads} --params {params.sim:q}"
        " > {log} 2>&1"


rule validate_dataset:
    input:
        dataset_inputs,
    output:
        report=f"{RESULTS}/data/validation.json",
        rows=f"{RESULTS}/data/rows.npy",
        windows=f"{RESULTS}/data/window_starts.npy",
        normalization=f"{RESULTS}/data/normalization.json",
        meta=f"{RESULTS}/data/dataset.json",
        manifest=f"{RESULTS}/data/manifest.json",
    log:
        f"{RESULTS}/logs/validate_dataset.log",
    params:
        section=section_json(CFG.dataset, drop=("source", "kind", "policy_rows", "medium_fraction", "dir", "sim")),
        data_dir=dataset_dir,
        out_dir=lambda wildcards, output: str(Path(output.manifest).parent),
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/rwm.yaml"
    shell:
        "rwm validate {params.data_dir:q} --out {params.out_dir} --params {params.section:q} > {log} 2>&1"
