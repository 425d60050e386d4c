"""What the policy tasks (``train_rl``, ``train_po``) share: the starting policy, loading and saving (LoRA merged),
and the set-up every run starts with (a finished run is never redone; the reward model and the judge are trained
once and cached before the run's W&B run opens)."""

from __future__ import annotations

from pathlib import Path

from gprl.config import RunConfig
from gprl.tasks.common import data_context


def finished(run_dir: Path) -> dict | None:
    """A finished run's results (an unreadable results.json is moved aside and the run done again), else None."""
    from gprl.rundir import read_finished

    results = run_dir / "results.json"
    if (res := read_finished(results)) is not None:
        print(f"[gprl] {results} exists: this run is finished (delete the run directory to redo it)")
    return res


def prepare(cfg: RunConfig):
    """``(reward model directory, reward model)``; also makes sure the evaluation's judge exists."""
    from gprl.policy_eval import judge_dir
    from gprl.tasks.reward_model import cached_reward_model, load_reward_model

    rm_dir = cached_reward_model(cfg)
    if cfg.policy_eval.enabled:
        judge_dir(cfg)
    if cfg.policy_eval.benchmarks:  # the benchmarks' judge before any training: a missing API key stops here
        from evaluation import BENCHMARKS
        from evaluation.benchmark import preflight
        from evaluation.judges import build

        preflight(cfg, cfg.policy_eval.benchmarks)
        if any(getattr(BENCHMARKS.get(n), "judged", True) for n in cfg.policy_eval.benchmarks):  # lm_harness: none
            build(cfg)
    return rm_dir, load_reward_model(cfg, rm_dir)


def load_policy(path: str, dtype: str = "float32"):
    from gprl.models.generation import load_causal_lm

    return load_causal_lm(path, dtype)


def peft_config(cfg: RunConfig):
    """A peft ``LoraConfig`` when ``policy.lora_r > 0``, else None (full fine-tuning)."""
    if cfg.policy.lora_r == 0:
        return None
    from peft import LoraConfig

    return LoraConfig(r=cfg.policy.lora_r, lora_alpha=cfg.policy.lora_alpha, task_type="CAUSAL_LM",
                      target_modules=cfg.policy.lora_target_modules)


def save_policy(trainer, tok, directory: Path) -> None:
    """Save the trained policy as a plain model (LoRA adapters merged), appearing whole or not at all. Every process
    calls it: the Trainer's save gathers a ZeRO-3 model's shards from all of them; rank 0 writes."""
    from peft import PeftModel

    from gprl.distributed import barrier, is_main

    model = trainer.accelerator.unwrap_model(trainer.model)
    tmp = directory.with_name(directory.name + ".tmp")
    if isinstance(model, PeftModel):  # adapters are whole in every process (not sharded: LoRA runs without ZeRO-3)
        if is_main():
            model.merge_and_unload().save_pretrained(tmp)
    else:
        trainer.save_model(str(tmp))
    if is_main():
        tok.save_pretrained(tmp)
        tmp.rename(directory)
    barrier()


def initial_policy(cfg: RunConfig) -> str:
    from gprl.models.tiny import resolve_policy

    root = Path(cfg.paths.root or ".")
    return resolve_policy(cfg.policy.backbone, root / cfg.paths.cache, data_context(cfg).shared_data)


def policy_benchmarks(cfg: RunConfig, run_dir: Path, policy: str) -> dict:
    """``policy_eval.benchmarks`` (e.g. ``[alpaca_eval2]``) on a trained policy, into ``run_dir/benchmarks/``;
    ``{}`` when none are asked for. Settings in ``benchmark``, the judge in ``judge``."""
    if not cfg.policy_eval.benchmarks:
        return {}
    from evaluation.benchmark import run_benchmarks

    return run_benchmarks(cfg, run_dir, cfg.policy_eval.benchmarks, policy=policy)


def benchmark_metrics(results: dict, prefix: str = "") -> dict:
    """Flat table metrics from benchmark results: ``{"<prefix><benchmark>/<metric>": value / 100}`` for the headline
    percentages (fractions, as every results.json ``metrics``), plus each benchmark's ``table_metrics`` as it gives
    them (percentages as fractions; scores such as MT-Bench's 1-10 and counts as they are)."""
    out = {f"{prefix}{name}/{k}": v / 100 for name, res in results.items()
           for k, v in res.get("headline", {}).items() if "rate" in k and isinstance(v, (int, float))}
    out.update({f"{prefix}{name}/{k}": v for name, res in results.items() for k, v in res.get("table_metrics", {}).items()})
    return out
