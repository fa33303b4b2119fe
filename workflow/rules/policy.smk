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
    params:
        section=section_json(CFG.policy, drop=("eval_episodes", "eval_episode_steps")),
        tracking=section_json(CFG.tracking),
        device=CFG.device,
        dataset=f"{RESULTS}/data",
        out_dir=POLICY_DIR,
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
    shell:
        "RWM_THREADS={threads} rwm train-policy --model {input.model} --dataset {params.dataset}"
        " --penalty {wildcards.lam} --seed {wildcards.seed} --out {params.out_dir} --resume"
        " --device {params.device} --params {params.section:q} --tracking {params.tracking:q}"
