# Evaluation studies and figures: uncertainty vs error, predictions, noise robustness, the penalty sweep.
# Only the plot_* rules receive the `figures` section, so a figure-only edit reruns figures and nothing else.


rule evaluate_uncertainty:
    input:
        model=rules.pretrain_dynamics.output.model,
        meta=DATASET_META,
    output:
        report=report(
            f"{RESULTS}/eval/uncertainty_error.json", caption="../report/uncertainty_json.rst", category="Numbers"
        ),
        manifest=manifest_of(f"{RESULTS}/eval/uncertainty_error.json"),
    params:
        section=section_json(CFG.evaluation),
        val_fraction=CFG.dynamics.val_fraction,
        seed=CFG.seeds.evaluation,
        device=CFG.device,
        dataset=f"{RESULTS}/data",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "RWM_THREADS={threads} rwm evaluate-uncertainty --model {input.model} --dataset {params.dataset}"
        " --out {output.report} --val-fraction {params.val_fraction} --seed {params.seed} --device {params.device}"
        " --params {params.section:q}"


rule plot_overview:
    input:
        rows=f"{RESULTS}/data/rows.npy",
        meta=DATASET_META,
    output:
        pdf=report(f"{RESULTS}/overview.pdf", caption="../report/overview.rst", category="Dataset"),
        manifest=manifest_of(f"{RESULTS}/overview.pdf"),
    params:
        dpi=CFG.figures.dpi,
        seconds=CFG.figures.overview_seconds,
        dataset=f"{RESULTS}/data",
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "rwm plot overview --dataset {params.dataset} --out {output.pdf} --seconds {params.seconds}"
        " --dpi {params.dpi}"


rule plot_uncertainty:
    input:
        rules.evaluate_uncertainty.output.report,
    output:
        pdf=report(f"{RESULTS}/uncertainty_error.pdf", caption="../report/uncertainty_error.rst", category="World model"),
        manifest=manifest_of(f"{RESULTS}/uncertainty_error.pdf"),
    params:
        dpi=CFG.figures.dpi,
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "rwm plot uncertainty --input {input} --out {output.pdf} --dpi {params.dpi}"


rule plot_noise_robustness:
    input:
        rules.evaluate_dynamics.output.report,
    output:
        pdf=report(f"{RESULTS}/noise_robustness.pdf", caption="../report/noise_robustness.rst", category="World model"),
        manifest=manifest_of(f"{RESULTS}/noise_robustness.pdf"),
    params:
        dpi=CFG.figures.dpi,
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "rwm plot noise --input {input} --out {output.pdf} --dpi {params.dpi}"


rule plot_prediction:
    input:
        model=rules.pretrain_dynamics.output.model,
        meta=DATASET_META,
    output:
        pdf=report(f"{RESULTS}/prediction.pdf", caption="../report/prediction.rst", category="World model"),
        manifest=manifest_of(f"{RESULTS}/prediction.pdf"),
    params:
        windows=CFG.figures.prediction_windows,
        val_fraction=CFG.dynamics.val_fraction,
        seed=CFG.seeds.evaluation,
        dpi=CFG.figures.dpi,
        dataset=f"{RESULTS}/data",
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "rwm plot prediction --model {input.model} --dataset {params.dataset} --out {output.pdf}"
        " --windows {params.windows} --val-fraction {params.val_fraction} --seed {params.seed} --dpi {params.dpi}"


rule evaluate_policy:
    input:
        actor=f"{POLICY_DIR}/policy.pt",
        # also scored: how well the world model predicts the policy's and standing's simulator trajectories
        model=rules.pretrain_dynamics.output.model,
        # every checkpoint of the run is scored too (true return over training); they are written by the same job
        # as policy_checkpoint.pt, which the final checkpoint's fingerprint ties them to
        final=rules.train_policy.output.checkpoint,
    output:
        report=f"{POLICY_DIR}/sim_eval.json",
        manifest=manifest_of(f"{POLICY_DIR}/sim_eval.json"),
    params:
        section=section_json(CFG.policy, keep=("eval_episodes", "eval_episode_steps", "observation_noise")),
        seed=CFG.seeds.evaluation,
        policy_dir=POLICY_DIR,
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "RWM_THREADS=1 rwm evaluate-policy --policy {params.policy_dir} --out {output.report} --seed {params.seed}"
        " --model {input.model} --checkpoints --params {params.section:q} --quiet"


SWEEP_INPUTS = {
    "metrics": expand(f"{RESULTS}/policies/lambda{{lam}}_seed{{seed}}/metrics.csv", lam=PENALTIES, seed=POLICY_SEEDS),
    "sim": expand(f"{RESULTS}/policies/lambda{{lam}}_seed{{seed}}/sim_eval.json", lam=PENALTIES, seed=POLICY_SEEDS),
    # the model-free PPO policy the data came from: a reference row (method model-free-ppo) and line
    "ppo_metrics": rules.train_ppo.output.metrics,
    "ppo_sim": rules.evaluate_ppo.output.report,
}


def _policy_dirs(wildcards, input):
    return " ".join(sorted({str(Path(p).parent) for p in input.metrics}))


rule penalty_sweep:
    input:
        **SWEEP_INPUTS,
    output:
        csv=report(f"{RESULTS}/penalty_sweep.csv", caption="../report/penalty_sweep_csv.rst", category="Policies"),
        manifest=manifest_of(f"{RESULTS}/penalty_sweep.csv"),
    params:
        dirs=_policy_dirs,
        ppo_dir=PPO_DIR,
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "rwm sweep {params.dirs} --model-free {params.ppo_dir} --out-csv {output.csv}"


rule plot_penalty_sweep:
    input:
        **SWEEP_INPUTS,
        # not read by the command: the sweep figure is the pipeline's last product, so asking for it (README's main
        # command) builds every other figure too, and a redrawn figure redraws it (1 s). Not ancient(): Snakemake
        # 9 then skips this job's params check when an upstream job reruns, and a dpi edit would not redraw it.
        study=[
            f"{RESULTS}/{name}"
            for name in (
                "penalty_sweep.csv",
                "overview.pdf",
                "uncertainty_error.pdf",
                "prediction.pdf",
                "noise_robustness.pdf",
            )
        ],
    output:
        pdf=report(f"{RESULTS}/penalty_sweep.pdf", caption="../report/penalty_sweep.rst", category="Policies"),
        manifest=manifest_of(f"{RESULTS}/penalty_sweep.pdf"),
    params:
        dirs=_policy_dirs,
        ppo_dir=PPO_DIR,
        dpi=CFG.figures.dpi,
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "rwm sweep {params.dirs} --model-free {params.ppo_dir} --out-pdf {output.pdf} --dpi {params.dpi}"
