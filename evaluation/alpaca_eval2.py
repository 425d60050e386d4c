"""AlpacaEval 2.0 through the ``alpaca_eval`` package: the policy's answers against the reference
``gpt4_1106_preview`` outputs (shipped), judged by any judge (``evaluation.judges``) through the package's
``PairwiseAnnotator`` (its prompt templates, parsers, output-order randomisation and annotation cache), scored by
the package's win rate and length-controlled win rate (``evaluation.alpaca_lc``: the package's own GLM; offline,
its two Hub-only inputs are reconstructed from shipped data).

Instructions: ``benchmark.split=all`` is the official 805; ``test`` (default) the 161 test-split instructions that
no offline training ever sees. Decoding defaults are those of the GPM paper's released models' alpaca_eval model
configs (temperature 0.9, top_p 1.0, max_new_tokens 4096; clipped to a small policy's context).

Written to the output directory, in the package's formats: ``model_outputs.json``, ``annotations.json``,
``leaderboard.csv``; the judge's annotator config and cache live under ``<paths.cache>/judges/alpaca_eval/``.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import random
from pathlib import Path

import yaml

from gprl import GprlError
from gprl.provenance import fingerprint
from gprl.tasks.common import data_context, write_json
from evaluation import BENCHMARKS
from evaluation.benchmark import Answers, answers_for, check_empty, decoding

REFERENCE = "gpt4_1106_preview"
DECODING = {"max_new_tokens": 4096, "temperature": 0.9, "top_p": 1.0}
SUBSET_SEED = 123  # a max_instances subset is the same for every policy and seed (the package's own shuffle seed)


def instructions(cfg) -> list[dict]:
    """The AlpacaEval instructions of ``benchmark.split`` (``idx``, ``dataset``, ``instruction``), in file order."""
    from gprl.data.sources import alpaca_split

    ctx = data_context(cfg)
    f = ctx.shared_data / "alpaca_eval" / "alpaca_eval_instructions.jsonl"
    if not f.exists():
        raise GprlError(f"missing {f} (the 805 AlpacaEval instructions; set paths.shared_data)")
    rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    if cfg.benchmark.split == "test":
        keep = alpaca_split()["test"]
        rows = [r for r in rows if r["idx"] in keep]
    n = cfg.benchmark.max_instances
    if n is not None and n < len(rows):
        rows = sorted(random.Random(SUBSET_SEED).sample(rows, n), key=lambda r: r["idx"])
    return rows


def shipped_outputs(shared_data: Path, name: str) -> dict[str, str]:
    """instruction -> output of a shipped model (``alpaca_eval/model_outputs/<name>.json.gz``) or a native file."""
    f = Path(name)
    if not f.exists():
        f = shared_data / "alpaca_eval" / "model_outputs" / f"{name}.json.gz"
    if not f.exists():
        known = sorted(p.name.split(".")[0] for p in (shared_data / "alpaca_eval" / "model_outputs").glob("*.json.gz"))
        raise GprlError(f"no answers {name!r}: neither a file nor a shipped model; shipped: {', '.join(known)}")
    opener = gzip.open if f.suffix == ".gz" else open
    try:
        with opener(f, "rt") as fh:
            rows = json.load(fh)
        return {r["instruction"]: r["output"] or "" for r in rows}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise GprlError(f"{f} is not an AlpacaEval outputs file (a JSON list of {{instruction, output}}): {e}") from None


def annotator_files(cfg, ann) -> tuple[Path, Path]:
    """The judge's annotator config (written, no secrets) and the package's annotation cache beside it, in a
    directory named by the judge's settings, so different judges never share judgments."""
    d = (Path(cfg.paths.root or ".") / cfg.paths.cache / "judges" / "alpaca_eval"
         / f"{cfg.judge.name}-{fingerprint(ann.record, ann.config)}")
    d.mkdir(parents=True, exist_ok=True)
    conf = d / "configs.yaml"
    if not conf.exists():
        conf.write_text(yaml.safe_dump({cfg.judge.name: ann.config}, sort_keys=False))
    return conf, d / "annotations_cache.json"


def annotate(cfg, ann, reference: list[dict], model: list[dict]) -> list[dict]:
    """The package's PairwiseAnnotator over (reference, model) pairs; judge errors become one clear message."""
    from alpaca_eval.annotators import PairwiseAnnotator

    conf, cache = annotator_files(cfg, ann)
    root = logging.getLogger()
    level, root.level = root.level, max(root.level, logging.WARNING)  # the package logs every chunk at INFO
    try:
        annotator = PairwiseAnnotator(annotators_config=str(conf), caching_path=str(cache), **ann.kwargs)
        return annotator.annotate_head2head(outputs_1=reference, outputs_2=model, **ann.decoding())
    except Exception as e:  # the package raises the client's own errors: name the endpoint, never the key
        if type(e).__module__.startswith("openai"):
            raise GprlError(f"judge {cfg.judge.name!r} at {ann.record.get('base_url')}: {type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200]}") from None
        raise
    finally:
        root.setLevel(level)


def score(cfg, annotations: list[dict], idx: list[int]) -> dict:
    """Win rate and length-controlled win rate of one model's annotations, by the package's own metrics. The
    package looks instruction difficulty up by the row index, so rows carry their instruction's AlpacaEval index."""
    import pandas as pd

    from evaluation.alpaca_lc import length_controlled_winrate

    # offline, LC's reconstructed inputs depend only on the shipped data: one cache per checkout (.cache/gprl/alpaca_eval)
    return length_controlled_winrate(pd.DataFrame(annotations, index=idx), shared_data=data_context(cfg).shared_data)


@BENCHMARKS.register("alpaca_eval2")
def alpaca_eval2(cfg, answers: Answers, out: Path) -> dict:
    from evaluation.judges import build

    ctx = data_context(cfg)
    rows = instructions(cfg)
    ann = build(cfg)  # before any work: a missing API key stops here
    prompts = [r["instruction"] for r in rows]
    dec = decoding(cfg, DECODING)
    if answers.outputs:
        table = shipped_outputs(ctx.shared_data, answers.outputs)
        missing = [p for p in prompts if p not in table]
        if missing:
            raise GprlError(f"{answers.outputs} has no answer for {len(missing)} of {len(prompts)} instructions")
        texts, dec = [table[p] for p in prompts], {"given": answers.outputs}
    else:
        texts = answers_for(cfg, answers, prompts, dec, out / "model_outputs.json")
    ref = shipped_outputs(ctx.shared_data, REFERENCE)
    model = [{"instruction": r["instruction"], "output": t, "generator": answers.generator, "dataset": r["dataset"]}
             for r, t in zip(rows, texts)]
    reference = [{"instruction": r["instruction"], "output": ref[r["instruction"]], "generator": REFERENCE,
                  "dataset": r["dataset"]} for r in rows]
    write_json(out / "model_outputs.json", model)
    empty = set(check_empty(texts, cfg, str(out / "model_outputs.json")))
    judged = [i for i in range(len(rows)) if i not in empty]
    calls0 = sum(ann.calls)
    annotations = annotate(cfg, ann, [reference[i] for i in judged], [model[i] for i in judged]) if judged else []
    got = {(a["instruction"], a["output_2"]): a for a in annotations}
    unparsed, full, idx = [], [], []
    for i in range(len(rows)):
        if i in empty:
            a = {"instruction": rows[i]["instruction"], "output_1": reference[i]["output"], "output_2": texts[i],
                 "preference": 1.0, "note": "empty answer: a loss without a judge call"}
        else:
            a = dict(got.get((rows[i]["instruction"], texts[i]), {"instruction": rows[i]["instruction"],
                     "output_1": reference[i]["output"], "output_2": texts[i], "preference": None}))
            p = a.get("preference")
            if p is None or (isinstance(p, float) and math.isnan(p)):
                unparsed.append(i)
                continue
        a.update(generator_1=REFERENCE, generator_2=answers.generator, dataset=rows[i]["dataset"])
        full.append(a)
        idx.append(rows[i]["idx"])
    if not full:
        raise GprlError(f"the judge {cfg.judge.name!r} gave no usable preference for any of {len(rows)} instructions "
                        f"({len(unparsed)} unparseable)")
    metrics = score(cfg, full, idx)
    (out / "annotations.json").write_text(json.dumps(full, indent=2, default=str) + "\n")
    import pandas as pd

    pd.DataFrame.from_dict({answers.generator: metrics}, orient="index").to_csv(out / "leaderboard.csv")
    notes = []
    if unparsed:
        notes.append(f"{len(unparsed)} of {len(rows)} judgments could not be parsed and are left out of the scores")
    if empty:
        notes.append(f"{len(empty)} empty answers scored as losses")
    if cfg.benchmark.split == "test":
        notes.append(f"{len(rows)} test-split instructions of 805 (benchmark.split=all for the official set)")
    if cfg.judge.kind == "reward_model":
        notes.append("offline reward-model judge: a pipeline check, not comparable with GPT-4-turbo numbers")
    return {"headline": {"lc_win_rate": metrics["length_controlled_winrate"], "win_rate": metrics["win_rate"],
                         "avg_length": metrics["avg_length"], "n": len(full)},
            "metrics": metrics, "n_instructions": len(rows), "n_unparsed": len(unparsed), "n_empty": len(empty),
            "unparsed_instructions": [rows[i]["idx"] for i in unparsed], "judge_calls": sum(ann.calls) - calls0,
            "judge": ann.record, "decoding": dec, "split": cfg.benchmark.split, "reference": REFERENCE,
            "notes": notes}
