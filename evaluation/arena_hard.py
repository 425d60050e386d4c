"""Arena-Hard-Auto (v0.1; v2.0 by ``benchmark.arena_hard_version``), as arena-hard-auto judges and scores it.

arena-hard-auto is not a package, so its protocol is written here compactly, from its shipped configs
(``../shared/data/arena_hard/config/``) and its v0.1-era ``gen_judgment.py`` / ``show_result.py`` / ``utils.py``:

- answers: each question's prompt as one user turn, greedy, at most 4096 new tokens (its ``gen_answer_config``:
  temperature 0.0, max_tokens 4096);
- judgments, v0.1 (``judge_config_v0.1_with_system_prompt.yaml``): gpt-4-1106-preview, temperature 0, max_tokens 4096,
  its system prompt and prompt template, against the baseline's answers (``gpt-4-0314``) in both orders: game 1 shows
  the baseline as A and the policy as B, game 2 the reverse. The verdict is ``\\[\\[([AB<>=]+)\\]\\]``: no match asks
  the judge once more in the same conversation ("continue your judgment and finish by outputting a final verdict
  label"; ``number_of_judgment_attempts: 2``), two different labels are no verdict;
- scoring (``show_result.py``): each game is a battle between the baseline (model_a) and the policy; A>B / B>A are
  wins, A=B a tie, A>>B / B>>A strong wins counted 3 times (``--weight 3``), any other label or none is dropped
  (counted here). The Bradley-Terry model is fitted by unpenalised logistic regression over the battles (every battle
  twice, a tie as one win each way), the baseline anchored at 1000 on the Elo scale; the score is the predicted win
  rate against the baseline (%), its 95% interval the 2.5 / 97.5 percentiles over 100 bootstrap resamples of the
  battles (numpy seed 42), mapped to win rates the same way. Style control is not built.
- v2.0 (``arena-hard-v2.0.yaml``): its 500 ``hard_prompt`` questions against the shipped ``o3-mini-2025-01-31``
  answers, judge gpt-4.1, max_tokens 16000, its prompt template and both regex patterns, the same system prompt
  (arena-hard-auto's ``OG_ARENA_HARD_PROMPT``, which equals v0.1's); judged and scored with the v0.1 protocol above.
  Its 250 creative-writing questions are left out: their baseline (gemini-2.0-flash-001) is not shipped.

The offline reward-model judge (``judge=offline_rm``) can stand in as a pairwise judge, named so in every result: it
gives P(B > A) and the verdict label comes from fixed cut points (``RM_CUTS``); being skew-symmetric, its two games
mirror each other.

Written beside the results, in arena-hard-auto's formats: ``model_answer/<model>.jsonl``,
``model_judgment/<judge>/<model>.jsonl`` and ``leaderboard.csv``.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from pathlib import Path

import numpy as np
import yaml

from gprl import GprlError
from gprl.provenance import fingerprint
from gprl.tasks.common import data_context
from evaluation import BENCHMARKS
from evaluation.benchmark import Answers, answers_for, check_empty, decoding

VERSIONS = {
    "v0.1": {"dir": "arena-hard-v0.1", "baseline": "gpt-4-0314", "judge_model": "gpt-4-1106-preview",
             "config": "judge_config_v0.1_with_system_prompt.yaml", "category": None},
    "v2.0": {"dir": "arena-hard-v2.0", "baseline": "o3-mini-2025-01-31", "judge_model": "gpt-4.1",
             "config": "arena-hard-v2.0.yaml", "category": "hard_prompt"},
}
DECODING = {"max_new_tokens": 4096, "temperature": 0.0, "top_p": 1.0}
WEIGHT = 3  # show_result.py --weight: a strong verdict counts as three battles
ROUNDS = 100  # show_result.py --num-rounds
SEED = 42  # np.random.seed(42) before the bootstrap
CONTINUE = "continue your judgment and finish by outputting a final verdict label"
SUBSET_SEED = 123
RM_CUTS = (0.1, 0.4, 0.6, 0.9)  # offline judge: P(B > A) below 0.1 -> A>>B, 0.4 -> A>B, up to 0.6 -> A=B, 0.9 -> B>A, else B>>A
# game 1 shows the baseline as A: the label's winner (arena-hard's get_battles_from_judgment)
GAME1 = {"A=B": ("tie", 1), "A>B": ("model_a", 1), "A>>B": ("model_a", WEIGHT), "B>A": ("model_b", 1),
         "B>>A": ("model_b", WEIGHT)}
GAME2 = {"A=B": ("tie", 1), "B>A": ("model_a", 1), "B>>A": ("model_a", WEIGHT), "A>B": ("model_b", 1),
         "A>>B": ("model_b", WEIGHT)}


def settings(shared: Path, version: str) -> dict:
    """The version's judge settings from its shipped config (system prompt, template, patterns, decoding)."""
    v = VERSIONS[version]
    root = shared / "arena_hard"
    f = root / "config" / v["config"]
    if not f.exists():
        raise GprlError(f"missing {f} (Arena-Hard's judge config; set paths.shared_data)")
    conf = yaml.safe_load(f.read_text())
    system = conf.get("system_prompt")
    if system is None:  # v2.0's config leaves it to the code: OG_ARENA_HARD_PROMPT, v0.1's system prompt
        system = yaml.safe_load((root / "config" / VERSIONS["v0.1"]["config"]).read_text())["system_prompt"]
    template = conf["prompt_template"]
    template = template[0] if isinstance(template, list) else template
    patterns = conf.get("regex_patterns") or [conf["regex_pattern"]]
    return {"system_prompt": system, "template": template, "patterns": patterns[:1] if version == "v0.1" else patterns,
            "temperature": float(conf.get("temperature", 0)), "max_tokens": int(conf["max_tokens"]),
            "attempts": int(conf.get("number_of_judgment_attempts", 2)), "baseline": v["baseline"],
            "judge_model": conf.get("judge_model", v["judge_model"]), "config": str(f)}


def user_prompt(template: str, question: str, answer_a: str, answer_b: str) -> str:
    """The judge's user turn: v0.1's ``{question_1} {answer_1} {answer_2}`` or v2.0's ``{QUESTION} {ANSWER_A} {ANSWER_B}``."""
    return template.format(question_1=question, answer_1=answer_a, answer_2=answer_b, QUESTION=question,
                           ANSWER_A=answer_a, ANSWER_B=answer_b)


def get_score(judgment: str, patterns: list[str]) -> tuple[str | None, bool]:
    """(label, try again): arena-hard's get_score over the first pattern that matches; no match -> (None, True), two
    different labels -> (None, False)."""
    for pattern in patterns:
        matches = [m for m in re.findall(pattern, judgment) if m != ""]
        if len(set(matches)) == 1:
            return matches[0].strip("\n"), False
        if len(set(matches)) > 1:
            return None, False
    return None, True


def load(shared: Path, version: str, max_instances: int | None) -> tuple[list[dict], dict[str, str]]:
    """(questions, baseline answer by uid) of the version; a fixed subset if asked."""
    v = VERSIONS[version]
    d = shared / "arena_hard" / v["dir"]
    qf, af = d / "question.jsonl", d / "model_answer" / f"{v['baseline']}.jsonl"
    for f in (qf, af):
        if not f.exists():
            raise GprlError(f"missing {f} (Arena-Hard {version}'s questions and baseline answers; set paths.shared_data)")
    questions = [json.loads(line) for line in qf.read_text().splitlines() if line.strip()]
    if v["category"]:
        questions = [q for q in questions if q["category"] == v["category"]]
    if max_instances is not None and max_instances < len(questions):
        keep = {q["uid"] for q in random.Random(SUBSET_SEED).sample(questions, max_instances)}
        questions = [q for q in questions if q["uid"] in keep]
    return questions, shipped_answers(af)


def shipped_answers(f: Path) -> dict[str, str]:
    """uid -> answer text of an arena-hard-auto model_answer file (``messages[-1].content`` is ``{"answer": ...}`` or text)."""
    out = {}
    try:
        for line in f.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                c = r["messages"][-1]["content"]
                out[r["uid"]] = c["answer"] if isinstance(c, dict) else c
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise GprlError(f"{f} is not an arena-hard-auto model_answer file (uid, messages[-1].content): {e}") from None
    return out


# ---- scoring: show_result.py / utils.py ----------------------------------------------------------------------

def battles(judgments: list[dict], baseline: str, weight: int = WEIGHT) -> tuple[list[dict], int]:
    """(battles, games dropped) from model_judgment rows (``model``, ``games`` [game 1, game 2] with ``score`` labels)."""
    g1 = {**GAME1, "A>>B": ("model_a", weight), "B>>A": ("model_b", weight)}
    g2 = {**GAME2, "B>>A": ("model_a", weight), "A>>B": ("model_b", weight)}
    out, dropped = [], 0
    for row in judgments:
        for table, game in zip((g1, g2), row["games"]):
            if game is None or game.get("score") not in table:
                dropped += 1
                continue
            winner, n = table[game["score"]]
            out += [{"model_a": baseline, "model_b": row["model"], "winner": winner}] * n
    return out, dropped


def compute_mle_elo(df, baseline: str, scale: float = 400, base: float = 10, init: float = 1000):
    """arena-hard-auto's compute_mle_elo: Bradley-Terry by logistic regression without penalty (sklearn's
    ``C=inf``, its ``penalty=None``), each battle twice, a tie as one win each way, the baseline anchored at 1000; one
    outcome class only (possible in a small resample) as its later utils.py handles it: the winner gets +scale."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    models = pd.concat([df["model_a"], df["model_b"]]).unique()
    models = pd.Series(np.arange(len(models)), index=models)
    df = pd.concat([df, df], ignore_index=True)
    n = df.shape[0]
    X = np.zeros([n, len(models)])
    X[np.arange(n), models[df["model_a"]]] = +math.log(base)
    X[np.arange(n), models[df["model_b"]]] = -math.log(base)
    Y = np.zeros(n)
    Y[(df["winner"] == "model_a").to_numpy()] = 1.0
    tie = ((df["winner"] == "tie") | (df["winner"] == "tie (bothbad)")).to_numpy().copy()
    tie[len(tie) // 2:] = False
    Y[tie] = 1.0
    if len(np.unique(Y)) < 2:
        elo = pd.Series(init, index=models.index, dtype=float)
        elo[df["model_a"].iloc[0] if np.all(Y == 1.0) else df["model_b"].iloc[0]] += scale
    else:
        lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-8)
        lr.fit(X, Y)
        elo = pd.Series(scale * lr.coef_[0] + init, index=models.index)
    if baseline in elo.index:
        elo += 1000 - elo[baseline]
    return elo


def win_rate(elo_model: float, elo_baseline: float, scale: float = 400, base: float = 10) -> float:
    """predict_win_rate against the baseline, in %, rounded as get_win_rate_column rounds it."""
    return round(100 / (1 + base ** ((elo_baseline - elo_model) / scale)), 2)


def score_battles(rows: list[dict], baseline: str, model: str, rounds: int = ROUNDS, seed: int = SEED) -> dict:
    """The leaderboard line of ``model``: score (win rate vs the baseline, %) and its 95% bootstrap interval."""
    import pandas as pd

    if not rows:
        return {"score": None, "lower": None, "upper": None, "n_battles": 0}
    df = pd.DataFrame(rows)
    elo = compute_mle_elo(df, baseline)
    np.random.seed(seed)  # show_result.py; pandas' sample draws from numpy's global generator
    boot = [compute_mle_elo(df.sample(frac=1.0, replace=True), baseline) for _ in range(rounds)]
    lo = np.percentile([b.get(model, np.nan) for b in boot], 2.5)
    hi = np.percentile([b.get(model, np.nan) for b in boot], 97.5)
    return {"score": win_rate(elo[model], 1000), "lower": win_rate(lo, 1000), "upper": win_rate(hi, 1000),
            "elo": round(float(elo[model]), 2), "n_battles": len(rows)}


# ---- the benchmark -----------------------------------------------------------------------------------------

def judge_for(cfg):
    """A chat judge (API / hf_local: ``judge.models.arena_hard[_v2]``, ``judge.model`` or the version's own judge), or
    the offline reward-model judge as a pairwise stand-in; also the preflight before any work."""
    if cfg.judge.kind == "reward_model":
        return None
    from evaluation.judges.chat import build_chat_judge

    v = cfg.benchmark.arena_hard_version
    key = "arena_hard_v2" if v == "v2.0" and "arena_hard_v2" in (cfg.judge.models or {}) else "arena_hard"
    return build_chat_judge(cfg, key, VERSIONS[v]["judge_model"])


def judge_games(judge, conf: dict, games: list[tuple[str, str, str]], desc: str) -> list[dict]:
    """One judged game per (question, answer A, answer B): {user_prompt, judgment, score} as gen_judgment writes it,
    with arena-hard's second attempt for judgments without a verdict."""
    convs = [[{"role": "system", "content": conf["system_prompt"]},
              {"role": "user", "content": user_prompt(conf["template"], q, a, b)}] for q, a, b in games]
    texts = [""] * len(games)
    labels: list[str | None] = [None] * len(games)
    todo = list(range(len(games)))
    for attempt in range(conf["attempts"]):
        if not todo:
            break
        outs = judge.judge([{"messages": convs[i], "temperature": conf["temperature"], "max_tokens": conf["max_tokens"]}
                            for i in todo], desc + ("" if attempt == 0 else f" (attempt {attempt + 1})"))
        again = []
        for i, new in zip(todo, outs):
            texts[i] += "\n" + new
            labels[i], retry = get_score(texts[i], conf["patterns"])
            convs[i] = convs[i] + [{"role": "assistant", "content": new}]
            if retry:
                convs[i] = convs[i] + [{"role": "user", "content": CONTINUE}]
                again.append(i)
        todo = again
    return [{"user_prompt": c[1]["content"], "judgment": t, "score": s} for c, t, s in zip(convs, texts, labels)]


def rm_games(cfg, games: list[tuple[str, str, str]]) -> list[dict]:
    """The offline reward-model judge on each game: P(B > A) and the label its cut points give."""
    from evaluation.judges.reward_model import judge_dir, load, preferences

    if not games:
        return []
    model = load(judge_dir(cfg))
    probs = [p - 1 for p in preferences(model, *map(list, zip(*games)), batch_size=cfg.judge.batch_size,
                                        desc="Arena-Hard offline judge")]
    return [{"user_prompt": None, "judgment": f"offline reward-model judge: P(B > A) = {p:.4f}", "score": rm_label(p)}
            for p in probs]


def rm_label(p: float) -> str:
    a, b, c, d = RM_CUTS
    return "A>>B" if p < a else "A>B" if p < b else "A=B" if p <= c else "B>A" if p < d else "B>>A"


@BENCHMARKS.register("arena_hard")
def arena_hard(cfg, answers: Answers, out: Path) -> dict:
    shared = data_context(cfg).shared_data
    version = cfg.benchmark.arena_hard_version
    judge = judge_for(cfg)
    conf = settings(shared, version)
    questions, base = load(shared, version, cfg.benchmark.max_instances)
    baseline = conf["baseline"]
    prompts = [q["prompt"] for q in questions]
    if answers.outputs:
        f = Path(answers.outputs)
        f = f if f.exists() else shared / "arena_hard" / VERSIONS[version]["dir"] / "model_answer" / f"{answers.outputs}.jsonl"
        if not f.exists():
            raise GprlError(f"no Arena-Hard {version} answers {answers.outputs!r}: neither a file nor a shipped model")
        table = shipped_answers(f)
        missing = [q["uid"] for q in questions if q["uid"] not in table]
        if missing:
            raise GprlError(f"{f} has no answer to {len(missing)} of {len(questions)} questions (first: {missing[0]})")
        texts, dec = [table[q["uid"]] for q in questions], {"given": answers.outputs}
    else:
        dec = decoding(cfg, DECODING)
        texts = answers_for(cfg, answers, prompts, dec, out / "generation" / "answers")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", answers.generator)
    (out / "model_answer").mkdir(parents=True, exist_ok=True)
    with (out / "model_answer" / f"{name}.jsonl").open("w") as fh:
        for q, t in zip(questions, texts):
            fh.write(json.dumps({"uid": q["uid"], "ans_id": fingerprint(answers.generator, t), "model": answers.generator,
                                 "messages": [{"role": "user", "content": q["prompt"]},
                                              {"role": "assistant", "content": {"answer": t}}],
                                 "tstamp": time.time()}) + "\n")
    empty = set(check_empty(texts, cfg, str(out / "model_answer")))
    live = [i for i in range(len(questions)) if i not in empty]
    games = [(prompts[i], base[questions[i]["uid"]], texts[i]) for i in live]  # game 1: baseline is A
    games += [(prompts[i], texts[i], base[questions[i]["uid"]]) for i in live]  # game 2: the policy is A
    calls0 = len(judge.calls) if judge else 0
    judged = (judge_games(judge, conf, games, f"Arena-Hard {version} judgments") if judge else rm_games(cfg, games))
    by_q = {i: [judged[k], judged[k + len(live)]] for k, i in enumerate(live)}
    judge_name = judge.model if judge else f"offline_rm ({cfg.judge.name}, pairwise stand-in)"
    rows = []
    for i, q in enumerate(questions):
        g = by_q.get(i) or [{"user_prompt": None, "judgment": "empty answer: a loss without a judge call", "score": "A>>B"},
                            {"user_prompt": None, "judgment": "empty answer: a loss without a judge call", "score": "B>>A"}]
        rows.append({"uid": q["uid"], "category": q["category"], "judge": judge_name, "model": answers.generator,
                     "games": g, "tstamp": time.time()})
    jdir = out / "model_judgment" / re.sub(r"[^A-Za-z0-9._-]+", "_", judge_name)
    jdir.mkdir(parents=True, exist_ok=True)
    with (jdir / f"{name}.jsonl").open("w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    bts, dropped = battles(rows, baseline)
    res = score_battles(bts, baseline, answers.generator)
    if res["score"] is None:
        raise GprlError(f"the judge {cfg.judge.name!r} gave no verdict label for any of {2 * len(questions)} games")
    ci = f"(-{res['score'] - res['lower']:.2f}, +{res['upper'] - res['score']:.2f})"
    avg_tokens = round(float(np.mean([len(t.split()) for t in texts])), 1)
    with (out / "leaderboard.csv").open("w") as fh:
        fh.write("model,score,rating_q025,rating_q975,CI,avg_words,date\n")
        fh.write(f"{answers.generator},{res['score']},{res['lower']},{res['upper']},\"{ci}\",{avg_tokens},"
                 f"{time.strftime('%Y-%m-%d')}\n")
    labels = {}
    for r in rows:
        for g in r["games"]:
            labels[str(g["score"])] = labels.get(str(g["score"]), 0) + 1
    notes = []
    if dropped:
        notes.append(f"{dropped} of {2 * len(questions)} games had no usable verdict label and are left out of the "
                     f"battles, as show_result.py drops them")
    if empty:
        notes.append(f"{len(empty)} empty answers scored as strong losses in both games without a judge call")
    full = 500
    if len(questions) < full:
        notes.append(f"{len(questions)} of the {full} questions (benchmark.max_instances)")
    if not judge:
        notes.append("offline reward-model judge as a pairwise stand-in (labels from P(B > A) at fixed cut points): a "
                     "pipeline check, not comparable with GPT-4-turbo numbers")
    elif judge.model != conf["judge_model"]:
        notes.append(f"judge {judge.model}, not Arena-Hard {version}'s {conf['judge_model']}: not comparable with its leaderboard")
    headline = {"score": res["score"], "ci_lower": res["lower"], "ci_upper": res["upper"], "n_dropped": dropped,
                "n_games": 2 * len(questions)}
    table = {"score": res["score"] / 100, "ci_lower": res["lower"] / 100, "ci_upper": res["upper"] / 100,
             "n_dropped": dropped}
    return {"headline": headline, "metrics": {**res, "labels": labels, "avg_words": avg_tokens}, "table_metrics": table,
            "n_questions": len(questions), "n_empty": len(empty), "judge_calls": (len(judge.calls) - calls0) if judge else 0,
            "judge": judge.record if judge else {"kind": "reward_model", "name": cfg.judge.name, "as": "pairwise stand-in",
                                                 "cuts": list(RM_CUTS)},
            "baseline": baseline, "arena_hard_version": version, "judge_settings": {k: v for k, v in conf.items() if k != "system_prompt"},
            "decoding": dec, "version": f"arena-hard-auto {version} (protocol of its v0.1-era scripts)", "notes": notes}


arena_hard.preflight = judge_for
