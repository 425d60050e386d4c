#!/usr/bin/env python
"""Evaluation versus training speed per sequence for the embedded default, in one run (ratios side by side).

    python benchmarks/eval_speed.py [--steps 8] [--pairs-per-set 400] [--rounds 2] [--eval-only]

The embedded default's model and settings (MiniLM, k=4 with gate and L2, 160 tokens, bottom 4 blocks frozen,
dropout off, batch 16 pairs): training runs ``gprl.tasks.reward_model.train`` for a few steps on the default's
training pairs (steps after the first two timed; a step is forward + backward + AdamW over 2 x 16 (prompt, response)
sequences plus its prompt pass); evaluation scores a sample of each default evaluation set (``--pairs-per-set``
pairs; sequences = the distinct (prompt, response) rows scored, prompt passes included in the time; the model is the
default trained for 3 steps: speed does not depend on the weights) three ways:

* before: the evaluation of commit 745a53c (rows sorted by characters, the encoder's gate re-running every prompt
  of every batch, ``torch.no_grad``), kept below as ``score_pairs_before``;
* now: ``gprl.evaluate.score_pairs`` (each distinct row and prompt once, batches by token length, inference mode);
* now in bf16 autocast.

Training is timed in fp32 and bf16, so each evaluation rate has a training rate in the same precision beside it.
Rounds run the five measurements forwards, then backwards (ABBA), so a load that drifts during the run cancels in
the mean. Under load from other jobs absolute rates are noise; compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

import run  # noqa: E402  (registers the config schema)
from step_timer import StepTimer  # noqa: E402
from gprl.models.score import pair_scores  # noqa: E402




@torch.no_grad()
def score_pairs_before(model, pairs, batch_size):
    """Commit 745a53c's evaluation: distinct rows sorted by characters, batches through ``model.collate`` (whose
    encoder gate re-embeds each batch's distinct prompts), ``torch.no_grad``."""
    keys = list(dict.fromkeys((p["prompt"], r) for p in pairs for r in (p["chosen"], p["rejected"])))
    order = sorted(range(len(keys)), key=lambda i: len(keys[i][0]) + len(keys[i][1]))
    model.eval()
    v_all, lam_all = [None] * len(keys), [None] * len(keys)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        v, lam = model(**model.collate([keys[i][0] for i in idx], [keys[i][1] for i in idx]))
        for n, i in enumerate(idx):
            v_all[i], lam_all[i] = v[n], None if lam is None else lam[n]
    pos = {key: i for i, key in enumerate(keys)}
    ci = [pos[(p["prompt"], p["chosen"])] for p in pairs]
    ri = [pos[(p["prompt"], p["rejected"])] for p in pairs]
    v = torch.stack(v_all)
    return pair_scores(v[ci], v[ri], None if lam_all[0] is None else torch.stack(lam_all)[ci])


def config(overrides):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return run.to_run_config(compose("config", overrides=overrides))


WORK = Path(tempfile.mkdtemp(prefix="eval_speed_"))  # the runs' directories, deleted at the end


def train_rate(cfg, precision, steps):
    """(prompt, response) sequences per second of training steps 3..steps, and the trained model's directory."""
    import dataclasses

    from gprl.tasks.reward_model import train

    cfg = dataclasses.replace(cfg, algo=dataclasses.replace(cfg.algo, precision=precision, max_steps=steps,
                                                            save_steps=10_000))
    timer = StepTimer()
    d = Path(tempfile.mkdtemp(dir=WORK))
    final = train(cfg, d, callbacks=[timer])
    return 2 * cfg.algo.batch_size / timer.per_step(), final


def eval_rate(fn, sets, n_seqs):
    t = time.perf_counter()
    scores = [fn(pairs) for pairs in sets.values()]
    return n_seqs / (time.perf_counter() - t), torch.cat(scores)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--pairs-per-set", type=int, default=400, help="the default run evaluates 400; fewer runs faster "
                    "but understates the gain (a small set has few batches, so few repeated prompt passes)")
    ap.add_argument("--eval-only", action="store_true", help="time only the evaluations (no training rates)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of all measurements, every second one in reverse "
                    "order; medians (for 2 rounds: means) are printed")
    args = ap.parse_args()
    from gprl.evaluate import score_pairs
    from gprl.models import GeneralPreferenceModel
    from gprl.runtime import native_bf16, set_threads
    from gprl.tasks.common import data_context, eval_sets

    set_threads()
    cfg = config(["logger=none", f"eval.max_pairs_per_set={args.pairs_per_set}"])
    sets = eval_sets(cfg, data_context(cfg))
    n_seqs = sum(len({(p["prompt"], r) for p in s for r in (p["chosen"], p["rejected"])}) for s in sets.values())
    bs = cfg.eval.batch_size
    _, final = train_rate(cfg, "fp32", 3)  # a trained default model to evaluate (speed does not depend on weights)
    model = GeneralPreferenceModel.from_pretrained(final)
    scores = {}

    def evaluation(name, fn):
        def measure():
            r, scores[name] = eval_rate(fn, sets, n_seqs)
            return r
        return name, measure

    tasks = [("train fp32", lambda: train_rate(cfg, "fp32", args.steps)[0]),
             evaluation("eval before fp32", lambda p: score_pairs_before(model, p, bs)),
             evaluation("eval now fp32", lambda p: score_pairs(model, p, bs, desc=None)),
             ("train bf16", lambda: train_rate(cfg, "bf16", args.steps)[0]),
             evaluation("eval now bf16", lambda p: score_pairs(model, p, bs, desc=None, precision="bf16"))]
    if args.eval_only:
        tasks = [t for t in tasks if not t[0].startswith("train")]
    rates = {}
    for r in range(args.rounds):  # odd rounds run in reverse order (ABBA): a load that drifts cancels in the mean
        for name, measure in (tasks if r % 2 == 0 else tasks[::-1]):
            rates.setdefault(name, []).append(measure())
    max_diff = (scores["eval now fp32"] - scores["eval before fp32"]).abs().max().item()
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"\nembedded default (MiniLM k=4 + gate, 160 tokens, 4 of 6 blocks frozen, dropout off), torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, native bf16: {native_bf16('cpu')[1]}")
    print(f"training: batch 16 pairs, steps 3-{args.steps} timed; evaluation: {args.pairs_per_set} pairs per set x "
          f"{len(sets)} sets = {n_seqs} distinct sequences, batch {bs}; {args.rounds} round(s), medians")
    print(f"{'measurement':<20} {'seq/s':>8} {'vs training, same precision':>28}")
    for name in ("train fp32", "eval before fp32", "eval now fp32", "train bf16", "eval now bf16"):
        if name not in med:
            continue
        train = med.get("train bf16" if "bf16" in name else "train fp32")
        print(f"{name:<20} {med[name]:>8.1f} " + (f"{med[name] / train:>27.2f}x" if train else f"{'-':>28}"))
    print(f"eval now fp32 vs before: {med['eval now fp32'] / med['eval before fp32']:.2f}x; "
          f"largest score difference now vs before {max_diff:.1e}")


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
