"""Pieces every task uses: data context, eval sets, results files, W&B set-up."""

from __future__ import annotations

import json
import os
import random
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from gprl import GprlError
from gprl.config import RunConfig, SourceConfig
from gprl.data import DataContext, load_source


def data_context(cfg: RunConfig) -> DataContext:
    root = Path(cfg.paths.root or ".").resolve()
    shared = Path(cfg.paths.shared_data).expanduser()
    shared = shared if shared.is_absolute() else root / shared
    if not shared.is_dir():
        raise GprlError(f"shared data folder {shared} does not exist (set paths.shared_data)")
    return DataContext(shared_data=shared.resolve(), root=root, seed=cfg.seed)


def eval_sets(cfg: RunConfig, ctx: DataContext) -> dict[str, list[dict]]:
    """The configured evaluation sets, plus ``eval.pairs`` as set 'pairs', each capped by max_pairs_per_set.

    Every seeded choice here (the cap's sample, a source's own seeded construction such as AlpacaEval's pairs per
    instruction) uses ``eval.subsample_seed``, never the run's seed: runs that differ only in ``seed`` score the
    same pairs. The one exception is a set equal to ``data.train`` (Table 1's accuracy on the training pairs), which
    must be the run's own training pairs and so is built with the run's seed."""
    specs = dict(cfg.eval.sets)
    if cfg.eval.pairs:
        specs["pairs"] = SourceConfig(source="jsonl", path=cfg.eval.pairs)
    if not specs:
        raise GprlError("nothing to evaluate: configure eval.sets or pass eval.pairs=FILE.jsonl")
    fixed = replace(ctx, seed=cfg.eval.subsample_seed)
    out = {}
    for name, src in specs.items():
        pairs = load_source(src, ctx if src == cfg.data.train else fixed)
        cap = cfg.eval.max_pairs_per_set
        if cap is not None and len(pairs) > cap:
            pairs = random.Random(cfg.eval.subsample_seed).sample(pairs, cap)
        out[name] = pairs
    return out


def _plain(o):
    """numpy and pandas scalars (the evaluation packages' metrics) as plain numbers."""
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def write_json(path: Path, obj) -> None:
    """Write atomically: a crash never leaves half a results file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_plain) + "\n")
    os.replace(tmp, path)


@contextmanager
def wandb_run(cfg: RunConfig, run_dir: Path):
    """Open a W&B run when ``logger.wandb`` (offline by default), on rank 0 only, grouped by sweep with job type and
    tags (``gprl.runmeta.identity``); always finished, also on failure."""
    from gprl.distributed import is_main

    if not cfg.logger.wandb or cfg.logger.mode == "disabled" or not is_main():
        yield None
        return
    import wandb
    from omegaconf import OmegaConf

    from gprl.runmeta import identity

    os.environ.setdefault("WANDB_SILENT", "true")
    run = wandb.init(project=cfg.logger.project, entity=cfg.logger.entity, mode=cfg.logger.mode,
                     dir=str(run_dir), name=run_dir.name or cfg.name, **identity(cfg),
                     config=OmegaConf.to_container(OmegaConf.structured(cfg)), reinit="finish_previous")
    try:
        yield run
    finally:
        run.finish()


def write_results(path: Path, res: dict, run=None) -> None:
    """A run's results.json, and its final numbers (``gprl.runmeta.final_metrics``) in the W&B run summary."""
    from gprl.runmeta import final_metrics

    write_json(path, res)
    if run is not None:
        run.summary.update(final_metrics(res))
