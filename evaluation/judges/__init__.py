"""Judges for pairwise policy benchmarks, by ``judge.kind``. Each builds an :class:`Annotator`: the alpaca_eval
annotator config it runs (prompt template, completion function, parser; written to disk, so it holds no secret),
in-memory extras (callables for offline judges, API keys read from the environment at call time) and what a
results file records about it. Every judgment is cached by the alpaca_eval package's own annotation cache.

    api           any OpenAI-compatible endpoint (GPT-4-turbo, GPT-4o-mini, DeepSeek, a vLLM server): evaluation/judges/api.py
    hf_local      a local Hugging Face chat model through alpaca_eval's huggingface_local_completions
    reward_model  a gprl reward model (offline, no API): evaluation/judges/reward_model.py
    official      the shipped official GPT-4-turbo annotations, looked up (replays; no model is called)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gprl import GprlError
from gprl.registry import Registry

JUDGES: Registry = Registry("judge kind")


@dataclass
class Annotator:
    """What the alpaca_eval package needs to annotate with one judge."""

    config: dict  # one annotator's alpaca_eval config (YAML-serialisable, no secrets)
    kwargs: dict = field(default_factory=dict)  # extra annotator arguments kept in memory (e.g. a completion callable)
    decoding: Callable[[], dict] = dict  # decoding kwargs made at call time (API keys from the environment)
    record: dict = field(default_factory=dict)  # what results.json says about the judge (no secrets)
    calls: list = field(default_factory=list)  # one entry per judge call made by this process (for tests and cost)


def package_annotator(name: str) -> dict:
    """An alpaca_eval evaluator config by name (``evaluators_configs/<name>/configs.yaml``), prompt path absolute."""
    import yaml
    from alpaca_eval import constants

    path = Path(constants.EVALUATORS_CONFIG_DIR) / name / "configs.yaml"
    if not path.exists():
        known = sorted(p.parent.name for p in Path(constants.EVALUATORS_CONFIG_DIR).glob("*/configs.yaml"))
        raise GprlError(f"judge.annotator {name!r} is not an alpaca_eval evaluator config; known: {', '.join(known)}")
    conf = copy.deepcopy(yaml.safe_load(path.read_text())[name])
    conf["prompt_template"] = str(Path(constants.EVALUATORS_CONFIG_DIR) / conf["prompt_template"])
    return conf


def build(cfg) -> Annotator:
    """The annotator for ``cfg.judge`` (a RunConfig)."""
    return JUDGES.get(cfg.judge.kind)(cfg)


def count_calls(annotator: Annotator, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a completion function so every call is recorded (the number of prompts it was asked to judge)."""
    def wrapped(prompts, **kw):
        annotator.calls.append(len(prompts))
        return fn(prompts, **kw)

    return wrapped


from evaluation.judges import api, hf_local, official, reward_model  # noqa: E402,F401  (register the kinds)
