"""The preference world: grammar, gold oracle (hand-computed aspects, a constructed Condorcet cycle, the
verifier), tokenizer, and the whole experiment on a tiny budget."""

import random

import pytest

from gprl import GprlError
from gprl.world.grammar import Prompt, mixed_response, parse_prompt, sample_prompt, vocabulary
from gprl.world.oracle import aspects, cycle_rate, measure_cycles, prefers, verify, vote

FRUITS_P = Prompt("list", "list two fruits starting with p", category="fruits", letter="p", n=2)


def test_prompts_parse_back_and_answers_stay_in_the_vocabulary():
    rng, vocab = random.Random(0), set(vocabulary())
    for _ in range(500):
        p = sample_prompt(rng)
        assert parse_prompt(p.text) == p
        assert set(p.text.split()) <= vocab and set(mixed_response(p, rng)) <= vocab
    with pytest.raises(GprlError, match="not a prompt of the preference world"):
        parse_prompt("tell me a joke")


def test_aspects_by_hand():
    good = aspects(FRUITS_P, "pear and plum .")
    assert good == {"correct": 1.0, "brevity": 1.0, "fluency": 1.0, "style": 0.0}
    # one valid item, one repeat, one wrong: (1 - 0.5 * 2) / 2 = 0; 6 tokens against 4; "apple" never ends a
    # clean list (no fruit letter 'a' has three words), so 2 of the 11 bigrams are foreign; marker once at the end
    bad = aspects(FRUITS_P, "pear , pear and apple . hope this helps .")
    assert bad == {"correct": 0.0, "brevity": pytest.approx(4 / 6), "fluency": pytest.approx(9 / 11), "style": 1.0}
    # weights for lists (0.3, 0.25, 0.25, 0.2): correct + brevity + fluency beat style
    assert vote(FRUITS_P, good, bad) == pytest.approx(0.6) and prefers(FRUITS_P, "pear and plum .", "pear , pear and apple . hope this helps .") == 1.0
    assert aspects(FRUITS_P, "plum and . pear")["fluency"] < 1.0
    assert aspects(FRUITS_P, "")["correct"] == 0.0


def test_arithmetic_verifier_and_graded_correctness():
    p = parse_prompt("what is 7 plus 5")
    assert verify(p, "7 plus 5 is 12 .".split()) and not verify(p, "7 plus 5 is 13 .".split())
    assert aspects(p, "7 plus 5 is 13 .")["correct"] == 0.75 and aspects(p, "7 plus 5 is 30 .")["correct"] == 0.0


def test_a_weighted_majority_of_aspects_cycles():
    """correct A > B > C, brevity B > C > A, fluency C > A > B: A beats B, B beats C, C beats A."""
    A = {"correct": 1.0, "brevity": 0.0, "fluency": 0.5, "style": 0.0}
    B = {"correct": 0.5, "brevity": 1.0, "fluency": 0.0, "style": 0.0}
    C = {"correct": 0.0, "brevity": 0.5, "fluency": 1.0, "style": 0.0}
    assert vote(FRUITS_P, A, B) > 0 and vote(FRUITS_P, B, C) > 0 and vote(FRUITS_P, C, A) > 0
    rates = measure_cycles(100, 6, seed=0)
    assert any(r["cyclic_triples"] > 0 for r in rates.values())
    assert cycle_rate(FRUITS_P, ["pear and plum ."] * 3) == (0, 0)  # all ties: no strict triple


def test_tokenizer_templates():
    from gprl.world.models import world_tokenizer

    tok = world_tokenizer()
    m = [{"role": "user", "content": "list two fruits starting with p"}]
    prompt = tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template(m + [{"role": "assistant", "content": "pear and plum ."}], tokenize=False)
    assert full.startswith(prompt)
    ids = tok("list two fruits starting with p", "pear and plum .")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids.count(tok.sep_token_id) == 2 and tok.unk_token_id not in ids
    assert tok.decode(tok("pear , plum .", add_special_tokens=False)["input_ids"]) == "pear , plum ."


def test_the_experiment_end_to_end_on_a_tiny_budget(tmp_path, monkeypatch):
    import dataclasses

    from gprl.world import experiment, models

    monkeypatch.setattr(models, "POLICY_SPEC", dataclasses.replace(models.POLICY_SPEC, hidden=32, steps=3,
                                                                   batch_size=8, held_out=4))
    monkeypatch.setattr(models, "N_DEMOS", 300)
    monkeypatch.setattr(experiment, "RM_DIMS", (1, 4))
    monkeypatch.chdir(tmp_path)
    tiny = experiment.Scale(rm_prompts=20, rm_pairs=40, rm_heldout=20, rm_epochs=1, steps=2, prompts_per_step=2,
                            generations=2, iterations=1, eval_prompts=6, eval_points=1, seeds=(0,), max_tokens=8)
    monkeypatch.setitem(experiment.SCALES, "tiny", tiny)
    monkeypatch.setattr(experiment, "measure_cycles", lambda *a, **k: {"list": {"cyclic_triples": 0.0,
                                                                                "prompts_with_a_cycle": 0.0}})
    monkeypatch.setattr(experiment, "policy_cycles", lambda *a, **k: {})
    from tests.helpers import ROOT

    out = experiment.reproduce("tiny", tmp_path / "res", tmp_path / "cache", ["grpo_bt", "gprl_verifier", "gpo_gpm"],
                               shared_data=str(ROOT / ".." / "shared" / "data"))
    text = (out / "README.md").read_text()
    for arm in ("grpo_bt", "gprl_verifier", "gpo_gpm"):
        assert f"| {arm} |" in text
    assert (out / "gold_vs_proxy.png").stat().st_size > 1000 and (out / "summary.csv").exists()
    import json

    r = json.loads((tmp_path / "outputs/world-work/tiny/runs/gprl_verifier-s0.json").read_text())
    assert [e["step"] for e in r["evals"]] == [0, 2] and "rewards/gold_win/mean" in r["rollouts"][0]


@pytest.mark.slow
def test_smoke_scale_runs(tmp_path):
    from gprl.world.experiment import ARMS, reproduce

    out = reproduce("smoke", tmp_path / "res", tmp_path / "cache", list(ARMS))
    assert (out / "README.md").exists()
