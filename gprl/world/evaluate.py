"""Scoring a policy in the preference world: held-out evaluation against the starting policy (gold and proxy),
the gold aspects logged during online RL as zero-weight TRL reward functions, and the arithmetic verifier as
GPRL's BT axis."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from gprl.trainers.gprl_trainer import _text
from gprl.world.grammar import parse_prompt, world_prompts
from gprl.world.oracle import ASPECTS, aspects, prefers, verify

if TYPE_CHECKING:
    from gprl.world.experiment import Scale


class Evaluator:
    """Held-out prompts with the starting policy's answers; scores any policy against them (gold and proxy)."""

    def __init__(self, start_model, tok, rm, scale: Scale, seed: int):
        from gprl.models.generation import generate

        self.tok, self.rm, self.scale, self.seed, self.ref = tok, rm, scale, seed, start_model
        self.prompts = world_prompts(scale.eval_prompts, seed=10_000 + seed)
        self.start = [a[0] for a in generate(start_model, tok, self.prompts, 1, scale.max_tokens, 1.0, 1.0,
                                             seed=7, desc="start answers")]
        self.v_start, _ = rm.embed(self.prompts, self.start)

    @torch.no_grad()
    def __call__(self, model, step: int) -> dict:
        from gprl.models.generation import generate
        from gprl.models.score import pair_scores

        was = model.training
        ans = [a[0] for a in generate(model, self.tok, self.prompts, 1, self.scale.max_tokens, 1.0, 1.0,
                                      seed=11 + step, desc="eval")]
        model.train(was)
        Ps = [parse_prompt(p) for p in self.prompts]
        asp = [aspects(P, a) for P, a in zip(Ps, ans)]
        v, lam = self.rm.embed(self.prompts, ans)
        proxy = torch.sigmoid(pair_scores(v, self.v_start, lam) / self.rm.spec.tau)
        out = {"step": step, "gold_win": sum(prefers(P, a, s) for P, a, s in zip(Ps, ans, self.start)) / len(ans),
               "proxy_win": proxy.mean().item(), "length": sum(len(a.split()) for a in ans) / len(ans),
               "kl": self.kl(model, ans)}
        out.update({f"gold_{n}": sum(x[n] for x in asp) / len(asp) for n in ASPECTS})
        return out

    def kl(self, model, answers: list[str]) -> float:
        """Sequence-level KL estimate ``mean log pi(y) - log pi_start(y)`` on the model's own samples."""
        return (self._logp(model, answers) - self._logp(self.ref, answers)).mean().item()

    def _logp(self, model, answers: list[str]) -> torch.Tensor:
        from gprl.models.generation import chat_prompt

        out = []
        for p, a in zip(self.prompts, answers):
            pre = self.tok(chat_prompt(self.tok, p), add_special_tokens=False)["input_ids"]
            full = self.tok(chat_prompt(self.tok, p) + " " + a + " " + self.tok.eos_token,
                            add_special_tokens=False)["input_ids"]
            ids = torch.tensor([full])
            logits = model(input_ids=ids).logits[0, :-1].float().log_softmax(-1)
            lp = logits.gather(-1, ids[0, 1:, None])[:, 0]
            out.append(lp[len(pre) - 1:].sum())
        return torch.stack(out)


# ---- gold tracking during online RL (zero-weight TRL reward functions) ----------------------------------

class GoldAspect:
    def __init__(self, aspect: str):
        self.aspect, self.__name__ = aspect, f"gold_{aspect}"

    def __call__(self, prompts, completions, **_):
        return [aspects(parse_prompt(_text(p)), _text(c))[self.aspect] for p, c in zip(prompts, completions)]


class GoldWin:
    __name__ = "gold_win"

    def __call__(self, prompts, completions, start_answer, **_):
        return [prefers(parse_prompt(_text(p)), _text(c), s) for p, c, s in zip(prompts, completions, start_answer)]


def verifier(prompt, completion, **_):
    """The arithmetic verifier as GPRL's BT axis (SPEC 3.4); None for prompts it does not apply to."""
    P = parse_prompt(prompt)
    return float(verify(P, completion.split())) if P.family == "arith" else None
