"""Temperature calibration of an offline judge on train-split AlpacaEval annotations.

The judge's preference is ``1 + sigmoid(s / tau)``. A reward model trained for a few minutes on hard pairwise labels
gives scores on no particular scale (probabilities near 0.5 where GPT-4-turbo says 0.001), while the package's
length-controlled win rate reads preferences as probabilities. One temperature, fitted to the GPT-4-turbo soft
preferences of (reference, model) pairs on TRAIN-split instructions by cross-entropy, sets the scale; it changes
no pair's side and no model's rank by win count.

    python -m evaluation.judge_calibration --judge outputs/alpaca_judge/default/model [--instructions 32]

Writes the fitted ``tau`` into the judge's ``gpm_config.json`` (what ``evaluation.judges.reward_model`` reads) and
the fit into ``calibration.json`` beside it. Embeddings are cached as in ``evaluation.judge_agreement``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import sys
from pathlib import Path
from typing import Optional

from gprl import GprlError

from evaluation.judge_agreement import ANNOTATIONS, INSTRUCTIONS, OUTPUTS, REFERENCE, ROOT, JudgeScorer, _need

SEED = 0


def train_pairs(shared: Path, n_instructions: int) -> tuple[list[str], dict[str, list[str]], dict[str, list[float]]]:
    """A seeded sample of train-split instructions; every annotated shipped model's outputs on them and its
    GPT-4-turbo preferences against the reference (pairs with a null preference or missing output dropped)."""
    from gprl.data.sources import alpaca_split

    keep = alpaca_split()["train"]
    text = {r["idx"]: r["instruction"] for r in map(json.loads, _need(shared, INSTRUCTIONS).read_text().splitlines())}
    prompts = [text[i] for i in sorted(random.Random(SEED).sample(sorted(keep), n_instructions))]
    want = set(prompts)
    prefs: dict[str, dict[str, float]] = {}
    with gzip.open(_need(shared, ANNOTATIONS), "rt", encoding="utf-8") as f:
        for r in map(json.loads, f):
            g = r["generator_2"]
            if r["instruction"] in want and g != REFERENCE and r.get("preference") is not None:
                prefs.setdefault(g, {}).setdefault(r["instruction"], float(r["preference"]))
    outputs, labels = {}, {}
    for g in sorted(prefs):
        f = _need(shared, OUTPUTS) / f"{g}.json.gz"
        if not f.exists():
            continue
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            table = {r["instruction"]: r["output"] for r in json.load(fh)}
        outputs[g] = [table.get(p) for p in prompts]
        labels[g] = [prefs[g].get(p) for p in prompts]
    with gzip.open(_need(shared, f"{OUTPUTS}/{REFERENCE}.json.gz"), "rt", encoding="utf-8") as fh:
        ref = {r["instruction"]: r["output"] for r in json.load(fh)}
    outputs[REFERENCE] = [ref[p] for p in prompts]
    return prompts, outputs, labels


def cross_entropy(scores: list[float], targets: list[float], tau: float) -> float:
    """Mean cross-entropy of ``sigmoid(s / tau)`` against soft targets in [0, 1]."""
    import torch
    from torch.nn.functional import logsigmoid

    z = torch.tensor(scores, dtype=torch.float64) / tau
    y = torch.tensor(targets, dtype=torch.float64)
    return float(-(y * logsigmoid(z) + (1 - y) * logsigmoid(-z)).mean())


def fit_tau(scores: list[float], targets: list[float]) -> tuple[float, float]:
    """The temperature (in [1e-4, 100]) minimising ``cross_entropy``, and that cross-entropy."""
    from scipy.optimize import minimize_scalar

    best = minimize_scalar(lambda log_tau: cross_entropy(scores, targets, math.exp(log_tau)),
                           bounds=(math.log(1e-4), math.log(1e2)), method="bounded")
    return math.exp(best.x), float(best.fun)


def calibrate(judge: Path, shared: Path, cache: Path, n_instructions: int = 32) -> dict:
    import torch

    from gprl.models.score import pair_scores

    scorer = JudgeScorer(judge, cache)
    prompts, outputs, labels = train_pairs(shared, n_instructions)
    v_ref, _ = scorer.embed(REFERENCE, prompts, outputs[REFERENCE])
    scores, targets = [], []
    for g in sorted(labels):
        rows = [i for i, (o, y) in enumerate(zip(outputs[g], labels[g])) if o is not None and y is not None]
        v, lam = scorer.embed(f"train-{g}", [prompts[i] for i in rows], [outputs[g][i] for i in rows])
        s = pair_scores(v, v_ref[rows], lam)
        scores += s.tolist()
        targets += [labels[g][i] - 1 for i in rows]
    old = scorer.model.spec.tau
    tau, ce = fit_tau(scores, targets)
    y = torch.tensor(targets)
    report = {"tau_before": old, "tau": tau, "cross_entropy": ce,
              "cross_entropy_before": cross_entropy(scores, targets, old),
              "pairs": len(scores), "instructions": n_instructions, "models": len(labels), "seed": SEED,
              "annotator_win_rate": float(y.mean()) * 100,
              "judge_win_rate": float(torch.sigmoid(torch.tensor(scores) / tau).mean()) * 100}
    cfg_file = judge / "gpm_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["tau"] = tau
    cfg_file.write_text(json.dumps(cfg, indent=2) + "\n")
    (judge / "calibration.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.judge_calibration", description=__doc__.split("\n\n")[0])
    ap.add_argument("--judge", required=True, type=Path, help="a trained reward model directory (its tau is rewritten)")
    ap.add_argument("--instructions", type=int, default=32, help="train-split instructions to calibrate on")
    ap.add_argument("--shared-data", type=Path,
                    default=Path(os.environ.get("GPRL_SHARED_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "gprl")
    args = ap.parse_args(argv)
    try:
        if not args.judge.is_dir():
            raise GprlError(f"judge directory {args.judge} does not exist")
        report = calibrate(args.judge, args.shared_data, args.cache, args.instructions)
    except GprlError as e:
        print(f"gprl: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
