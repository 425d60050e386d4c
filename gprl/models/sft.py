"""The laptop policy: a small Llama-architecture chat model with its own BPE tokenizer, SFT-trained offline on
shipped text with TRL's ``SFTTrainer``, cached and reused.

    make policy                      # or automatically on first use of policy=tiny_sft
    python -m gprl.models.sft        # the same; prints where the model is

Training text: every shipped model output on the **train-split** AlpacaEval instructions (the committed split;
test-split instructions are never seen) plus the chosen answers of the UltraFeedback sample's train split,
keeping answers of at most ``max_response_tokens`` so the model learns to finish within an RL completion
budget. Held-out perplexity is measured on test-split instructions' outputs. The result writes fluent-looking
chat answers that end properly but barely follow the prompt: enough to run every algorithm end to end on real
text, not enough to compare algorithms (README, "Policy side").
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gprl import GprlError

SPECIAL = {"pad": "<|pad|>", "eos": "<|end|>", "user": "<|user|>", "assistant": "<|assistant|>"}
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@dataclass(frozen=True)
class TinySFTSpec:
    """Everything that determines the built model (its hash names the cache directory)."""

    hidden: int = 256
    layers: int = 6
    heads: int = 4
    vocab: int = 8192
    max_prompt_tokens: int = 64
    max_response_tokens: int = 96
    steps: int = 360  # optimiser steps of `batch_size` demonstrations
    batch_size: int = 32
    lr: float = 1.5e-3
    seed: int = 0
    held_out: int = 300  # test-split demonstrations for perplexity

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def parse(name: str) -> TinySFTSpec:
    """``tiny-sft:HIDDENxLAYERS`` (default training) or ``tiny-sft:HIDDENxLAYERS:STEPS``."""
    parts = name.split(":")[1:]
    try:
        hidden, layers = (int(x) for x in parts[0].split("x"))
        steps = int(parts[1]) if len(parts) > 1 else TinySFTSpec.steps
    except (ValueError, IndexError):
        raise GprlError(f"policy {name!r}: expected tiny-sft:HIDDENxLAYERS[:STEPS], e.g. tiny-sft:256x6") from None
    return TinySFTSpec(hidden=hidden, layers=layers, heads=max(1, hidden // 64), steps=steps)


def demonstrations(shared_data: Path, split: str) -> list[dict]:
    from gprl.config import SourceConfig
    from gprl.data import DataContext, load_source

    ctx = DataContext(shared_data=shared_data, root=Path("."), seed=0)
    demos = load_source(SourceConfig(source="alpaca_sft", split=split), ctx)
    if split == "train":
        test_prompts = {d["prompt"] for d in load_source(SourceConfig(source="alpaca_prompts", split="test"), ctx)}
        uf = load_source(SourceConfig(source="ultrafeedback", split="train"), ctx)
        demos += [{"prompt": r["prompt"], "response": r["chosen"]} for r in uf if r["prompt"] not in test_prompts]
    return demos


def train_tokenizer(texts: list[str], vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=list(SPECIAL.values()), initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token=SPECIAL["pad"], eos_token=SPECIAL["eos"],
                                  model_input_names=["input_ids", "attention_mask"])
    tok.chat_template = CHAT_TEMPLATE
    return tok


def _fits(tok, spec: TinySFTSpec, demos: list[dict]) -> list[dict]:
    p = tok([d["prompt"] for d in demos], add_special_tokens=False)["input_ids"]
    r = tok([d["response"] for d in demos], add_special_tokens=False)["input_ids"]
    return [d for d, a, b in zip(demos, p, r) if len(a) <= spec.max_prompt_tokens and len(b) < spec.max_response_tokens]


def _chat(d: dict) -> dict:
    return {"prompt": [{"role": "user", "content": d["prompt"]}],
            "completion": [{"role": "assistant", "content": d["response"]}]}


def build(spec: TinySFTSpec, directory: Path, shared_data: Path) -> Path:
    """Train the tokenizer on the shipped text, then the model; save both and ``sft_report.json``."""
    train = demonstrations(shared_data, "train")
    tok = train_tokenizer([d["prompt"] for d in train] + [d["response"] for d in train], spec.vocab)
    train = _fits(tok, spec, train)
    held = _fits(tok, spec, demonstrations(shared_data, "test"))
    held = random.Random(spec.seed).sample(held, min(spec.held_out, len(held)))
    return sft_train(spec, tok, train, held, directory,
                     what="train-split AlpacaEval outputs + UltraFeedback chosen, BPE")


def sft_train(spec: TinySFTSpec, tok, train: list[dict], held: list[dict], directory: Path, what: str = "") -> Path:
    """SFT a fresh Llama-architecture model of ``spec``'s size on ``{"prompt", "response"}`` demonstrations with
    TRL's SFTTrainer (completion-only loss); save it, the tokenizer and ``sft_report.json`` (held-out
    perplexity, samples) to ``directory``, which appears whole or not at all. Resumable."""
    import shutil

    import datasets
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig, SFTTrainer

    t0 = time.time()
    train = list(train)
    random.Random(spec.seed).shuffle(train)
    torch.manual_seed(spec.seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=spec.hidden, num_hidden_layers=spec.layers,
                      num_attention_heads=spec.heads, num_key_value_heads=spec.heads,
                      intermediate_size=int(spec.hidden * 2.6875) // 8 * 8, tie_word_embeddings=True,
                      max_position_embeddings=spec.max_prompt_tokens + spec.max_response_tokens + 16,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    model = LlamaForCausalLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[gprl] SFT of a tiny policy: {n_params / 1e6:.2f}M parameters, {len(tok)}-token vocabulary, "
          f"{len(train)} demonstrations ({what}), {spec.steps} steps")
    work = directory.with_name(directory.name + ".work")
    args = SFTConfig(
        output_dir=str(work), max_steps=spec.steps, per_device_train_batch_size=spec.batch_size,
        learning_rate=spec.lr, lr_scheduler_type="cosine", warmup_steps=0.05, weight_decay=0.01,
        max_length=spec.max_prompt_tokens + spec.max_response_tokens + 8, completion_only_loss=True,
        bf16=False, activation_checkpointing=False, logging_steps=50, save_strategy="steps", save_steps=200,
        save_total_limit=1, report_to="none", seed=spec.seed, use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(model=model, args=args, processing_class=tok,
                         train_dataset=datasets.Dataset.from_list([_chat(d) for d in train]))
    last = get_last_checkpoint(str(work)) if work.is_dir() else None
    trainer.train(resume_from_checkpoint=last)
    ppl = perplexity(model, tok, held)
    from gprl.models.generation import generate

    questions = [d["prompt"] for d in held[:4]]
    answers = generate(model, tok, questions, 1, spec.max_response_tokens, temperature=0.0, desc="samples")
    samples = [{"prompt": q, "answer": a[0]} for q, a in zip(questions, answers)]
    log = trainer.state.log_history
    losses = [h["loss"] for h in log if "loss" in h]
    report = {"spec": asdict(spec), "parameters": n_params, "demonstrations": len(train),
              "tokens_seen": next((h["num_tokens"] for h in reversed(log) if "num_tokens" in h), None),
              "train_loss_last": losses[-1] if losses else None, "held_out_perplexity": ppl,
              "held_out_examples": len(held), "minutes": round((time.time() - t0) / 60, 1), "samples": samples}
    tmp = directory.with_name(directory.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "sft_report.json").write_text(json.dumps(report, indent=2) + "\n")
    tmp.rename(directory)
    shutil.rmtree(work, ignore_errors=True)
    print(f"[gprl] tiny policy ready in {directory}: held-out perplexity {ppl:.1f}, {report['minutes']} min")
    return directory


def perplexity(model, tok, demos: list[dict], batch_size: int = 32) -> float:
    """Per-token perplexity of the responses given the prompts (completion tokens only)."""
    import torch

    model.eval()
    nll, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(demos), batch_size):
            for d in demos[s:s + batch_size]:
                p = tok.apply_chat_template([{"role": "user", "content": d["prompt"]}], add_generation_prompt=True,
                                            tokenize=True, return_dict=False)
                full = tok.apply_chat_template(_chat(d)["prompt"] + _chat(d)["completion"], tokenize=True,
                                               return_dict=False)
                ids = torch.tensor([full])
                labels = ids.clone()
                labels[0, : len(p)] = -100
                out = model(input_ids=ids, labels=labels)
                k = int((labels[0, 1:] != -100).sum())
                nll, n = nll + out.loss.item() * k, n + k
    return math.exp(nll / max(n, 1))


def resolve(name: str, cache: Path, shared_data: Path) -> str:
    """The cached model for ``tiny-sft:...``, built first if missing (under a lock, so parallel runs wait)."""
    import fcntl

    spec = parse(name)
    d = Path(cache) / f"tiny-sft-{spec.hidden}x{spec.layers}-{spec.steps}-{spec.key()}"
    if (d / "config.json").exists():
        return str(d)
    d.parent.mkdir(parents=True, exist_ok=True)
    with open(d.with_name(d.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (d / "config.json").exists():
            print(f"[gprl] {name} is not built yet: training it once into {d} (about 15-20 min on 2 CPU cores "
                  f"for the default; `make policy` does the same ahead of time)")
            build(spec, d, shared_data)
    return str(d)


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default="tiny-sft:256x6", help="tiny-sft:HIDDENxLAYERS[:STEPS]")
    ap.add_argument("--cache", default=".cache/gprl")
    ap.add_argument("--shared-data", default="../shared/data")
    a = ap.parse_args(argv)
    try:
        path = resolve(a.policy, Path(a.cache), Path(a.shared_data).resolve())
    except GprlError as e:
        raise SystemExit(f"gprl: error: {e}") from None
    print(path)
    report = Path(path) / "sft_report.json"
    if report.exists():
        r = json.loads(report.read_text())
        print(f"{r['parameters'] / 1e6:.1f}M parameters, held-out perplexity {r['held_out_perplexity']:.0f}, "
              f"trained in {r['minutes']} min")
        for s in r["samples"]:
            print(f"  Q: {s['prompt'][:80]!r}\n  A: {s['answer'][:200]!r}")


if __name__ == "__main__":
    main()
