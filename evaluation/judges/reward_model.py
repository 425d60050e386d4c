"""The offline preference judge: any gprl reward model (GPM or BT) as an AlpacaEval-style pairwise annotator.

For an instruction x and two outputs, the judge returns the package's preference format: a float in [1, 2] where
2 means ``output_2`` is better, here ``1 + P(output_2 > output_1 | x) = 1 + sigmoid(s(output_2 > output_1 | x) / tau)``
with the model's own score and temperature. It needs no API and no GPU: this is what lets a laptop rank policies.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gprl.evaluate import score_pairs
from evaluation.judges import JUDGES, Annotator, count_calls
from evaluation.judges.fields import TEMPLATE, unpack


def load(path: str | Path, dtype: str = "float32"):
    from gprl.models import GeneralPreferenceModel

    return GeneralPreferenceModel.from_pretrained(str(path), dtype=dtype)


@torch.no_grad()
def preferences(model, instructions: list[str], outputs_1: list[str], outputs_2: list[str],
                batch_size: int = 32, desc: str = "offline judge") -> list[float]:
    """``1 + P(output_2 > output_1)`` per row, AlpacaEval's preference convention (1 = output_1 better)."""
    pairs = [{"prompt": x, "chosen": b, "rejected": a} for x, a, b in zip(instructions, outputs_1, outputs_2)]
    if not pairs:
        return []
    s = score_pairs(model, pairs, batch_size=batch_size, desc=desc)
    return (1.0 + torch.sigmoid(s.float() / model.spec.tau)).tolist()


def judge_dir(cfg) -> Path:
    """``judge.path``, or the default offline judge (``judge.train`` pairs, embedding dimension ``judge.k``, this
    run's backbone and algo, always in fp32: an instrument that judges the same on every machine) trained once and
    cached like every reward model."""
    import dataclasses

    from gprl.config import RewardModelConfig
    from gprl.tasks.reward_model import cached_reward_model

    j = cfg.judge
    if j.path:
        return Path(j.path)
    jcfg = dataclasses.replace(cfg, k=j.k, seed=0, reward_model=RewardModelConfig(tau=j.tau),
                               data=dataclasses.replace(cfg.data, train=j.train, val_fraction=0.0),
                               algo=dataclasses.replace(cfg.algo, precision="fp32"))
    return cached_reward_model(jcfg, kind="judges")


@JUDGES.register("reward_model")
def reward_model_judge(cfg) -> Annotator:
    path = judge_dir(cfg)
    ann = Annotator(config={"prompt_template": str(TEMPLATE), "fn_completion_parser": "eval_parser", "batch_size": 1},
                    record={"kind": "reward_model", "name": cfg.judge.name, "path": str(path)})
    model = []  # loaded on the first call: a fully cached run never loads it

    def completions(prompts, **_):
        if not model:
            model.append(load(path))
        rows = [unpack(p) for p in prompts]
        prefs = preferences(model[0], *map(list, zip(*rows)), batch_size=cfg.judge.batch_size)
        return {"completions": [repr(p) for p in prefs]}

    ann.kwargs["fn_completions"] = count_calls(ann, completions)
    return ann
