"""The shipped official GPT-4-turbo annotations (AlpacaEval 2.0's leaderboard annotator) as a judge that calls no
model: each (instruction, reference output, model output) is looked up; a pair that was never annotated gets no
preference and is counted as unjudged. Used to replay the official leaderboard through the same path as any judge."""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

from evaluation.judges import JUDGES, Annotator, count_calls
from evaluation.judges.fields import TEMPLATE, unpack

ANNOTATIONS = "alpaca_eval/annotations_slim/weighted_alpaca_eval_gpt4_turbo.jsonl.gz"


@lru_cache(maxsize=2)
def lookup(shared_data: str) -> dict[tuple[str, str, str], float]:
    """(instruction, output_1, output_2) -> official preference, for every annotated shipped model."""
    root = Path(shared_data) / "alpaca_eval"
    outputs: dict[str, dict[str, str]] = {}

    def output(gen: str, instruction: str) -> str | None:
        from evaluation.alpaca_eval2 import shipped_outputs

        if gen not in outputs:
            f = root / "model_outputs" / f"{gen}.json.gz"
            outputs[gen] = shipped_outputs(Path(shared_data), gen) if f.exists() else {}
        return outputs[gen].get(instruction)

    table = {}
    with gzip.open(Path(shared_data) / ANNOTATIONS, "rt") as f:
        for line in f:
            r = json.loads(line)
            a, b = output(r["generator_1"], r["instruction"]), output(r["generator_2"], r["instruction"])
            if a is not None and b is not None and r.get("preference") is not None:
                table[(r["instruction"], a, b)] = float(r["preference"])
    return table


@JUDGES.register("official")
def official_judge(cfg) -> Annotator:
    from gprl.tasks.common import data_context

    shared = str(data_context(cfg).shared_data)
    ann = Annotator(config={"prompt_template": str(TEMPLATE), "fn_completion_parser": "eval_parser", "batch_size": 1,
                            "is_randomize_output_order": False},
                    record={"kind": "official", "name": "weighted_alpaca_eval_gpt4_turbo (shipped annotations)"})

    def completions(prompts, **_):
        table = lookup(shared)
        prefs = [table.get(unpack(p)) for p in prompts]
        return {"completions": ["None" if p is None else repr(p) for p in prefs]}

    ann.kwargs["fn_completions"] = count_calls(ann, completions)
    return ann
