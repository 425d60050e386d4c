"""The local evaluation every policy run ends with: the trained policy's win rate against the policy it started
from, on held-out prompts (AlpacaEval test-split instructions by default), judged by a reward model that took
no part in training (by default a Bradley-Terry MiniLM trained once on the UltraFeedback sample, i.e. other
data), with mean answer length beside it.

At laptop policy size these numbers describe surface features (length, formatting, vocabulary), not answer
quality; the printed table says so. AlpacaEval 2.0 with a GPT-4 judge is the cluster path (evaluation/).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import torch

from gprl.config import RewardModelConfig, RunConfig
from gprl.tasks.common import data_context, write_json

SURFACE_NOTE = ("at this policy size the judge's preferences describe surface features (length, formatting, "
                "vocabulary), not answer quality")


def judge_dir(cfg: RunConfig) -> Path:
    """``policy_eval.judge`` or the default judge (BT on ``policy_eval.judge_data``; fp32 on every machine, so it
    judges the same everywhere), trained once and cached."""
    from gprl.tasks.reward_model import cached_reward_model

    pe = cfg.policy_eval
    if pe.judge:
        return Path(pe.judge)
    jcfg = dataclasses.replace(cfg, k=1, reward_model=RewardModelConfig(),
                               data=dataclasses.replace(cfg.data, train=pe.judge_data, val_fraction=0.0),
                               algo=dataclasses.replace(cfg.algo, precision="fp32"))
    return cached_reward_model(jcfg, kind="judges")


def judge_check(cfg: RunConfig, judge, directory: Path) -> dict:
    """The judge's pairwise accuracy on ``policy_eval.judge_check`` (held-out human/GPT-4 labels), cached."""
    from gprl.data import load_source
    from gprl.evaluate import score_pairs, summarise

    f = directory / "judge_check.json"
    if f.exists():
        return json.loads(f.read_text())
    pairs = load_source(cfg.policy_eval.judge_check, data_context(cfg))
    pairs = random.Random(0).sample(pairs, min(300, len(pairs)))
    res = summarise(cfg.policy_eval.judge_check.source, pairs, score_pairs(judge, pairs, desc="judge check"))
    res.pop("per_subset", None)
    if directory.is_dir() and not cfg.policy_eval.judge:
        write_json(f, res)
    return res


def _prompts(cfg: RunConfig) -> list[str]:
    from gprl.data import load_source

    pe = cfg.policy_eval
    prompts = [r["prompt"] for r in load_source(pe.prompts, data_context(cfg))]
    if pe.max_prompts is not None and len(prompts) > pe.max_prompts:
        # the same prompts whatever the training seed, so "± over seeds" is training variance only
        prompts = random.Random(cfg.eval.subsample_seed).sample(prompts, pe.max_prompts)
    return prompts


def _answers(cfg: RunConfig, model_dir: str, prompts: list[str], cache: Path | None) -> list[str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gprl.models.generation import generate
    from gprl.provenance import fingerprint

    pe = cfg.policy_eval
    f = None
    if cache is not None:
        f = cache / f"{fingerprint(str(Path(model_dir).resolve()), prompts, pe.max_new_tokens, pe.temperature, pe.top_p, cfg.seed)}.json"
        if f.exists():
            return json.loads(f.read_text())
    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    out = [a[0] for a in generate(model, tok, prompts, 1, pe.max_new_tokens, pe.temperature, pe.top_p, cfg.seed,
                                  desc=f"answers of {Path(model_dir).name}")]
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        write_json(f, out)
    return out


def _words(texts: list[str]) -> float:
    return sum(len(t.split()) for t in texts) / max(len(texts), 1)


@torch.no_grad()
def evaluate_policy(cfg: RunConfig, initial: str, trained: str, run_dir: Path) -> dict:
    """Win rate of ``trained`` over ``initial`` (ties count half) with its standard error; writes
    ``policy_eval.json`` and the answers (``policy_eval_answers.jsonl``) to ``run_dir``."""
    from gprl.models import GeneralPreferenceModel
    from gprl.models.score import pair_scores

    out = run_dir / "policy_eval.json"
    if out.exists():
        res = json.loads(out.read_text())
        print(format_policy_eval(res))
        return res
    prompts = _prompts(cfg)
    cache = Path(cfg.paths.root or ".") / cfg.paths.cache / "policy_answers"
    base = _answers(cfg, initial, prompts, cache)
    new = _answers(cfg, trained, prompts, None)
    jdir = judge_dir(cfg)
    judge = GeneralPreferenceModel.from_pretrained(jdir)
    va, lam = judge.embed(prompts, new)
    vb, _ = judge.embed(prompts, base)
    s = pair_scores(va, vb, lam)
    if not torch.isfinite(s).all():
        from gprl import GprlError

        raise GprlError("the judge returned non-finite scores: the trained policy's answers cannot be compared")
    wins = (s > 0).float() + 0.5 * (s == 0).float()
    p, n = wins.mean().item(), len(prompts)
    res = {"win_rate": 100 * p, "stderr": 100 * math.sqrt(max(p * (1 - p), 1e-12) / n), "n": n,
           "ties": int((s == 0).sum()), "mean_words_trained": _words(new), "mean_words_initial": _words(base),
           "trained_longer": 100 * sum(len(a.split()) > len(b.split()) for a, b in zip(new, base)) / n,
           "judge": str(jdir), "judge_check": judge_check(cfg, judge, jdir), "prompts": cfg.policy_eval.prompts.source
           + ":" + cfg.policy_eval.prompts.split, "initial": initial, "trained": trained, "note": SURFACE_NOTE}
    with open(run_dir / "policy_eval_answers.jsonl", "w") as f:
        for q, a, b, sc in zip(prompts, new, base, s.tolist()):
            f.write(json.dumps({"prompt": q, "trained": a, "initial": b, "judge_score": sc}) + "\n")
    write_json(out, res)
    print(format_policy_eval(res))
    return res


def _short(path: str) -> str:
    p = Path(path)
    return f"{p.parent.parent.name}/{p.parent.name}" if p.name == "model" else p.name


def format_policy_eval(res: dict) -> str:
    jc = res["judge_check"]
    return "\n".join([
        "",
        f"Policy evaluation on {res['n']} held-out prompts ({res['prompts']}); judge {_short(res['judge'])} "
        f"({100 * jc['accuracy']:.1f}% on {jc['n']} held-out {jc['set']} pairs, 'longer wins' {100 * jc['longer_wins']:.1f}%)",
        f"  {'':18} {'win rate vs initial':>22} {'mean length (words)':>20}",
        f"  {'initial policy':18} {'50.0 (reference)':>22} {res['mean_words_initial']:>20.1f}",
        f"  {'trained policy':18} {res['win_rate']:>15.1f} ± {res['stderr']:<4.1f} {res['mean_words_trained']:>20.1f}",
        f"  trained answer longer than initial on {res['trained_longer']:.0f}% of prompts; ties {res['ties']}",
        f"  NOTE: {res['note']}.",
        "",
    ])


def collect(run_dirs: list[Path]) -> list[dict]:
    """One row per finished policy run (a ``results.json`` with a ``policy_eval``) under the given directories."""
    rows = []
    for d in run_dirs:
        for f in sorted(Path(d).rglob("results.json")):
            r = json.loads(f.read_text())
            if r.get("task") not in ("train_rl", "train_po") or not r.get("policy_eval"):
                continue
            ev = r["policy_eval"]
            algo = r.get("loss") or r.get("estimator")
            rows.append({"run": str(f.parent), "algorithm": algo, "k": r["k"], "seed": r.get("seed"),
                         "win_rate": ev["win_rate"], "stderr": ev["stderr"], "n": ev["n"],
                         "words_trained": ev["mean_words_trained"], "words_initial": ev["mean_words_initial"],
                         "trained_longer": ev["trained_longer"], "train_minutes": r.get("train_minutes"),
                         "total_minutes": r.get("total_minutes"), "commit": r.get("git_commit"), "ties": ev["ties"]})
    return rows


def markdown(rows: list[dict]) -> str:
    head = ("| algorithm | k | seed | win rate vs initial (%) | ties (identical answers) | mean words (trained / initial) "
            "| trained longer (%) | train min | total min | commit | run |\n|---|---|---|---|---|---|---|---|---|---|---|")
    body = [f"| {r['algorithm']} | {r['k']} | {r['seed']} | {r['win_rate']:.1f} ± {r['stderr']:.1f} (n={r['n']}) | "
            f"{r['ties']} | {r['words_trained']:.1f} / {r['words_initial']:.1f} | {r['trained_longer']:.0f} | "
            f"{r['train_minutes']} | {r['total_minutes']} | {r['commit']} | `{r['run']}` |" for r in rows]
    return "\n".join([head, *body])


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Collect finished policy runs into one markdown table.")
    ap.add_argument("dirs", nargs="+", type=Path, help="run or sweep directories (searched recursively)")
    a = ap.parse_args(argv)
    rows = collect(a.dirs)
    if not rows:
        raise SystemExit("gprl: error: no finished policy runs (results.json with a policy evaluation) found")
    print(markdown(rows))


if __name__ == "__main__":
    main()
