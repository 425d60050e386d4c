"""Reward-model training on transformers' Trainer.

The Trainer supplies the loop, accelerate/DeepSpeed, checkpoints, resume, progress bars and W&B logging;
this module adds only the pairwise batch (chosen rows then rejected rows in one backbone pass), the loss
from the registry applied to the GPM/BT score, the heads' own learning rate (``algo.head_lr``, a parameter group
of the Trainer's own optimizer) and, for a frozen backbone, its features computed once (``algo.cache_features``).
"""

from __future__ import annotations

import torch
from transformers import Trainer

from gprl.losses import PreferenceLoss
from gprl.models.score import pair_scores
from gprl.trainers.callbacks import check_finite


class PairCollator:
    """Records ``{prompt, chosen, rejected[, margin]}`` -> one batch of 2B rows (chosen first) for the model."""

    def __init__(self, model):
        self.model = model

    def __call__(self, records: list[dict]) -> dict[str, torch.Tensor]:
        prompts = [r["prompt"] for r in records]
        batch = self.model.collate(prompts + prompts, [r["chosen"] for r in records] + [r["rejected"] for r in records])
        batch["margin"] = torch.tensor([float(r.get("margin") or 0.0) for r in records])
        return batch


class FeatureCache:
    """A frozen backbone's ``features`` (``h_y``, ``h_x``) of every distinct (prompt, response) in ``records``,
    computed once (``GeneralPreferenceModel.features_of``: in eval mode, batched by length, in ``precision``).
    Training on it is exact only while the backbone neither trains nor drops out: ``train`` freezes it."""

    def __init__(self, model, records: list[dict], batch_size: int = 32, precision: str = "fp32"):
        keys = list(dict.fromkeys((r["prompt"], y) for r in records for y in (r["chosen"], r["rejected"])))
        self.index = {key: i for i, key in enumerate(keys)}
        self.h_y, self.h_x = model.features_of([p for p, _ in keys], [y for _, y in keys], batch_size, precision)

    def __len__(self) -> int:
        return len(self.index)


class CachedPairCollator:
    """``PairCollator`` for a ``FeatureCache``: the same 2B rows (chosen first) as cached ``h_y`` / ``h_x``."""

    def __init__(self, cache: FeatureCache):
        self.cache = cache

    def __call__(self, records: list[dict]) -> dict[str, torch.Tensor]:
        rows = torch.tensor([self.cache.index[(r["prompt"], r[side])] for side in ("chosen", "rejected") for r in records])
        batch = {"h_y": self.cache.h_y[rows]}
        if self.cache.h_x is not None:
            batch["h_x"] = self.cache.h_x[rows]
        batch["margin"] = torch.tensor([float(r.get("margin") or 0.0) for r in records])
        return batch


def head_parameters(model) -> list[torch.nn.Parameter]:
    """The value head's and the scale gate's parameters (what ``algo.head_lr`` applies to)."""
    return [p for m in (model.head, model.gate) if m is not None for p in m.parameters()]


class PreferenceTrainer(Trainer):
    """``Trainer`` whose loss is ``loss_fn(s(chosen > rejected), tau[, margin])``; ``head_lr`` (if given) is the
    peak learning rate of the value head and the gate, in their own parameter groups of the Trainer's optimizer
    (the scheduler then scales every group alike)."""

    def __init__(self, *args, loss_fn: PreferenceLoss, tau: float, use_margin: bool = False,
                 head_lr: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_fn, self.tau, self.use_margin, self.head_lr = loss_fn, tau, use_margin, head_lr
        self._acc: list[float] = []

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        if self.head_lr is None:
            return optimizer
        heads = {id(p) for p in head_parameters(self.model if model is None else model)}
        moved = []
        for group in optimizer.param_groups:  # the Trainer's (weight decay, no weight decay) groups
            mine = [p for p in group["params"] if id(p) in heads]
            group["params"] = [p for p in group["params"] if id(p) not in heads]
            if mine:
                moved.append({"params": mine, "weight_decay": group["weight_decay"], "lr": self.head_lr})
        optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
        for group in moved:
            optimizer.add_param_group(group)
        return optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        margin = inputs.pop("margin")
        v, lam = model(**inputs)
        b = v.shape[0] // 2
        scores = pair_scores(v[:b], v[b:], None if lam is None else lam[:b])  # the gate reads the chosen pass
        loss = self.loss_fn(scores.float(), self.tau, margin if self.use_margin else None)
        check_finite(loss.item(), "the training loss", self.state.global_step)
        self._acc.append((scores > 0).float().mean().item())
        return (loss, {"scores": scores}) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs):
        if self._acc and "loss" in logs:
            logs["train_pair_accuracy"] = round(sum(self._acc) / len(self._acc), 4)
            self._acc = []
        super().log(logs, *args, **kwargs)
