"""LM-Harness (GPM paper Tables 8-11) through EleutherAI's ``lm_eval``: its ``simple_evaluate`` with its Hugging Face
model wrapper (``lm_eval.models.huggingface.HFLM``) over the policy, or its ``vllm`` model with
``benchmark.use_vllm=true`` on GPU nodes (not run here). Task prompts, few-shot sampling, log-likelihood scoring and
the rule-based answer extraction are lm_eval's own; this module picks the tasks and settings of a protocol, reads
the protocol's metric of each task and averages them.

    python run.py +experiment=benchmark "benchmark.names=[lm_harness]" benchmark.policy=DIR_OR_HUB_NAME    # Hub tasks
    python run.py +experiment=benchmark "benchmark.names=[lm_harness]" benchmark.policy=tiny-sft:256x6 \\
        benchmark.lm_harness.standin=true                                      # offline: the local stand-in tasks
    python run.py +experiment=alpaca_gpo "policy_eval.benchmarks=[lm_harness]" # every iteration of a policy run

Protocols (``benchmark.lm_harness.protocols``; SPEC 7), both over the paper's six tasks (``TASKS``):

- ``harness_default`` (Tables 8-9): every task at lm_eval's own defaults (0-shot except GSM8k's 5-shot, greedy
  generation, the task's regex answer extraction), as the paper's appendix describes; MMLU is lm_eval's group score
  (weighted by subject size). The paper names neither the TruthfulQA variant nor the ARC/HellaSwag metric: we read
  truthfulqa_mc2 (its base row's TQA 51.65 is the value Llama-3-8B-Instruct is known for on mc2), acc_norm for ARC and
  HellaSwag, and GSM8k's ``strict-match`` filter (the ``#### N`` answer the task's few-shot examples teach).
- ``open_llm_v1`` (Tables 10-11): the Open LLM Leaderboard v1 settings (its "About" page): ARC 25-shot acc_norm,
  HellaSwag 10-shot acc_norm, MMLU 5-shot acc as the unweighted mean over its 57 subjects, TruthfulQA mc2 0-shot,
  WinoGrande 5-shot acc, GSM8k 5-shot (strict ``#### N`` match). The leaderboard ran lm-evaluation-harness commit
  b281b09; here lm_eval 0.4.13's tasks run with those counts and metrics, so scores can differ slightly from it.

The six tasks' datasets are Hub-only. ``benchmark.lm_harness.standin=true`` replaces each by this project's local
stand-in (``evaluation/lm_harness_tasks/``: the same prompts, metrics and filters over small made-up data; a
pipeline check, never a benchmark). Written to the output directory: lm_eval's own results file and per-sample logs
(``lm_eval/<protocol>/results_<date>.json``, ``samples_<task>_<date>.jsonl``, as its CLI writes them with
``--output_path --log_samples``), its printed table (``table.md``), and gprl's ``results.json`` with every task's
metric, the average, lm_eval's version and every task's version.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from gprl import GprlError
from gprl.provenance import fingerprint
from gprl.tasks.common import write_json
from evaluation import BENCHMARKS
from evaluation.benchmark import Answers

TASKS = ("arc_challenge", "truthfulqa_mc2", "winogrande", "gsm8k", "hellaswag", "mmlu")  # the paper's column order
STANDIN_DIR = Path(__file__).resolve().parent / "lm_harness_tasks"
STANDIN_PREFIX = "gprl_standin_"


@dataclass(frozen=True)
class Setting:
    num_fewshot: Optional[int]  # None: the task's own default (lm_eval: 0 unless its YAML says otherwise)
    metric: str  # key in lm_eval's results: "<metric>,<filter>"
    subject_mean: bool = False  # a group scored as the unweighted mean of its tasks (Open LLM v1's MMLU)


PROTOCOLS: dict[str, dict[str, Setting]] = {
    "harness_default": {"arc_challenge": Setting(None, "acc_norm,none"), "truthfulqa_mc2": Setting(None, "acc,none"),
                        "winogrande": Setting(None, "acc,none"), "gsm8k": Setting(None, "exact_match,strict-match"),
                        "hellaswag": Setting(None, "acc_norm,none"), "mmlu": Setting(None, "acc,none")},
    "open_llm_v1": {"arc_challenge": Setting(25, "acc_norm,none"), "truthfulqa_mc2": Setting(0, "acc,none"),
                    "winogrande": Setting(5, "acc,none"), "gsm8k": Setting(5, "exact_match,strict-match"),
                    "hellaswag": Setting(10, "acc_norm,none"), "mmlu": Setting(5, "acc,none", subject_mean=True)},
}


class _Quiet(logging.Filter):
    """Counts lm_eval's one-line-per-request truncation warnings instead of printing them (a small policy's context
    truncates hundreds; the count goes into the notes), and drops its per-task note that custom datasets take
    metadata (true, useless here)."""

    def __init__(self):
        super().__init__()
        self.truncated = 0

    def filter(self, record):
        msg = record.getMessage()
        if "exceeds model's maximum length" in msg or "Left truncation applied" in msg:
            self.truncated += 1
            return False
        return "Custom kwargs can be passed" not in msg

    @contextmanager
    def on(self):
        loggers = [logging.getLogger(n) for n in ("lm_eval.models.huggingface", "lm_eval.api.task")]
        for lg in loggers:
            lg.addFilter(self)
        try:
            yield self
        finally:
            for lg in loggers:
                lg.removeFilter(self)


def task_manager(names: list[str], include_path: Optional[str]):
    """lm_eval's TaskManager over the stand-ins (and ``include_path``); the built-in index (about 10 s to scan) only
    when a task is not found there."""
    from lm_eval.tasks import TaskManager

    if include_path and not Path(include_path).is_dir():
        raise GprlError(f"benchmark.lm_harness.include_path {include_path} is not a directory of lm_eval task YAMLs")
    paths = [str(STANDIN_DIR)] + ([include_path] if include_path else [])
    tm = TaskManager(include_path=paths, include_defaults=False)
    if all(n in tm.all_tasks for n in names):
        return tm
    tm = TaskManager(include_path=paths)
    unknown = [n for n in names if n not in tm.all_tasks]
    if unknown:
        raise GprlError(f"lm_eval {_version()} has no task {', '.join(map(repr, unknown))} (looked in its own tasks"
                        + (f" and {include_path}" if include_path else "") + ")")
    return tm


def _version() -> str:
    import importlib.metadata as md

    return md.version("lm_eval")


def _special_tokens(tok) -> Optional[bool]:
    """lm_eval's HFLM encodes text with the tokenizer's special tokens (a BOS, as Llama's tokenizers add it) and
    splits context from continuation by the context's length; a tokenizer that also appends a token (BERT-style
    ``[CLS] ... [SEP]``, this project's tiny test models) would shift that split by one. Such tokenizers get
    ``add_bos_token=False`` (no special tokens at all); others keep lm_eval's default (None)."""
    with_special, plain = tok.encode("a b"), tok.encode("a b", add_special_tokens=False)
    return None if with_special[len(with_special) - len(plain):] == plain else False


def harness_lm(model, tokenizer=None, *, batch_size: int, dtype: str = "float32", use_vllm: bool = False,
               seed: int = 0, device: Optional[str] = None):
    """lm_eval's model: ``HFLM`` over a model directory / Hub name or an in-memory ``PreTrainedModel`` (with its
    tokenizer), or lm_eval's ``vllm`` model over a directory / Hub name (GPU nodes; not run here)."""
    import torch

    if use_vllm:
        from lm_eval.api.registry import get_model

        if not isinstance(model, str):
            raise GprlError("benchmark.use_vllm needs a model directory or Hub name, not an in-memory model")
        return get_model("vllm").create_from_arg_obj({"pretrained": model, "dtype": dtype, "seed": seed},
                                                     {"batch_size": "auto"})
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    tok = tokenizer or AutoTokenizer.from_pretrained(model)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return HFLM(pretrained=model, tokenizer=tok, batch_size=batch_size, device=device, dtype=dtype,
                add_bos_token=_special_tokens(tok))


def _leaves(group: str, group_subtasks: dict) -> list[str]:
    out = []
    for child in group_subtasks.get(group, []):
        out += _leaves(child, group_subtasks) if child in group_subtasks else [child]
    return out


def run_protocol(lm, protocol: str, tasks: list[str], out: Path, *, standin: bool = False,
                 limit: Optional[float] = None, include_path: Optional[str] = None, seed: int = 0,
                 apply_chat_template: bool = False) -> dict:
    """One protocol over ``tasks`` (names in ``TASKS`` take the protocol's settings; any other lm_eval task runs at its
    own defaults, scored by its first metric); lm_eval's native files under ``out``; gprl's summary returned."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.utils import make_table

    settings = PROTOCOLS[protocol]
    names = {t: (STANDIN_PREFIX + t if standin and t in TASKS else t) for t in tasks}
    tm = task_manager(list(names.values()), include_path)
    quiet = _Quiet()
    try:
        with quiet.on():
            loaded = tm.load(list(names.values()))
    except GprlError:
        raise
    except Exception as e:  # a Hub-only dataset offline, a broken local task: one line, what to do
        raise GprlError(f"lm_eval could not load the tasks {', '.join(names.values())}: {type(e).__name__}: "
                        f"{str(e).splitlines()[0][:300] if str(e) else ''}"
                        + ("" if standin else "; their datasets are on the Hub (offline here, "
                           "benchmark.lm_harness.standin=true runs this project's local stand-ins)")) from None
    for slot, name in names.items():
        s = settings.get(slot)
        if s is not None and s.num_fewshot is not None:
            members = loaded["groups"][name].get_all_tasks() if name in loaded["groups"] else [loaded["tasks"][name]]
            for task in members:
                task.set_config(key="num_fewshot", value=s.num_fewshot)
    top = [loaded["groups"].get(n) or loaded["tasks"][n] for n in names.values()]
    notes, gen_kwargs = [], None
    generative = [n for n, t in loaded["tasks"].items() if t.get_config("output_type") == "generate_until"]
    context = getattr(lm, "max_length", None)
    if generative and context and context <= 2 * lm.max_gen_toks:  # small policies: HFLM needs room for the prompt
        gen_kwargs = {"max_gen_toks": context // 2}
        notes.append(f"the policy's context is {context} tokens: generation ({', '.join(generative)}) stops after "
                     f"{context // 2} new tokens instead of lm_eval's {lm.max_gen_toks}; prompts are left-truncated")
    out.mkdir(parents=True, exist_ok=True)
    tracker = EvaluationTracker(output_path=str(out / "results.json"))
    t0 = time.time()
    with quiet.on():
        results = simple_evaluate(model=lm, tasks=top, task_manager=tm, limit=limit, log_samples=True,
                                  evaluation_tracker=tracker, gen_kwargs=gen_kwargs, bootstrap_iters=1000,
                                  apply_chat_template=apply_chat_template, random_seed=seed, numpy_random_seed=seed,
                                  torch_random_seed=seed, fewshot_random_seed=seed)
    if quiet.truncated:
        notes.append(f"{protocol}: {quiet.truncated} requests were longer than the policy's {context}-token context "
                     f"and were left-truncated by lm_eval (their few-shot examples and question starts are lost)")
    seconds = time.time() - t0
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for name in results["configs"]:
        tracker.save_results_samples(task_name=name, samples=samples[name])
    (out / "table.md").write_text(make_table(results) + ("\n" + make_table(results, "groups")
                                                         if "groups" in results else "") + "\n")
    res, subtasks = results["results"], results.get("group_subtasks", {})
    per_task = {}
    for slot, name in names.items():
        s = settings.get(slot)
        metric = s.metric if s else next(k for k in res[name] if "," in k and "_stderr" not in k)
        if s is not None and s.subject_mean:
            leaves = _leaves(name, subtasks)
            value = sum(res[t][metric] for t in leaves) / len(leaves)
            how = f"unweighted mean of {len(leaves)} subjects' {metric}"
        else:
            value, how = res[name][metric], metric
        members = _leaves(name, subtasks) or [name]
        nshot = sorted({results["n-shot"].get(t) for t in members} - {None})
        per_task[slot] = {"task": name, "metric": how, "value": value,
                          "stderr": None if s and s.subject_mean else res[name].get(metric.replace(",", "_stderr,")),
                          "num_fewshot": nshot[0] if len(nshot) == 1 else nshot,
                          "n_samples": sum(results["n-samples"][t]["effective"] for t in members),
                          "version": results["versions"].get(name)}
        if s is None:
            notes.append(f"{name} is not one of the protocol's tasks: its own defaults, scored by {metric}")
    native = sorted(out.glob("results_*.json"))[-1]
    return {"average": sum(t["value"] for t in per_task.values()) / len(per_task), "tasks": per_task,
            "native_results": native.name, "seconds": round(seconds, 1), "notes": notes,
            "task_versions": {k: v for k, v in results["versions"].items()},
            "config": {k: results["config"].get(k) for k in ("model", "batch_size", "device", "limit", "gen_kwargs",
                                                             "random_seed", "fewshot_seed")}}


@BENCHMARKS.register("lm_harness")
def lm_harness(cfg, answers: Answers, out: Path) -> dict:
    h = cfg.benchmark.lm_harness
    if answers.outputs:
        raise GprlError("lm_harness scores a policy's log-likelihoods: give benchmark.policy, not benchmark.outputs")
    tasks = list(h.tasks) or list(TASKS)
    lm = None
    protocols, headline, table, notes, versions = {}, {}, {}, [], {}
    for protocol in h.protocols:
        d = out / "lm_eval" / protocol
        key = fingerprint(answers.policy, protocol, tasks, h.standin, h.limit, h.include_path, h.apply_chat_template,
                          cfg.seed, cfg.benchmark.use_vllm, _version())
        summary = d / "summary.json"
        if summary.exists() and json.loads(summary.read_text()).get("fingerprint") == key:
            r = json.loads(summary.read_text())
            print(f"[gprl] lm_harness {protocol}: finished earlier ({d})")
        else:
            if lm is None:
                lm = harness_lm(answers.policy, batch_size=h.batch_size or cfg.benchmark.batch_size,
                                dtype=cfg.policy.dtype, use_vllm=cfg.benchmark.use_vllm, seed=cfg.seed)
            print(f"[gprl] lm_harness {protocol}: {', '.join(tasks)}" + (" (local stand-ins)" if h.standin else ""))
            r = run_protocol(lm, protocol, tasks, d, standin=h.standin, limit=h.limit, include_path=h.include_path,
                             seed=cfg.seed, apply_chat_template=h.apply_chat_template)
            r["fingerprint"] = key
            write_json(summary, r)
        protocols[protocol] = r
        versions.update(r["task_versions"])
        notes += [n for n in r["notes"] if n not in notes]
        for k, v in [("average", r["average"])] + [(t, x["value"]) for t, x in r["tasks"].items()]:
            table[f"{protocol}/{k}"] = v
            headline[f"{protocol}/{k}"] = round(100 * v, 2)
    if h.standin:
        notes.append("local stand-in tasks (evaluation/lm_harness_tasks): a pipeline check, not comparable with "
                     "any published LM-Harness number")
    if h.limit is not None:
        notes.append(f"at most {h.limit} documents per task (benchmark.lm_harness.limit): not the full tasks")
    return {"headline": headline, "table_metrics": table, "protocols": protocols, "tasks": tasks,
            "standin": h.standin, "limit": h.limit, "lm_eval_version": _version(), "task_versions": versions,
            "version": f"lm_eval {_version()}", "judge": None, "notes": notes}


lm_harness.judged = False  # log-likelihoods and lm_eval's rule-based extraction: a policy run builds no judge for it
