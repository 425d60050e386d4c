"""Every algorithm in the preference world, at equal compute, measured against the gold oracle.

    make reproduce-world-v1              # SCALE=full: results/world/v1/ (table, curves, reward-model accuracy, cycles)
    make reproduce-world-v1 SCALE=smoke  # minutes; writes outputs/world-smoke/

Pipeline: the SFT'd starting policy (``gprl.world.models``); proxy reward models (BT k=1, GPM k=2..8) on a tiny
BERT, trained on a limited budget of gold-labelled pairs of the starting policy's own samples, with their
held-out gold accuracy; then each arm (``ARMS``) for each seed on the same prompts, samples per prompt and
number of samples. Online arms run on ``GPRLTrainer`` (TRL's GRPOTrainer) with the gold aspects logged per step
as zero-weight reward functions; iterative arms run ``gprl.trainers.po``. Every arm is evaluated the same way
at regular points on held-out prompts: gold win rate against the starting policy's answer, each gold aspect,
the proxy's win probability against the same answer, length, and a sequence-level KL estimate to the start.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from gprl.world.evaluate import Evaluator, GoldAspect, GoldWin, verifier
from gprl.world.grammar import parse_prompt, sample_prompt, world_prompts
from gprl.world.oracle import ASPECTS, gold_pairs, measure_cycles


@dataclass(frozen=True)
class Scale:
    rm_prompts: int  # prompts whose starting-policy samples are gold-labelled for the proxy reward models
    rm_pairs: int  # the labelling budget (pairs)
    rm_heldout: int  # held-out gold pairs (other prompts) for the proxies' accuracy
    rm_epochs: float
    steps: int  # optimiser steps of every online arm (iterative arms get the same number of samples)
    prompts_per_step: int
    generations: int  # G (online) = K (iterative)
    iterations: int  # iterative arms
    eval_prompts: int
    eval_points: int  # evaluations per run (online: every steps/eval_points steps; iterative: each iteration)
    seeds: tuple[int, ...]
    lr: float = 5e-4
    max_tokens: int = 28


SCALES = {
    "smoke": Scale(rm_prompts=120, rm_pairs=400, rm_heldout=150, rm_epochs=2, steps=4, prompts_per_step=4,
                   generations=4, iterations=2, eval_prompts=40, eval_points=2, seeds=(0,)),
    "full": Scale(rm_prompts=800, rm_pairs=3000, rm_heldout=600, rm_epochs=4, steps=80, prompts_per_step=8,
                  generations=8, iterations=4, eval_prompts=150, eval_points=5, seeds=(0, 1)),
}

ARMS: dict[str, dict] = {
    "grpo_bt": {"kind": "rl", "k": 1, "estimator": "grpo", "monitor": False},
    "gprl": {"kind": "rl", "k": 4, "estimator": "gprl", "monitor": True},
    "gprl_no_axis_norm": {"kind": "rl", "k": 4, "estimator": "gprl", "monitor": True, "normalize_per_axis": False},
    "gprl_uniform_eig": {"kind": "rl", "k": 4, "estimator": "gprl", "monitor": True, "uniform_eigenvalues": True},
    "gprl_no_monitor": {"kind": "rl", "k": 4, "estimator": "gprl", "monitor": False},
    "gprl_verifier": {"kind": "rl", "k": 4, "estimator": "gprl", "monitor": True, "verifier": True},
    "gpo_gpm": {"kind": "po", "k": 4, "loss": "gpo"},
    "gpo_bt": {"kind": "po", "k": 1, "loss": "gpo"},
    "sppo_gpm": {"kind": "po", "k": 4, "loss": "sppo"},
    "sppo_bt": {"kind": "po", "k": 1, "loss": "sppo"},
    "dpo_bt": {"kind": "po", "k": 1, "loss": "dpo"},
    "simpo_bt": {"kind": "po", "k": 1, "loss": "simpo"},
}
PO_BETA = {"gpo": 0.01, "sppo": 0.01, "dpo": 0.1, "simpo": 2.5}  # world settings (SPEC's 0.001 is for 8B models)
RM_DIMS = (1, 2, 4, 6, 8)


# ---- proxy reward models ----------------------------------------------------------------------------------

def train_proxies(work: Path, cache: Path, policy: Path, scale: Scale, shared_data: str) -> dict:
    """Proxy reward models for every k in ``RM_DIMS``; returns ``{k: {"path", "heldout_gold_accuracy"}}``."""
    from gprl.evaluate import score_pairs, summarise
    from gprl.models import GeneralPreferenceModel
    from gprl.models.generation import generate
    from gprl.tasks.policy import load_policy
    from gprl.world.models import rm_backbone

    model, tok = load_policy(str(policy))
    out_file = work / "proxies.json"
    if out_file.exists():
        return {int(k): v for k, v in json.loads(out_file.read_text()).items()}
    prompts = world_prompts(scale.rm_prompts + scale.rm_heldout // 2, seed=101)
    samples = generate(model, tok, prompts, 4, scale.max_tokens, temperature=1.0, top_p=1.0, seed=101,
                       desc="labelling samples")
    n = scale.rm_prompts
    train_pairs = gold_pairs(prompts[:n], samples[:n], scale.rm_pairs, 0)
    held = gold_pairs(prompts[n:], samples[n:], scale.rm_heldout, 1)
    work.mkdir(parents=True, exist_ok=True)
    f = work / "proxy_pairs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in train_pairs))
    enc = rm_backbone(cache)
    res = {}
    for k in RM_DIMS:
        d = train_rm(work / f"rm_k{k}", enc, f, k, 0, scale.rm_epochs, shared_data)
        rm = GeneralPreferenceModel.from_pretrained(d)
        acc = summarise("heldout", held, score_pairs(rm, held, desc=f"proxy k={k}"))
        res[k] = {"path": str(d), "heldout_gold_accuracy": acc["accuracy"], "n": acc["n"],
                  "per_family": {s: v["accuracy"] for s, v in acc.get("per_subset", {}).items()},
                  "train_pairs": len(train_pairs)}
    out_file.write_text(json.dumps(res, indent=2) + "\n")
    return res


def train_rm(out: Path, backbone: Path, pairs: Path, k: int, seed: int, epochs: float, shared_data: str,
             max_length: int = 64) -> Path:
    """One proxy on the tiny BERT by the project's ordinary reward-model trainer (``gprl.tasks.reward_model``)."""
    from gprl.config import AlgoConfig, DataConfig, LoggerConfig, ModelConfig, PathsConfig, RunConfig, SourceConfig
    from gprl.tasks.reward_model import train

    cfg = RunConfig(task="train_rm", name="world_rm", k=k, seed=seed,
                    model=ModelConfig(name="world-bert", backbone=str(backbone), max_length=max_length),
                    data=DataConfig(train=SourceConfig(source="jsonl", path=str(pairs))),
                    algo=AlgoConfig(lr=1e-3, epochs=epochs, batch_size=32, warmup_ratio=0.05,
                                    save_steps=10**6, logging_steps=50),
                    logger=LoggerConfig(wandb=False), paths=PathsConfig(root=".", shared_data=shared_data))
    return train(cfg, out)


# ---- arms -------------------------------------------------------------------------------------------------

def run_rl(arm: dict, policy: Path, rm, scale: Scale, seed: int, out: Path, evaluator: Evaluator,
           prompts: list[str] | None = None) -> dict:
    """One online arm. ``prompts``: the training prompts (default: the first world's, drawn from the whole
    grammar); ``arm["lr"]`` overrides the scale's learning rate."""
    import datasets
    from transformers import TrainerCallback, set_seed
    from trl import GRPOConfig

    from gprl.advantages import GPRLConfig, MonitorConfig
    from gprl.models.generation import generate
    from gprl.tasks.policy import load_policy
    from gprl.trainers.gprl_trainer import GPRLTrainer

    set_seed(seed)
    model, tok = load_policy(str(policy))
    n_prompts = scale.steps * scale.prompts_per_step // 2  # each generation batch serves 2 updates
    prompts = prompts or world_prompts(n_prompts, seed=1000 + seed)
    start = [a[0] for a in generate(model, tok, prompts, 1, scale.max_tokens, 1.0, 1.0, seed=3, desc="start answers")]
    ds = datasets.Dataset.from_list([{"prompt": [{"role": "user", "content": p}], "start_answer": s}
                                     for p, s in zip(prompts, start)])
    args = GRPOConfig(
        output_dir=str(out / "ckpt"), per_device_train_batch_size=scale.prompts_per_step * scale.generations,
        num_generations=scale.generations, max_completion_length=scale.max_tokens, temperature=1.0, top_p=1.0,
        max_steps=scale.steps, num_iterations=2, learning_rate=arm.get("lr", scale.lr), lr_scheduler_type="constant_with_warmup",
        warmup_steps=min(10, max(1, scale.steps // 10)), beta=0.04, epsilon=0.2, loss_type="grpo", bf16=False,
        gradient_checkpointing=False, report_to="none", logging_steps=1, save_strategy="no", seed=seed,
        use_cpu=True, shuffle_dataset=False)
    evals: list[dict] = []
    every = max(1, scale.steps // scale.eval_points)

    class Eval(TrainerCallback):
        def on_step_end(self, a, state, control, model=None, **kw):
            if state.global_step % every == 0 or state.global_step == state.max_steps:
                evals.append(evaluator(model, state.global_step))

    trainer = GPRLTrainer(
        model=model, args=args, train_dataset=ds, processing_class=tok, reward_model=rm,
        estimator=arm["estimator"], estimator_cfg=GPRLConfig(
            uniform_eigenvalues=arm.get("uniform_eigenvalues", False),
            normalize_per_axis=arm.get("normalize_per_axis", True)),
        monitor_cfg=MonitorConfig(eps0=0.2, beta0=0.04, cooldown=10, calm_steps=30) if arm["monitor"] else None,
        verifier=verifier if arm.get("verifier") else None,
        tracked=(GoldWin(), *(GoldAspect(a) for a in ASPECTS)), callbacks=[Eval()])
    evals.append(evaluator(model, 0))
    trainer.train()
    keys = ("step", "reward", "kl", "completions/mean_length", *(f"rewards/gold_{a}/mean" for a in ("win", *ASPECTS)))
    rollouts = [{k: h[k] for k in keys if k in h} | {k: v for k, v in h.items() if k.startswith("gprl/")}
                for h in trainer.state.log_history if "reward" in h]
    return {"evals": evals, "rollouts": rollouts,
            "monitor_events": trainer.monitor.events if trainer.monitor is not None else []}


def run_po(arm: dict, policy: Path, rm, scale: Scale, seed: int, out: Path, evaluator: Evaluator,
           prompts: list[str] | None = None) -> dict:
    """One iterative arm (same ``prompts`` and ``arm["lr"]`` conventions as ``run_rl``)."""
    import datasets
    from transformers import set_seed

    from gprl.models.generation import generate
    from gprl.tasks.po import _chat, label_pairs
    from gprl.tasks.policy import load_policy, save_policy
    from gprl.trainers.po import PO_TRAINERS, POSettings

    set_seed(seed)
    total = scale.steps * scale.prompts_per_step // 2  # the online arms' number of prompts (x the same G samples)
    prompts = prompts or world_prompts(total, seed=1000 + seed)
    per = total // scale.iterations
    current, evals = str(policy), []
    model, tok = load_policy(current)
    evals.append(evaluator(model, 0))
    for t in range(1, scale.iterations + 1):
        model, tok = load_policy(current)
        part = prompts[(t - 1) * per:t * per]
        samples = generate(model, tok, part, scale.generations, scale.max_tokens, 1.0, 1.0, seed=seed * 100 + t,
                           desc=f"iteration {t}")
        rows = label_pairs(rm, part, samples, arm["loss"])
        s = POSettings(loss=arm["loss"], output_dir=str(out / f"iter{t}"), beta=PO_BETA[arm["loss"]], lr=arm.get("lr", scale.lr),
                       optim="adamw_torch", batch_size=scale.prompts_per_step, epochs=2.0, warmup_ratio=0.1,
                       scheduler="linear", max_length=96, seed=seed)
        trainer = PO_TRAINERS.get(arm["loss"])(model, tok, datasets.Dataset.from_list([_chat(r) for r in rows]), s)
        trainer.train()
        d = out / f"iter{t}" / "policy"
        save_policy(trainer, tok, d)
        current = str(d)
        evals.append(evaluator(trainer.model, round(t * scale.steps / scale.iterations)))
    return {"evals": evals, "rollouts": [], "monitor_events": []}


# ---- the whole experiment ---------------------------------------------------------------------------------

def reproduce(scale_name: str, out: Path, cache: Path, arms: list[str], shared_data: str = "../shared/data",
              lr: float | None = None, command: str | None = None) -> Path:
    """Run ``arms`` at ``scale_name`` (``lr`` overrides the scale's learning rate: a separate set of runs, the
    same starting policy and proxies) and write the report to ``out``."""
    from gprl.models import GeneralPreferenceModel
    from gprl.provenance import git_commit
    from gprl.tasks.policy import load_policy
    from gprl.world.models import starting_policy

    scale = SCALES[scale_name] if lr is None else replace(SCALES[scale_name], lr=lr)
    tag = "" if lr is None else f"-lr{lr:g}"
    out.mkdir(parents=True, exist_ok=True)
    work = Path("outputs") / "world-work" / scale_name  # models and checkpoints; results/ gets the report only
    t0 = time.time()
    policy = starting_policy(cache)
    proxies = train_proxies(work / "proxies", cache, policy, scale, shared_data)
    start_model, tok = load_policy(str(policy))
    runs = []
    for name in arms:
        arm = ARMS[name]
        rm = GeneralPreferenceModel.from_pretrained(proxies[arm["k"]]["path"])
        for seed in scale.seeds:
            f = work / f"runs{tag}" / f"{name}-s{seed}.json"
            if f.exists():
                runs.append(json.loads(f.read_text()))
                continue
            print(f"[gprl] world: {name} (k={arm['k']}), seed {seed}")
            t1 = time.time()
            ev = Evaluator(start_model, tok, rm, scale, seed)
            r = (run_rl if arm["kind"] == "rl" else run_po)(arm, policy, rm, scale, seed, work / f"{name}{tag}" / f"s{seed}", ev)
            r.update(arm=name, seed=seed, k=arm["k"], minutes=round((time.time() - t1) / 60, 2))
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(r) + "\n")
            runs.append(r)
    cycles = {"grammar_generator": measure_cycles(300, 6), "starting_policy": policy_cycles(start_model, tok, scale)}
    meta = {"scale": asdict(scale), "scale_name": scale_name, "arms": arms, "minutes": round((time.time() - t0) / 60, 1),
            "git_commit": git_commit(), "date": time.strftime("%Y-%m-%d"), "command": command,
            "starting_policy": json.loads((policy / "sft_report.json").read_text())}
    from gprl.world.report import write_report

    write_report(out, runs, proxies, cycles, meta)
    return out


def policy_cycles(model, tok, scale: Scale) -> dict:
    """Cycle rates among the starting policy's own samples (6 per prompt)."""
    from gprl.models.generation import generate
    from gprl.world.grammar import FAMILIES
    from gprl.world.oracle import cycle_rate

    res = {}
    for fam in FAMILIES:
        rng = random.Random(5)
        prompts = [sample_prompt(rng, fam).text for _ in range(100)]
        samples = generate(model, tok, prompts, 6, scale.max_tokens, 1.0, 1.0, seed=5, desc=f"cycles {fam}")
        c = [cycle_rate(parse_prompt(p), s) for p, s in zip(prompts, samples)]
        strict = sum(x[1] for x in c)
        res[fam] = {"cyclic_triples": sum(x[0] for x in c) / max(strict, 1),
                    "prompts_with_a_cycle": sum(x[0] > 0 for x in c) / len(c)}
    return res


def add_shared_data_arg(ap) -> None:
    """``--shared-data`` for the world CLIs: the shipped data, ``$GPRL_SHARED_DATA`` or ``../shared/data`` by
    default, as ``conf/paths/default.yaml``."""
    import os

    ap.add_argument("--shared-data", default=os.environ.get("GPRL_SHARED_DATA", "../shared/data"),
                    help="the shipped data (default: $GPRL_SHARED_DATA or ../shared/data, as conf/paths says)")


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Run every algorithm in the preference world (gprl.world).")
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("--out", type=Path, default=None, help="default: results/world/v1 (full) or outputs/world-smoke")
    ap.add_argument("--cache", type=Path, default=Path(".cache/gprl/world"))
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {', '.join(ARMS)}")
    ap.add_argument("--lr", type=float, default=None, help="override the scale's learning rate (separate runs)")
    add_shared_data_arg(ap)
    a = ap.parse_args(argv)
    arms = [x for x in a.arms.split(",") if x]
    unknown = [x for x in arms if x not in ARMS]
    if unknown:
        raise SystemExit(f"gprl: error: unknown arm(s) {', '.join(unknown)}; known: {', '.join(ARMS)}")
    if a.lr is not None and not a.lr > 0:
        raise SystemExit(f"gprl: error: --lr must be > 0, got {a.lr}")
    out = a.out or (Path("results/world/v1") if a.scale == "full" else Path("outputs/world-smoke"))
    if a.lr is not None and a.out is None:
        out = out / f"lr{a.lr:g}"
    import sys

    command = "python -m gprl.world.experiment " + " ".join(sys.argv[1:] if argv is None else argv)
    print(reproduce(a.scale, out, a.cache, arms, a.shared_data, lr=a.lr, command=command.strip()))


if __name__ == "__main__":
    main()
