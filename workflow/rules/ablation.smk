# The dataset ablation (RWM-U Fig. 5), its own target: `snakemake --cores 2 dataset_ablation` (not part of all).
# Per dataset kind (ablation.kinds): ablation_validate_dataset (the kind's CSVs, from train_ppo, collect_ppo_dataset or
# simulate_dataset) -> ablation_pretrain_dynamics -> ablation_train_policy (per λ and seed of the ablation section,
# the policy section's settings) -> ablation_evaluate_policy (the sweep's simulator episodes) -> ablation_table and
# plot_dataset_ablation. The first four are the main job's rules (`use rule`) on the kind's files. The kind the main
# job uses is not trained twice: common.smk's ablation_dir points it at the main job's dataset, world model and
# policies (rules validate_dataset, pretrain_dynamics, train_policy, evaluate_policy).

ABLATION_DIR = f"{RESULTS}/ablation/{{kind}}"
ABLATION_POLICY_DIR = f"{ABLATION_DIR}/policies/lambda{{lam}}_seed{{seed}}"


# The main job's rules on the kind's files: their commands, threads and resources, and the params not set here.
use rule validate_dataset as ablation_validate_dataset with:
    input:
        ablation_source,
    output:
        report=f"{ABLATION_DIR}/data/validation.json",
        rows=f"{ABLATION_DIR}/data/rows.npy",
        windows=f"{ABLATION_DIR}/data/window_starts.npy",
        normalization=f"{ABLATION_DIR}/data/normalization.json",
        meta=f"{ABLATION_DIR}/data/dataset.json",
        manifest=f"{ABLATION_DIR}/data/manifest.json",
    log:
        f"{RESULTS}/logs/ablation/validate_dataset/{{kind}}.log",
    params:
        data_dir=lambda wildcards, input: input[0],  # windows and normalisation: the main dataset's section


use rule pretrain_dynamics as ablation_pretrain_dynamics with:
    input:
        unpack(ablation_dataset),
    output:
        model=f"{ABLATION_DIR}/dynamics/model.pt",
        metrics=f"{ABLATION_DIR}/dynamics/metrics.csv",
        manifest=f"{ABLATION_DIR}/dynamics/manifest.json",
    log:
        f"{RESULTS}/logs/ablation/pretrain_dynamics/{{kind}}.log",
    params:
        section=section_json(ABLATION_DYNAMICS),


use rule train_policy as ablation_train_policy with:
    input:
        unpack(ablation_dataset),
        model=ablation_model,
    output:
        actor=f"{ABLATION_POLICY_DIR}/policy.pt",
        onnx=f"{ABLATION_POLICY_DIR}/policy.onnx",
        checkpoint=f"{ABLATION_POLICY_DIR}/policy_checkpoint.pt",
        metrics=f"{ABLATION_POLICY_DIR}/metrics.csv",
        manifest=f"{ABLATION_POLICY_DIR}/manifest.json",
    log:
        f"{RESULTS}/logs/ablation/train_policy/{{kind}}/lambda{{lam}}_seed{{seed}}.log",
    params:
        section=section_json(ABLATION_POLICY, drop=("eval_episodes", "eval_episode_steps")),


# the sweep's simulator episodes (evaluate_policy's params), and the kind's own world model
use rule evaluate_policy as ablation_evaluate_policy with:
    input:
        actor=f"{ABLATION_POLICY_DIR}/policy.pt",
        model=ablation_model,
        final=f"{ABLATION_POLICY_DIR}/policy_checkpoint.pt",
    output:
        report=f"{ABLATION_POLICY_DIR}/sim_eval.json",
        manifest=manifest_of(f"{ABLATION_POLICY_DIR}/sim_eval.json"),
    log:
        f"{RESULTS}/logs/ablation/evaluate_policy/{{kind}}/lambda{{lam}}_seed{{seed}}.log",


ABLATION_INPUTS = {
    "metrics": [f"{d}/metrics.csv" for d in ABLATION_RUNS],
    "sim": [f"{d}/sim_eval.json" for d in ABLATION_RUNS],
    # the model-free PPO policy: a reference row and line
    "ppo_metrics": rules.train_ppo.output.metrics,
    "ppo_sim": rules.evaluate_ppo.output.report,
}


rule ablation_table:
    input:
        **ABLATION_INPUTS,
    output:
        csv=report(
            f"{RESULTS}/dataset_ablation.csv", caption="../report/dataset_ablation_csv.rst", category="Dataset ablation"
        ),
        manifest=manifest_of(f"{RESULTS}/dataset_ablation.csv"),
    log:
        f"{RESULTS}/logs/ablation_table.log",
    params:
        runs=ablation_runs,
        model_free=lambda wildcards, input: str(Path(input.ppo_sim).parent),
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/rwm.yaml"
    shell:
        "rwm ablation {params.runs} --model-free {params.model_free} --out-csv {output.csv} > {log} 2>&1"


rule plot_dataset_ablation:
    input:
        **ABLATION_INPUTS,
    output:
        pdf=report(
            f"{RESULTS}/dataset_ablation.pdf", caption="../report/dataset_ablation.rst", category="Dataset ablation"
        ),
        manifest=manifest_of(f"{RESULTS}/dataset_ablation.pdf"),
    log:
        f"{RESULTS}/logs/plot_dataset_ablation.log",
    params:
        runs=ablation_runs,
        model_free=lambda wildcards, input: str(Path(input.ppo_sim).parent),
        dpi=CFG.figures.dpi,
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/rwm.yaml"
    shell:
        "rwm ablation {params.runs} --model-free {params.model_free} --out-pdf {output.pdf} --dpi {params.dpi}"
        " > {log} 2>&1"


# The target: `snakemake --cores 2 dataset_ablation` (the table and the figure).
rule dataset_ablation:
    input:
        rules.ablation_table.output.csv,
        rules.plot_dataset_ablation.output.pdf,
