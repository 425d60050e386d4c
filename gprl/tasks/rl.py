"""Task ``train_rl``: online RL of a policy against a general preference reward model (GPRL or GRPO).

    python run.py +experiment=alpaca_gprl -m k=2,4,6,8

The reward model is ``reward_model.path`` or, if unset, trained once with this run's ``k``, model, data, algo
and seed and cached (``cached_reward_model``; so a sweep over k sweeps the reward model's embedding dimension,
and runs that differ only in RL settings share one). The policy is ``policy.backbone`` (any causal LM, or the
laptop policies ``tiny-sft:HxL`` / ``tiny:HxL``). Prompts: ``rl.prompts``, given to TRL as chats. Resume as
everywhere: re-running the command continues from ``<run_dir>/policy_checkpoints``. The run ends with the
held-out evaluation against the starting policy (``gprl.policy_eval``).
"""

from __future__ import annotations

import json
from pathlib import Path

from gprl.config import RunConfig
from gprl.data import load_source
from gprl.provenance import git_commit, versions
from gprl.rundir import config_fingerprint, last_good_checkpoint, trim_log
from gprl.tasks import TASKS
from gprl.tasks.common import data_context, wandb_run, write_json, write_results


def grpo_kwargs(cfg: RunConfig, run_dir: Path, report_to: str, world: int | None = None) -> dict:
    """TRL GRPO settings from ``cfg.rl``. ``rl.prompts_per_step x rl.num_generations`` is the global rollout batch
    and a ``1/minibatches`` slice of it the global batch of one optimiser step, whatever the number of processes
    (``world``, default: this launch's): each process takes ``1/world`` of every slice."""
    import torch

    from gprl import distributed

    r = cfg.rl
    world = distributed.world_size() if world is None else world
    # One rollout batch (prompts_per_step x G completions) is generated, scored and given advantages at once, then
    # split into `minibatches` slices with one optimiser step each (TRL's steps_per_generation): from the second
    # slice on the policy has moved, so TRL computes the old log-probs and its clip range binds (SPEC 3.3).
    mb = r.minibatches
    per_device = distributed.per_device(r.prompts_per_step * r.num_generations // mb, world, "the optimiser "
                                        "step's batch rl.prompts_per_step x rl.num_generations / rl.minibatches")
    return dict(
        output_dir=str(run_dir / "policy_checkpoints"),
        per_device_train_batch_size=per_device, steps_per_generation=mb,
        num_generations=r.num_generations, max_completion_length=r.max_completion_length, temperature=r.temperature,
        max_steps=r.steps * mb, learning_rate=r.lr, lr_scheduler_type="constant_with_warmup",
        warmup_steps=min(10, max(1, r.steps * mb // 10)), weight_decay=0.0, max_grad_norm=1.0, beta=r.beta,
        epsilon=r.epsilon, loss_type="grpo", bf16=cfg.policy.dtype == "bfloat16", gradient_checkpointing=False,
        report_to=report_to, logging_steps=1, save_steps=r.save_steps * mb, seed=cfg.seed,
        use_cpu=not torch.cuda.is_available(), use_vllm=r.use_vllm,
        deepspeed=distributed.deepspeed_file(r.deepspeed, cfg.paths.root),
    )


def build_trainer(cfg: RunConfig, run_dir: Path, rm, policy, tok, prompts: list[dict]):
    """TRL GRPO settings from ``cfg.rl``, our estimator, monitor and reward function on top."""
    import datasets
    from trl import GRPOConfig

    from gprl.advantages import GPRLConfig, MonitorConfig
    from gprl.distributed import check_devices
    from gprl.tasks.policy import peft_config
    from gprl.trainers.callbacks import JsonlLogger
    from gprl.trainers.gprl_trainer import GPRLTrainer

    r = cfg.rl
    report = "wandb" if cfg.logger.wandb and cfg.logger.mode != "disabled" else "none"
    args = GRPOConfig(**grpo_kwargs(cfg, run_dir, report))
    check_devices(args)
    return GPRLTrainer(
        model=policy, args=args, train_dataset=datasets.Dataset.from_list(prompts), processing_class=tok,
        reward_model=rm, estimator=r.estimator,
        estimator_cfg=GPRLConfig(kappa=r.kappa, uniform_eigenvalues=r.uniform_eigenvalues,
                                 normalize_per_axis=r.normalize_per_axis),
        monitor_cfg=MonitorConfig(eps0=r.epsilon, beta0=r.beta) if r.monitor else None,
        callbacks=[JsonlLogger(run_dir / "metrics.jsonl")], peft_config=peft_config(cfg),
    )


@TASKS.register("train_rl")
def train_rl(cfg: RunConfig, run_dir: Path) -> dict:
    import time

    from transformers import set_seed

    from gprl.distributed import is_main
    from gprl.policy_eval import evaluate_policy
    from gprl.tasks.policy import (benchmark_metrics, finished, initial_policy, load_policy, policy_benchmarks, prepare,
                                   save_policy)

    if (done := finished(run_dir)) is not None:
        return done
    t0, commit = time.time(), git_commit()  # the code this run starts with
    rm_dir, rm = prepare(cfg)
    prompts = [{"prompt": [{"role": "user", "content": r["prompt"]}]} for r in load_source(cfg.rl.prompts, data_context(cfg))]
    set_seed(cfg.seed)
    policy_path = initial_policy(cfg)
    policy, tok = load_policy(policy_path, cfg.policy.dtype)
    r, final = cfg.rl, run_dir / "policy"
    with wandb_run(cfg, run_dir) as run:
        trainer = build_trainer(cfg, run_dir, rm, policy, tok, prompts)
        if not (final / "config.json").exists():  # a finished policy is never retrained
            last = last_good_checkpoint(run_dir / "policy_checkpoints")  # a partial one (killed saving) is skipped
            trim_log(run_dir / "metrics.jsonl", last)
            print(f"[gprl] {r.estimator} on {len(prompts)} prompts, policy {cfg.policy.backbone}, reward model "
                  f"{rm_dir} (k={rm.spec.k}), {r.steps} rollout batches of {r.prompts_per_step} prompts x "
                  f"{r.num_generations}, {r.minibatches} optimiser steps each"
                  + (f"; resuming from {last}" if last else ""))
            trainer.train(resume_from_checkpoint=last)
            save_policy(trainer, tok, final)
            if is_main():
                write_json(run_dir / "train_log.json", {"log_history": trainer.state.log_history, "monitor_events":
                                                        trainer.monitor.events if trainer.monitor is not None else []})
        if not is_main():  # evaluation and results: rank 0 alone
            return {}
        train_s = time.time() - t0
        ev = evaluate_policy(cfg, policy_path, str(final), run_dir) if cfg.policy_eval.enabled else None
        bench = policy_benchmarks(cfg, run_dir, str(final))
        saved = json.loads((run_dir / "train_log.json").read_text())
        log, monitor = saved["log_history"], saved["monitor_events"]
        rewards = [h["reward"] for h in log if "reward" in h]
        clipped = [h["clip_ratio/region_mean"] for h in log if "clip_ratio/region_mean" in h]
        opt_steps = max((h.get("step", 0) for h in log), default=0)
        res = {"task": "train_rl", "estimator": r.estimator, "k": rm.spec.k, "steps": opt_steps // r.minibatches,
               "optimizer_steps": opt_steps, "minibatches": r.minibatches,
               "clip_fraction_mean": sum(clipped) / len(clipped) if clipped else None,
               "reward_first": rewards[0] if rewards else None, "reward_last": rewards[-1] if rewards else None,
               "monitor_events": monitor, "reward_model": str(rm_dir), "policy": cfg.policy.backbone, "seed": cfg.seed,
               "policy_eval": ev, "benchmarks": bench, "metrics": benchmark_metrics(bench), "train_minutes": round(train_s / 60, 1),
               "total_minutes": round((time.time() - t0) / 60, 1), "git_commit": commit, "versions": versions(),
               "config_fingerprint": config_fingerprint(cfg)}
        write_results(results := run_dir / "results.json", res, run)
    print(f"[gprl] reward (the training reward model's score) {res['reward_first']} -> {res['reward_last']} over "
          f"{res['steps']} rollout batches; clipped fraction of tokens {res['clip_fraction_mean']}; monitor corrections: {len(res['monitor_events'])}; wrote {results}")
    return res
