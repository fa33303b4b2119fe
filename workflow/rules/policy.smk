# Policy stages: train_policy (MOPO-PPO in imagination, one job per λ and seed) -> evaluate_policy (MuJoCo).
# As for pretraining, checkpoints/ is not an output, so a killed job resumes from its last checkpoint.

POLICY_DIR = f"{RESULTS}/policies/lambda{{lam}}_seed{{seed}}"


rule train_policy:
    input:
        model=rules.pretrain_dynamics.output.model,
        meta=DATASET_META,
    output:
        actor=f"{POLICY_DIR}/policy.pt",
        onnx=f"{POLICY_DIR}/policy.onnx",
        checkpoint=f"{POLICY_DIR}/policy_checkpoint.pt",
        metrics=f"{POLICY_DIR}/metrics.csv",
        manifest=f"{POLICY_DIR}/manifest.json",
    log:
        f"{RESULTS}/logs/train_policy/lambda{{lam}}_seed{{seed}}.log",
    params:
        section=section_json(CFG.policy, drop=("eval_episodes", "eval_episode_steps")),
        tracking=section_json(CFG.tracking),
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
        "RWM_THREADS={threads} rwm train-policy --model {input.model} --dataset {params.dataset}"
        " --penalty {wildcards.lam} --seed {wildcards.seed} --out {params.out_dir} --resume"
        " --device {params.device} --params {params.section:q} --tracking {params.tracking:q} > {log} 2>&1"


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
    log:
        f"{RESULTS}/logs/evaluate_policy/lambda{{lam}}_seed{{seed}}.log",
    params:
        section=section_json(CFG.policy, keep=("eval_episodes", "eval_episode_steps", "observation_noise")),
        seed=CFG.seeds.evaluation,
        policy_dir=lambda wildcards, input: str(Path(input.actor).parent),
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/rwm.yaml"
    shell:
        "RWM_THREADS=1 rwm evaluate-policy --policy {params.policy_dir} --out {output.report} --seed {params.seed}"
        " --model {input.model} --checkpoints --params {params.section:q} --quiet > {log} 2>&1"
