"""Arena-Hard (arena-hard-auto's v0.1 protocol): Bradley-Terry with the baseline anchored and its bootstrap interval on
hand-made judgments computed by hand, the verdict labels and the second attempt, a whole run against a fake judge
endpoint in both orders, and the offline reward-model judge as a pairwise stand-in."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import ROOT, run_cli

SHARED = (ROOT / ".." / "shared" / "data").resolve()


# ---- Arena-Hard ----------------------------------------------------------------------------------------------

HAND = [  # game 1 shows the baseline as A, game 2 the model as A
    {"model": "m", "games": [{"score": "A>B"}, {"score": "B>A"}]},  # baseline wins twice
    {"model": "m", "games": [{"score": "B>>A"}, {"score": "A>>B"}]},  # model wins strongly twice: 3 + 3 battles
    {"model": "m", "games": [{"score": "A=B"}, {"score": "A=B"}]},  # two ties
    {"model": "m", "games": [{"score": "B>A"}, {"score": "A"}]},  # one model win; 'A' is no label: dropped
    {"model": "m", "games": [{"score": None}, {"score": "A>B"}]},  # no verdict: dropped; one model win
]


def _elo(p: float) -> float:
    return 1400.0 if p == 1 else 600.0 if p == 0 else 1000 + 400 * math.log10(p / (1 - p))


def test_arena_hard_bradley_terry_and_bootstrap_by_hand():
    """12 battles: the model wins 3 + 3 + 1 + 1 = 8, the baseline 2, 2 ties; with two players the Bradley-Terry fit
    is the win rate with ties half: (8 + 1) / 12 = 75%, Elo 1000 + 400 log10(3). The interval: 100 resamples drawn
    with numpy's seed 42, each fitted the same way in closed form, 2.5 / 97.5 percentiles of the Elo, as win rates."""
    import pandas as pd

    from evaluation.arena_hard import battles, score_battles

    b, dropped = battles(HAND, "base")
    assert dropped == 2 and len(b) == 12
    assert sum(x["winner"] == "model_b" for x in b) == 8 and sum(x["winner"] == "tie" for x in b) == 2
    res = score_battles(b, "base", "m")
    assert res["score"] == 75.0 and res["elo"] == pytest.approx(1000 + 400 * math.log10(3), abs=0.01)
    df = pd.DataFrame(b)
    np.random.seed(42)
    elos = []
    for _ in range(100):
        s = df.sample(frac=1.0, replace=True)
        elos.append(_elo(((s.winner == "model_b").sum() + (s.winner == "tie").sum() / 2) / len(s)))
    lo, hi = np.percentile(elos, [2.5, 97.5])
    assert res["lower"] == pytest.approx(round(100 / (1 + 10 ** ((1000 - lo) / 400)), 2), abs=0.011)
    assert res["upper"] == pytest.approx(round(100 / (1 + 10 ** ((1000 - hi) / 400)), 2), abs=0.011)
    assert res["lower"] < 75.0 < res["upper"]
    # ties only: an even score; strong verdicts weigh 3 (with weight 1 the same judgments give 5 / 8 = 62.5%)
    assert score_battles(battles(HAND[2:3], "base")[0], "base", "m")["score"] == 50.0
    assert score_battles(battles(HAND, "base", weight=1)[0], "base", "m")["score"] == 62.5


def test_arena_hard_verdict_parsing_and_second_attempt():
    """get_score: one distinct label is the verdict; two different labels none (no retry); no label asks the judge
    to continue in the same conversation, once (number_of_judgment_attempts: 2)."""
    from evaluation.arena_hard import CONTINUE, get_score, judge_games

    pat = [r"\[\[([AB<>=]+)\]\]"]
    assert get_score("verdict [[A>>B]] ... [[A>>B]]", pat) == ("A>>B", False)
    assert get_score("[[A>B]] or [[B>A]]", pat) == (None, False)
    assert get_score("no verdict", pat) == (None, True)

    class Judge:
        calls: list = []

        def judge(self, requests, desc):
            self.calls.append(requests)
            return ["thinking..." if len(r["messages"]) == 2 else "My final verdict: [[B>A]]" for r in requests]

    conf = {"system_prompt": "SYS", "template": "{question_1}|{answer_1}|{answer_2}", "patterns": pat, "temperature": 0.0,
            "max_tokens": 4096, "attempts": 2}
    j = Judge()
    out = judge_games(j, conf, [("q", "a", "b")], "test")
    assert out[0]["score"] == "B>A" and out[0]["user_prompt"] == "q|a|b" and len(j.calls) == 2
    assert j.calls[1][0]["messages"][-1] == {"role": "user", "content": CONTINUE}
    assert j.calls[1][0]["messages"][-2] == {"role": "assistant", "content": "thinking..."}


def test_arena_hard_run_with_canned_judgments(tmp_path, monkeypatch):
    """Shipped gpt-3.5-turbo-0125 answers against the gpt-4-0314 baseline, both orders, judged by a fake endpoint:
    question 0 the model much better in both games (3 + 3), question 1 the baseline better (1 + 1), question 2 ties,
    question 3 two labels in game 1 and no verdict in game 2 even after the second attempt: (6 + 1) / 10 = 70%."""
    from evaluation.arena_hard import load, shipped_answers

    questions, base = load(SHARED, "v0.1", 4)
    plan = {0: ("[[B>>A]]", "[[A>>B]]"), 1: ("[[A>B]]", "[[B>A]]"), 2: ("[[A=B]]", "[[A=B]]"), 3: ("[[A>B]] [[B>A]]", "pondering")}

    def reply(body):
        user = body["messages"][1]["content"]
        i = next(i for i, q in enumerate(questions) if user.startswith(f"<|User Prompt|>\n{q['prompt']}\n"))
        game1 = f"<|The Start of Assistant A's Answer|>\n{base[questions[i]['uid']]}\n" in user
        return plan[i][0 if game1 else 1]

    server = FakeOpenAI(reply=reply)
    monkeypatch.setenv("GPRL_TEST_KEY", "sk-test")
    try:
        p = run_cli(["+experiment=benchmark", "benchmark.names=[arena_hard]", "benchmark.outputs=gpt-3.5-turbo-0125",
                     "benchmark.max_instances=4", "judge=gpt4_turbo", f"judge.base_url={server.url}",
                     "judge.api_key_env=GPRL_TEST_KEY", f"paths.cache={tmp_path / 'cache'}",
                     f"hydra.run.dir={tmp_path / 'run'}", "logger=none"])
        assert p.returncode == 0, p.stderr[-3000:]
    finally:
        server.close()
    d = tmp_path / "run" / "benchmarks" / "arena_hard"
    res = json.loads((d / "results.json").read_text())
    assert res["headline"]["score"] == 70.0 and res["headline"]["n_dropped"] == 2 and res["metrics"]["n_battles"] == 10
    assert res["judge_calls"] == 9 and len(server.bodies) == 9  # 8 games + one second attempt (game 2 of question 3)
    assert server.bodies[0]["messages"][0]["content"].startswith("Please act as an impartial judge")
    assert all(b["temperature"] == 0 and b["max_tokens"] == 4096 and b["model"] == "gpt-4-1106-preview" for b in server.bodies)
    rows = [json.loads(x) for x in (d / "model_judgment" / "gpt-4-1106-preview" / "gpt-3.5-turbo-0125.jsonl").read_text().splitlines()]
    assert [[g["score"] for g in r["games"]] for r in rows] == [["B>>A", "A>>B"], ["A>B", "B>A"], ["A=B", "A=B"], [None, None]]
    ours = shipped_answers(d / "model_answer" / "gpt-3.5-turbo-0125.jsonl")
    assert set(ours) == {q["uid"] for q in questions}
    run = json.loads((tmp_path / "run" / "results.json").read_text())
    assert run["metrics"]["arena_hard/score"] == pytest.approx(0.70) and (d / "leaderboard.csv").exists()


def test_arena_hard_offline_judge_mirrors_its_games(tmp_path, judge_model):
    """The offline reward-model judge as a pairwise stand-in: named so, and its two games mirror each other."""
    p = run_cli(["+experiment=benchmark", "benchmark.names=[arena_hard]", "benchmark.outputs=gpt-3.5-turbo-0125",
                 "benchmark.max_instances=3", f"judge.path={judge_model}", f"paths.cache={tmp_path / 'cache'}",
                 f"hydra.run.dir={tmp_path / 'run'}", "logger=none"])
    assert p.returncode == 0, p.stderr[-3000:]
    d = tmp_path / "run" / "benchmarks" / "arena_hard"
    res = json.loads((d / "results.json").read_text())
    assert res["judge"]["as"] == "pairwise stand-in" and "stand-in" in " ".join(res["notes"])
    rows = [json.loads(x) for f in (d / "model_judgment").rglob("*.jsonl") for x in f.read_text().splitlines()]
    mirror = {"A>>B": "B>>A", "A>B": "B>A", "A=B": "A=B", "B>A": "A>B", "B>>A": "A>>B"}
    assert len(rows) == 3 and all(mirror[r["games"][0]["score"]] == r["games"][1]["score"] for r in rows)


@pytest.fixture(scope="module")
def judge_model(tmp_path_factory, tiny_encoder) -> str:
    from gprl.models import GeneralPreferenceModel
    from gprl.models.reward_model import RewardModelSpec

    d = tmp_path_factory.mktemp("judge")
    GeneralPreferenceModel.from_backbone(tiny_encoder, RewardModelSpec(k=4)).save_pretrained(d)
    return str(d)
