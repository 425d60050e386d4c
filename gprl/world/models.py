"""The world's models: one word-level tokenizer (the grammar's vocabulary, a chat template for the policy and a
``[CLS] a [SEP] b [SEP]`` pair template for reward models), the starting policy (a tiny Llama SFT-trained on
mixed-quality grammar answers with ``gprl.models.sft.sft_train``) and a tiny BERT backbone for proxy reward
models. All are built offline in seconds to minutes and cached."""

from __future__ import annotations

import random
from pathlib import Path

from gprl.models.sft import TinySFTSpec, sft_train
from gprl.world.grammar import mixed_response, sample_prompt, vocabulary

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")
POLICY_SPEC = TinySFTSpec(hidden=128, layers=2, heads=2, vocab=0, max_prompt_tokens=16, max_response_tokens=28,
                          steps=400, batch_size=64, lr=2e-3, seed=0, held_out=200)


def world_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + vocabulary())}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                  sep_token="[SEP]", eos_token="<|end|>", clean_up_tokenization_spaces=False,
                                  extra_special_tokens=["<|user|>", "<|assistant|>"],
                                  model_input_names=["input_ids", "attention_mask"])
    tok.chat_template = CHAT_TEMPLATE
    return tok


def demonstrations(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        p = sample_prompt(rng)
        out.append({"prompt": p.text, "response": " ".join(mixed_response(p, rng))})
    return out


N_DEMOS = 20000  # grammar answers the starting policy is trained on


def starting_policy(cache: Path, spec: TinySFTSpec | None = None, n_demos: int | None = None) -> Path:
    """The SFT'd starting policy, built once under ``cache``."""
    spec, n_demos = spec or POLICY_SPEC, n_demos or N_DEMOS
    d = Path(cache) / f"world-policy-{spec.hidden}x{spec.layers}-{spec.steps}-{spec.key()}"
    if (d / "config.json").exists():
        return d
    d.parent.mkdir(parents=True, exist_ok=True)
    return sft_train(spec, world_tokenizer(), demonstrations(n_demos, spec.seed), demonstrations(spec.held_out, 10**6),
                     d, what="grammar answers of mixed quality")


def rm_backbone(cache: Path, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A randomly initialised tiny BERT with the world tokenizer: the proxy reward models' backbone."""
    import torch
    from transformers import BertConfig, BertModel

    d = Path(cache) / f"world-encoder-{hidden}x{layers}-s{seed}"
    if (d / "config.json").exists():
        return d
    tok = world_tokenizer()
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=128, pad_token_id=tok.pad_token_id)
    tmp = d.with_name(d.name + ".tmp")
    BertModel(cfg).save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(d)
    return d
