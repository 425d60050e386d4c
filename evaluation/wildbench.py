"""WildBench v2: WB-Score and WB-Reward, as the WildBench repository computes them (allenai/WildBench: ``src/eval.py``
composes the judge prompts, ``src/openai_batch_eval/batch_results_format.py`` parses them,
``leaderboard/data_dir/_create_tables.py`` scores them). WildBench is not a package; its protocol is written here.

- tasks: ``allenai/WildBench`` (config ``v2``, split ``test``, 1,024 tasks; Hub only). Offline,
  ``benchmark.wildbench_tasks=local`` reads ``evaluation/data/wildbench_v2_local.jsonl``: 6 tasks in the same format
  written for this project (conversations, checklists, tags and a hand-written reference answer each), which
  exercise the whole path and measure nothing;
- answers: the whole conversation through the policy's chat template, greedy, at most 4096 new tokens [UNVERIFIED:
  WildBench's inference scripts set decoding per model];
- WB-Score: ``eval_template.score.v2.md`` (shipped) with the history (``USER: ...`` / ``ASSISTANT: ...``), the last
  query, the answer and the checklist as ``- item`` lines, each text cut to its first 1,000 words
  (``--max_words_to_eval 1000``: ``... (truncated)``); one user message, temperature 0, max_tokens 1024, JSON mode;
  the judge's JSON ``score``. An empty answer scores 1 without a call. WB-Score = (mean - 5) x 2 x 10; the task macro
  = the weighted mean of the five task groups' (mean - 5) x 2 x 10 (weights 0.5 creative, 1.25 planning & reasoning,
  1 math & data, 0.75 information seeking, 1.25 coding: ``weights_by_task``, over the sum of all five); judge GPT-4o
  (its v2 leaderboard);
- WB-Reward: ``eval_template.pairwise.v2.md`` against each reference model's answer (default its three:
  gpt-4-turbo-2024-04-09, claude-3-haiku-20240307, Llama-2-70b-chat-hf, from ``WildEval/WildBench-Results-V2.0522``;
  offline, the local file's own reference), A/B order drawn by ``random.seed(42); random.random() < 0.5`` per task in
  order, judge GPT-4-turbo; ``choice`` A++/A+/A=B/B+/B++ -> much better/better/tie. Reward per task +1 / +0.5 / 0 /
  -0.5 / -1, with the length penalty: a slight win (loss) whose winner's answer is more than K characters longer than
  the loser's (``benchmark.wildbench_k``, 500) is a tie. Lengths are those of the answers as batch_results_format.py cuts
  them out of the prompt (so B's includes its ``<|begin_of_response_B|>`` marker: 24 characters more than A's, a quirk
  kept). WB-Reward = 100 x the mean reward; the mixture is the mean over references. (_create_tables.py also means to
  leave answers cut at 1,000 words or empty out of both scores, but tests the cut-out text, which ends in blank lines,
  so the test never fires; it is kept as it runs.)
- parsing: ``json.loads`` of the judge's text (JSON mode); for judges without JSON mode the text between its first ``{``
  and last ``}`` is tried as well [OURS]; a judgment without a valid ``score`` / ``choice`` is counted and left out,
  as batch_results_format.py skips it.

The offline reward-model judge serves WB-Reward as a pairwise stand-in (named so; the label from P(B > A) at
``arena_hard.RM_CUTS``); WB-Score needs a judge that grades one answer, so it is not computed with it.

Written beside the results: ``model_outputs.json`` (WildBench's inference output format), ``score.json`` and
``pairwise-<reference>.json`` (the judged items as batch_results_format.py writes them).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from gprl import GprlError
from gprl.tasks.common import data_context, write_json
from evaluation import BENCHMARKS
from evaluation.benchmark import Answers, answers_for, check_empty, decoding

HUB = ("allenai/WildBench", "v2", "test")
RESULTS_HUB = "WildEval/WildBench-Results-V2.0522"  # reference models' answers (one config per model, split train)
LOCAL = Path(__file__).parent / "data" / "wildbench_v2_local.jsonl"
REFERENCES = {"gpt-4-turbo-2024-04-09": "gpt4t", "claude-3-haiku-20240307": "haiku", "Llama-2-70b-chat-hf": "llama"}
JUDGES = {"wildbench_score": "gpt-4o-2024-05-13", "wildbench_reward": "gpt-4-turbo-2024-04-09"}
DECODING = {"max_new_tokens": 4096, "temperature": 0.0, "top_p": 1.0}
MAX_WORDS = 1000
JUDGE_MAX_TOKENS = 1024
SEED = 42
SUBSET_SEED = 123
TRUNCATED = "... (truncated)"
EMPTY = "[This model response is empty.]"
TASK_GROUP = {"Information seeking": "Information/Advice seeking", "Creative Writing": "Creative Tasks",
              "Coding & Debugging": "Coding & Debugging", "Reasoning": "Planning & Reasoning", "Editing": "Creative Tasks",
              "Math": "Math & Data Analysis", "Planning": "Planning & Reasoning", "Brainstorming": "Creative Tasks",
              "Role playing": "Creative Tasks", "Advice seeking": "Information/Advice seeking",
              "Data Analysis": "Math & Data Analysis", "Others": "Creative Tasks"}
WEIGHTS = {"Creative Tasks": 0.5, "Planning & Reasoning": 1.25, "Math & Data Analysis": 1,
           "Information/Advice seeking": 0.75, "Coding & Debugging": 1.25}
CHOICES = {"A=B": ("tie", 0), "A+": ("A", 1), "A++": ("A", 2), "B+": ("B", 1), "B++": ("B", 2)}
VERSION = "WildBench v2 (protocol of its src/eval.py, batch_results_format.py, _create_tables.py)"


# ---- tasks and prompts ---------------------------------------------------------------------------------------

def load_tasks(cfg) -> tuple[list[dict], str]:
    """(tasks, source): the Hub's v2 test split, the committed local file, or a jsonl of the same format."""
    name = cfg.benchmark.wildbench_tasks
    f = LOCAL if name == "local" else Path(name)
    if name == "local" or f.suffix == ".jsonl" or f.exists():
        if not f.exists():
            raise GprlError(f"benchmark.wildbench_tasks: no file {f}")
        rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        source = f"local file {f.name} (made by this project)" if f == LOCAL else str(f)
    else:
        try:
            from datasets import load_dataset

            rows = list(load_dataset(name, HUB[1], split=HUB[2]))
        except Exception as e:  # offline, or no such dataset: one line
            raise GprlError(f"WildBench tasks {name!r} (config {HUB[1]}) could not be loaded from the Hub "
                            f"({type(e).__name__}); offline use benchmark.wildbench_tasks=local") from None
        source = f"{name} ({HUB[1]}, {HUB[2]})"
    for i, r in enumerate(rows):
        missing = [k for k in ("session_id", "conversation_input", "checklist", "primary_tag", "secondary_tags") if k not in r]
        if missing:
            raise GprlError(f"WildBench task {i} of {source} lacks {', '.join(missing)}")
    n = cfg.benchmark.max_instances
    if n is not None and n < len(rows):
        keep = {r["session_id"] for r in random.Random(SUBSET_SEED).sample(rows, n)}
        rows = [r for r in rows if r["session_id"] in keep]
    return rows, source


def history_and_query(task: dict) -> tuple[str, str]:
    """compose_eval_item: earlier turns as ``USER: ...`` / ``ASSISTANT: ...`` paragraphs, and the last user turn."""
    history = ""
    for x in task["conversation_input"][:-1]:
        if x["role"] == "user":
            history += "USER: " + x["content"] + "\n\n"
        elif x["role"] == "assistant":
            history += "ASSISTANT: " + x["content"] + "\n\n"
    return history, task["conversation_input"][-1]["content"]


def shorten(text: str, k: int = MAX_WORDS) -> str:
    if k > 0 and len(text.split(" ")) > k:
        text = " ".join(text.split(" ")[:k]) + TRUNCATED
    return text


def checklist_markdown(checklist: list[str]) -> str:
    return "".join(f"- {c}\n" for c in checklist)


def score_prompt(template: str, task: dict, output: str) -> str:
    history, query = history_and_query(task)
    return (template.replace("{$history}", shorten(history)).replace("{$user_query}", shorten(query))
            .replace("{$model_output}", shorten(output)).replace("{$checklist}", checklist_markdown(task["checklist"])))


def pairwise_prompt(template: str, task: dict, a: str, b: str) -> str:
    history, query = history_and_query(task)
    a, b = shorten(a), shorten(b)
    return (template.replace("{$history}", shorten(history)).replace("{$user_query}", shorten(query))
            .replace("{$candidate_A}", a if a.strip() else EMPTY).replace("{$candidate_B}", b if b.strip() else EMPTY)
            .replace("{$checklist}", checklist_markdown(task["checklist"])))


def output_in_prompt(prompt: str) -> str:
    """The answer as batch_results_format.py cuts it out of a WB-Score prompt."""
    return prompt.split("<|begin_of_response|>\n")[1].split("<|end_of_response|>\n")[0]


def outputs_in_prompt(prompt: str) -> tuple[str, str]:
    """The two answers as batch_results_format.py cuts them out of the prompt (their lengths feed the K penalty)."""
    a = prompt.split("<|begin_of_response_A|>\n")[1].split("<|end_of_response_A|>\n")[0]
    b = prompt.split("## Response B\n")[1].split("<|end_of_response_B|>\n")[0]
    return a, b


def parse(text: str, key: str):
    """The judge's JSON (WildBench's json.loads; [OURS] the first {...last} span for judges without JSON mode) -> its
    ``key``, or None."""
    for s in (text.strip(), text[text.find("{"):text.rfind("}") + 1] if "{" in text else ""):
        try:
            got = json.loads(s)
        except ValueError:
            continue
        if isinstance(got, dict) and key in got:
            return got[key]
    return None


# ---- scoring: _create_tables.py ------------------------------------------------------------------------------

def groups(task: dict) -> list[str]:
    tags = [task["primary_tag"]] + list(task["secondary_tags"])
    unknown = [t for t in tags if t not in TASK_GROUP]
    if unknown:
        raise GprlError(f"WildBench task {task['session_id']}: unknown tag(s) {unknown}; known: {', '.join(TASK_GROUP)}")
    return sorted({TASK_GROUP[t] for t in tags})


def wb_score(items: list[dict]) -> dict:
    """items: {score (float), model_output (as shown to the judge), groups}. WB-Score and its task macro, x10 as the
    leaderboard prints them."""
    scores = [it["score"] for it in items]
    per: dict[str, list[float]] = {}
    for it in items:
        out = it["model_output"]
        if out.endswith(TRUNCATED) or len(out) == 0:
            continue
        for g in it["groups"]:
            per.setdefault(g, []).append(it["score"])
    cat = {g: (sum(v) / len(v) - 5) * 2 for g, v in per.items()}
    macro = task_macro(cat)
    mean = sum(scores) / len(scores)
    return {"wb_score": (mean - 5) * 2 * 10, "wb_score_task_macro": macro * 10, "raw_score": mean,
            "per_group": {g: v * 10 for g, v in sorted(cat.items())}, "n": len(scores)}


def task_macro(per_group: dict[str, float]) -> float:
    """_create_tables.py: the weighted sum over the groups present / the sum of all five weights."""
    return sum(per_group[g] * WEIGHTS[g] for g in per_group) / sum(WEIGHTS.values())


def wb_reward(items: list[dict], k: int) -> dict:
    """items: {winner ('test' | 'ref' | 'tie'), extent (0-2), test_len, ref_len, skip (an answer cut or empty), groups}
    -> counts and WB-Reward (x100) with the length penalty K (-1: none)."""
    counts = {"win_much": 0, "win": 0, "tie": 0, "lose": 0, "lose_much": 0}
    per: dict[str, dict] = {}
    for it in items:
        if it["skip"]:
            continue
        if it["winner"] == "test":
            label = "win_much" if it["extent"] == 2 else ("tie" if k >= 0 and it["test_len"] > it["ref_len"] + k else "win")
        elif it["winner"] == "ref":
            label = "lose_much" if it["extent"] == 2 else ("tie" if k >= 0 and it["ref_len"] > it["test_len"] + k else "lose")
        else:
            label = "tie"
        counts[label] += 1
        for g in it["groups"]:
            per.setdefault(g, {c: 0 for c in counts})[label] += 1
    value = lambda c: (c["win"] * 0.5 + c["win_much"] - c["lose"] * 0.5 - c["lose_much"])  # noqa: E731
    total = len(items)
    per_group = {g: value(c) / sum(c.values()) for g, c in per.items()}
    return {**counts, "total": total, "reward": 100 * value(counts) / total if total else None,
            "task_macro_reward": 100 * task_macro(per_group) if per_group else None, "K": k}


# ---- the benchmark -----------------------------------------------------------------------------------------

def judges_for(cfg) -> tuple:
    """(score judge or None, reward judge or None = the offline reward-model stand-in); the preflight too."""
    if cfg.judge.kind == "reward_model":
        return None, None
    from evaluation.judges.chat import build_chat_judge

    return (build_chat_judge(cfg, "wildbench_score", JUDGES["wildbench_score"]),
            build_chat_judge(cfg, "wildbench_reward", JUDGES["wildbench_reward"]))


def reference_answers(cfg, tasks: list[dict], local: bool) -> dict[str, dict[str, str]]:
    """reference name -> session_id -> answer: a name in the tasks' own ``references`` is read there, any other from
    the Hub's results dataset."""
    names = cfg.benchmark.wildbench_references
    if names is None:
        names = sorted({k for t in tasks for k in (t.get("references") or {})}) if local else list(REFERENCES)
    out = {}
    for name in names:
        own = {t["session_id"]: (t.get("references") or {}).get(name) for t in tasks}
        if all(v is not None for v in own.values()):
            out[name] = own
            continue
        try:
            from datasets import load_dataset

            rows = load_dataset(RESULTS_HUB, name, split="train")
        except Exception as e:
            raise GprlError(f"WildBench reference {name!r}: not in the tasks' references and not loadable from "
                            f"{RESULTS_HUB} ({type(e).__name__})") from None
        got = {r["session_id"]: (r["output"][0] if isinstance(r["output"], list) else r["output"]) for r in rows}
        missing = [t["session_id"] for t in tasks if t["session_id"] not in got]
        if missing:
            raise GprlError(f"WildBench reference {name!r} has no answer for {len(missing)} tasks")
        out[name] = got
    return out


@BENCHMARKS.register("wildbench")
def wildbench(cfg, answers: Answers, out: Path) -> dict:
    shared = data_context(cfg).shared_data
    score_judge, reward_judge = judges_for(cfg)
    tasks, source = load_tasks(cfg)
    local = source.startswith("local") or Path(cfg.benchmark.wildbench_tasks).exists()
    templates = {}
    for mode in ("score", "pairwise"):
        f = shared / "wildbench" / f"eval_template.{mode}.v2.md"
        if not f.exists():
            raise GprlError(f"missing {f} (WildBench's judge templates; set paths.shared_data)")
        templates[mode] = f.read_text()
    refs = reference_answers(cfg, tasks, local)
    from gprl.data.schema import make_prompt

    prompts = [make_prompt([{"role": m["role"], "content": m["content"]} for m in t["conversation_input"]],
                           f"WildBench task {t['session_id']}") for t in tasks]
    if answers.outputs:
        rows = json.loads(Path(answers.outputs).read_text()) if Path(answers.outputs).exists() else None
        if rows is None:
            raise GprlError(f"no WildBench answers file {answers.outputs!r} (WildBench's inference output: a JSON list "
                            f"of {{session_id, output}})")
        table = {r["session_id"]: (r["output"][0] if isinstance(r["output"], list) else r["output"]) for r in rows}
        texts, dec = [table[t["session_id"]] for t in tasks], {"given": answers.outputs}
    else:
        dec = decoding(cfg, DECODING)
        texts = answers_for(cfg, answers, prompts, dec, out / "generation" / "answers")
    write_json(out / "model_outputs.json", [{"session_id": t["session_id"], "chat_history": [m["content"] for m in t["conversation_input"]],
                                             "output": [o], "generator": answers.generator} for t, o in zip(tasks, texts)])
    empty = set(check_empty(texts, cfg, str(out / "model_outputs.json")))
    notes, res, unparsed = [], {}, {}
    calls0 = sum(len(j.calls) for j in (score_judge, reward_judge) if j)
    # WB-Score
    if score_judge is not None:
        reqs = [{"messages": [{"role": "user", "content": score_prompt(templates["score"], t, o)}], "temperature": 0,
                 "max_tokens": JUDGE_MAX_TOKENS, "response_format": {"type": "json_object"}} for t, o in zip(tasks, texts)]
        live = [i for i in range(len(tasks)) if i not in empty]
        got = dict(zip(live, score_judge.judge([reqs[i] for i in live], "WB-Score judgments")))
        items, judged = [], []
        for i, t in enumerate(tasks):
            text = got.get(i, json.dumps({"strengths": "N/A", "weaknesses": "The model output is empty.", "score": "1"}))
            s = parse(text, "score")
            try:
                s = float(s)
            except (TypeError, ValueError):
                s = None
            shown = output_in_prompt(reqs[i]["messages"][0]["content"])
            judged.append({"session_id": t["session_id"], "model_test": answers.generator, "result": text, "score": s,
                           "model_output": shown})
            if s is not None:
                items.append({"score": s, "model_output": shown, "groups": groups(t)})
        write_json(out / "score.json", judged)
        unparsed["score"] = len(tasks) - len(items)
        if items:
            res["score"] = wb_score(items)
    else:
        notes.append("WB-Score not computed: the offline reward-model judge compares two answers and cannot grade one")
    # WB-Reward, one reference at a time (each with its own seeded A/B draws, as one eval.py run per reference)
    k = cfg.benchmark.wildbench_k
    res["reward"] = {}
    for name, ref in refs.items():
        rng = random.Random(SEED)
        jobs = []
        for i, t in enumerate(tasks):
            o, r = texts[i], ref[t["session_id"]]
            test_is_a = rng.random() < 0.5
            a, b = (o, r) if test_is_a else (r, o)
            prompt = pairwise_prompt(templates["pairwise"], t, a, b)
            fixed = ("A=B" if not a.strip() and not b.strip() else "B++" if not a.strip() else "A++" if not b.strip() else None)
            jobs.append((t, test_is_a, prompt, fixed, shorten(a), shorten(b)))
        live = [j for j, job in enumerate(jobs) if job[3] is None]
        if reward_judge is not None:
            outs = reward_judge.judge([{"messages": [{"role": "user", "content": jobs[j][2]}], "temperature": 0,
                                        "max_tokens": JUDGE_MAX_TOKENS, "response_format": {"type": "json_object"}}
                                       for j in live], f"WB-Reward judgments vs {name}")
            choices = dict(zip(live, [parse(x, "choice") for x in outs]))
            texts_by = dict(zip(live, outs))
        else:
            choices, texts_by = rm_choices(cfg, [(history_and_query(jobs[j][0])[1], jobs[j][4], jobs[j][5]) for j in live], live)
        items, judged = [], []
        for j, (t, test_is_a, prompt, fixed, a, b) in enumerate(jobs):
            choice = fixed or choices.get(j)
            text = texts_by.get(j, json.dumps({"choice": fixed}))
            if choice not in CHOICES:
                judged.append({"session_id": t["session_id"], "result": text, "parsed": False})
                continue
            side, extent = CHOICES[choice]
            winner = "tie" if side == "tie" else ("test" if (side == "A") == test_is_a else "ref")
            la, lb = outputs_in_prompt(prompt)
            test_out, ref_out = (la, lb) if test_is_a else (lb, la)
            skip = any(x.endswith(TRUNCATED) or x == EMPTY for x in (test_out, ref_out))  # as it runs: never (see above)
            items.append({"winner": winner, "extent": extent, "test_len": len(test_out), "ref_len": len(ref_out),
                          "skip": skip, "groups": groups(t)})
            judged.append({"session_id": t["session_id"], "model_A": answers.generator if test_is_a else name,
                           "model_B": name if test_is_a else answers.generator, "choice": choice, "winner": winner,
                           "extent": extent, "result": text, "parsed": True})
        write_json(out / f"pairwise-{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}.json", judged)
        unparsed[f"reward/{name}"] = len(tasks) - len(items)
        if items:
            res["reward"][name] = wb_reward(items, k)
    rewards = [v["reward"] for v in res["reward"].values()]
    if rewards:
        res["mixture_of_rewards"] = sum(rewards) / len(rewards)
    n_unparsed = sum(unparsed.values())
    if n_unparsed:
        notes.append(f"{n_unparsed} judgments without a valid JSON score/choice are left out ({unparsed}), as "
                     f"batch_results_format.py skips them")
    if len(tasks) < 1024:
        notes.append(f"{len(tasks)} tasks from {source}" + (" (benchmark.max_instances)" if not local else
                                                            ": a pipeline check, not WildBench's 1,024"))
    if set(refs) - set(REFERENCES):
        notes.append(f"WB-Reward against {', '.join(sorted(set(refs) - set(REFERENCES)))} (the tasks' own reference "
                     f"answers), not WildBench's three reference models")
    if reward_judge is None:
        notes.append("WB-Reward judged by the offline reward-model judge as a pairwise stand-in (labels from P(B > A) at "
                     "fixed cut points): a pipeline check, not comparable with GPT-4-turbo numbers")
    headline = {"wb_score": res.get("score", {}).get("wb_score"), "wb_reward": res.get("mixture_of_rewards"),
                "n_unparsed": n_unparsed, "n": len(tasks)}
    headline = {k2: (round(v, 2) if isinstance(v, float) else v) for k2, v in headline.items()}
    table = {k2: v for k2, v in {"wb_score": headline["wb_score"], "wb_reward": headline["wb_reward"],
                                 "n_unparsed": n_unparsed}.items() if v is not None}
    record = {j: x.record for j, x in (("score", score_judge), ("reward", reward_judge)) if x is not None}
    return {"headline": headline, "metrics": res, "table_metrics": table, "n_unparsed_by": unparsed,
            "n_tasks": len(tasks), "tasks": source, "references": list(refs), "n_empty": len(empty),
            "judge_calls": sum(len(j.calls) for j in (score_judge, reward_judge) if j) - calls0,
            "judge": {"name": cfg.judge.name, **({"judges": record} if record else
                                                 {"kind": "reward_model", "as": "pairwise stand-in (WB-Reward only)"})},
            "decoding": dec, "version": VERSION, "notes": notes}


def rm_choices(cfg, games: list[tuple[str, str, str]], live: list[int]) -> tuple[dict, dict]:
    """The offline reward-model judge on (query, A, B): WildBench's choice labels from P(B > A) at Arena-Hard's cut points."""
    from evaluation.arena_hard import rm_games

    got = rm_games(cfg, games)
    label = {"A>>B": "A++", "A>B": "A+", "A=B": "A=B", "B>A": "B+", "B>>A": "B++"}
    return ({j: label[g["score"]] for j, g in zip(live, got)}, {j: g["judgment"] for j, g in zip(live, got)})


wildbench.preflight = judges_for
