# The penalty sweep table: every MOPO-PPO policy (one per λ and seed) with the references scored on the same
# simulator episodes (model-free PPO, online RWM with sweep.online, standing), and its summary over seeds (one row
# per method and λ). Its figure is plot_penalty_sweep (figures.smk), which reads the same inputs.

SWEEP_INPUTS = {
    "metrics": expand(f"{RESULTS}/policies/lambda{{lam}}_seed{{seed}}/metrics.csv", lam=PENALTIES, seed=POLICY_SEEDS),
    "sim": expand(f"{RESULTS}/policies/lambda{{lam}}_seed{{seed}}/sim_eval.json", lam=PENALTIES, seed=POLICY_SEEDS),
    # the model-free PPO policy the data came from: a reference row (method model-free-ppo) and line
    "ppo_metrics": rules.train_ppo.output.metrics,
    "ppo_sim": rules.evaluate_ppo.output.report,
}
if CFG.sweep.online:  # the online RWM policy: a row (method online-rwm) and a reference line
    SWEEP_INPUTS["online_metrics"] = rules.train_online.output.metrics
    SWEEP_INPUTS["online_sim"] = rules.evaluate_online.output.report


rule penalty_sweep:
    input:
        **SWEEP_INPUTS,
    output:
        csv=report(f"{RESULTS}/penalty_sweep.csv", caption="../report/penalty_sweep_csv.rst", category="Policies"),
        manifest=manifest_of(f"{RESULTS}/penalty_sweep.csv"),
        summary=report(
            f"{RESULTS}/penalty_sweep_summary.csv", caption="../report/penalty_sweep_summary_csv.rst", category="Policies"
        ),
        summary_manifest=manifest_of(f"{RESULTS}/penalty_sweep_summary.csv"),
    log:
        f"{RESULTS}/logs/penalty_sweep.log",
    params:
        dirs=policy_dirs,
        references=sweep_references,
    resources:
        mem_mb=2000,
        runtime=15,
    conda:
        "../envs/rwm.yaml"
    shell:
        "rwm sweep {params.dirs} {params.references} --out-csv {output.csv} --out-summary {output.summary} > {log} 2>&1"
