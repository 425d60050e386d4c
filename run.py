#!/usr/bin/env python
"""The one entry point.

    python run.py                                    # embedded default: GPM (k=4, gate, L2) on MiniLM, offline
    python run.py k=1                                # the same as a Bradley-Terry model
    python run.py -m k=1,2,4,6,8                     # a sweep; each job gets its own output directory
    python run.py +experiment=rm_eval reward_model.path=DIR eval.pairs=FILE.jsonl
    python run.py +experiment=NAME launcher=slurm -m k=2,4,6,8   # the same sweep on a SLURM cluster

Configs live in conf/ (groups: model, data, reward_model, algo, eval, logger, launcher, paths, experiment);
their schema is gprl.config.RunConfig, which rejects impossible settings with one clear message.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from gprl import GprlError
from gprl.config import RunConfig

ROOT = Path(__file__).resolve().parent


def slug(overrides: str, limit: int = 120) -> str:
    """A run directory name from Hydra's override string: deterministic (so a re-run finds its checkpoints),
    distinct for distinct overrides, one path component (no '/'), and short enough for any filesystem."""
    name = str(overrides).replace("/", "_").replace("\\", "_") or "default"
    if len(name) > limit:
        name = f"{name[:limit - 13]}..{hashlib.sha1(name.encode()).hexdigest()[:10]}"
    return name


def register_configs() -> None:
    """Schema in the ConfigStore, and the resolver that turns override lists into directory names."""
    ConfigStore.instance().store(name="schema", node=RunConfig)
    if not OmegaConf.has_resolver("slug"):
        OmegaConf.register_new_resolver("slug", slug)


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Validate a composed config (runs every ``__post_init__``); one clear GprlError on impossible settings."""
    cfg = cfg.copy()
    if not cfg.paths.root:
        cfg.paths.root = str(ROOT)
    try:
        return OmegaConf.to_object(cfg)
    except Exception as e:  # OmegaConf wraps errors raised inside __post_init__
        cause = e
        while cause is not None and not isinstance(cause, GprlError):
            cause = cause.__cause__ or cause.__context__
        raise (cause or GprlError(f"invalid config: {e}")) from None


def fail(msg: str) -> None:
    print(f"gprl: error: {msg}", file=sys.stderr)
    sys.exit(2)


register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from gprl.tasks import TASKS

    try:
        run_cfg = to_run_config(cfg)
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        TASKS.get(run_cfg.task)(run_cfg, run_dir)
    except GprlError as e:
        fail(str(e))


def hoist_multirun_flag(argv: list[str]) -> list[str]:
    """Hydra's argparse stops reading overrides at ``-m``: ``run.py +experiment=X -m k=2,4`` would reject
    ``k=2,4``. Moving ``-m``/``--multirun`` to the front makes that documented form work."""
    flags = [a for a in argv[1:] if a in ("-m", "--multirun")]
    return argv[:1] + flags + [a for a in argv[1:] if a not in ("-m", "--multirun")]


if __name__ == "__main__":
    sys.argv = hoist_multirun_flag(sys.argv)
    main()
