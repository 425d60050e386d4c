"""WildBench v2 (its repository's protocol): the WB-Reward length penalty by hand, the lengths as WildBench cuts them
from the prompt, its leaderboard's aggregates reproduced from its shipped statistics, a whole run on the local task
file against a fake judge endpoint with canned judgments."""

from __future__ import annotations

import json

import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import ROOT, run_cli

SHARED = (ROOT / ".." / "shared" / "data").resolve()


# ---- WildBench -----------------------------------------------------------------------------------------------

def test_wb_reward_length_penalty_by_hand():
    """K = 500 characters turns a slight win (loss) of an answer more than 500 characters longer into a tie; a strong
    verdict, a margin of exactly K, or K = -1 leave it alone."""
    from evaluation.wildbench import wb_reward

    g = ["Creative Tasks"]
    items = [
        {"winner": "test", "extent": 1, "test_len": 1200, "ref_len": 600},   # slight win, 600 longer: tie at K=500
        {"winner": "test", "extent": 1, "test_len": 1100, "ref_len": 600},   # exactly K longer: still a win
        {"winner": "ref", "extent": 1, "test_len": 600, "ref_len": 1000},    # slight loss, 400 longer: a loss
        {"winner": "ref", "extent": 2, "test_len": 100, "ref_len": 5000},    # strong loss: never a tie
        {"winner": "test", "extent": 2, "test_len": 9000, "ref_len": 10},    # strong win: never a tie
        {"winner": "tie", "extent": 0, "test_len": 10, "ref_len": 10},
    ]
    items = [{**x, "skip": False, "groups": g} for x in items]
    k500 = wb_reward(items, 500)
    assert (k500["win_much"], k500["win"], k500["tie"], k500["lose"], k500["lose_much"]) == (1, 1, 2, 1, 1)
    assert k500["reward"] == pytest.approx(100 * (1 + 0.5 - 0.5 - 1) / 6)  # 0
    none = wb_reward(items, -1)
    assert (none["win"], none["tie"]) == (2, 1) and none["reward"] == pytest.approx(100 * (1 + 1 - 0.5 - 1) / 6)
    longer_ref = [{**items[2], "ref_len": 1101}]  # the reference 501 longer on a slight loss: a tie
    assert wb_reward(longer_ref, 500)["tie"] == 1 and wb_reward(longer_ref, 500)["reward"] == 0


def test_wb_lengths_are_cut_from_the_prompt_as_wildbench_does():
    """batch_results_format.py cuts the answers out of the judge prompt; B's piece keeps its begin marker (24
    characters more than A's for answers of equal length), a quirk the K penalty inherits and we keep."""
    from evaluation.wildbench import outputs_in_prompt, pairwise_prompt, shorten

    template = (SHARED / "wildbench" / "eval_template.pairwise.v2.md").read_text()
    task = {"conversation_input": [{"role": "user", "content": "q"}], "checklist": ["c"]}
    a, b = outputs_in_prompt(pairwise_prompt(template, task, "x" * 600, "y" * 600))
    assert len(b) - len(a) == 24 and a.strip() == "x" * 600 and b.endswith("y" * 600 + "\n\n")
    long = " ".join(["w"] * 1500)
    assert shorten(long) == " ".join(["w"] * 1000) + "... (truncated)" and shorten("a b") == "a b"


def test_wb_aggregates_reproduce_the_shipped_leaderboard():
    """The task-macro weights and the reward mixture against WildBench's own leaderboard statistics (shipped), for
    every model in it: WB_score.task_macro from the five group scores, mixture_of_rewards from the three rewards."""
    from evaluation.wildbench import task_macro

    stats = json.loads((SHARED / "wildbench" / "all_stat_wildbench.-1.json").read_text())
    n = 0
    for model, s in stats.items():
        groups = {g: s[f"WB_score.{g}"] for g in ("Creative Tasks", "Planning & Reasoning", "Math & Data Analysis",
                                                   "Information/Advice seeking", "Coding & Debugging")}
        if "WB_score.task_macro" in s and all(isinstance(v, (int, float)) for v in groups.values()):
            assert task_macro(groups) == pytest.approx(s["WB_score.task_macro"], abs=1e-6), model
            n += 1
        rewards = [s.get(f"{r}_reward.K=-1") for r in ("haiku", "llama", "gpt4t")]
        if all(isinstance(r, (int, float)) for r in rewards) and isinstance(s.get("mixture_of_rewards.K=-1"), (int, float)):
            assert sum(rewards) / 3 == pytest.approx(s["mixture_of_rewards.K=-1"], abs=1e-6), model
    assert n > 40


def test_wildbench_run_with_canned_judgments(tmp_path, monkeypatch):
    """The 6 local tasks with given answers: WB-Score from canned scores 8, 8, 8, 8, 6.5 and one unparseable
    -> (7.7 - 5) x 20 = 54; its task macro 10 x 25.875 / 4.75; WB-Reward against the local references with K=500:
    task 0 a slight win of a 2,000-character answer (a tie), task 1 a slight win, task 2 a slight loss, task 3 a strong
    win, task 4 a tie, task 5 unparseable -> 100 x (0.5 - 0.5 + 1) / 5 = 20."""
    from evaluation.wildbench import LOCAL

    tasks = [json.loads(x) for x in LOCAL.read_text().splitlines()]
    answers = [{"session_id": t["session_id"], "output": [f"TESTANSWER-{i} " + ("x" * 2000 if i in (0, 3) else "short")],
                "generator": "given"} for i, t in enumerate(tasks)]
    f = tmp_path / "answers.json"
    f.write_text(json.dumps(answers))
    verdict = {0: "+", 1: "+", 2: "-", 3: "++", 4: "=", 5: None}
    scores = {0: "8", 1: "8", 2: "8", 3: "8", 4: "6.5", 5: None}

    def reply(body):
        user = body["messages"][0]["content"]
        i = next(i for i in range(6) if f"TESTANSWER-{i} " in user)
        assert body["response_format"] == {"type": "json_object"} and body["max_tokens"] == 1024
        if "## Response B" not in user:
            return "not json" if scores[i] is None else json.dumps({"strengths": "s", "weaknesses": "w", "score": scores[i]})
        if verdict[i] is None:
            return "{broken"
        test_is_a = f"TESTANSWER-{i}" in user.split("## Response B")[0]
        v = verdict[i]
        choice = "A=B" if v == "=" else (("A" if test_is_a else "B") + v) if v[0] == "+" else (("B" if test_is_a else "A") + "+")
        return "```json\n" + json.dumps({"choice": choice}) + "\n```" if i == 1 else json.dumps({"choice": choice})

    server = FakeOpenAI(reply=reply)
    monkeypatch.setenv("GPRL_TEST_KEY", "sk-test")
    try:
        p = run_cli(["+experiment=benchmark", "benchmark.names=[wildbench]", f"benchmark.outputs={f}",
                     "benchmark.wildbench_tasks=local", "judge=paper", f"judge.base_url={server.url}",
                     "judge.api_key_env=GPRL_TEST_KEY", f"paths.cache={tmp_path / 'cache'}",
                     f"hydra.run.dir={tmp_path / 'run'}", "logger=none"])
        assert p.returncode == 0, p.stderr[-3000:]
    finally:
        server.close()
    res = json.loads((tmp_path / "run" / "benchmarks" / "wildbench" / "results.json").read_text())
    s = res["metrics"]["score"]
    assert s["raw_score"] == pytest.approx(7.7) and s["wb_score"] == pytest.approx(54.0)
    assert s["wb_score_task_macro"] == pytest.approx(10 * 25.875 / 4.75)
    r = res["metrics"]["reward"]["gpt-4"]
    assert (r["win_much"], r["win"], r["tie"], r["lose"], r["lose_much"], r["total"]) == (1, 1, 2, 1, 0, 5)
    assert r["reward"] == pytest.approx(20.0) and res["headline"]["wb_reward"] == 20.0
    assert res["n_unparsed_by"] == {"score": 1, "reward/gpt-4": 1} and res["headline"]["n_unparsed"] == 2
    models = {b["model"] for b in server.bodies}
    assert models == {"gpt-4o-2024-05-13", "gpt-4-turbo-2024-04-09"}  # judge=paper: WildBench's two judges


def test_wildbench_tasks_are_hub_only(tmp_path):
    p = run_cli(["+experiment=benchmark", "benchmark.names=[wildbench]", "benchmark.outputs=x.json",
                 "judge=offline_rm", f"paths.cache={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}", "logger=none"])
    assert p.returncode == 2 and "wildbench_tasks=local" in p.stderr and "Traceback" not in p.stderr
