"""Compose configs as run.py does, and run run.py in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]


def compose_cfg(overrides: list[str], hydra_cfg: bool = False):
    import run  # noqa: F401  (registers the schema and resolvers)

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=hydra_cfg)


def run_config(overrides: list[str]):
    import run

    return run.to_run_config(compose_cfg(overrides))


def run_cli(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def tiny_overrides(backbone: str, pairs_file, out_dir=None, steps: int = 2) -> list[str]:
    o = [f"model.backbone={backbone}", "model.max_length=64", "model.freeze_layers=0", "data=jsonl",
         f"data.train.path={pairs_file}", "eval=pairs_only", f"eval.pairs={pairs_file}", "logger=none",
         f"algo.max_steps={steps}", "algo.batch_size=4", "algo.save_steps=2", "algo.logging_steps=1"]
    if out_dir is not None:
        o.append(f"hydra.run.dir={out_dir}")
    return o


def policy_overrides(encoder: str, decoder: str, judge: str, pairs_file, tmp_path) -> list[str]:
    """A policy run on tiny local models: reward model trained on ``pairs_file`` (cached under tmp_path), the
    untrained tiny decoder as policy, a small held-out evaluation judged by ``judge``."""
    rm = [o for o in tiny_overrides(encoder, pairs_file, tmp_path / "run") if not o.startswith("eval")]
    return [*rm, f"policy.backbone={decoder}", f"paths.cache={tmp_path / 'cache'}", f"policy_eval.judge={judge}",
            "policy_eval.max_prompts=4", "policy_eval.max_new_tokens=6", "policy_eval.judge_check.source=jsonl",
            f"policy_eval.judge_check.path={pairs_file}"]
