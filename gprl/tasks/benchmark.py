"""Task ``benchmark``: policy benchmarks (``evaluation.BENCHMARKS``) for any saved policy or given answers.

    python run.py +experiment=benchmark benchmark.policy=outputs/alpaca_gprl/k=2             # the offline judge
    python run.py +experiment=benchmark benchmark.policy=meta-llama/Meta-Llama-3-8B-Instruct \\
        benchmark.split=all judge=gpt4_turbo                                                   # the leaderboard's judge
    python run.py +experiment=benchmark benchmark.outputs=Meta-Llama-3-8B-Instruct             # a shipped model's answers

Answers and judgments are cached: re-running makes neither again. A finished run directory is never redone.
"""

from __future__ import annotations

from pathlib import Path

from gprl.config import RunConfig
from gprl.rundir import config_fingerprint, read_finished
from gprl.tasks import TASKS
from gprl.tasks.common import wandb_run, write_json


@TASKS.register("benchmark")
def benchmark(cfg: RunConfig, run_dir: Path) -> dict:
    from evaluation.benchmark import format_result, run_benchmarks

    results = run_dir / "results.json"
    if (res := read_finished(results)) is not None:
        print(f"[gprl] {results} exists: this run is finished (delete the run directory to redo it)")
        for r in res["benchmarks"].values():
            print(format_result(r))
        return res
    with wandb_run(cfg, run_dir, "benchmark") as run:
        out = run_benchmarks(cfg, run_dir, cfg.benchmark.names, wandb_run=run)
    from gprl.tasks.policy import benchmark_metrics

    res = {"task": "benchmark", "benchmarks": out, "metrics": benchmark_metrics(out), "seed": cfg.seed,
           "config_fingerprint": config_fingerprint(cfg)}
    write_json(results, res)
    return res
