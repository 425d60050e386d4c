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


# ---- world v2: many held-out draws, several samples each, per-draw outcomes, both proxies ---------------------

def sequence_logp(model, tok, prompts: list[str], answers: list[str], batch_size: int = 128) -> torch.Tensor:
    """``log pi(answer | prompt)`` summed over the answer's tokens and its end token, batched: ``(N,)``."""
    from gprl.models.generation import chat_prompt

    out = []
    pad = tok.pad_token_id
    for s in range(0, len(prompts), batch_size):
        pre = [tok(chat_prompt(tok, p), add_special_tokens=False)["input_ids"] for p in prompts[s:s + batch_size]]
        full = [tok(chat_prompt(tok, p) + " " + a + " " + tok.eos_token, add_special_tokens=False)["input_ids"]
                for p, a in zip(prompts[s:s + batch_size], answers[s:s + batch_size])]
        T = max(len(f) for f in full)
        ids = torch.tensor([f + [pad] * (T - len(f)) for f in full])
        att = torch.tensor([[1] * len(f) + [0] * (T - len(f)) for f in full])
        logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float().log_softmax(-1)
        lp = logits.gather(-1, ids[:, 1:, None])[..., 0]  # (B, T-1): token t+1 given the prefix
        mask = torch.zeros_like(lp)
        for i, (p, f) in enumerate(zip(pre, full)):
            mask[i, len(p) - 1:len(f) - 1] = 1
        out.append((lp * mask).sum(1))
    return torch.cat(out)


class Evaluator2:
    """World v2's held-out evaluation: ``draws`` prompts from the ``eval`` part, ``samples`` answers each, compared
    sample by sample with the starting policy's answers to the same draws (seeded per seed). Records per-draw gold
    outcomes (for the paired bootstrap), gold aspects, filler, length, the KL estimate, and both proxies' preference
    probability against the starting answer (BT and GPM on one scale each, whichever proxy an arm trained on), with
    the GPM's per-axis probabilities."""

    def __init__(self, start_model, tok, proxies: dict, draws: list[str], samples: int, max_tokens: int, seed: int):
        from gprl.models.generation import generate

        self.tok, self.proxies, self.ref, self.seed = tok, proxies, start_model, seed
        self.draws, self.samples, self.max_tokens = draws, samples, max_tokens
        self.prompts = [p for p in draws for _ in range(samples)]  # draw-major, samples adjacent
        self.Ps = [parse_prompt(p) for p in self.prompts]
        self.start = [a for g in generate(start_model, tok, draws, samples, max_tokens, 1.0, 1.0, seed=7_000 + seed,
                                          batch_size=256, desc="start answers") for a in g]
        self.v_start = {name: rm.embed(self.prompts, self.start) for name, rm in proxies.items()}

    @torch.no_grad()
    def __call__(self, model, step: int) -> dict:
        from gprl.models.generation import generate
        from gprl.models.score import axis_scores, pair_scores
        from gprl.world.raters import filler

        was = model.training
        ans = [a for g in generate(model, self.tok, self.draws, self.samples, self.max_tokens, 1.0, 1.0,
                                   seed=self.seed * 1000 + 11 + step, batch_size=256, desc=f"eval step {step}")
               for a in g]
        kl = (sequence_logp(model, self.tok, self.prompts, ans) - sequence_logp(self.ref, self.tok, self.prompts, ans))
        model.train(was)
        gold = [prefers(P, a, s) for P, a, s in zip(self.Ps, ans, self.start)]
        asp = [aspects(P, a) for P, a in zip(self.Ps, ans)]
        n, S = len(ans), self.samples
        out = {"step": step, "gold_win": sum(gold) / n, "kl": kl.mean().item(),
               "length": sum(len(a.split()) for a in ans) / n, "filler": sum(filler(a) for a in ans) / n,
               "outcomes": [sum(gold[i * S:(i + 1) * S]) / S for i in range(len(self.draws))]}
        out.update({f"gold_{a}": sum(x[a] for x in asp) / n for a in ASPECTS})
        for name, rm in self.proxies.items():
            v, lam = rm.embed(self.prompts, ans)
            v0, _ = self.v_start[name]
            out[f"proxy_{name}"] = torch.sigmoid(pair_scores(v, v0, lam) / rm.spec.tau).mean().item()
            if rm.spec.k > 1:
                for l, p in enumerate(torch.sigmoid(axis_scores(v, v0) / rm.spec.tau).mean(0).tolist()):
                    out[f"proxy_{name}_axis{l}"] = p
        return out
