"""Run directories as records: config, W&B identity, final numbers and logged history, read from the files every run
writes (``.hydra/config.yaml``, ``results.json``, ``metrics.jsonl``), so the offline page needs no W&B at all."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from gprl import GprlError
from gprl.runmeta import final_metrics, identity

# results.json metric keys a sweep is compared on by default (regexes, in this order; `--metrics` replaces them):
# RewardBench sections, overall and per-set accuracy, the benchmarks' headline scores, the policy evaluation (not the
# training reward: GPM rewards are relative to the group, so its mean is 0 by construction)
HEADLINE = (r"rewardbench[^/]*/[^/]+", r"accuracy", r"[^/]+/accuracy",
            r"(iter\d+/)?(alpaca_eval2/(lc_)?win_rate|arena_hard/score|wildbench/wb_reward|mt_bench/score"
            r"|lm_harness/[^/]+/average)",
            r"policy_eval/win_rate")
# metrics.jsonl keys drawn as training curves, when logged
CURVES = ("loss", "train_pair_accuracy", "kl", "entropy", "completions/mean_length", "grad_norm")
# GPRL's per-axis statistics in metrics.jsonl: gprl/axis<i>_<stat> and gprl/multiplier<i>
AXIS_STAT = re.compile(r"gprl/(?:axis(\d+)_(\w+)|(multiplier)(\d+))$")


@dataclass
class Run:
    dir: Path
    task: str
    k: int
    seed: int
    group: str
    job_type: str
    tags: list[str]
    final: dict[str, float] = field(default_factory=dict)  # gprl.runmeta.final_metrics; {} while unfinished
    history: list[dict] = field(default_factory=list)  # metrics.jsonl's per-step records

    @property
    def finished(self) -> bool:
        return bool(self.final)

    @property
    def name(self) -> str:
        return self.dir.name

    def axis_stats(self) -> dict[str, dict[int, list[tuple[int, float]]]]:
        """``{stat: {axis: [(step, value), ...]}}`` of GPRL's per-axis statistics (``{}`` for other runs)."""
        out: dict[str, dict[int, list[tuple[int, float]]]] = {}
        for rec in self.history:
            for key, v in rec.items():
                m = AXIS_STAT.match(key)
                if m and isinstance(v, (int, float)):
                    stat, axis = (m[2], m[1]) if m[1] is not None else (m[3], m[4])
                    out.setdefault(stat, {}).setdefault(int(axis), []).append((rec["step"], v))
        return out


def load_config(run_dir: Path):
    """The run's composed config (``.hydra/config.yaml``) on the current schema, defaults filled in for fields added
    since (not validated again: a finished run's settings are what they were)."""
    from omegaconf import OmegaConf

    from gprl.config import RunConfig

    f = run_dir / ".hydra" / "config.yaml"
    try:
        return OmegaConf.merge(OmegaConf.structured(RunConfig), OmegaConf.load(f))
    except Exception as e:  # noqa: BLE001 (OmegaConf's several error types: one message)
        raise GprlError(f"{f} does not fit the current config schema: {str(e).splitlines()[0]}") from None


def _history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in recs if "step" in r and "train_runtime" not in r]  # not the end-of-training summary


def load_run(run_dir: Path) -> Run:
    cfg = load_config(run_dir)
    meta = identity(cfg)
    res = run_dir / "results.json"
    try:
        final = final_metrics(json.loads(res.read_text())) if res.exists() else {}
    except json.JSONDecodeError as e:
        raise GprlError(f"{res} is not valid JSON ({e})") from None
    return Run(dir=run_dir, task=cfg.task, k=cfg.k, seed=cfg.seed, **meta, final=final,
               history=_history(run_dir / "metrics.jsonl"))


def run_dirs(path: Path) -> list[Path]:
    """A run directory itself, or every run directory under a sweep directory (each has ``.hydra/config.yaml``)."""
    if (path / ".hydra" / "config.yaml").exists():
        return [path]
    found = sorted({f.parent.parent for f in path.glob("**/.hydra/config.yaml")})
    if not path.is_dir() or not found:
        raise GprlError(f"{path} is neither a run directory nor a sweep directory of runs (no .hydra/config.yaml)")
    return found


def load_runs(paths: list[Path]) -> list[Run]:
    """Runs of the given run and sweep directories, each once, ordered by (group, k, seed)."""
    dirs = list(dict.fromkeys(d.resolve() for p in paths for d in run_dirs(Path(p))))
    return sorted((load_run(d) for d in dirs), key=lambda r: (r.group, r.k, r.seed, r.name))


def headline(runs: list[Run], patterns: tuple[str, ...] = HEADLINE) -> list[str]:
    """Final-metric keys to compare, in ``patterns`` order: those every finished run has; a key whose values equal an
    earlier key's on every run of three or more (the same number under two names, e.g. Chat accuracy and RewardBench
    Chat) is shown once."""
    done = [r for r in runs if r.finished]
    if not done:
        return []
    common = [k for k in done[0].final if all(k in r.final for r in done)]
    keys = [k for p in patterns for k in sorted(common) if re.fullmatch(p, k)]
    out, seen = [], set()
    for k in dict.fromkeys(keys):
        values = tuple(r.final[k] for r in done)
        if values not in seen:
            out.append(k)
            if len(done) >= 3:
                seen.add(values)
    return out


def curve_keys(runs: list[Run], keys: tuple[str, ...] = CURVES) -> list[str]:
    return [k for k in keys if any(k in rec for r in runs for rec in r.history)]
