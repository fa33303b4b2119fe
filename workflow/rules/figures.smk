# Evaluation studies and figures: uncertainty vs error, predictions, noise robustness, the penalty sweep.


rule evaluate_uncertainty:
    input:
        model=rules.pretrain_dynamics.output.model,
        meta=DATASET_META,
    output:
        report=f"{RESULTS}/eval/uncertainty_error.json",
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


rule plot_uncertainty:
    input:
        rules.evaluate_uncertainty.output.report,
    output:
        report(f"{RESULTS}/uncertainty_error.pdf", caption="../report/uncertainty_error.rst", category="World model"),
    params:
        dpi=CFG.figures.dpi,
    shell:
        "rwm plot uncertainty --input {input} --out {output} --dpi {params.dpi}"


rule plot_noise_robustness:
    input:
        rules.evaluate_dynamics.output.report,
    output:
        report(f"{RESULTS}/noise_robustness.pdf", caption="../report/noise_robustness.rst", category="World model"),
    params:
        dpi=CFG.figures.dpi,
    shell:
        "rwm plot noise --input {input} --out {output} --dpi {params.dpi}"


rule plot_prediction:
    input:
        model=rules.pretrain_dynamics.output.model,
        meta=DATASET_META,
    output:
        report(f"{RESULTS}/prediction.pdf", caption="../report/prediction.rst", category="World model"),
    params:
        windows=CFG.figures.prediction_windows,
        val_fraction=CFG.dynamics.val_fraction,
        seed=CFG.seeds.evaluation,
        dpi=CFG.figures.dpi,
        dataset=f"{RESULTS}/data",
    shell:
        "rwm plot prediction --model {input.model} --dataset {params.dataset} --out {output}"
        " --windows {params.windows} --val-fraction {params.val_fraction} --seed {params.seed} --dpi {params.dpi}"


rule evaluate_policy:
    input:
        actor=f"{POLICY_DIR}/policy.pt",
    output:
        report=f"{POLICY_DIR}/sim_eval.json",
    params:
        section=section_json(CFG.policy, keep=("eval_episodes", "eval_episode_steps", "observation_noise")),
        seed=CFG.seeds.evaluation,
        policy_dir=POLICY_DIR,
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "RWM_THREADS=1 rwm evaluate-policy --policy {params.policy_dir} --out {output.report} --seed {params.seed}"
        " --params {params.section:q} --quiet"


rule penalty_sweep:
    input:
        metrics=expand(f"{RESULTS}/policies/lambda{{lam}}_seed{{seed}}/metrics.csv", lam=PENALTIES, seed=POLICY_SEEDS),
        sim=expand(f"{RESULTS}/policies/lambda{{lam}}_seed{{seed}}/sim_eval.json", lam=PENALTIES, seed=POLICY_SEEDS),
    output:
        csv=report(f"{RESULTS}/penalty_sweep.csv", caption="../report/penalty_sweep_csv.rst", category="Policies"),
        pdf=report(f"{RESULTS}/penalty_sweep.pdf", caption="../report/penalty_sweep.rst", category="Policies"),
    params:
        dirs=lambda wildcards, input: " ".join(sorted({str(Path(p).parent) for p in input.metrics})),
        dpi=CFG.figures.dpi,
    shell:
        "rwm sweep {params.dirs} --out-csv {output.csv} --out-pdf {output.pdf} --dpi {params.dpi}"
