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
    ('{"prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "chosen": "b", '
     '"rejected": "c"}', "p.jsonl:2: a multi-turn prompt must end with a user turn"),
    ('{"prompt": [{"role": "human", "content": "a"}], "chosen": "b", "rejected": "c"}', "p.jsonl:2: prompt turn 0"),
    ('{"prompt": [], "chosen": "b", "rejected": "c"}', "p.jsonl:2: field 'prompt' must be a string or a non-empty"),
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


# ---- multi-turn prompts keep the whole conversation ----------------------------------------------------------

TURNS = [{"role": "user", "content": "What is the capital of France?"},
         {"role": "assistant", "content": "Paris is the capital of France."},
         {"role": "user", "content": "And of Italy?"}]


def _multi_turn_record(layout: str) -> dict:
    if layout == "chat":  # chosen/rejected are whole conversations (Skywork, UltraFeedback-binarized)
        return {"chosen": TURNS + [{"role": "assistant", "content": "Rome."}],
                "rejected": TURNS + [{"role": "assistant", "content": "Milan."}], "subset": "s"}
    # RewardBench's layout for multi-turn sets: prompt = the earlier turns, chosen/rejected = the last answer
    return {"prompt": TURNS, "chosen": "Rome.", "rejected": "Milan.", "subset": "s"}


def _load_multi_turn(tmp_path, layout: str) -> dict:
    d = tmp_path / layout
    d.mkdir()
    (d / "train.jsonl").write_text(json.dumps(_multi_turn_record(layout)) + "\n")
    src = (SourceConfig(source="jsonl", path=str(d / "train.jsonl")) if layout == "jsonl" else
           SourceConfig(source="hub", hub_name=str(d), split="train"))  # a local folder loads like a Hub dataset
    [pair] = load_source(src, CTX)
    return pair


@pytest.mark.parametrize("layout", ["rewardbench", "chat", "jsonl"])
def test_multi_turn_prompts_keep_every_turn_through_the_chat_template(tmp_path, layout):
    """A multi-turn record, in RewardBench's layout (prompt = a list of turns), the chat layout (chosen/rejected =
    whole conversations) or a user's jsonl: the reward model's input is the tokenizer's chat template over the whole
    conversation, earlier user and assistant turns included, then the answer; as rewardbench 0.1.2's
    prepare_dialogue_from_tokenizer renders it."""
    from gprl.models.formatting import Formatter
    from gprl.models.tiny import decoder_tokenizer

    pair = _load_multi_turn(tmp_path, layout)
    assert (pair["chosen"], pair["rejected"], pair["subset"]) == ("Rome.", "Milan.", "s")
    tok = decoder_tokenizer()
    enc = Formatter(tok, decoder=True, max_length=256).encode(pair["prompt"], pair["chosen"])
    full = tok.apply_chat_template(TURNS + [{"role": "assistant", "content": "Rome."}], tokenize=True,
                                   return_dict=False)
    assert full[-1] == tok.eos_token_id
    assert enc.input_ids == list(full)
    assert enc.prompt_len == len(tok.apply_chat_template(TURNS, add_generation_prompt=True, tokenize=True,
                                                         return_dict=False))


def test_multi_turn_prompts_without_a_chat_template_keep_every_turn_as_text(tmp_path):
    """Encoders and decoders without a chat template read the conversation as a transcript, assistant turns included."""
    from gprl.models.formatting import Formatter
    from gprl.models.tiny import decoder_tokenizer

    pair = _load_multi_turn(tmp_path, "rewardbench")
    tok = decoder_tokenizer(chat_template=False)
    for decoder in (True, False):
        text = tok.decode(Formatter(tok, decoder=decoder, max_length=256).encode(pair["prompt"], "Rome.").input_ids)
        assert all(w in text for w in ("capital of france", "paris is the capital", "and of italy", "rome"))


def test_single_turn_chats_stay_plain_prompts(tmp_path):
    """A one-turn conversation is the plain prompt string it always was (so single-turn data is unchanged)."""
    d = tmp_path / "one"
    d.mkdir()
    (d / "train.jsonl").write_text(json.dumps({"chosen": [TURNS[0], {"role": "assistant", "content": "Paris."}],
                                               "rejected": [TURNS[0], {"role": "assistant", "content": "Lyon."}]}))
    [pair] = load_source(SourceConfig(source="hub", hub_name=str(d), split="train"), CTX)
    assert pair == {"prompt": TURNS[0]["content"], "chosen": "Paris.", "rejected": "Lyon."}
    assert type(pair["prompt"]) is str


def test_conversations_survive_pickle_and_copy_and_write_as_their_transcript():
    import copy
    import pickle

    from gprl.data.schema import Conversation, make_prompt

    c = make_prompt(TURNS, "here")
    for d in (pickle.loads(pickle.dumps(c)), copy.deepcopy(c)):
        assert isinstance(d, Conversation) and d == c and d.messages == TURNS
    assert json.loads(json.dumps(c)) == str(c) == ("User: What is the capital of France?\n\nAssistant: Paris is the "
                                                   "capital of France.\n\nUser: And of Italy?")


# ---- the evaluation subsample does not depend on the training seed -----------------------------------------

def test_eval_sets_are_the_same_for_every_training_seed(tmp_path):
    """eval.max_pairs_per_set's sample and the seeded construction of an evaluation set (AlpacaEval held-out
    pairs) use eval.subsample_seed, not the run's seed: two training seeds score the same pairs, so '± std over
    seeds' is training variance only."""
    from gprl.tasks.common import data_context, eval_sets
    from tests.helpers import run_config

    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": f"a{i}", "rejected": f"b{i}"}) + "\n"
                         for i in range(40)))

    def picked(seed):
        cfg = run_config([f"seed={seed}", "eval=offline", "eval.max_pairs_per_set=25", f"eval.pairs={f}"])
        cfg.eval.sets = {k: v for k, v in cfg.eval.sets.items() if k == "alpaca_heldout"}
        return eval_sets(cfg, data_context(cfg))

    a, b = picked(0), picked(1)
    assert len(a["pairs"]) == 25 and len(a["alpaca_heldout"]) == 25
    assert a == b


def test_table1_fit_set_is_the_runs_own_training_pairs():
    """An evaluation set equal to data.train (Table 1's fit) is the run's training pairs, so it follows the run's
    seed; the held-out set is fixed across seeds."""
    from gprl.tasks.common import data_context, eval_sets
    from tests.helpers import run_config

    sets = {}
    for seed in (0, 1):
        cfg = run_config(["+experiment=cyclic", f"seed={seed}"])
        ctx = data_context(cfg)
        sets[seed] = eval_sets(cfg, ctx)
        assert sets[seed]["fit"] == load_source(cfg.data.train, ctx)
    assert sets[0]["heldout"] == sets[1]["heldout"]
    assert sets[0]["fit"] != sets[1]["fit"]
