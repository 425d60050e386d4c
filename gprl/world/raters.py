"""World v2's raters: the gold oracle, a biased rater with a known taste the gold oracle does not share, and the
mixture of the two that labels the proxies' training pairs.

The **biased rater** prefers the answer with more filler words (``really very quite truly indeed also``); when
both hold as many it agrees with gold. Gold never rewards filler (it costs brevity and fluency), filler is cheap
for the policy to produce (a third of its demonstrations have some) and unbounded (up to the length limit), so a
proxy that learned the rater's taste can be pushed far along it at a gold cost: an exploitable bias with a name.
"""

from __future__ import annotations

import random

from gprl.world.grammar import FILLER, parse_prompt
from gprl.world.oracle import prefers

_FILLER = frozenset(FILLER)


def filler(response: str | list[str]) -> int:
    """Filler words in an answer: the biased rater's feature."""
    tokens = response.split() if isinstance(response, str) else response
    return sum(t in _FILLER for t in tokens)


def biased_prefers(prompt: str, a: str, b: str) -> float:
    """The biased rater's P(a beats b): more filler wins; equal filler falls back to gold."""
    fa, fb = filler(a), filler(b)
    if fa != fb:
        return float(fa > fb)
    return prefers(parse_prompt(prompt), a, b)


def mixture_pairs(prompts: list[str], samples: list[list[str]], budget: int, bias: float, seed: int) -> list[dict]:
    """Labelled pairs among each prompt's samples: each pair is labelled by the biased rater with probability
    ``bias``, else by gold; pairs the chosen rater calls a tie (and identical answers) are skipped. Each row keeps
    its ``rater`` and whether the label agrees with gold. ``budget`` pairs, shuffled (seeded)."""
    rng, out = random.Random(seed), []
    for p, s in zip(prompts, samples):
        P = parse_prompt(p)
        for i in range(len(s)):
            for j in range(i + 1, len(s)):
                if s[i] == s[j]:
                    continue
                rater = "biased" if rng.random() < bias else "gold"
                g = prefers(P, s[i], s[j])
                lab = biased_prefers(p, s[i], s[j]) if rater == "biased" else g
                if lab == 0.5:
                    continue
                c, r = (s[i], s[j]) if lab == 1.0 else (s[j], s[i])
                out.append({"prompt": p, "chosen": c, "rejected": r, "subset": P.family, "rater": rater,
                            "agrees_with_gold": g == lab})
    rng.shuffle(out)
    return out[:budget]


class AxisProxy:
    """A GPM proxy written by hand (no training): one skew-symmetric axis per feature, the disk-game embedding
    ``[f(y), 1]`` so that axis l scores ``c^l(a, b) = f_l(a) - f_l(b)``, and fixed eigenvalues. With
    ``features=(filler, gold brevity)`` it is a proxy whose first axis *is* the biased rater's taste: the
    world's test of the drift monitor drives a policy along it (tests/test_world_v2.py). Quacks like
    ``GeneralPreferenceModel`` where ``GPRLTrainer`` needs it (``embed``, ``spec``, ``requires_grad_``)."""

    def __init__(self, features: tuple, eigenvalues: tuple[float, ...] | None = None, tau: float = 1.0):
        from types import SimpleNamespace

        import torch

        self.features = features
        self.lam = torch.tensor(eigenvalues or [1.0 / len(features)] * len(features))
        self.spec = SimpleNamespace(k=2 * len(features), tau=tau)

    def requires_grad_(self, flag: bool = True):
        return self

    def embed(self, prompts: list, responses: list[str], batch_size: int = 32, **_):
        import torch

        v = torch.tensor([[x for f in self.features for x in (float(f(p, r)), 1.0)] for p, r in zip(prompts, responses)])
        return v.reshape(len(responses), self.spec.k), self.lam.expand(len(responses), -1).clone()


def filler_feature(prompt: str, response: str) -> float:
    return float(filler(response))


def gold_feature(aspect: str):
    """A feature for ``AxisProxy``: one gold aspect of the answer (0 for an empty answer)."""
    from gprl.world.oracle import aspects

    def f(prompt: str, response: str) -> float:
        return aspects(parse_prompt(prompt), response)[aspect] if response.split() else 0.0

    f.__name__ = f"gold_{aspect}"
    return f
