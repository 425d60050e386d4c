"""Benchmarks and judges.

``REPORTS`` post-process a reward model's evaluation results (``results.json``) into a benchmark's own scoring,
e.g. RewardBench's sections. ``BENCHMARKS`` evaluate a policy: generate answers with the benchmark's decoding
settings, write them in the benchmark's native format, judge them (``evaluation.judges``) and score them with the
package that owns the benchmark (``evaluation/benchmark.py`` is the shared layer). Each records its version."""

from gprl.registry import Registry

REPORTS: Registry = Registry("report")
BENCHMARKS: Registry = Registry("benchmark")

from evaluation import rewardbench  # noqa: E402,F401  (registers rewardbench, rewardbench_standin)
from evaluation import alpaca_eval2  # noqa: E402,F401  (registers alpaca_eval2)
from evaluation import mt_bench  # noqa: E402,F401  (registers mt_bench)
from evaluation import lm_harness  # noqa: E402,F401  (registers lm_harness)
from evaluation import arena_hard  # noqa: E402,F401  (registers arena_hard)
from evaluation import wildbench  # noqa: E402,F401  (registers wildbench)
