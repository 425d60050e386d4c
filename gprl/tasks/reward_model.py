"""Tasks ``train_rm`` (train a GPM/BT reward model, then evaluate it) and ``eval_rm`` (evaluate one).

Resume is a contract: the run directory is deterministic (Hydra: outputs/<name>/<overrides>), the latest
checkpoint in ``<run_dir>/checkpoints`` is picked up automatically, a finished model in ``<run_dir>/model``
is never retrained, and a finished ``results.json`` is never recomputed or overwritten.
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

from gprl import GprlError, distributed
from gprl.config import RunConfig
from gprl.data import load_source
from gprl.provenance import fingerprint, git_commit, versions
from gprl.runtime import resolve_precision
from gprl.rundir import config_fingerprint, last_good_checkpoint, model_problem, move_aside, read_finished, trim_log
from gprl.tasks import TASKS
from gprl.tasks.common import data_context, eval_sets, wandb_run, write_json, write_results

RESULTS = "results.json"


def load_reward_model(cfg: RunConfig, path):
    """A saved reward model (gprl's layout or a released GPM checkpoint) in ``model.dtype``; ``reward_model.tau``,
    where set, replaces the saved temperature (a released checkpoint's default is the reference pipeline's 0.1)."""
    from gprl.models import GeneralPreferenceModel

    overrides = {"tau": cfg.reward_model.tau} if cfg.reward_model.tau is not None else {}
    return GeneralPreferenceModel.from_pretrained(path, dtype=cfg.model.dtype, **overrides)


def build_model(cfg: RunConfig):
    from gprl.models import GeneralPreferenceModel, RewardModelSpec

    if cfg.reward_model.path:
        return load_reward_model(cfg, cfg.reward_model.path)
    spec = RewardModelSpec(k=cfg.k, gate=cfg.reward_model.gate, l2=cfg.reward_model.l2, tau=cfg.tau,
                           pooling=cfg.model.pooling, max_length=cfg.model.max_length)
    return GeneralPreferenceModel.from_backbone(cfg.model.backbone, spec, cfg.model.dtype,
                                                cfg.model.attn_implementation, cfg.model.trust_remote_code)


def training_kwargs(cfg: RunConfig, out: Path, report_to: str, world: int | None = None) -> dict:
    """The Trainer's arguments as a dict. With ``algo.global_batch_size`` the accumulation is derived from the number
    of processes (``world``, default: this launch's), so per-device batch x accumulation x world = the global batch."""
    from gprl import distributed

    a = cfg.algo
    world = distributed.world_size() if world is None else world
    accum = (a.grad_accum if a.global_batch_size is None
             else distributed.accumulation(a.global_batch_size, a.batch_size, world, "algo.global_batch_size"))
    return dict(
        output_dir=str(out), per_device_train_batch_size=a.batch_size, gradient_accumulation_steps=accum,
        learning_rate=a.lr, num_train_epochs=a.epochs, max_steps=a.max_steps, warmup_steps=a.warmup_ratio,
        lr_scheduler_type=a.scheduler, optim=a.optim, adam_beta1=a.adam_beta1, adam_beta2=a.adam_beta2,
        weight_decay=a.weight_decay, max_grad_norm=a.max_grad_norm, bf16=resolve_precision(a.precision) == "bf16",
        activation_checkpointing=a.gradient_checkpointing,
        deepspeed=distributed.deepspeed_file(a.deepspeed, cfg.paths.root),
        save_strategy="steps",
        save_steps=a.save_steps, save_total_limit=a.save_total_limit, logging_steps=a.logging_steps,
        logging_first_step=True, report_to=report_to, run_name=cfg.name, seed=cfg.seed, data_seed=cfg.seed,
        remove_unused_columns=False, dataloader_num_workers=0, use_cpu=not _cuda(),
    )


def training_args(cfg: RunConfig, out: Path, report_to: str):
    from transformers import TrainingArguments

    from gprl.distributed import check_devices

    args = TrainingArguments(**training_kwargs(cfg, out, report_to))
    check_devices(args)
    return args


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def train(cfg: RunConfig, run_dir: Path, callbacks=()) -> Path:
    """Train (or resume) and save the final reward model to ``<run_dir>/model``; return that directory."""
    from transformers import set_seed
    from gprl.losses import LOSSES
    from gprl.trainers.callbacks import JsonlLogger
    from gprl.trainers.rm_trainer import CachedPairCollator, FeatureCache, PairCollator, PreferenceTrainer

    final = run_dir / "model"
    if final.exists() and (why := model_problem(final)) is not None:
        move_aside(final, why)  # a damaged final model: train again from the last whole checkpoint
    if final.exists():
        print(f"[gprl] found a finished model in {final}; not training again")
        return final
    ctx = data_context(cfg)
    pairs = load_source(cfg.data.train, ctx)
    random.Random(cfg.seed).shuffle(pairs)
    n_val = int(len(pairs) * cfg.data.val_fraction)
    val, train_pairs = pairs[:n_val], pairs[n_val:]
    print(f"[gprl] training a {'BT' if cfg.k == 1 else f'GPM ({cfg.k // 2} subspaces)'} reward model, "
          f"embedding dimension k={cfg.k}, loss {cfg.loss_name}, tau={cfg.tau}, on {len(train_pairs)} pairs "
          f"from {cfg.data.train.source}:{cfg.data.train.split}")
    set_seed(cfg.seed)
    model = build_model(cfg)
    if cfg.model.disable_dropout:
        from gprl.models.backbone import disable_dropout

        disable_dropout(model)
    if cfg.model.freeze_layers:
        from gprl.models.backbone import freeze_bottom

        n = freeze_bottom(model.backbone, cfg.model.freeze_layers)
        print(f"[gprl] froze the embeddings and {cfg.model.freeze_layers} bottom blocks; {n:,} backbone parameters train")
    ckpt_dir = run_dir / "checkpoints"
    last = last_good_checkpoint(ckpt_dir)  # a partial checkpoint (a kill during its save) is skipped
    trim_log(run_dir / "metrics.jsonl", last)
    if last:
        print(f"[gprl] resuming from {last}")
    report = "wandb" if cfg.logger.wandb and cfg.logger.mode != "disabled" else "none"
    args = training_args(cfg, ckpt_dir, report)
    t0 = time.time()
    collator = PairCollator(model)
    if cfg.algo.cache_features:  # the backbone never changes: embed each distinct sequence once
        if cfg.algo.deepspeed:
            raise GprlError("algo.cache_features trains only the heads; it does not run under DeepSpeed (algo.deepspeed=null)")
        model.backbone.requires_grad_(False)
        model.to(args.device)
        cache = FeatureCache(model, train_pairs + val, cfg.eval.batch_size, cfg.algo.precision)
        collator = CachedPairCollator(cache)
        print(f"[gprl] froze the whole backbone and cached its features of {len(cache)} sequences "
              f"({time.time() - t0:.0f} s); only the heads train")
    trainer = PreferenceTrainer(
        model=model, args=args, train_dataset=train_pairs,
        eval_dataset=val or None, data_collator=collator, processing_class=model.tokenizer,
        loss_fn=LOSSES.get(cfg.loss_name), tau=cfg.tau, use_margin=cfg.reward_model.use_margin,
        head_lr=cfg.algo.head_lr, callbacks=[JsonlLogger(run_dir / "metrics.jsonl"), *callbacks],
    )
    result = trainer.train(resume_from_checkpoint=last)
    if trainer.state.global_step < trainer.state.max_steps:  # stopped early (a callback): leave it resumable
        print(f"[gprl] stopped at step {trainer.state.global_step}/{trainer.state.max_steps}; re-run to resume")
        return ckpt_dir
    # every process takes part in gathering the weights (ZeRO-3 shards, through the Trainer's accelerator, as
    # Trainer.save_model does); rank 0 writes them in gprl's layout
    state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    if distributed.is_main():
        tmp = final.with_name(final.name + ".tmp")  # the model appears whole or not at all
        shutil.rmtree(tmp, ignore_errors=True)
        trainer.accelerator.unwrap_model(trainer.model).save_pretrained(tmp, state_dict=state)
        write_json(tmp / "train_summary.json", {**result.metrics, "pairs": len(train_pairs),
                                                "wall_s": round(time.time() - t0, 1),
                                                "processes": distributed.world_size(),
                                                "precision": resolve_precision(cfg.algo.precision),
                                                "config_fingerprint": config_fingerprint(cfg)})
        tmp.rename(final)
    distributed.barrier()  # no process reads the model before it is whole
    return final


def evaluate_to(cfg: RunConfig, model, run_dir: Path, precision: str = "fp32") -> dict:
    """Score ``eval.sets`` with ``model`` in ``precision`` (train_rm: ``algo.precision``; eval_rm: fp32)."""
    import torch

    from gprl.evaluate import score_pairs, summarise

    ctx = data_context(cfg)
    sets = eval_sets(cfg, ctx)
    rows = []
    t0 = time.time()
    for name, pairs in sets.items():
        rows.append(summarise(name, pairs, score_pairs(model, pairs, cfg.eval.batch_size, desc=f"eval {name}",
                                                       precision=precision)))
    n = sum(r["n"] for r in rows)
    res = {"accuracy": sum(r["accuracy"] * r["n"] for r in rows) / n, "n": n,
           "longer_wins": sum(r["longer_wins"] * r["n"] for r in rows) / n, "sets": rows,
           "k": model.spec.k, "tau": model.spec.tau, "gate": model.spec.uses_gate, "l2": model.spec.uses_l2,
           "backbone": model.spec.backbone, "seed": cfg.seed, "git_commit": git_commit(), "versions": versions(),
           "precision": resolve_precision(precision), "threads": torch.get_num_threads(),
           "eval_wall_s": round(time.time() - t0, 1),
           "config_fingerprint": config_fingerprint(cfg)}
    if len(rows) == 1 and "per_subset" in rows[0]:
        res["per_subset"] = rows[0]["per_subset"]
    res["metrics"] = flat_metrics(rows)
    res["reports"] = list(cfg.eval.reports)
    for name in cfg.eval.reports:
        from evaluation import REPORTS

        rep = REPORTS.get(name)(res)
        res[name] = rep
        res["metrics"].update({f"{name}/{k}": v for k, v in rep.items() if isinstance(v, float)})
    return res


def flat_metrics(rows: list[dict]) -> dict[str, float]:
    """``{set}/accuracy`` and ``{set}/{subset}/accuracy`` (and longer_wins): the keys table manifests name."""
    out = {}
    for r in rows:
        for key in ("accuracy", "longer_wins"):
            out[f"{r['set']}/{key}"] = r[key]
            for sub, s in r.get("per_subset", {}).items():
                out[f"{r['set']}/{sub}/{key}"] = s[key]
    return out


def _report(res: dict, run_dir: Path) -> None:
    from gprl.evaluate import format_table

    k = res["k"]
    title = (f"Pairwise accuracy of s(chosen > rejected) > 0, embedding dimension k={k} "
             f"({'BT' if k == 1 else f'GPM, {k // 2} subspaces'}), seed {res['seed']}; run dir {run_dir}")
    print("\n" + format_table(res["sets"], title))
    for name in res.get("reports", []):
        rb = res[name]
        print(f"{rb['benchmark']}\n" + "  ".join(f"{k} {v:.3f}" for k, v in rb.items() if isinstance(v, float)))
    print()


@TASKS.register("train_rm")
def train_rm(cfg: RunConfig, run_dir: Path) -> dict:
    """Train a reward model on ``data.train``, then evaluate it on ``eval.sets``."""
    results = run_dir / RESULTS
    if (res := read_finished(results)) is not None:
        print(f"[gprl] {results} exists: this run is finished (delete the run directory to redo it)")
        _report(res, run_dir)
        return res
    with wandb_run(cfg, run_dir) as run:
        final = train(cfg, run_dir)
        if final.name != "model" or not distributed.is_main():  # evaluation and results: rank 0 alone
            return {}
        from gprl.models import GeneralPreferenceModel

        model = GeneralPreferenceModel.from_pretrained(final, dtype=cfg.model.dtype)
        res = evaluate_to(cfg, model, run_dir, cfg.algo.precision)
        write_results(results, res, run)
        _report(res, run_dir)
    return res


@TASKS.register("eval_rm")
def eval_rm(cfg: RunConfig, run_dir: Path) -> dict:
    """Evaluate ``reward_model.path`` on ``eval.sets`` and/or ``eval.pairs``; writes results.json."""
    if not cfg.reward_model.path:
        raise GprlError("eval_rm needs reward_model.path=DIR")
    results = run_dir / RESULTS
    if results.exists():
        results = run_dir / f"results.{time.strftime('%Y%m%d-%H%M%S')}.json"  # keep earlier results
    with wandb_run(cfg, run_dir) as run:
        model = build_model(cfg)
        res = evaluate_to(cfg, model, run_dir)
        write_results(results, res, run)
        _report(res, run_dir)
    print(f"[gprl] wrote {results}")
    return res


def cached_reward_model(cfg: RunConfig, kind: str = "reward_models") -> Path:
    """The reward model a policy run uses: ``reward_model.path`` if set, else one trained with this run's k,
    model, reward_model, data, algo and seed, once, under ``<paths.cache>/<kind>/<fingerprint>`` (a file lock
    makes parallel sweep jobs wait for it instead of training it twice). Returns the model directory."""
    import fcntl

    import dataclasses

    if cfg.reward_model.path:
        return Path(cfg.reward_model.path)
    # its own metrics.jsonl in the cache directory; the policy run owns the W&B run
    cfg = dataclasses.replace(cfg, logger=dataclasses.replace(cfg.logger, wandb=False))
    # fields added to the configs later leave the key as it was at their defaults (provenance.ADDED_LATER)
    cfg = dataclasses.replace(cfg, algo=dataclasses.replace(cfg.algo, precision=resolve_precision(cfg.algo.precision)))
    key = fingerprint(cfg.k, cfg.seed, cfg.model, cfg.reward_model, cfg.data, cfg.algo, cfg.paths.shared_data)
    d = Path(cfg.paths.root or ".") / cfg.paths.cache / kind / f"k{cfg.k}-{key}"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "w") as lock:
        if distributed.is_main():  # the processes of one job train it together; rank 0 holds the lock for them
            fcntl.flock(lock, fcntl.LOCK_EX)
        distributed.barrier()
        final = train(cfg, d)
    if final.name != "model":
        raise GprlError(f"reward model training in {d} stopped early; re-run to resume it")
    return final
