"""Offline preference optimisation of a policy on reward-model-labelled pairs, one trainer per loss name.

* ``dpo``   TRL's ``DPOTrainer`` (loss ``sigmoid``), reference = the policy the iteration starts from.
* ``simpo`` TRL's ``CPOTrainer`` with ``loss_type="simpo"`` and ``cpo_alpha=0`` (reference-free SimPO).
* ``gpo`` / ``sppo`` ``ScorePOTrainer``: TRL's ``DPOTrainer`` (tokenisation, collation, reference log-probs of
  pi_t precomputed once) with the loss replaced by ``gprl.losses.policy.POLICY_LOSSES[name]`` on per-pair
  targets (the GPM score estimate for GPO, the win-probability estimate for SPPO). Neither target-regression
  loss is in TRL (its ``sppo_hard`` uses fixed targets 1 and 0).

With ``settings.peft_config`` (LoRA) the reference is the model with its adapters disabled, which is pi_t because
``train_po`` merges the adapters after every iteration. Every builder takes ``(model, tokenizer, dataset, settings)`` where the dataset has conversational ``prompt``,
``chosen``, ``rejected`` and float ``target_chosen``, ``target_rejected`` columns, and returns a Trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from trl import DPOConfig, DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from gprl.losses.policy import POLICY_LOSSES
from gprl.registry import Registry

PO_TRAINERS: Registry = Registry("preference-optimisation trainer")
TARGETS = ("target_chosen", "target_rejected")


@dataclass
class POSettings:
    """What every builder needs (from ``POConfig`` plus the run's paths and seed)."""

    loss: str
    output_dir: str
    beta: float
    lr: float
    gamma_beta_ratio: float = 0.55
    clamp: float = 1000.0
    optim: str = "rmsprop"
    batch_size: int = 8  # pairs per optimiser step over all processes
    per_device_batch_size: int | None = None  # None = batch_size / world size (no accumulation)
    deepspeed: str | None = None  # a DeepSpeed JSON, or None
    epochs: float = 1.0
    warmup_ratio: float = 0.1
    scheduler: str = "linear"
    max_length: int = 192
    seed: int = 0
    report_to: str = "none"
    bf16: bool = False
    peft_config: object = None  # a peft LoraConfig, or None for full fine-tuning


def _common(s: POSettings, world: int | None = None) -> dict:
    """Settings every builder shares; per-device batch x accumulation x world size = ``s.batch_size``, for this
    launch's number of processes (``world``, default: this launch's)."""
    from gprl import distributed

    world = distributed.world_size() if world is None else world
    per_device = s.per_device_batch_size or distributed.per_device(s.batch_size, world, "po.batch_size")
    accum = distributed.accumulation(s.batch_size, per_device, world, "po.batch_size")
    return dict(output_dir=s.output_dir, per_device_train_batch_size=per_device, gradient_accumulation_steps=accum,
                deepspeed=s.deepspeed, learning_rate=s.lr,
                num_train_epochs=s.epochs, warmup_steps=s.warmup_ratio, lr_scheduler_type=s.scheduler, optim=s.optim,
                max_grad_norm=1.0, weight_decay=0.0, bf16=s.bf16, logging_steps=1, save_strategy="no",
                report_to=s.report_to, seed=s.seed, data_seed=s.seed, use_cpu=not torch.cuda.is_available(),
                dataloader_num_workers=0, activation_checkpointing=False, max_length=s.max_length)


def _checked(args):
    from gprl.distributed import check_devices

    check_devices(args)
    return args


@PO_TRAINERS.register("dpo")
def dpo(model, tok, dataset, s: POSettings, callbacks=()):
    args = _checked(DPOConfig(**_common(s), beta=s.beta, loss_type=["sigmoid"]))
    return DPOTrainer(model=model, args=args, train_dataset=dataset.remove_columns(list(TARGETS)),
                      processing_class=tok, callbacks=list(callbacks), peft_config=s.peft_config)


@PO_TRAINERS.register("simpo")
def simpo(model, tok, dataset, s: POSettings, callbacks=()):
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    args = _checked(CPOConfig(**_common(s), beta=s.beta, loss_type="simpo", cpo_alpha=0.0,
                              simpo_gamma=s.beta * s.gamma_beta_ratio))
    return CPOTrainer(model=model, args=args, train_dataset=dataset.remove_columns(list(TARGETS)),
                      processing_class=tok, callbacks=list(callbacks), peft_config=s.peft_config)


class TargetCollator(DataCollatorForPreference):
    """TRL's preference collator, passing the per-pair targets through."""

    def torch_call(self, examples):
        out = super().torch_call(examples)
        for name in TARGETS:
            out[name] = torch.tensor([float(e[name]) for e in examples])
        return out


class ScorePOTrainer(DPOTrainer):
    """``DPOTrainer`` with a target-regression loss from ``POLICY_LOSSES`` (GPO, SPPO).

    ``rho = log pi_theta(y|x) - log pi_t(y|x)``, summed over response tokens; pi_t's log-probs are precomputed
    by TRL from the model as it is when the trainer is built (the start of the iteration), as SPEC 2 prescribes.
    """

    def __init__(self, *args, loss_name: str, loss_kwargs: dict, **kwargs):
        self.loss_fn, self.loss_kwargs = POLICY_LOSSES.get(loss_name), loss_kwargs
        super().__init__(*args, **kwargs)

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        self._signature_columns = list(dict.fromkeys([*self._signature_columns, *TARGETS]))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mask = inputs["completion_mask"]
        kwargs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask")}
        labels = inputs["input_ids"].masked_fill(mask == 0, -100)
        # the same forward TRL used for the reference log-probs, so rho is exactly 0 before the first update
        per_token = model(**kwargs, labels=labels, use_cache=False, fused_lm_head=True).log_probs
        logps = per_token[:, -(mask.size(1) - 1):].sum(1)
        pw, pl = logps.chunk(2)
        rw, rl = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        loss = self.loss_fn(pw, pl, rw, rl, inputs["target_chosen"], inputs["target_rejected"], **self.loss_kwargs)
        mode = "train" if model.training else "eval"
        self._metrics[mode]["rho/chosen"].append((pw - rw).mean().item())
        self._metrics[mode]["rho/rejected"].append((pl - rl).mean().item())
        return (loss, {}) if return_outputs else loss


def _score_po(model, tok, dataset, s: POSettings, callbacks=()):
    args = _checked(DPOConfig(**_common(s), beta=s.beta, precompute_ref_log_probs=True, remove_unused_columns=False))
    kw = {"beta": s.beta, "clamp": s.clamp}
    return ScorePOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tok,
                          data_collator=TargetCollator(pad_token_id=tok.pad_token_id, max_length=s.max_length),
                          callbacks=list(callbacks), peft_config=s.peft_config, loss_name=s.loss, loss_kwargs=kw)


PO_TRAINERS.register("gpo")(_score_po)
PO_TRAINERS.register("sppo")(_score_po)
