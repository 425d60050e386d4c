"""The preference world, second version: an exploitable proxy, a competent starting policy, held-out prompts that
are held out by construction, and enough paired seeds to decide GRPO vs GPRL (docs/world.md, "Version 2").

    make reproduce-world                      # SCALE=full: results/world/v2/ (two worker processes)
    make reproduce-world SCALE=smoke          # minutes; outputs/world-v2-smoke/
    python -m gprl.world.v2 --scale full --arms grpo_bt,gprl --seeds 0,1 --workers 1

What changed from version 1 (``gprl.world.experiment``, results/world/v1/):

* prompts come from disjoint parts of the grammar (``gprl.world.split``): SFT and RL prompts from ``train``, the
  proxies' labelled samples from ``proxy``, their held-out gold pairs from ``proxy_val``, evaluation from ``eval``;
* the proxies (BT k=1 and GPM k=4, retrained per seed) learn from a mixture of the gold oracle and a rater biased
  towards filler words (``gprl.world.raters``), so they carry a known, exploitable bias; each proxy axis's
  correlation with each gold aspect, length and filler is recorded;
* the starting policy is competent (``competent_response`` demonstrations; answers up to 48 tokens);
* arms add GRPO on the GPM scalarised (the same proxy as GPRL: estimator separated from reward model);
* every evaluation scores 1,000 held-out draws x 2 samples, stores per-draw outcomes, and scores every arm under
  both proxies; statistics (``gprl.world.stats``) were fixed before the runs.

Runs are cached per (arm, seed) under ``outputs/world-work/v2-<scale>/`` and reused; ``--workers 2`` runs seeds in
two processes (one thread each) and writes the report when both finish.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from gprl.world.experiment import add_shared_data_arg
from gprl.world.oracle import ASPECTS, gold_pairs


@dataclass(frozen=True)
class Scale2:
    proxy_prompts: int  # proxy-part prompt draws whose starting-policy samples (4 each) are labelled
    proxy_pairs: int  # labelling budget per seed
    proxy_val_prompts: int  # proxy_val-part draws for the proxies' held-out gold pairs
    bias: float  # share of the proxies' labels that come from the biased rater
    rm_epochs: float
    steps: int  # optimiser steps of every online arm (iterative arms get the same prompts and samples)
    prompts_per_step: int
    generations: int  # G (online) = K (iterative)
    iterations: int  # iterative arms
    eval_draws: int  # held-out prompt draws per evaluation
    eval_samples: int  # samples per draw
    eval_points: int  # evaluations after step 0
    seeds: tuple[int, ...]
    lr: float = 5e-4  # online arms (the first world's learning rate)
    po_lr: float = 5e-5  # iterative arms: the learning rate where they did not collapse in the first world
    max_tokens: int = 48


SCALES2 = {
    "smoke": Scale2(proxy_prompts=150, proxy_pairs=600, proxy_val_prompts=100, bias=0.5, rm_epochs=2, steps=4,
                    prompts_per_step=4, generations=4, iterations=2, eval_draws=60, eval_samples=2, eval_points=2,
                    seeds=(0, 1)),
    "full": Scale2(proxy_prompts=1500, proxy_pairs=6000, proxy_val_prompts=400, bias=0.5, rm_epochs=3, steps=60,
                   prompts_per_step=8, generations=8, iterations=3, eval_draws=1002, eval_samples=2, eval_points=3,
                   seeds=(0, 1, 2, 3, 4, 5)),
}

ONLINE = {"kind": "rl", "monitor": False}
ARMS2: dict[str, dict] = {
    "grpo_bt": {**ONLINE, "k": 1, "estimator": "grpo"},
    "grpo_gpm": {**ONLINE, "k": 4, "estimator": "grpo"},  # the GPM scalarised: s-hat_i = mean_j s_ij
    "gprl": {**ONLINE, "k": 4, "estimator": "gprl", "monitor": True},
    "gprl_no_monitor": {**ONLINE, "k": 4, "estimator": "gprl"},
    "gprl_verifier": {**ONLINE, "k": 4, "estimator": "gprl", "monitor": True, "verifier": True},
    "gpo_gpm": {"kind": "po", "k": 4, "loss": "gpo"},
    "sppo_gpm": {"kind": "po", "k": 4, "loss": "sppo"},
    "dpo_bt": {"kind": "po", "k": 1, "loss": "dpo"},
}
PROXY_K = {"bt": 1, "gpm": 4}
EVAL_SEED = 10_000  # the evaluation draws: the same for every seed and arm


def train_prompts(scale: Scale2, seed: int) -> list[str]:
    """Every arm's training prompts for one seed (online: steps x prompts/step / 2, each batch serving 2 updates)."""
    from gprl.world.split import draw

    return draw("train", scale.steps * scale.prompts_per_step // 2, seed=1000 + seed)


# ---- proxies ------------------------------------------------------------------------------------------------

def train_proxies2(work: Path, cache: Path, policy: Path, scale: Scale2, seed: int, shared_data: str) -> dict:
    """This seed's BT and GPM proxies on mixture labels of the starting policy's samples to ``proxy`` prompts;
    held-out gold accuracy on ``proxy_val`` pairs; each axis's correlation with the gold aspects, length and
    filler. Returns (and caches in ``proxies.json``) ``{"bt"|"gpm": {...}, "labels": {...}}``; one process trains
    them while others wait (a lock file)."""
    out_file = work / "proxies.json"
    if out_file.exists():
        return json.loads(out_file.read_text())
    work.mkdir(parents=True, exist_ok=True)
    lock = work / ".training"
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL))
    except FileExistsError:  # another process (a --steps/--lr variant) is training this seed's proxies
        print(f"[gprl] world v2: waiting for {work} (another process holds {lock.name}; remove it if none does)")
        while not out_file.exists():
            time.sleep(10)
        return json.loads(out_file.read_text())
    try:
        return _train_proxies2(work, cache, policy, scale, seed, shared_data)
    finally:
        lock.unlink(missing_ok=True)


def _train_proxies2(work: Path, cache: Path, policy: Path, scale: Scale2, seed: int, shared_data: str) -> dict:
    from gprl.evaluate import score_pairs, summarise
    from gprl.models import GeneralPreferenceModel
    from gprl.models.generation import generate
    from gprl.tasks.policy import load_policy
    from gprl.world.experiment import train_rm
    from gprl.world.models import rm_backbone
    from gprl.world.raters import mixture_pairs
    from gprl.world.split import draw

    out_file = work / "proxies.json"
    model, tok = load_policy(str(policy))
    prompts = draw("proxy", scale.proxy_prompts, seed=200 + seed)
    val_prompts = draw("proxy_val", scale.proxy_val_prompts, seed=300 + seed)
    samples = generate(model, tok, prompts + val_prompts, 4, scale.max_tokens, 1.0, 1.0, seed=400 + seed,
                       batch_size=256, desc="labelling samples")
    n = len(prompts)
    train_pairs = mixture_pairs(prompts, samples[:n], scale.proxy_pairs, scale.bias, seed)
    held = gold_pairs(val_prompts, samples[n:], 10**9, seed)
    f = work / "proxy_pairs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in train_pairs))
    res: dict = {"labels": {"pairs": len(train_pairs), "biased_share": _share(train_pairs, "rater", "biased"),
                            "agree_with_gold": _share(train_pairs, "agrees_with_gold", True),
                            "heldout_gold_pairs": len(held)}}
    for name, k in PROXY_K.items():
        d = train_rm(work / f"rm_{name}", rm_backbone(cache), f, k, seed, scale.rm_epochs, shared_data,
                     max_length=96)
        rm = GeneralPreferenceModel.from_pretrained(d)
        acc = summarise("heldout", held, score_pairs(rm, held, desc=f"proxy {name}"))
        res[name] = {"path": str(d), "k": k, "heldout_gold_accuracy": acc["accuracy"], "n": acc["n"],
                     "per_family": {s: v["accuracy"] for s, v in acc.get("per_subset", {}).items()},
                     "axis_correlations": axis_correlations(rm, held)}
    tmp = out_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    tmp.rename(out_file)  # whole or not at all: other processes wait for it
    return res


def _share(rows: list[dict], key: str, value) -> float:
    return sum(r[key] == value for r in rows) / max(1, len(rows))


def axis_correlations(rm, pairs: list[dict]) -> list[dict]:
    """Per proxy axis (BT: its one score), the Pearson correlation over ``pairs`` of the axis's score ``c^l(a, b)``
    with the difference ``a - b`` of each gold aspect, of length and of filler words. Each pair is put in a random
    (seeded) order: in gold's order every difference would lean towards the chosen side and the correlations would
    mix what the axis tracks with how gold picked the pairs."""
    import random

    import numpy as np

    from gprl.models.score import axis_scores
    from gprl.world.grammar import parse_prompt
    from gprl.world.oracle import aspects
    from gprl.world.raters import filler

    rng = random.Random(0)
    ab = [(r["chosen"], r["rejected"]) if rng.random() < 0.5 else (r["rejected"], r["chosen"]) for r in pairs]
    p = [r["prompt"] for r in pairs]
    va, _ = rm.embed(p, [a for a, _ in ab])
    vb, _ = rm.embed(p, [b for _, b in ab])
    c = axis_scores(va, vb).numpy()  # (N, axes)
    feats = {}
    for r, (ya, yb) in zip(pairs, ab):
        P = parse_prompt(r["prompt"])
        a, b = aspects(P, ya), aspects(P, yb)
        for n in ASPECTS:
            feats.setdefault(n, []).append(a[n] - b[n])
        feats.setdefault("length", []).append(len(ya.split()) - len(yb.split()))
        feats.setdefault("filler", []).append(filler(ya) - filler(yb))
    out = []
    for l in range(c.shape[1]):
        row = {}
        for n, xs in feats.items():
            x = np.asarray(xs, dtype=float)
            row[n] = float(np.corrcoef(c[:, l], x)[0, 1]) if x.std() > 0 and c[:, l].std() > 0 else 0.0
        out.append(row)
    return out


# ---- runs ---------------------------------------------------------------------------------------------------

def run_arm(name: str, seed: int, scale: Scale2, policy: Path, proxies: dict, evaluator, work: Path) -> dict:
    from gprl.models import GeneralPreferenceModel
    from gprl.world.experiment import run_po, run_rl

    arm = dict(ARMS2[name])
    if arm["kind"] == "po":
        arm["lr"] = scale.po_lr
    rm = GeneralPreferenceModel.from_pretrained(proxies["bt" if arm["k"] == 1 else "gpm"]["path"])
    run = run_rl if arm["kind"] == "rl" else run_po
    return run(arm, policy, rm, scale, seed, work / name / f"s{seed}", evaluator, prompts=train_prompts(scale, seed))


def run_seed(scale_name: str, scale: Scale2, seed: int, arms: list[str], cache: Path, work: Path,
             shared_data: str) -> list[Path]:
    """Every arm of one seed (the proxies and the starting answers are shared); finished runs are reused."""
    from gprl.models import GeneralPreferenceModel
    from gprl.tasks.policy import load_policy
    from gprl.world.evaluate import Evaluator2
    from gprl.world.models import starting_policy
    from gprl.world.split import draw

    policy = starting_policy(cache, version=2)
    # the proxies depend on the seed, not on --steps/--lr: every variant of a scale shares them
    proxies = train_proxies2(_work(scale_name, None, None) / "proxies" / f"s{seed}", cache, policy, scale, seed,
                             shared_data)
    todo = [a for a in arms if not (work / "runs" / f"{a}-s{seed}.json").exists()]
    if todo:
        start, tok = load_policy(str(policy))
        rms = {n: GeneralPreferenceModel.from_pretrained(proxies[n]["path"]) for n in PROXY_K}
        ev = _CachedStart(Evaluator2(start, tok, rms, draw("eval", scale.eval_draws, EVAL_SEED), scale.eval_samples,
                                     scale.max_tokens, seed), work / "runs" / f"start-s{seed}.json")
        for name in todo:
            print(f"[gprl] world v2 ({scale_name}): {name}, seed {seed}", flush=True)
            t1 = time.time()
            r = run_arm(name, seed, scale, policy, proxies, ev, work)
            r.update(arm=name, seed=seed, k=ARMS2[name]["k"], minutes=round((time.time() - t1) / 60, 2))
            f = work / "runs" / f"{name}-s{seed}.json"
            f.parent.mkdir(parents=True, exist_ok=True)
            tmp = f.with_suffix(".tmp")
            tmp.write_text(json.dumps(r) + "\n")
            tmp.rename(f)  # a run file appears whole or not at all
    return [work / "runs" / f"{a}-s{seed}.json" for a in arms]


class _CachedStart:
    """The step-0 evaluation is the starting policy's, the same for every arm of a seed: computed once, cached."""

    def __init__(self, ev, path: Path):
        self.ev, self.path = ev, path

    def __call__(self, model, step: int) -> dict:
        if step != 0:
            return self.ev(model, step)
        if self.path.exists():
            return json.loads(self.path.read_text())
        r = self.ev(model, 0)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(r) + "\n")
        return r


def reproduce2(scale_name: str, out: Path, cache: Path, arms: list[str], seeds: list[int] | None = None,
               workers: int = 1, shared_data: str = "../shared/data", steps: int | None = None,
               lr: float | None = None, command: str | None = None) -> Path:
    """Run ``arms`` x ``seeds`` (in ``workers`` processes, seeds split between them) and write the report."""
    from gprl.provenance import git_commit
    from gprl.world.models import starting_policy

    scale = _scale(scale_name, steps, lr)
    seeds = list(seeds if seeds is not None else scale.seeds)
    work = _work(scale_name, steps, lr)
    t0 = time.time()
    starting_policy(cache, version=2)  # once, before the workers
    if workers > 1 and len(seeds) > 1:
        procs = []
        for w in range(workers):
            mine = seeds[w::workers]
            if not mine:
                continue
            cmd = [sys.executable, "-m", "gprl.world.v2", "--scale", scale_name, "--arms", ",".join(arms),
                   "--seeds", ",".join(map(str, mine)), "--cache", str(cache), "--shared-data", shared_data,
                   "--worker"]
            cmd += (["--steps", str(steps)] if steps else []) + (["--lr", str(lr)] if lr else [])
            env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
            procs.append(subprocess.Popen(cmd, env=env))
        codes = [p.wait() for p in procs]
        if any(codes):
            from gprl import GprlError

            raise GprlError(f"world v2: a worker failed (exit codes {codes}); finished runs are kept under {work}, "
                            "run the same command again to resume")
    else:
        for s in seeds:
            run_seed(scale_name, scale, s, arms, cache, work, shared_data)
    runs = [json.loads(f.read_text()) for s in seeds for a in arms for f in [work / "runs" / f"{a}-s{s}.json"]]
    proxies = {s: json.loads((_work(scale_name, None, None) / "proxies" / f"s{s}" / "proxies.json").read_text())
               for s in seeds}
    from gprl.world.split import distinct

    policy = starting_policy(cache, version=2)
    meta = {"scale": asdict(scale), "scale_name": scale_name, "arms": arms, "seeds": seeds,
            "minutes_this_invocation": round((time.time() - t0) / 60, 1),
            "arm_minutes": round(sum(r["minutes"] for r in runs), 1), "git_commit": git_commit(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": command,
            "starting_policy": json.loads((policy / "sft_report.json").read_text()), "parts": distinct()}
    from gprl.world.report2 import write_report2

    write_report2(out, runs, proxies, meta)
    return out


def _scale(name: str, steps: int | None, lr: float | None) -> Scale2:
    s = SCALES2[name]
    return replace(s, steps=steps or s.steps, lr=lr or s.lr)


def _work(name: str, steps: int | None, lr: float | None) -> Path:
    tag = (f"-steps{steps}" if steps else "") + (f"-lr{lr:g}" if lr else "")
    return Path("outputs") / "world-work" / f"v2-{name}{tag}"


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="World v2: every arm against the gold oracle, paired seeds, intervals.")
    ap.add_argument("--scale", choices=sorted(SCALES2), default="full")
    ap.add_argument("--out", type=Path, default=None, help="default: results/world/v2 (full) or outputs/world-v2-smoke")
    ap.add_argument("--cache", type=Path, default=Path(".cache/gprl/world"))
    ap.add_argument("--arms", default=",".join(ARMS2), help=f"comma-separated subset of {', '.join(ARMS2)}")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default: the scale's)")
    ap.add_argument("--workers", type=int, default=1, help="processes (seeds are split between them)")
    ap.add_argument("--steps", type=int, default=None, help="extended runs: more optimiser steps (separate runs)")
    ap.add_argument("--lr", type=float, default=None, help="online arms' learning rate (separate runs)")
    add_shared_data_arg(ap)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    arms = [x for x in a.arms.split(",") if x]
    unknown = [x for x in arms if x not in ARMS2]
    if unknown or not arms:
        raise SystemExit(f"gprl: error: unknown arm(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(ARMS2)}")
    try:
        seeds = None if a.seeds is None else [int(s) for s in a.seeds.split(",") if s]
    except ValueError:
        raise SystemExit(f"gprl: error: --seeds must be comma-separated integers, got {a.seeds!r}") from None
    for flag, v in (("--lr", a.lr), ("--steps", a.steps), ("--workers", a.workers)):
        if v is not None and not v > 0:
            raise SystemExit(f"gprl: error: {flag} must be > 0, got {v}")
    if a.worker:
        scale = _scale(a.scale, a.steps, a.lr)
        for s in seeds or scale.seeds:
            run_seed(a.scale, scale, s, arms, a.cache, _work(a.scale, a.steps, a.lr), a.shared_data)
        return
    tag = (f"steps{a.steps}" if a.steps else "") + (f"lr{a.lr:g}" if a.lr else "")
    out = a.out or (Path("results/world/v2") / tag if a.scale == "full" else Path("outputs/world-v2-smoke") / tag)
    command = "python -m gprl.world.v2 " + " ".join(sys.argv[1:] if argv is None else argv)
    from gprl import GprlError

    try:
        print(reproduce2(a.scale, out, a.cache, arms, seeds, a.workers, a.shared_data, steps=a.steps, lr=a.lr,
                         command=command.strip()))
    except GprlError as e:
        raise SystemExit(f"gprl: error: {e}") from None


if __name__ == "__main__":
    main()
