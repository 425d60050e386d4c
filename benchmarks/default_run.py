#!/usr/bin/env python
"""Wall time and peak memory of the embedded default (``python run.py``), run from scratch several times.

    python benchmarks/default_run.py [--runs 2] [OVERRIDE ...]      # make bench-default [ARGS="..."]

Each run is ``run.py`` in a child process with a fresh output directory (``hydra.run.dir``), so nothing is
reused: it loads the data, trains the GPM (125 steps) and evaluates the 5 sets x 400 pairs, exactly as
``python run.py`` does. Prints each run's wall time, its training and evaluation times (from the run's own
records), its precision and the child's peak resident memory, then min/median over the runs. Measure on an
otherwise idle machine: other jobs on the same cores slow a run by as much as they take.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(out: Path, overrides: list[str]) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "TOKENIZERS_PARALLELISM": "false",
           "WANDB_MODE": os.environ.get("WANDB_MODE", "disabled")}
    log = out.with_suffix(".log")
    t0 = time.perf_counter()
    with open(log, "w") as f:
        p = subprocess.Popen([sys.executable, str(ROOT / "run.py"), f"hydra.run.dir={out}", *overrides], cwd=ROOT,
                             env=env, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"run.py failed (exit {code}); last lines of {log}:\n" + "".join(log.read_text().splitlines(True)[-20:]))
    res = json.loads((out / "results.json").read_text())
    train = json.loads((out / "model" / "train_summary.json").read_text())
    return {"wall_s": wall, "peak_rss_gb": usage.ru_maxrss / 2**20, "train_s": train["wall_s"],
            "eval_s": res.get("eval_wall_s"), "precision": res.get("precision"), "threads": res.get("threads"),
            "accuracy": res["accuracy"]}


def mmss(s: float) -> str:
    return f"{int(s // 60)}:{s % 60:04.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the runs' output directories (default: deleted)")
    ap.add_argument("overrides", nargs="*", help="run.py overrides (default: none, the embedded default)")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-default-", dir=ROOT / "outputs" if (ROOT / "outputs").is_dir() else None))
    rows = []
    try:
        for i in range(args.runs):
            r = one_run(base / f"run{i}", args.overrides)
            rows.append(r)
            print(f"run {i + 1}: wall {mmss(r['wall_s'])} (training {mmss(r['train_s'])}, evaluation "
                  f"{mmss(r['eval_s'] or 0)}), precision {r['precision']}, {r['threads']} threads, peak RSS "
                  f"{r['peak_rss_gb']:.2f} GB, accuracy {r['accuracy']:.4f}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"runs kept in {base}")
    walls = [r["wall_s"] for r in rows]
    print(f"\npython run.py {' '.join(args.overrides)}".rstrip() + f": {len(rows)} runs from scratch; wall min "
          f"{mmss(min(walls))}, median {mmss(statistics.median(walls))}; peak RSS max "
          f"{max(r['peak_rss_gb'] for r in rows):.2f} GB; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
