# Data stages: simulate_dataset (MuJoCo) -> validate_dataset (checks + the dataset artifact).
# Its figure is plot_overview (figures.smk), so figure options never invalidate the dataset.

from glob import glob


def _validate_inputs(wildcards):
    if CFG.dataset.source in ("sim", "ppo"):
        return dataset_source_dir()  # written by simulate_dataset, train_ppo or collect_ppo_dataset
    # The user's files; none (or a bad directory) makes `rwm validate` fail with a clear message.
    return sorted(glob(f"{CFG.dataset.dir}/state_action_data_*.csv"))


rule simulate_dataset:
    output:
        csv_dir=directory(f"{RESULTS}/sim"),
    params:
        sim=section_json(CFG.dataset.sim, drop=("workers",)),
        seed=CFG.seeds.dataset,
    threads: CFG.dataset.sim.workers
    resources:
        mem_mb=2000,
        runtime=60,
    shell:
        "rwm simulate --out {output.csv_dir} --seed {params.seed} --workers {threads} --params {params.sim:q}"


rule validate_dataset:
    input:
        _validate_inputs,
    output:
        report=f"{RESULTS}/data/validation.json",
        rows=f"{RESULTS}/data/rows.npy",
        windows=f"{RESULTS}/data/window_starts.npy",
        normalization=f"{RESULTS}/data/normalization.json",
        meta=f"{RESULTS}/data/dataset.json",
        manifest=f"{RESULTS}/data/manifest.json",
    params:
        section=section_json(CFG.dataset, drop=("source", "kind", "policy_rows", "medium_fraction", "dir", "sim")),
        data_dir=dataset_source_dir(),
        out_dir=f"{RESULTS}/data",
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "rwm validate {params.data_dir:q} --out {params.out_dir} --params {params.section:q}"
