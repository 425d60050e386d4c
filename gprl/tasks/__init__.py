"""What ``run.py`` can do, by name (``task=...``). Every entry is ``fn(cfg: RunConfig, run_dir: Path) -> dict``."""

from gprl.registry import Registry

TASKS: Registry = Registry("task")

from gprl.tasks import benchmark, po, reward_model, rl  # noqa: E402,F401  (registers train_rm, eval_rm, train_rl, train_po, benchmark)
