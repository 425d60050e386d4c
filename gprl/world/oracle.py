"""The gold oracle: four aspect scores per response, computed by code, and a gold pairwise preference that is a
prompt-weighted majority vote across aspects (so it has genuine Condorcet cycles; ``cycle_rate`` measures them).

Aspects, each in [0, 1]:

* ``correct``  list: distinct valid items (right category and initial letter) minus half the wrong or repeated
               ones, over the number asked for; describe: the two requested words and the noun present (thirds);
               arith: 1 when the stated sum is right (the exact **verifier**, ``verify``), else 1 - |error|/4
               (floor 0).
* ``brevity``  ``min(len, L*) / max(len, L*)`` with ``L*`` the clean answer's length (marker excluded).
* ``fluency``  share of adjacent token pairs (with start and end) that the clean grammar can produce.
* ``style``    1 when the answer ends with the marker "hope this helps ." and holds it once, else 0.

Gold preference: ``vote(a, b) = sum_l w_l(x) sign(a_l - b_l)``; a beats b when the vote is positive, a tie at 0.
The weights depend on the prompt's family (``WEIGHTS``). A weighted majority of aspects is not transitive.
"""

from __future__ import annotations

import itertools
import random
from functools import lru_cache

from gprl.world.grammar import (CATEGORIES, FAMILIES, MARKER, Prompt, ideal_response, parse_prompt, sample_prompt,
                                valid_items)

ASPECTS = ("correct", "brevity", "fluency", "style")
WEIGHTS: dict[str, tuple[float, ...]] = {  # correct, brevity, fluency, style
    "list": (0.3, 0.25, 0.25, 0.2),
    "describe": (0.25, 0.2, 0.35, 0.2),
    "arith": (0.35, 0.25, 0.2, 0.2),
}
_ITEMS = {w for ws in CATEGORIES.values() for w in ws}


def _body(tokens: list[str]) -> list[str]:
    if tokens[-len(MARKER):] == MARKER:
        return tokens[: -len(MARKER)]
    return tokens


def correct(p: Prompt, tokens: list[str]) -> float:
    body = _body(tokens)
    if p.family == "list":
        items = [t for t in body if t in _ITEMS]
        valid = set(valid_items(p))
        good = len({t for t in items if t in valid})
        bad = len(items) - min(good, p.n)
        return max(0.0, min(1.0, (min(good, p.n) - 0.5 * max(bad, 0)) / p.n))
    if p.family == "describe":
        return sum(w in body for w in (*p.words, p.noun)) / 3
    if verify(p, tokens):
        return 1.0
    i = tokens.index("is") if "is" in tokens else -1
    got = tokens[i + 1] if 0 <= i < len(tokens) - 1 else ""
    return max(0.0, 1 - abs(int(got) - (p.a + p.b)) / 4) if got.isdigit() else 0.0


def verify(p: Prompt, tokens: list[str]) -> bool:
    """The arithmetic verifier: the token after the first "is" is the right sum."""
    if "is" not in tokens:
        return False
    i = tokens.index("is")
    return i + 1 < len(tokens) and tokens[i + 1] == str(p.a + p.b)


def brevity(p: Prompt, tokens: list[str]) -> float:
    n, ideal = len(_body(tokens)), len(ideal_response(p, random.Random(0)))
    return min(n, ideal) / max(n, ideal, 1)


@lru_cache(maxsize=1)
def clean_bigrams() -> frozenset:
    rng, out = random.Random(0), set()
    for _ in range(20000):
        p = sample_prompt(rng)
        t = ["<s>", *ideal_response(p, rng, marker=rng.random() < 0.5), "</s>"]
        out.update(zip(t, t[1:]))
    return frozenset(out)


def fluency(p: Prompt, tokens: list[str]) -> float:
    t = ["<s>", *tokens, "</s>"]
    pairs = list(zip(t, t[1:]))
    ok = clean_bigrams()
    return sum(b in ok for b in pairs) / len(pairs)


def style(p: Prompt, tokens: list[str]) -> float:
    marks = sum(tokens[i:i + len(MARKER)] == MARKER for i in range(len(tokens)))
    return float(marks == 1 and tokens[-len(MARKER):] == MARKER)


SCORERS = {"correct": correct, "brevity": brevity, "fluency": fluency, "style": style}


def aspects(p: Prompt, response: str | list[str]) -> dict[str, float]:
    tokens = response.split() if isinstance(response, str) else list(response)
    if not tokens:
        return dict.fromkeys(ASPECTS, 0.0)
    return {a: SCORERS[a](p, tokens) for a in ASPECTS}


def vote(p: Prompt, a: dict[str, float], b: dict[str, float], tol: float = 1e-9) -> float:
    w = WEIGHTS[p.family]
    return sum(wl * ((a[n] - b[n] > tol) - (b[n] - a[n] > tol)) for wl, n in zip(w, ASPECTS))


def prefers(p: Prompt, a: str | list[str], b: str | list[str]) -> float:
    """Gold P(a beats b): 1, 0, or 0.5 on a tie."""
    v = vote(p, aspects(p, a), aspects(p, b))
    return 1.0 if v > 1e-9 else 0.0 if v < -1e-9 else 0.5


def cycle_rate(p: Prompt, responses: list[str]) -> tuple[int, int]:
    """(cyclic triples, triples with a strict gold order on all three pairs) among ``responses``."""
    asp = [aspects(p, r) for r in responses]
    cyc = strict = 0
    for i, j, k in itertools.combinations(range(len(asp)), 3):
        v = [vote(p, asp[i], asp[j]), vote(p, asp[j], asp[k]), vote(p, asp[k], asp[i])]
        if all(abs(x) > 1e-9 for x in v):
            strict += 1
            cyc += all(x > 0 for x in v) or all(x < 0 for x in v)
    return cyc, strict


def measure_cycles(n_prompts: int = 300, k: int = 6, seed: int = 0, sampler=None) -> dict:
    """How often gold preferences cycle among ``k`` answers per prompt (default: the mixed-quality generator)."""
    from gprl.world.grammar import mixed_response

    rng = random.Random(seed)
    sampler = sampler or (lambda p: " ".join(mixed_response(p, rng)))
    out = {}
    for fam in FAMILIES:
        cyc = strict = prompts_with_cycle = 0
        for _ in range(n_prompts):
            p = sample_prompt(rng, fam)
            c, s = cycle_rate(p, [sampler(p) for _ in range(k)])
            cyc, strict, prompts_with_cycle = cyc + c, strict + s, prompts_with_cycle + (c > 0)
        out[fam] = {"cyclic_triples": cyc / max(strict, 1), "prompts_with_a_cycle": prompts_with_cycle / n_prompts}
    return out


def gold_pairs(prompts: list[str], samples: list[list[str]], budget: int, seed: int) -> list[dict]:
    """Strictly gold-ordered pairs among each prompt's samples, ``budget`` of them (seeded)."""
    out = []
    for p, s in zip(prompts, samples):
        P = parse_prompt(p)
        for i in range(len(s)):
            for j in range(i + 1, len(s)):
                g = prefers(P, s[i], s[j])
                if g != 0.5 and s[i] != s[j]:
                    c, r = (s[i], s[j]) if g == 1.0 else (s[j], s[i])
                    out.append({"prompt": p, "chosen": c, "rejected": r, "subset": P.family})
    random.Random(seed).shuffle(out)
    return out[:budget]
