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


def demonstrations(n: int, seed: int, respond=mixed_response, prompts: list[str] | None = None) -> list[dict]:
    """``n`` demonstrations: ``respond(prompt, rng)`` answers grammar prompts (drawn by ``sample_prompt``, or
    taken in turn from ``prompts``)."""
    from gprl.world.grammar import parse_prompt

    rng = random.Random(seed)
    out = []
    for i in range(n):
        p = sample_prompt(rng) if prompts is None else parse_prompt(prompts[i % len(prompts)])
        out.append({"prompt": p.text, "response": " ".join(respond(p, rng))})
    return out


N_DEMOS = 20000  # grammar answers the starting policy is trained on
# world v2: a competent starting policy (its correctness near its data's) with room for 48-token answers
POLICY_SPEC_V2 = TinySFTSpec(hidden=128, layers=3, heads=2, vocab=0, max_prompt_tokens=16, max_response_tokens=48,
                             steps=1200, batch_size=64, lr=2e-3, seed=0, held_out=300)
N_DEMOS_V2 = 40000


def starting_policy(cache: Path, spec: TinySFTSpec | None = None, n_demos: int | None = None,
                    version: int = 1) -> Path:
    """The SFT'd starting policy, built once under ``cache``. Version 1: mixed-quality answers to any prompt;
    version 2: competent answers (``competent_response``) to the ``train`` part's prompts only, held-out
    perplexity on the ``proxy_val`` part (``gprl.world.split``)."""
    if version == 2:
        from gprl.world.grammar import COMPETENT_FILLER, competent_response
        from gprl.world.split import draw

        spec, n_demos = spec or POLICY_SPEC_V2, n_demos or N_DEMOS_V2
        train = demonstrations(n_demos, spec.seed, competent_response, draw("train", n_demos, spec.seed))
        held = demonstrations(spec.held_out, 10**6, competent_response, draw("proxy_val", spec.held_out, 10**6))
        what, tag = "competent grammar answers, train prompts", f"world2-policy-f{COMPETENT_FILLER:g}"
    else:
        spec, n_demos = spec or POLICY_SPEC, n_demos or N_DEMOS
        train, held = demonstrations(n_demos, spec.seed), demonstrations(spec.held_out, 10**6)
        what, tag = "grammar answers of mixed quality", "world-policy"
    d = Path(cache) / f"{tag}-{spec.hidden}x{spec.layers}-{spec.steps}-{spec.key()}"
    if (d / "config.json").exists():
        return d
    d.parent.mkdir(parents=True, exist_ok=True)
    return sft_train(spec, world_tokenizer(), train, held, d, what=what)


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
