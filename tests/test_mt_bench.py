"""MT-Bench (FastChat's llm_judge protocol) on the benchmark layer: the rating rules with their failures, the judge
prompts, the second turn on the policy's own first answer, a whole run against a loopback fake GPT-4 with canned
judgments whose averages are computed by hand (the judge cache, the key never written), and the table of raw scores."""

from __future__ import annotations

import json

import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import ROOT, run_cli, run_config

SHARED = (ROOT / ".." / "shared" / "data").resolve()
MULTI = "<|The Start of Assistant A's Conversation with User|>"


def _user(body: dict) -> str:
    return body["messages"][-1]["content"] if body["messages"][-1]["role"] == "user" else body["messages"][1]["content"]


# ---- MT-Bench ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,rating", [
    ("The answer is fine. Rating: [[8]]", 8), ("[[7.5]]", 7.5), ("Rating: [6]", 6),  # [[x]], decimals, the [x] backup
    ("[[9]] although elsewhere [3]", 9), ("[3] then [[9]]", 9),  # [[x]] wins over an earlier [x]
    ("[[8]", 8), ("[[0]]", 0), ("[[15]]", 15),  # FastChat neither clamps nor rejects out-of-range ratings
    ("Rating: 8/10", -1), ("[[ 8 ]]", -1), ("[[eight]]", -1), ("[1, 2]", -1), ("", -1),  # unparseable: -1
])
def test_mt_bench_rating_rules(text, rating):
    from evaluation.mt_bench import parse_rating

    assert parse_rating(text) == rating


def test_mt_bench_judge_prompts_follow_fastchat():
    """Turn 1 of a writing question: single-v1; turn 2 of a math question: single-math-v1-multi-turn with both GPT-4
    reference turns, the first answer and the second question."""
    from evaluation.mt_bench import judge_request, load

    questions, refs, prompts = load(SHARED)
    q = next(x for x in questions if x["category"] == "writing")
    name, req = judge_request(q, ["ANSWER-ONE", "ANSWER-TWO"], None, prompts, 1)
    assert name == "single-v1" and req["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    assert req["messages"][1]["content"] == prompts["single-v1"]["prompt_template"].format(question=q["turns"][0], answer="ANSWER-ONE")
    assert (req["temperature"], req["max_tokens"]) == (0, 2048)
    m = next(x for x in questions if x["category"] == "math")
    ref = refs[m["question_id"]]["choices"][0]["turns"]
    name, req = judge_request(m, ["ANSWER-ONE", "ANSWER-TWO"], refs[m["question_id"]], prompts, 2)
    user = req["messages"][1]["content"]
    assert name == "single-math-v1-multi-turn" and req["messages"][0]["content"] == prompts[name]["system_prompt"]
    assert all(s in user for s in (ref[0], ref[1], m["turns"][0], m["turns"][1], "ANSWER-ONE", "ANSWER-TWO"))


def test_mt_bench_second_turn_sees_the_first_answer(monkeypatch, tmp_path):
    """Turn 2 is generated on the conversation (question 1, the policy's own answer 1, question 2); temperatures by
    category as FastChat's temperature_config."""
    import evaluation.mt_bench as mtb
    from evaluation.benchmark import Answers
    from gprl.data.schema import Conversation

    calls = []

    def fake_answers_for(cfg, answers, prompts, dec, out_file):
        calls.append((list(prompts), dict(dec)))
        return [f"A1<{p}>" if not isinstance(p, Conversation) else "A2" for p in prompts]

    monkeypatch.setattr(mtb, "answers_for", fake_answers_for)
    cfg = run_config(["+experiment=benchmark", "benchmark.outputs=x"])
    questions = [q for q in mtb.load(SHARED)[0] if q["category"] in ("writing", "math", "stem")][::10]
    texts, _ = mtb.generate(cfg, Answers("p", None, "p"), questions, tmp_path)
    temps = {q["category"]: mtb.temperature_config[q["category"]] for q in questions}
    assert sorted(d["temperature"] for _, d in calls) == sorted(list(temps.values()) * 2) and all(
        d["max_new_tokens"] == 1024 for _, d in calls)
    second = [p for prompts, _ in calls for p in prompts if isinstance(p, Conversation)]
    assert len(second) == len(questions)
    for q in questions:
        conv = next(p for p in second if p.messages[-1]["content"] == q["turns"][1])
        assert conv.messages == [{"role": "user", "content": q["turns"][0]},
                                 {"role": "assistant", "content": f"A1<{q['turns'][0]}>"},
                                 {"role": "user", "content": q["turns"][1]}]
        assert texts[q["question_id"]] == [f"A1<{q['turns'][0]}>", "A2"]


T1 = ["Rating: [[8]]", "[[6]] fine", "Great: [[9]].", "I cannot rate this."]  # 8, 6, 9, -1
T2 = ["Rating: [5]", "[[7.5]]", "[[3]]", "[[4]] and later [9]"]  # 5, 7.5, 3, 4


def test_mt_bench_run_with_canned_judgments(tmp_path, monkeypatch, tiny_decoder):
    """The whole path on a tiny policy: two turns generated, 8 judgments from a fake GPT-4 whose ratings give
    turn 1 = (8 + 6 + 9) / 3, turn 2 = (5 + 7.5 + 3 + 4) / 4, overall 42.5 / 7, one unparseable judgment counted;
    FastChat's files; a second run directory asks the judge nothing (cache)."""
    from evaluation.mt_bench import load

    questions = load(SHARED, 4)[0]

    def reply(body):
        user = _user(body)
        i = next(i for i, q in enumerate(questions) if q["turns"][0] in user)
        return (T2 if MULTI in user else T1)[i]

    server = FakeOpenAI(reply=reply)
    key = "sk-planted-" + "c0ffee5eed1234"
    monkeypatch.setenv("GPRL_TEST_KEY", key)
    args = ["+experiment=benchmark", "benchmark.names=[mt_bench]", f"benchmark.policy={tiny_decoder}",
            "benchmark.max_instances=4", "benchmark.max_new_tokens=6", "benchmark.empty_outputs=lose", "judge=gpt4",
            f"judge.base_url={server.url}", "judge.api_key_env=GPRL_TEST_KEY", f"paths.cache={tmp_path / 'cache'}",
            "logger=none"]
    try:
        first = run_cli([*args, f"hydra.run.dir={tmp_path / 'a'}"])
        assert first.returncode == 0, first.stderr[-3000:]
        n_requests = len(server.bodies)
        second = run_cli([*args, f"hydra.run.dir={tmp_path / 'b'}"])
        assert second.returncode == 0, second.stderr[-3000:]
    finally:
        server.close()
    d = tmp_path / "a" / "benchmarks" / "mt_bench"
    res = json.loads((d / "results.json").read_text())
    n_empty = res["n_empty"]
    assert n_empty == 0, "the tiny policy gave an empty answer: the canned averages assume none"
    assert n_requests == 8 and all(b["model"] == "gpt-4" and b["temperature"] == 0 and b["max_tokens"] == 2048
                                   for b in server.bodies[:8])
    m = res["metrics"]
    assert m["turn1"] == pytest.approx(23 / 3, abs=1e-4) and m["turn2"] == pytest.approx(19.5 / 4, abs=1e-4)
    assert m["score"] == pytest.approx(42.5 / 7, abs=1e-4) and m["n_unparsed"] == 1
    assert m["unparsed"] == [[questions[3]["question_id"], 1]] and "show_result.py" in " ".join(res["notes"])
    cats = {q["category"]: [] for q in questions}
    for i, q in enumerate(questions):
        cats[q["category"]] += [x for x in ([8, 6, 9, None][i], [5, 7.5, 3, 4][i]) if x is not None]
    assert m["per_category"] == {c: pytest.approx(sum(v) / len(v), abs=1e-4) for c, v in cats.items()}
    # FastChat's files: answers with two turns, judgments with its fields and prompt names (math with references)
    answers = [json.loads(x) for x in (d / "model_answer").glob("*.jsonl").__next__().read_text().splitlines()]
    assert len(answers) == 4 and all(len(a["choices"][0]["turns"]) == 2 for a in answers)
    judgments = [json.loads(x) for x in (d / "model_judgment" / "gpt-4_single.jsonl").read_text().splitlines()]
    assert len(judgments) == 8 and {"question_id", "model", "judge", "user_prompt", "judgment", "score", "turn"} <= set(judgments[0])
    math_q = next(q for q in questions if q["category"] == "math")
    assert {tuple(j["judge"]) for j in judgments if j["question_id"] == math_q["question_id"]} == {
        ("gpt-4", "single-math-v1"), ("gpt-4", "single-math-v1-multi-turn")}
    # the table metrics: the score as it is (not a fraction), the unparseable count beside it
    run = json.loads((tmp_path / "a" / "results.json").read_text())
    assert run["metrics"]["mt_bench/score"] == pytest.approx(42.5 / 7, abs=1e-4) and run["metrics"]["mt_bench/n_unparsed"] == 1
    assert server.auth and all(a == f"Bearer {key}" for a in server.auth)  # the key reached the endpoint, and no file
    leaks = [str(f) for f in tmp_path.rglob("*") if f.is_file() and key.encode() in f.read_bytes()]
    assert not leaks and key not in first.stdout + first.stderr
    again = json.loads((tmp_path / "b" / "benchmarks" / "mt_bench" / "results.json").read_text())
    assert again["judge_calls"] == 0 and again["metrics"]["score"] == m["score"]
    assert "8 cached, 0 to make" in second.stdout and "8 to make, estimated cost $" in first.stdout


def test_mt_bench_has_no_pairwise_judge(tmp_path, tiny_decoder):
    """The offline reward-model judge is pairwise: MT-Bench refuses it before generating anything."""
    p = run_cli(["+experiment=benchmark", "benchmark.names=[mt_bench]", f"benchmark.policy={tiny_decoder}",
                 "judge=offline_rm", f"paths.cache={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}", "logger=none"])
    assert p.returncode == 2 and "pairwise preferences" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "run" / "benchmarks" / "mt_bench" / "generation").exists()



# ---- tables ------------------------------------------------------------------------------------------------

def test_table_prints_raw_scores_and_says_not_measured(tmp_path):
    """A manifest's ``raw`` labels (MT-Bench's 1-10 score, counts) are printed as stored, not x100; a finished run
    without a metric (every judgment unparseable) says 'not measured', a row without a run 'missing'."""
    import yaml

    from gprl.tables import Manifest, collect, sweep_dir

    man = {"table": "t", "title": "t", "source": "s", "metrics": {"score": "mt_bench/score", "unparsed": "mt_bench/n_unparsed"},
           "raw": ["score", "unparsed"], "seeds": [0], "scales": {"offline": {"overrides": []}},
           "rows": [{"id": "a", "overrides": ["x=1"]}, {"id": "b", "overrides": ["x=2"]}, {"id": "c", "overrides": ["x=3"]}]}
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump(man))
    m = Manifest.load(f)
    for row, metrics in (("a", {"mt_bench/score": 7.25, "mt_bench/n_unparsed": 3}), ("b", {"mt_bench/n_unparsed": 160})):
        d = sweep_dir(m, "offline", next(r for r in m.rows if r.id == row), tmp_path) / "seed=0"
        d.mkdir(parents=True)
        (d / "results.json").write_text(json.dumps({"seed": 0, "metrics": metrics}))
    _, md = collect(m, "offline", tmp_path, tmp_path / "out", "cmd")
    text = md.read_text()
    assert "| a | score | — | 7.25 |" in text and "| a | unparsed | — | 3.00 |" in text
    assert "| b | score | — | not measured |" in text and "| b | unparsed | — | 160.00 |" in text
    assert "| c | score | — | missing |" in text


def test_a_benchmark_can_have_its_own_judge():
    """benchmark.judges: MT-Bench graded by a single-answer judge while the pairwise benchmarks keep ``judge``."""
    from evaluation.benchmark import for_benchmark
    from gprl import GprlError

    cfg = run_config(["+experiment=benchmark", "benchmark.outputs=x", "judge=offline_rm", "+benchmark.judges.mt_bench=hf_local_tiny"])
    assert (for_benchmark(cfg, "mt_bench").judge.kind, for_benchmark(cfg, "mt_bench").judge.model) == ("hf_local", "tiny:64x2")
    assert for_benchmark(cfg, "arena_hard").judge.name == "offline_rm" and cfg.judge.name == "offline_rm"
    bad = run_config(["+experiment=benchmark", "benchmark.outputs=x", "+benchmark.judges.mt_bench=nope"])
    with pytest.raises(GprlError, match="no judge config 'nope'"):
        for_benchmark(bad, "mt_bench")
