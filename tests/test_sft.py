"""The laptop policy's SFT builder, on a tiny spec: trains, saves a chat model whose template composes with TRL's
prompt/completion split, never sees test-split AlpacaEval instructions, and is reused from the cache."""

import json
from pathlib import Path

import pytest

from gprl import GprlError
from gprl.models import sft
from tests.helpers import ROOT

SHARED = (ROOT / ".." / "shared" / "data").resolve()
TINY = "tiny-sft:32x1:2"


def test_parse_names():
    s = sft.parse("tiny-sft:256x6")
    assert (s.hidden, s.layers, s.heads, s.steps) == (256, 6, 4, sft.TinySFTSpec.steps)
    assert sft.parse(TINY).steps == 2 and sft.parse(TINY).key() != s.key()
    with pytest.raises(GprlError, match="expected tiny-sft:HIDDENxLAYERS"):
        sft.parse("tiny-sft:large")


def test_training_text_holds_no_test_split_instruction():
    from gprl.config import SourceConfig
    from gprl.data import DataContext, load_source

    ctx = DataContext(shared_data=SHARED, root=ROOT, seed=0)
    test = {r["prompt"] for r in load_source(SourceConfig(source="alpaca_prompts", split="test"), ctx)}
    train = sft.demonstrations(SHARED, "train")
    assert len(train) > 10_000 and not test & {d["prompt"] for d in train}


def test_build_then_reuse(tmp_path, monkeypatch):
    import dataclasses

    from transformers import AutoModelForCausalLM, AutoTokenizer

    small = dataclasses.replace(sft.parse(TINY), vocab=400, batch_size=4, held_out=3)
    monkeypatch.setattr(sft, "parse", lambda name: small)
    path = Path(sft.resolve(TINY, tmp_path, SHARED))
    report = json.loads((path / "sft_report.json").read_text())
    assert report["spec"]["steps"] == 2 and report["held_out_perplexity"] > 1 and len(report["samples"]) == 3
    tok = AutoTokenizer.from_pretrained(path)
    AutoModelForCausalLM.from_pretrained(path)
    msgs = [{"role": "user", "content": "Hi there"}]
    prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template(msgs + [{"role": "assistant", "content": "Hello."}], tokenize=False)
    assert full.startswith(prompt) and full.endswith(tok.eos_token)
    assert not list(tmp_path.glob("*.work")) and not list(tmp_path.glob("*.tmp"))
    monkeypatch.setattr(sft, "build", lambda *a, **k: pytest.fail("rebuilt a cached policy"))
    assert Path(sft.resolve(TINY, tmp_path, SHARED)) == path
