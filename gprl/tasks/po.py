"""Task ``train_po``: iterative preference optimisation of a policy on reward-model-labelled samples
(GPO and SPPO as in SPEC 2; DPO and SimPO through TRL on the same kind of pairs).

    python run.py +experiment=alpaca_gpo -m k=2,4,6,8

Each iteration t = 1..T takes a fresh part of the prompts, samples K answers per prompt from pi_t (the policy
after iteration t-1), scores every pair with the reward model (O(K) embeddings, then the K x K matrix), labels
chosen = argmax / rejected = argmin of the mean row score with the GPO and SPPO targets
(``gprl.losses.policy.iterative_targets``), and trains one epoch referenced on pi_t. Iterations are resumable:
a finished ``iter<t>/policy`` is never retrained. The run ends with the held-out evaluation
(``gprl.policy_eval``) against the starting policy.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from gprl import GprlError
from gprl.config import RunConfig
from gprl.distributed import is_main
from gprl.provenance import git_commit, versions
from gprl.rundir import config_fingerprint
from gprl.tasks import TASKS
from gprl.tasks.common import data_context, wandb_run, write_json, write_results
from gprl.tasks.policy import (benchmark_metrics, finished, initial_policy, load_policy, peft_config, policy_benchmarks,
                               prepare, save_policy)

TARGET_KEYS = {"gpo": ("gpo_w", "gpo_l"), "sppo": ("sppo_w", "sppo_l")}


def label_pairs(rm, prompts: list[str], samples: list[list[str]], loss: str) -> list[dict]:
    """One (chosen, rejected) pair per prompt from its K samples and the reward model's score matrix."""
    from gprl.losses.policy import iterative_targets
    from gprl.models.score import score_matrix

    flat_p = [p for p, s in zip(prompts, samples) for _ in s]
    v, lam = rm.embed(flat_p, [a for s in samples for a in s])
    rows, at = [], 0
    for p, s in zip(prompts, samples):
        K = len(s)
        S = score_matrix(v[at:at + K], None if lam is None else lam[at])
        at += K
        if not bool(S.isfinite().all()):
            raise GprlError(f"the reward model returned non-finite scores for prompt {p[:60]!r}")
        t = iterative_targets(S, rm.spec.tau)
        if s[t["chosen"]] == s[t["rejected"]]:
            continue  # identical answers carry no preference
        tw, tl = TARGET_KEYS.get(loss, (None, None))
        rows.append({"prompt": p, "chosen": s[t["chosen"]], "rejected": s[t["rejected"]],
                     "target_chosen": t[tw] if tw else 0.0, "target_rejected": t[tl] if tl else 0.0,
                     "gpo_w": t["gpo_w"], "gpo_l": t["gpo_l"], "sppo_w": t["sppo_w"], "sppo_l": t["sppo_l"]})
    return rows


def _chat(r: dict) -> dict:
    return {"prompt": [{"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
            "target_chosen": r["target_chosen"], "target_rejected": r["target_rejected"]}


def run_iteration(cfg: RunConfig, t: int, current: str, rm, prompts: list[str], it: Path) -> dict:
    """Iteration ``t``: sample from ``current`` (pi_t), label with ``rm``, train one epoch, save ``it/policy``."""
    import datasets
    from transformers import set_seed

    from gprl.distributed import deepspeed_file
    from gprl.models.generation import sample
    from gprl.trainers.callbacks import JsonlLogger
    from gprl.trainers.po import PO_TRAINERS, POSettings

    po = cfg.po
    it.mkdir(parents=True, exist_ok=True)
    set_seed(cfg.seed + t)
    model, tok = load_policy(current, cfg.policy.dtype)
    n = po.prompts_per_iteration
    part = prompts[(t - 1) * n:t * n]  # disjoint parts (train_po checked there are enough)
    # vLLM on GPU nodes (po.use_vllm), transformers here; the prompts are split over the job's processes
    loaded = {} if po.use_vllm else {"model": model, "tok": tok}  # transformers samples from the loaded policy
    samples = sample("vllm" if po.use_vllm else "transformers", current, part, po.num_samples,
                     po.max_completion_length, po.temperature, po.top_p, seed=cfg.seed * 1000 + t,
                     dtype=cfg.policy.dtype, desc=f"iteration {t}: sampling", **loaded)
    rows = label_pairs(rm, part, samples, po.loss)
    if not rows:
        raise GprlError(f"iteration {t}: every prompt's samples were identical; nothing to learn from")
    if is_main():
        with open(it / "pairs.jsonl", "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    report = "wandb" if cfg.logger.wandb and cfg.logger.mode != "disabled" else "none"
    settings = POSettings(loss=po.loss, output_dir=str(it / "checkpoints"), beta=po.beta, lr=po.lr,
                          gamma_beta_ratio=po.gamma_beta_ratio, clamp=po.clamp, optim=po.optim,
                          batch_size=po.batch_size, per_device_batch_size=po.per_device_batch_size,
                          deepspeed=deepspeed_file(po.deepspeed, cfg.paths.root), epochs=po.epochs,
                          warmup_ratio=po.warmup_ratio,
                          scheduler=po.scheduler, max_length=512, seed=cfg.seed + t, report_to=report,
                          bf16=cfg.policy.dtype == "bfloat16", peft_config=peft_config(cfg))
    trainer = PO_TRAINERS.get(po.loss)(model, tok, datasets.Dataset.from_list([_chat(r) for r in rows]), settings,
                                       callbacks=[JsonlLogger(it / "metrics.jsonl")])
    out = trainer.train()
    save_policy(trainer, tok, it / "policy")  # LoRA merged: the next iteration's pi_t is this whole model
    summary = {"iteration": t, "pairs": len(rows), "train_loss": out.training_loss,
               "mean_target_chosen": sum(r["target_chosen"] for r in rows) / len(rows),
               "mean_target_rejected": sum(r["target_rejected"] for r in rows) / len(rows)}
    if is_main():
        write_json(it / "summary.json", summary)
    print(f"[gprl] iteration {t}: {len(rows)} pairs, train loss {out.training_loss:.4g}")
    return summary


@TASKS.register("train_po")
def train_po(cfg: RunConfig, run_dir: Path) -> dict:
    from gprl.data import load_source
    from gprl.policy_eval import evaluate_policy

    if (done := finished(run_dir)) is not None:
        return done
    po, t0, commit = cfg.po, time.time(), git_commit()  # the code this run starts with
    prompts = [r["prompt"] for r in load_source(po.prompts, data_context(cfg))]
    need = po.iterations * po.prompts_per_iteration
    if need > len(prompts):  # iterations take disjoint parts (SPPO); never wrap around silently
        raise GprlError(f"po needs {need} distinct prompts ({po.iterations} iterations x {po.prompts_per_iteration}) "
                        f"but {po.prompts.source}:{po.prompts.split} has {len(prompts)}; lower po.prompts_per_iteration")
    random.Random(cfg.seed).shuffle(prompts)
    rm_dir, rm = prepare(cfg)
    start = current = initial_policy(cfg)
    print(f"[gprl] {po.loss} from {cfg.policy.backbone}: {po.iterations} iteration(s) of {po.prompts_per_iteration} "
          f"prompts (of {len(prompts)} in {po.prompts.source}:{po.prompts.split}) x K={po.num_samples} samples, reward model {rm_dir} (k={rm.spec.k})")
    history = []
    with wandb_run(cfg, run_dir) as run:
        for t in range(1, po.iterations + 1):
            it = run_dir / f"iter{t}"
            if (it / "policy" / "config.json").exists():
                print(f"[gprl] iteration {t}: finished earlier ({it / 'policy'})")
                history.append(json.loads((it / "summary.json").read_text()) if is_main() else {})
            else:
                history.append(run_iteration(cfg, t, current, rm, prompts, it))
            current = str(it / "policy")
        if not is_main():  # evaluation and results: rank 0 alone
            return {}
        train_s = time.time() - t0
        ev = evaluate_policy(cfg, start, current, run_dir) if cfg.policy_eval.enabled else None
        # every iteration's policy, as the GPM paper's Tables 3-11 report iterations 1-3
        bench = {f"iter{t}": policy_benchmarks(cfg, run_dir / f"iter{t}", str(run_dir / f"iter{t}" / "policy"))
                 for t in range(1, po.iterations + 1)} if cfg.policy_eval.benchmarks else {}
        res = {"task": "train_po", "loss": po.loss, "k": rm.spec.k, "iterations": history, "policy": current,
               "initial_policy": start, "reward_model": str(rm_dir), "seed": cfg.seed, "policy_eval": ev,
               "benchmarks": bench, "metrics": {k: v for it, b in bench.items() for k, v in benchmark_metrics(b, f"{it}/").items()},
               "train_minutes": round(train_s / 60, 1), "total_minutes": round((time.time() - t0) / 60, 1),
               "git_commit": commit, "versions": versions(), "config_fingerprint": config_fingerprint(cfg)}
        write_results(results := run_dir / "results.json", res, run)
    print(f"[gprl] wrote {results}")
    return res
