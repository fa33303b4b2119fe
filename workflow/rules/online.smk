# Online RWM stages: train_online (MBPO-PPO from the pretrained world model, the simulator in the loop) ->
# evaluate_online (scored in the simulator like the other policies). Its figure (RWM's model error and imagined vs
# true reward during policy optimisation) is plot_online in figures.smk.

ONLINE_DIR = f"{RESULTS}/online"


rule train_online:
    input:
        model=f"{RESULTS}/dynamics/model.pt",
        meta=f"{RESULTS}/data/dataset.json",
        init=CFG.online.init_policy or [],  # e.g. results/ppo/policy_checkpoint.pt: train_ppo runs first
    output:
        actor=f"{ONLINE_DIR}/policy.pt",
        onnx=f"{ONLINE_DIR}/policy.onnx",
        checkpoint=f"{ONLINE_DIR}/policy_checkpoint.pt",
        metrics=f"{ONLINE_DIR}/metrics.csv",
        model=f"{ONLINE_DIR}/model.pt",
        manifest=f"{ONLINE_DIR}/manifest.json",
    log:
        f"{RESULTS}/logs/train_online.log",
    params:
        section=section_json(CFG.online),
        tracking=section_json(CFG.tracking),
        seed=CFG.seeds.online,
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
        "RWM_THREADS={threads} rwm train-online --model {input.model} --dataset {params.dataset}"
        " --out {params.out_dir} --resume --seed {params.seed} --device {params.device}"
        " --params {params.section:q} --tracking {params.tracking:q} > {log} 2>&1"


rule evaluate_online:
    input:
        actor=rules.train_online.output.actor,
        final=rules.train_online.output.checkpoint,
        model=rules.train_online.output.model,  # the refined model, on the online policy's own trajectories
    output:
        report=f"{ONLINE_DIR}/sim_eval.json",
        manifest=manifest_of(f"{ONLINE_DIR}/sim_eval.json"),
    log:
        f"{RESULTS}/logs/evaluate_online.log",
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
