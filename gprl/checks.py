"""Every check before any work: what a run will read is checked when it starts, not after minutes of training.

``check_inputs(cfg)`` looks at each model path the task will load (reward model, backbone, policy, judges,
benchmarked policy), each data source it will read (user files are read and validated in full; shipped sources
need the shared data folder) and the judge's API key. ``run.py`` calls it for every sweep point before Hydra
starts the first job, and again inside each job. Cheap: no torch, no model is loaded.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from gprl import GprlError

_validated: dict[tuple, None] = {}  # user files already read in this process: (path, size, mtime)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def _looks_local(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name


def check_model(name: str | None, what: str) -> None:
    """``name`` must be something that loads: ``pkg:MODULE`` with MODULE installed, the laptop policies
    (``tiny:``/``tiny-sft:``, built on first use), an existing directory, or a Hub name (offline: one already in
    the Hugging Face cache)."""
    if not name:
        return
    if name.startswith("pkg:"):
        if importlib.util.find_spec(name[4:].split(".")[0]) is None:
            raise GprlError(f"{what}={name}: python package {name[4:]!r} is not installed")
        return
    if name.startswith(("tiny:", "tiny-sft:")):
        return
    p = Path(name).expanduser()
    if p.exists():
        if not p.is_dir():
            raise GprlError(f"{what}={name} is a file; it must be a model directory (or a Hub name)")
        return
    if _looks_local(name):
        raise GprlError(f"{what}={name} does not exist")
    if _offline() and not _in_hub_cache(name):
        raise GprlError(f"{what}={name} is not a local directory, and with HF_HUB_OFFLINE=1 only Hub models already in "
                        f"the Hugging Face cache load: it is not there")


def _in_hub_cache(repo: str) -> bool:
    from huggingface_hub.constants import HF_HUB_CACHE

    snapshots = Path(HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


def check_source(src, ctx, what: str) -> None:
    """A data source the run will read: a user file is read and validated in full (once per process); a shipped
    source needs the shared data folder (``data_context`` checks it); a Hub dataset is checked when it loads."""
    if src.source == "jsonl":
        from gprl.data.sources import load_source

        p = Path(src.path).expanduser()
        p = p if p.is_absolute() else ctx.root / p
        if not p.exists():
            raise GprlError(f"{what}: pairs file {p} does not exist")
        if p.is_dir():
            raise GprlError(f"{what}: {p} is a folder; it must be a .jsonl file")
        st = p.stat()
        key = (str(p), st.st_size, st.st_mtime_ns, src.max_text_chars)
        if key not in _validated:
            load_source(src, ctx, quiet=True)
            _validated[key] = None


def _sources(cfg) -> list[tuple[str, object]]:
    """``(config key, SourceConfig)`` for every source the task reads."""
    from gprl.config import SourceConfig

    out = []
    trains_rm = cfg.task == "train_rm" or (cfg.task in ("train_rl", "train_po") and not cfg.reward_model.path)
    if trains_rm:
        out.append(("data.train", cfg.data.train))
    if cfg.task in ("train_rm", "eval_rm"):
        out += [(f"eval.sets.{n}", s) for n, s in cfg.eval.sets.items()]
        if cfg.eval.pairs:
            out.append(("eval.pairs", SourceConfig(source="jsonl", path=cfg.eval.pairs)))
    if cfg.task == "train_rl":
        out.append(("rl.prompts", cfg.rl.prompts))
    if cfg.task == "train_po":
        out.append(("po.prompts", cfg.po.prompts))
    if cfg.task in ("train_rl", "train_po") and cfg.policy_eval.enabled:
        pe = cfg.policy_eval
        out += [("policy_eval.prompts", pe.prompts), ("policy_eval.judge_check", pe.judge_check)]
        if not pe.judge:
            out.append(("policy_eval.judge_data", pe.judge_data))
    return out


def _judges(cfg) -> list:
    """(where, JudgeConfig) for every judge the run's benchmarks will call: ``judge``, or a benchmark's own judge
    (``benchmark.judges``) for the benchmarks that have one."""
    from evaluation.benchmark import judge_config

    names = cfg.benchmark.names if cfg.task == "benchmark" else cfg.policy_eval.benchmarks
    own = {n: o for n, o in (cfg.benchmark.judges or {}).items() if n in names}
    out = [("judge", cfg.judge)] if set(names) - set(own) else []
    return out + [(f"benchmark.judges.{n} ({o})", judge_config(o)) for n, o in sorted(own.items())]


def check_inputs(cfg) -> None:
    """Raise one GprlError for the first thing ``cfg``'s task could not read; return quietly otherwise."""
    from gprl.tasks.common import data_context

    task = cfg.task
    policy_task = task in ("train_rl", "train_po")
    if task in ("train_rm", "eval_rm") or policy_task:
        check_model(cfg.reward_model.path, "reward_model.path")
    if (task == "train_rm" or policy_task) and not cfg.reward_model.path:
        check_model(cfg.model.backbone, "model.backbone")
    if policy_task:
        check_model(cfg.policy.backbone, "policy.backbone")
        if cfg.policy_eval.enabled:
            check_model(cfg.policy_eval.judge, "policy_eval.judge")
    if task == "benchmark" and cfg.benchmark.policy:
        check_model(cfg.benchmark.policy, "benchmark.policy")
    if task == "benchmark" or (policy_task and cfg.policy_eval.benchmarks):
        for what, j in _judges(cfg):
            if j.kind == "reward_model":
                check_model(j.path, f"{what}.path")
            if j.kind == "hf_local":
                check_model(j.model, f"{what}.model")
            if j.kind == "api":
                j.api_key()
    _check_deepspeed(cfg)
    _check_vllm(cfg)
    sources = _sources(cfg)
    if sources:
        ctx = data_context(cfg)  # the shared data folder must exist
        for what, src in sources:
            check_source(src, ctx, what)


def _check_deepspeed(cfg) -> None:
    """The DeepSpeed JSON of every trainer this task runs exists and is JSON (a typo stops here, not at step 0)."""
    import json
    from pathlib import Path

    from gprl.distributed import deepspeed_file

    keys = {"train_rm": ["algo"], "train_rl": ["algo", "rl"], "train_po": ["algo", "po"]}.get(cfg.task, [])
    for key in keys:
        f = deepspeed_file(getattr(cfg, key).deepspeed, cfg.paths.root)
        if f is None:
            continue
        try:
            json.loads(Path(f).read_text())
        except (OSError, ValueError) as e:
            raise GprlError(f"{key}.deepspeed={getattr(cfg, key).deepspeed}: {f} is not a readable DeepSpeed JSON "
                            f"({type(e).__name__})") from None


def _check_vllm(cfg) -> None:
    """vLLM asked for (``rl/po/benchmark.use_vllm``) by what this task runs, and not importable: one message now."""
    from gprl.models.generation import require_vllm

    benchmarks = cfg.task == "benchmark" or (cfg.task in ("train_rl", "train_po") and cfg.policy_eval.benchmarks)
    for key, on in (("rl.use_vllm", cfg.task == "train_rl" and cfg.rl.use_vllm),
                    ("po.use_vllm", cfg.task == "train_po" and cfg.po.use_vllm),
                    ("benchmark.use_vllm", bool(benchmarks) and cfg.benchmark.use_vllm)):
        if on:
            require_vllm(key)
