"""MT-Bench as FastChat's ``llm_judge`` defines it (fschat 0.2.36), single-answer grading.

``fschat``'s judge code does not install beside this project's stack (its ``llm_judge`` extra pins ``openai<1``,
while alpaca-eval needs ``openai>=1``, and its judge calls ``openai.ChatCompletion``, which openai 1.x removed), so
this module follows its protocol exactly, with its constants quoted from ``fastchat/llm_judge/common.py`` and
``gen_judgment.py`` of the fschat 0.2.36 wheel (sha256 a66ecf1e90f6db1d015096f6aa8a305d20d0a13e067951285aecdb56a33e9cb1):

- answers: the 80 questions (``../shared/data/mt_bench/question.jsonl``), two turns; the second turn's prompt is the
  conversation so far (question 1, the policy's own answer 1, question 2) through the policy's chat template;
  temperature by category (``temperature_config``: writing/roleplay 0.7, stem/humanities 0.1, the rest 0.0 =
  greedy), at most 1024 new tokens (``gen_model_answer.py --max-new-token``), one choice;
- judgments: GPT-4 at temperature 0, max_tokens 2048, with the shipped prompts (``judge_prompts.jsonl``):
  ``single-v1`` for turn 1, ``single-v1-multi-turn`` for turn 2, and ``single-math-v1`` /
  ``single-math-v1-multi-turn`` with GPT-4's reference answers (``reference_answer/gpt-4.jsonl``) for the categories
  in ``NEED_REF_CATS`` (math, reasoning, coding); system prompt then user prompt, as FastChat's ``chatgpt``
  conversation template sends them;
- rating: ``[[rating]]`` (``one_score_pattern``), else ``[rating]`` (``one_score_pattern_backup``), read with
  ``ast.literal_eval``; otherwise -1, an error that ``show_result.py`` drops: here counted and reported;
- scores as ``show_result.py --mode single``: the mean over turn-1 judgments, over turn-2 judgments and over all
  (judgments rated -1 left out), plus the mean per category.

Written beside the results, as FastChat writes them: ``model_answer/<model>.jsonl`` and
``model_judgment/<judge model>_single.jsonl``.

There is no offline MT-Bench judge: the offline reward-model judge is pairwise and MT-Bench is single-answer grading,
so no 1-10 score is made from it. Offline, ``judge=hf_local`` with a small local chat model runs the whole path (a
model that cannot follow the judge prompt gives unparseable judgments: counted, never turned into scores).
"""

from __future__ import annotations

import ast
import json
import random
import re
import time
from pathlib import Path

from gprl import GprlError
from gprl.provenance import fingerprint
from gprl.tasks.common import data_context
from evaluation import BENCHMARKS
from evaluation.benchmark import Answers, answers_for, check_empty, decoding

# fastchat/llm_judge/common.py (fschat 0.2.36), verbatim
NEED_REF_CATS = ["math", "reasoning", "coding", "arena-hard-200"]
one_score_pattern = re.compile(r"\[\[(\d+\.?\d*)\]\]")
one_score_pattern_backup = re.compile(r"\[(\d+\.?\d*)\]")
temperature_config = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0,
                      "reasoning": 0.0, "stem": 0.1, "humanities": 0.1, "arena-hard-200": 0.0}
JUDGE_MODEL = "gpt-4"  # gen_judgment.py --judge-model
JUDGE_MAX_TOKENS = 2048  # run_judge_single: chat_completion_openai(model, conv, temperature=0, max_tokens=2048)
MAX_NEW_TOKENS = 1024  # gen_model_answer.py --max-new-token
SUBSET_SEED = 123  # a benchmark.max_instances subset is the same for every policy and seed
VERSION = "mt_bench (FastChat llm_judge protocol, fschat 0.2.36)"


def file_name(name: str) -> str:
    """A model name as a file name (FastChat names files by model; a Hub or tiny-sft name has / or :)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def parse_rating(judgment: str) -> float:
    """FastChat's rule: ``[[x]]``, else ``[x]``, else -1 (an unparseable judgment)."""
    match = re.search(one_score_pattern, judgment)
    if not match:
        match = re.search(one_score_pattern_backup, judgment)
    return ast.literal_eval(match.groups()[0]) if match else -1


def load(shared: Path, max_instances: int | None = None) -> tuple[list[dict], dict[int, dict], dict[str, dict]]:
    """(questions, reference answers by question id, judge prompts by name); a fixed subset if asked."""
    d = shared / "mt_bench"
    files = [d / "question.jsonl", d / "reference_answer" / "gpt-4.jsonl", d / "judge_prompts.jsonl"]
    for f in files:
        if not f.exists():
            raise GprlError(f"missing {f} (MT-Bench's questions, GPT-4 reference answers and judge prompts; set "
                            f"paths.shared_data)")
    rows = [[json.loads(line) for line in f.read_text().splitlines() if line.strip()] for f in files]
    questions = rows[0]
    if max_instances is not None and max_instances < len(questions):
        questions = sorted(random.Random(SUBSET_SEED).sample(questions, max_instances), key=lambda q: q["question_id"])
    return questions, {r["question_id"]: r for r in rows[1]}, {r["name"]: r for r in rows[2]}


def judge_request(q: dict, turns: list[str], ref: dict | None, prompts: dict, turn: int) -> tuple[str, dict]:
    """(prompt name, chat request) for one turn's single-answer judgment, as FastChat's run_judge_single builds it."""
    math = q["category"] in NEED_REF_CATS
    name = {(False, 1): "single-v1", (True, 1): "single-math-v1", (False, 2): "single-v1-multi-turn",
            (True, 2): "single-math-v1-multi-turn"}[(math, turn)]
    template = prompts[name]
    kwargs = {}
    if math:
        if ref is None:
            raise GprlError(f"MT-Bench question {q['question_id']} ({q['category']}) has no GPT-4 reference answer")
        kwargs["ref_answer_1"] = ref["choices"][0]["turns"][0]
        if turn == 2:
            kwargs["ref_answer_2"] = ref["choices"][0]["turns"][1]
    if turn == 2:
        user = template["prompt_template"].format(question_1=q["turns"][0], question_2=q["turns"][1],
                                                  answer_1=turns[0], answer_2=turns[1], **kwargs)
    else:
        user = template["prompt_template"].format(question=q["turns"][0], answer=turns[0], **kwargs)
    messages = [{"role": "system", "content": template["system_prompt"]}, {"role": "user", "content": user}]
    return name, {"messages": messages, "temperature": 0, "max_tokens": JUDGE_MAX_TOKENS}


def shipped_answers(shared: Path, name: str) -> dict[int, list[str]]:
    """question id -> the two turns of a shipped model's answers (``mt_bench/model_answer/<name>.jsonl``) or of a
    native FastChat answer file."""
    f = Path(name)
    if not f.exists():
        f = shared / "mt_bench" / "model_answer" / f"{name}.jsonl"
    if not f.exists():
        known = sorted(p.stem for p in (shared / "mt_bench" / "model_answer").glob("*.jsonl"))
        raise GprlError(f"no MT-Bench answers {name!r}: neither a file nor a shipped model; shipped: {', '.join(known)}")
    try:
        return {r["question_id"]: r["choices"][0]["turns"] for r in
                (json.loads(line) for line in f.read_text().splitlines() if line.strip())}
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise GprlError(f"{f} is not a FastChat model_answer file (question_id, choices[0].turns): {e}") from None


def generate(cfg, answers: Answers, questions: list[dict], out: Path) -> tuple[dict[int, list[str]], dict]:
    """Both turns of the policy's answers, FastChat's way: turn 1, then turn 2 on the conversation with the policy's
    own first answer; each temperature group generated once and cached (``generation/``)."""
    from gprl.data.schema import Conversation

    base = decoding(cfg, {"max_new_tokens": MAX_NEW_TOKENS, "top_p": 1.0, "temperature": None})
    temp = lambda q: base["temperature"] if base["temperature"] is not None else temperature_config.get(q["category"], 0.7)  # noqa: E731
    texts: dict[int, list[str]] = {q["question_id"]: [] for q in questions}
    for turn in (1, 2):
        for t in sorted({temp(q) for q in questions}):
            group = [q for q in questions if temp(q) == t and len(q["turns"]) >= turn]
            if turn == 1:
                prompts = [q["turns"][0] for q in group]
            else:
                prompts = [Conversation([{"role": "user", "content": q["turns"][0]},
                                         {"role": "assistant", "content": texts[q["question_id"]][0]},
                                         {"role": "user", "content": q["turns"][1]}]) for q in group]
            if not group:
                continue
            dec = {**base, "temperature": t}
            got = answers_for(cfg, answers, prompts, dec, out / "generation" / f"turn{turn}_temperature{t}")
            for q, a in zip(group, got):
                texts[q["question_id"]].append(a)
    return texts, {**base, "temperature": base["temperature"] if base["temperature"] is not None else "by category"}


def judge_for(cfg):
    """The chat judge (``judge.models.mt_bench``, ``judge.model`` or FastChat's gpt-4); also the benchmark's preflight:
    a missing API key or a pairwise-only judge stops the run before any work."""
    from evaluation.judges.chat import build_chat_judge

    return build_chat_judge(cfg, "mt_bench", JUDGE_MODEL)


@BENCHMARKS.register("mt_bench")
def mt_bench(cfg, answers: Answers, out: Path) -> dict:
    shared = data_context(cfg).shared_data
    judge = judge_for(cfg)
    questions, refs, prompts = load(shared, cfg.benchmark.max_instances)
    if answers.outputs:
        table = shipped_answers(shared, answers.outputs)
        missing = [q["question_id"] for q in questions if q["question_id"] not in table]
        if missing:
            raise GprlError(f"{answers.outputs} has no answer to {len(missing)} MT-Bench questions (first: {missing[0]})")
        texts, dec = {q["question_id"]: list(table[q["question_id"]]) for q in questions}, {"given": answers.outputs}
    else:
        texts, dec = generate(cfg, answers, questions, out)
    (out / "model_answer").mkdir(parents=True, exist_ok=True)
    with (out / "model_answer" / f"{file_name(answers.generator)}.jsonl").open("w") as f:
        for q in questions:
            f.write(json.dumps({"question_id": q["question_id"], "answer_id": fingerprint(answers.generator, texts[q["question_id"]]),
                                "model_id": answers.generator, "choices": [{"index": 0, "turns": texts[q["question_id"]]}],
                                "tstamp": time.time()}) + "\n")
    flat = [t for q in questions for t in texts[q["question_id"]][:2]]
    empty = set(check_empty(flat, cfg, str(out / "model_answer")))
    # one judgment per (question, turn); an empty answer (benchmark.empty_outputs=lose) is rated 1 without a call
    jobs, reqs = [], []
    for qi, q in enumerate(questions):
        for turn in (1, 2):
            name, req = judge_request(q, texts[q["question_id"]], refs.get(q["question_id"]), prompts, turn)
            is_empty = (2 * qi + turn - 1) in empty
            jobs.append((q, turn, name, req, is_empty))
            if not is_empty:
                reqs.append(req)
    calls0 = len(judge.calls)
    outputs = iter(judge.judge(reqs, "MT-Bench judgments"))
    rows = []
    for q, turn, name, req, is_empty in jobs:
        text = "empty answer: rated 1 without a judge call" if is_empty else next(outputs)
        rating = 1 if is_empty else parse_rating(text)
        rows.append({"question_id": q["question_id"], "model": answers.generator, "judge": [judge.model, name],
                     "user_prompt": req["messages"][1]["content"], "judgment": text, "score": rating, "turn": turn,
                     "tstamp": time.time(), "category": q["category"]})
    (out / "model_judgment").mkdir(parents=True, exist_ok=True)
    with (out / "model_judgment" / f"{file_name(judge.model)}_single.jsonl").open("w") as f:
        for r in rows:
            f.write(json.dumps({k: v for k, v in r.items() if k != "category"}) + "\n")
    res = score(rows)
    notes = []
    if res["n_unparsed"]:
        notes.append(f"{res['n_unparsed']} of {len(rows)} judgments had no [[rating]] or [rating] (score -1) and are "
                     f"left out of the averages, as FastChat's show_result.py leaves them out")
    if empty:
        notes.append(f"{len(empty)} empty answers rated 1 without a judge call (benchmark.empty_outputs=lose)")
    if len(questions) < 80:
        notes.append(f"{len(questions)} of the 80 questions (benchmark.max_instances)")
    if judge.model != JUDGE_MODEL:
        notes.append(f"judge {judge.model}, not FastChat's GPT-4 (gpt-4): not comparable with the paper's MT-Bench")
    headline = {"score": res["score"], "turn1": res["turn1"], "turn2": res["turn2"], "n_unparsed": res["n_unparsed"],
                "n": len(rows)}
    return {"headline": headline, "metrics": res, "table_metrics": {k: v for k, v in headline.items() if v is not None},
            "n_questions": len(questions), "n_empty": len(empty), "judge_calls": len(judge.calls) - calls0,
            "judge": judge.record, "decoding": dec, "version": VERSION, "notes": notes}


mt_bench.preflight = judge_for


def score(rows: list[dict]) -> dict:
    """FastChat's show_result.py (single): means per turn and over all judgments, -1 ratings left out; per category."""
    ok = [r for r in rows if r["score"] != -1]
    mean = lambda xs: round(sum(xs) / len(xs), 4) if xs else None  # noqa: E731
    cats = sorted({r["category"] for r in rows})
    return {"score": mean([r["score"] for r in ok]), "turn1": mean([r["score"] for r in ok if r["turn"] == 1]),
            "turn2": mean([r["score"] for r in ok if r["turn"] == 2]),
            "per_category": {c: mean([r["score"] for r in ok if r["category"] == c]) for c in cats},
            "n_judgments": len(rows), "n_unparsed": len(rows) - len(ok),
            "unparsed": [[r["question_id"], r["turn"]] for r in rows if r["score"] == -1]}
