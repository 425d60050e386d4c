"""Task ``benchmark``: policy benchmarks (``evaluation.BENCHMARKS``) for any saved policy or given answers.

    python run.py +experiment=benchmark 'benchmark.policy="outputs/alpaca_gprl/k=2"'             # the offline judge
    python run.py +experiment=benchmark benchmark.policy=meta-llama/Meta-Llama-3-8B-Instruct \\
        benchmark.split=all judge=gpt4_turbo                                                   # the leaderboard's judge
    python run.py +experiment=benchmark benchmark.outputs=Meta-Llama-3-8B-Instruct             # a shipped model's answers
    python run.py +experiment=benchmark 'benchmark.policy="outputs/alpaca_gpo/k=4"' "benchmark.names=[lm_harness]"
                                                                     # every iteration of a GPO/SPPO run, as iter<N>/

Answers and judgments are cached: re-running makes neither again. A finished run directory is never redone.
"""

from __future__ import annotations

from pathlib import Path

from gprl.config import RunConfig
from gprl.provenance import git_commit
from gprl.rundir import config_fingerprint
from gprl.tasks import TASKS
from gprl.tasks.common import wandb_run, write_results


@TASKS.register("benchmark")
def benchmark(cfg: RunConfig, run_dir: Path) -> dict:
    from evaluation.benchmark import format_result, run_benchmarks, targets

    from gprl.tasks.policy import benchmark_metrics, finished

    if (res := finished(run_dir)) is not None:
        for b in ([res["benchmarks"]] if "iterations" not in res else res["benchmarks"].values()):
            for r in b.values():
                print(format_result(r))
        return res
    parts = targets(cfg)  # one policy, or every iteration of a GPO/SPPO run (read as iter<N>/, as train_po writes)
    with wandb_run(cfg, run_dir) as run:
        if parts[0][0] == "":
            out = run_benchmarks(cfg, run_dir, cfg.benchmark.names, policy=parts[0][1])
            metrics, extra = benchmark_metrics(out), {}
        else:
            out = {it: run_benchmarks(cfg, run_dir / it, cfg.benchmark.names, policy=pol)
                   for it, pol in parts}
            metrics = {k: v for it, b in out.items() for k, v in benchmark_metrics(b, f"{it}/").items()}
            extra = {"iterations": [it for it, _ in parts], "policy_run": cfg.benchmark.policy}
        res = {"task": "benchmark", "benchmarks": out, "metrics": metrics, **extra, "seed": cfg.seed, "git_commit": git_commit(),
               "config_fingerprint": config_fingerprint(cfg)}
        write_results(run_dir / "results.json", res, run)
    return res
