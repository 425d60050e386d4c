"""The policy-benchmark layer every benchmark module uses: which policy, its answers (generated once with the
benchmark's decoding settings and cached beside the results in the benchmark's native format), the judge's
annotator, and the run's ``results.json`` and W&B summary.

    python run.py +experiment=benchmark 'benchmark.policy="outputs/alpaca_gprl/k=2"' judge=offline_rm
    python run.py +experiment=alpaca_gprl policy_eval.benchmarks=[alpaca_eval2]     # at the end of a policy run

A benchmark is ``BENCHMARKS.register(name)`` on a function ``(cfg, answers: Answers, out_dir) -> dict`` (metrics);
it decides its instructions and decoding defaults and calls :func:`answers_for` to get the texts.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from gprl import GprlError
from gprl.provenance import fingerprint, git_commit, versions
from gprl.tasks.common import write_json


@dataclass
class Answers:
    """Where a benchmark's answers come from: a policy to generate with, or answers someone already made."""

    policy: str | None  # a model directory or Hub name (resolved), None when ``outputs`` is given
    outputs: str | None  # a shipped model's name or a native answers file
    generator: str  # the name on the leaderboard


def resolve(cfg, policy: str | None = None) -> Answers:
    """``policy`` (or ``benchmark.policy``): a policy run directory (its ``policy/``), a model directory, a Hub name or
    a ``tiny-sft:``/``tiny:`` laptop policy; or ``benchmark.outputs``."""
    from gprl.tasks.policy import initial_policy

    b = cfg.benchmark
    policy = policy or b.policy
    if b.outputs and not policy:
        return Answers(None, b.outputs, b.generator or re.sub(r"\.(json\.gz|jsonl|json)$", "", Path(b.outputs).name))
    if not policy:
        raise GprlError("no policy to benchmark: give benchmark.policy or benchmark.outputs")
    p = Path(policy)
    if p.is_dir() and (p / "policy" / "config.json").exists():
        p = p / "policy"
    if p.is_dir():
        if not (p / "config.json").exists():
            raise GprlError(f"{p} is neither a policy run directory (with policy/) nor a model directory (config.json)")
        name = b.generator or _short(f"{p.parent.parent.name}/{p.parent.name}" if p.name == "policy" else p.name)
        return Answers(str(p.resolve()), None, name)
    if policy.startswith(("tiny:", "tiny-sft:")):
        import dataclasses

        path = initial_policy(dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, backbone=policy)))
        return Answers(path, None, b.generator or policy)
    if policy.startswith((".", "/")) or policy.count("/") != 1:
        raise GprlError(f"benchmark.policy {policy!r} does not exist (and is not a Hub name like org/model)")
    return Answers(policy, None, b.generator or policy)


def targets(cfg) -> list[tuple[str, str | None]]:
    """What task ``benchmark`` evaluates, as ``(part, policy)``: ``[("", None)]`` for ``benchmark.policy`` or
    ``benchmark.outputs`` as given; for an iterative policy run (task train_po: ``iter<N>/policy``, no ``policy/``)
    every iteration, ``[("iter1", ".../iter1/policy"), ...]``, laid out as train_po lays out its own benchmarks. A
    sweep directory (``hydra.sweep.dir``, e.g. a table row's ``multirun/tables/<key>``) stands for its finished run
    with this ``seed``."""
    p = Path(cfg.benchmark.policy) if cfg.benchmark.policy else None
    if p is None or not p.is_dir() or (p / "config.json").exists():
        return [("", None)]
    if not ((p / "policy").is_dir() or any(p.glob("iter*/policy"))):  # a sweep directory: its run of this seed
        runs = [f.parent for f in sorted(p.glob("*/results.json")) if json.loads(f.read_text()).get("seed") == cfg.seed]
        if len(runs) != 1:
            raise GprlError(f"{p} holds {len(runs)} finished runs with seed {cfg.seed}; benchmark.policy needs one "
                            f"(a policy run, a model directory or a sweep directory with one run per seed)")
        p = runs[0]
    iters = sorted(p.glob("iter*/policy/config.json"), key=lambda f: int(f.parent.parent.name[4:]))
    if (p / "policy").is_dir() or not iters:
        return [("", str(p))]
    if not (p / "results.json").exists():
        raise GprlError(f"{p} is an unfinished iterative policy run (no results.json); benchmark one iteration with "
                        f"benchmark.policy={iters[-1].parent}")
    return [(f.parent.parent.name, str(f.parent)) for f in iters]


def _short(name: str, limit: int = 48) -> str:
    """A leaderboard name from run-directory names (Hydra override strings can be hundreds of characters)."""
    return name if len(name) <= limit else f"{name[:limit - 12]}..{fingerprint(name)[:10]}"


def decoding(cfg, defaults: dict) -> dict:
    """The benchmark's own decoding settings, with any the user set in ``benchmark`` on top."""
    b = cfg.benchmark
    out = dict(defaults)
    for k in ("max_new_tokens", "temperature", "top_p"):
        if getattr(b, k) is not None:
            out[k] = getattr(b, k)
    return out


def generate_answers(cfg, policy: str, prompts: list[str], dec: dict, desc: str) -> list[str]:
    """One answer per prompt: transformers here, vLLM on GPU nodes (``benchmark.use_vllm``)."""
    if cfg.benchmark.use_vllm:  # GPU nodes; not run on the CPU machines this project is tested on
        from gprl.models.generation import sample

        return [a[0] for a in sample("vllm", policy, prompts, 1, dec["max_new_tokens"], dec["temperature"],
                                     dec["top_p"], cfg.seed, dtype="auto", desc=desc)]
    from gprl.models.generation import generate
    from gprl.tasks.policy import load_policy

    model, tok = load_policy(policy, cfg.policy.dtype)
    prompts, n = fit_context(tok, prompts, dec["max_new_tokens"], getattr(model.config, "max_position_embeddings", None),
                             desc)
    return [a[0] for a in generate(model, tok, prompts, 1, n, dec["temperature"], dec["top_p"], cfg.seed,
                                   batch_size=cfg.benchmark.batch_size, desc=desc)]


def fit_context(tok, prompts: list[str], max_new_tokens: int, context: int | None, desc: str,
                template_tokens: int = 16) -> tuple[list[str], int]:
    """Prompts and an answer budget that fit a small policy's context: answers get at most half of it, and a
    prompt longer than the rest is cut to its first tokens, a multi-turn conversation to its last tokens (its latest
    turn; it becomes a plain-text transcript), both said, never silent. Large models are unchanged."""
    if not context or max_new_tokens + template_tokens + max(len(tok(p)["input_ids"]) for p in prompts) <= context:
        return prompts, max_new_tokens
    n = min(max_new_tokens, context // 2)
    budget = context - n - template_tokens
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    cut = [i for i, x in enumerate(ids) if len(x) > budget]
    conv = [i for i in cut if hasattr(prompts[i], "messages")]
    out = [(tok.decode(x[-budget:]) if i in conv else tok.decode(x[:budget])) if i in cut else p
           for i, (p, x) in enumerate(zip(prompts, ids))]
    print(f"[gprl] {desc}: the policy's context is {context} tokens: answers of at most {n} new tokens "
          f"(asked {max_new_tokens}); {len(cut)} of {len(prompts)} prompts cut to their first {budget} tokens"
          + (f" ({len(conv)} multi-turn conversations to their last {budget}, as plain-text transcripts)" if conv else ""))
    return out, n


def answers_for(cfg, answers: Answers, prompts: list[str], dec: dict, out_file: Path) -> list[str]:
    """Answers to ``prompts`` from a policy, generated once: ``out_file`` (native format, written by the caller) and
    its ``.meta.json`` fingerprint are reused when the policy, prompts and decoding are the same."""
    meta = out_file.with_name(out_file.name + ".meta.json")
    # the batch size too: answers are sampled batch by batch from one seed
    key = fingerprint(answers.policy, prompts, dec, cfg.seed, cfg.benchmark.use_vllm, cfg.benchmark.batch_size)
    cached = out_file.with_name(out_file.name + ".answers.json")
    if cached.exists() and meta.exists() and json.loads(meta.read_text()).get("fingerprint") == key:
        print(f"[gprl] reusing {len(prompts)} answers in {out_file} (same policy, prompts and decoding)")
        return json.loads(cached.read_text())
    t0 = time.time()
    texts = generate_answers(cfg, answers.policy, prompts, dec, desc=f"answers of {answers.generator}")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    write_json(cached, texts)
    write_json(meta, {"fingerprint": key, "policy": answers.policy, "decoding": dec, "n": len(prompts),
                      "seconds": round(time.time() - t0, 1)})
    return texts


def check_empty(texts: list[str], cfg, where: str) -> list[int]:
    """Indices of empty answers; with ``benchmark.empty_outputs=error`` any empty answer stops the run."""
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty and cfg.benchmark.empty_outputs == "error":
        raise GprlError(f"{len(empty)} of {len(texts)} answers in {where} are empty (first: instance {empty[0]}); "
                        f"set benchmark.empty_outputs=lose to score them as losses without a judge call")
    return empty


def judge_config(option: str):
    """``conf/judge/<option>.yaml`` as a JudgeConfig: a benchmark's own judge (``benchmark.judges``)."""
    import yaml

    from gprl.config import JudgeConfig, SourceConfig

    d = Path(__file__).resolve().parents[1] / "conf" / "judge"
    f = d / f"{option}.yaml"
    if not f.exists():
        raise GprlError(f"benchmark.judges: no judge config {option!r}; known: {', '.join(sorted(p.stem for p in d.glob('*.yaml')))}")
    raw = yaml.safe_load(f.read_text()) or {}
    if isinstance(raw.get("train"), dict):
        raw["train"] = SourceConfig(**raw["train"])
    return JudgeConfig(**raw)


def for_benchmark(cfg, name: str):
    """The run's config as benchmark ``name`` sees it: its own judge if ``benchmark.judges`` names one (e.g. a
    single-answer judge for MT-Bench beside a pairwise one for the others), else ``judge``."""
    import dataclasses

    option = (cfg.benchmark.judges or {}).get(name)
    return cfg if option is None else dataclasses.replace(cfg, judge=judge_config(option))


def preflight(cfg, names: list[str]) -> None:
    """Each benchmark's own check of its judge (a benchmark function's ``preflight`` attribute), before any work: a
    missing API key, or a judge that cannot serve the benchmark (a pairwise reward model for single-answer grading),
    stops here, not after training or generating."""
    from evaluation import BENCHMARKS

    for name in names:
        check = getattr(BENCHMARKS.get(name), "preflight", None)
        if check is not None:
            check(for_benchmark(cfg, name))


def run_benchmarks(cfg, run_dir: Path, names: list[str], policy: str | None = None) -> dict:
    """Every benchmark in ``names`` on one policy (or on ``benchmark.outputs``); ``{name: metrics}``, each also in
    ``run_dir/benchmarks/<name>/results.json`` (the task puts them in the W&B run summary with its results)."""
    from evaluation import BENCHMARKS

    from gprl.rundir import read_finished

    # a damaged results.json (truncated by hand or a full disk) is moved aside with one line and that benchmark redone
    finished = {n: read_finished(run_dir / "benchmarks" / n / "results.json") for n in names}
    preflight(cfg, [n for n in names if finished[n] is None])
    answers = resolve(cfg, policy)
    out = {}
    for name in names:
        d = run_dir / "benchmarks" / name
        d.mkdir(parents=True, exist_ok=True)
        f = d / "results.json"
        res = finished[name]
        if res is not None:
            print(f"[gprl] {f} exists: {name} is finished (delete it to redo)")
        else:
            t0 = time.time()
            res = BENCHMARKS.get(name)(for_benchmark(cfg, name), answers, d)
            res.update({"benchmark": name, "generator": answers.generator, "policy": answers.policy,
                        "outputs": answers.outputs, "minutes": round((time.time() - t0) / 60, 2),
                        "git_commit": git_commit(), "versions": versions()})
            write_json(f, res)
        print(format_result(res))
        out[name] = res
    return out


def format_result(res: dict) -> str:
    h = res.get("headline", {})
    cells = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in h.items())
    judge = f" (judge {res['judge']['name']})" if res.get("judge") else ""  # lm_harness scores without one
    lines = [f"\n{res['benchmark']} of {res['generator']}{judge}: {cells}"]
    lines += [f"  NOTE: {n}" for n in res.get("notes", [])]
    return "\n".join(lines) + "\n"
