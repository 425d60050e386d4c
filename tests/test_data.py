"""Loaders for the shipped files and user jsonl: schema, counts, the fixed AlpacaEval split, clear errors."""

import json
from pathlib import Path

import pytest

from gprl import GprlError
from gprl.config import SourceConfig
from gprl.data import DataContext, load_source, validate_pair
from gprl.data.sources import REFERENCE, _alpaca_tables, alpaca_split

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared" / "data").resolve()
CTX = DataContext(SHARED, ROOT, seed=0)


def check_schema(pairs):
    for i, p in enumerate(pairs):
        assert validate_pair(p, f"row {i}") == p


@pytest.mark.parametrize("source, n, subsets", [
    ("llmbar", 419, 5), ("rm_bench", 9 * (129 + 228 + 284 + 157), 4), ("ultrafeedback", 1000, 1),
])
def test_shipped_sets(source, n, subsets):
    pairs = load_source(SourceConfig(source=source), CTX)
    check_schema(pairs)
    assert len(pairs) == n
    assert len({p["subset"] for p in pairs}) == subsets


def test_hh_harmless_splits_the_last_assistant_turn():
    pairs = load_source(SourceConfig(source="hh_harmless"), CTX)
    check_schema(pairs)
    assert 2200 < len(pairs) <= 2312
    assert all(p["prompt"].startswith("Human:") and "\n\nAssistant:" not in p["chosen"] for p in pairs[:50])


def test_alpaca_split_is_fixed_and_disjoint():
    s = alpaca_split()
    assert len(s["train"]) == 644 and len(s["test"]) == 161
    assert not s["train"] & s["test"] and len(s["train"] | s["test"]) == 805


def test_alpaca_pairs_stay_in_their_split_and_balance_length():
    text, _, _ = _alpaca_tables(SHARED)
    test_instr = {text[i] for i in alpaca_split()["test"]}
    tr = load_source(SourceConfig(source="alpaca_balanced", split="train", max_pairs=500), CTX)
    te = load_source(SourceConfig(source="alpaca_balanced", split="test", length_balance=False), CTX)
    check_schema(tr[:50])
    assert not {p["prompt"] for p in tr} & test_instr
    assert {p["prompt"] for p in te} <= test_instr
    assert all(p["margin"] >= 0.3 for p in tr)
    full = load_source(SourceConfig(source="alpaca_balanced", split="train"), CTX)
    longer = sum(len(p["chosen"]) > len(p["rejected"]) for p in full)
    assert longer == len(full) / 2
    # deterministic for a seed
    again = load_source(SourceConfig(source="alpaca_balanced", split="train", max_pairs=500), CTX)
    assert again == tr


def test_alpaca_with_reference_orders_the_reference_by_the_annotation():
    text, prefs, outputs = _alpaca_tables(SHARED)
    idx = {v: k for k, v in text.items()}
    pairs = load_source(SourceConfig(source="alpaca_with_reference", split="train", length_balance=False), CTX)
    assert not {p["prompt"] for p in pairs} & {text[i] for i in alpaca_split()["test"]}
    vs_ref = [p for p in pairs if outputs[REFERENCE][p["prompt"]] in (p["chosen"], p["rejected"])]
    assert len(pairs) / 3 < len(vs_ref) < len(pairs) * 2 / 3  # about half of each instruction's pairs
    for p in vs_ref[:300]:
        ref_won = p["chosen"] == outputs[REFERENCE][p["prompt"]]
        other = p["rejected"] if ref_won else p["chosen"]
        pref = [q for g, q in prefs[idx[p["prompt"]]].items() if outputs.get(g, {}).get(p["prompt"]) == other]
        assert pref and all((q <= 1.2) if ref_won else (q >= 1.8) for q in pref)
        assert p["margin"] >= 0.3


def test_user_jsonl(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"prompt": "a", "chosen": "b", "rejected": "c", "margin": 1, "subset": "s"}) + "\n\n")
    assert load_source(SourceConfig(source="jsonl", path=str(f)), CTX) == [
        {"prompt": "a", "chosen": "b", "rejected": "c", "margin": 1.0, "subset": "s"}]


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "a", "chosen": "b"', "p.jsonl:2: malformed JSON line"),
    ('{"prompt": "a", "chosen": "b"}', "p.jsonl:2: missing field(s) rejected"),
    ('{"prompt": "a", "chosen": "b", "rejected": 3}', "p.jsonl:2: field 'rejected' must be a string"),
    ('{"prompt": "a", "chosen": "b", "rejected": "c", "margin": NaN}', "p.jsonl:2: margin must be a finite number"),
])
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n' + line + "\n")
    with pytest.raises(GprlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_source(SourceConfig(source="jsonl", path=str(f)), CTX)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(GprlError, match="missing data file .*LLMBar_Natural.json"):
        load_source(SourceConfig(source="llmbar"), DataContext(tmp_path, ROOT))
    with pytest.raises(GprlError, match="does not exist"):
        load_source(SourceConfig(source="jsonl", path=str(tmp_path / "none.jsonl")), CTX)
