"""What a run is and what it ended with, defined once for W&B (``gprl.tasks.common.wandb_run``) and for the offline
dashboard (``gprl.dashboard``), so both show the same group, job type, tags and final numbers.

- group: the sweep (``logger.group``, else the run name ``name``, which also names ``multirun/<name>``)
- job_type: what the task does (``JOB_TYPES``: reward_model, reward_model_eval, rl, po, benchmark)
- tags: ``algorithm:``, ``k:``, ``model:``, ``data:`` and, when set, ``scale:`` (``logger.scale``), then
  ``logger.tags``
- final metrics: results.json's ``metrics`` (RewardBench sections, per-set accuracy, benchmark scores), the policy
  evaluation as ``policy_eval/*`` and the run's other top-level numbers (overall accuracy, reward_first/last, minutes)
"""

from __future__ import annotations

from pathlib import Path

from gprl.registry import Registry

# task -> W&B job type
JOB_TYPES = {"train_rm": "reward_model", "eval_rm": "reward_model_eval", "train_rl": "rl", "train_po": "po",
             "benchmark": "benchmark"}

# task -> what the run trains or measures: {"algorithm", "model", "data"}
DESCRIBE: Registry = Registry("task")


def _source(src) -> str:
    """A data source in a few characters: its hub name, file name or loader, with the variant (cyclic sets)."""
    name = src.hub_name or (Path(src.path).stem if src.path else src.source)
    return f"{name}/{src.variant}" if src.variant else name


def _model(name: str | None) -> str:
    return Path(str(name)).name if name else "none"  # a Hub name or directory by its last part


@DESCRIBE.register("train_rm")
@DESCRIBE.register("eval_rm")
def _reward_model(cfg) -> dict:
    return {"algorithm": "bt" if cfg.k == 1 else "gpm", "model": cfg.model.name, "data": _source(cfg.data.train)}


@DESCRIBE.register("train_rl")
def _rl(cfg) -> dict:
    return {"algorithm": cfg.rl.estimator, "model": _model(cfg.policy.backbone), "data": _source(cfg.rl.prompts)}


@DESCRIBE.register("train_po")
def _po(cfg) -> dict:
    return {"algorithm": cfg.po.loss, "model": _model(cfg.policy.backbone), "data": _source(cfg.po.prompts)}


@DESCRIBE.register("benchmark")
def _benchmark(cfg) -> dict:
    b = cfg.benchmark
    return {"algorithm": "benchmark", "model": _model(b.policy or b.outputs), "data": "+".join(b.names)}


def identity(cfg) -> dict:
    """``{"group", "job_type", "tags"}`` of a run (``cfg``: a RunConfig); the keyword arguments W&B's init gets."""
    d = DESCRIBE.get(cfg.task)(cfg)
    tags = [f"algorithm:{d['algorithm']}", f"k:{cfg.k}", f"model:{d['model']}", f"data:{d['data']}"]
    if cfg.logger.scale:
        tags.append(f"scale:{cfg.logger.scale}")
    tags += [t for t in cfg.logger.tags if t not in tags]
    return {"group": cfg.logger.group or cfg.name, "job_type": JOB_TYPES[cfg.task],
            "tags": [t[:64] for t in tags]}  # W&B refuses tags over 64 characters


CONFIG_KEYS = ("k", "seed", "tau")  # top-level numbers of results.json that are settings, not results


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def final_metrics(res: dict) -> dict[str, float]:
    """The numbers a run ended with, flat, from its results.json: ``metrics`` as written, the policy evaluation's
    numbers as ``policy_eval/<key>``, and every other top-level number (not CONFIG_KEYS)."""
    out = {k: v for k, v in res.get("metrics", {}).items() if _number(v)}
    out.update({f"policy_eval/{k}": v for k, v in (res.get("policy_eval") or {}).items() if _number(v)})
    out.update({k: v for k, v in res.items() if _number(v) and k not in CONFIG_KEYS and k not in out})
    return out
