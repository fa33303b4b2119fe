# Model-free PPO stages: train_ppo (from scratch in the batched MuJoCo simulator; the experience of its first
# ppo.record_envs envs is the `mixed` dataset) -> collect_ppo_dataset (RWM-U's random / medium / expert kinds,
# rolled out from its checkpoints) and evaluate_ppo (scored in the simulator like the MOPO-PPO policies).
# As for the other trainers, checkpoints/ is not an output, so a killed job resumes from its last checkpoint.

PPO_DIR = f"{RESULTS}/ppo"


rule train_ppo:
    output:
        actor=f"{PPO_DIR}/policy.pt",
        onnx=f"{PPO_DIR}/policy.onnx",
        checkpoint=f"{PPO_DIR}/policy_checkpoint.pt",
        metrics=f"{PPO_DIR}/metrics.csv",
        experience=directory(f"{PPO_DIR}/experience"),
        manifest=f"{PPO_DIR}/manifest.json",
    log:
        f"{RESULTS}/logs/train_ppo.log",
    params:
        section=section_json(CFG.ppo),
        tracking=section_json(CFG.tracking),
        seed=CFG.seeds.ppo,
        device=CFG.device,
        out_dir=lambda wildcards, output: str(Path(output.manifest).parent),
    threads: CFG.ppo.threads
    resources:
        mem_mb=4000,
        runtime=240,
    conda:
        "../envs/rwm.yaml"
    shell:
        "RWM_THREADS={threads} rwm train-ppo --out {params.out_dir} --resume --seed {params.seed}"
        " --device {params.device} --params {params.section:q} --tracking {params.tracking:q} > {log} 2>&1"


rule collect_ppo_dataset:
    input:
        checkpoint=rules.train_ppo.output.checkpoint,
    output:
        csv_dir=directory(f"{RESULTS}/ppo_data/{{kind}}"),
    log:
        f"{RESULTS}/logs/collect_ppo_dataset/{{kind}}.log",
    wildcard_constraints:
        kind="random|medium|expert",
    params:
        section=section_json(CFG.ppo),
        rows=CFG.dataset.policy_rows,
        medium_fraction=CFG.dataset.medium_fraction,
        seed=CFG.seeds.dataset,
        policy_dir=lambda wildcards, input: str(Path(input.checkpoint).parent),
    threads: CFG.ppo.threads
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/rwm.yaml"
    shell:
        "RWM_THREADS={threads} rwm collect-ppo --policy {params.policy_dir} --kind {wildcards.kind}"
        " --rows {params.rows} --medium-fraction {params.medium_fraction} --seed {params.seed}"
        " --out {output.csv_dir} --params {params.section:q} --quiet > {log} 2>&1"


rule evaluate_ppo:
    input:
        actor=rules.train_ppo.output.actor,
        final=rules.train_ppo.output.checkpoint,
        # how well the world model predicts the PPO policy's own simulator trajectories
        model=f"{RESULTS}/dynamics/model.pt",
    output:
        report=f"{PPO_DIR}/sim_eval.json",
        manifest=manifest_of(f"{PPO_DIR}/sim_eval.json"),
    log:
        f"{RESULTS}/logs/evaluate_ppo.log",
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
