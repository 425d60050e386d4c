"""Held-out by construction (world v2): every prompt text belongs to exactly one part of the grammar, by a stable
hash of the text, so the parts share no prompt whatever the seeds.

    train      the starting policy's SFT demonstrations and every arm's RL / iterative prompts   (50%)
    proxy      prompts whose starting-policy samples are labelled for the proxy reward models   (20%)
    proxy_val  prompts of the proxies' held-out gold pairs                                       (10%)
    eval       the held-out evaluation prompts                                                   (20%)

Slot values (nouns, adjectives, numbers, categories) are shared across parts: a policy must meet every word in
training, but no evaluation prompt was ever trained on, labelled, or used to select a proxy. The ``list`` family
has only 42 distinct prompts (about 8 held out), ``arith`` 441 and ``describe`` 9,744, so evaluation draws prompts
family-uniformly with replacement (``draw``); ``distinct`` counts what each part holds.
"""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache

from gprl.world.grammar import ADJECTIVES, CATEGORIES, FAMILIES, NOUNS, NUMBERS, letters

PARTS: dict[str, range] = {"train": range(0, 10), "proxy": range(10, 14), "proxy_val": range(14, 16),
                           "eval": range(16, 20)}  # buckets of a 20-way hash


def part_of(text: str) -> str:
    """The part a prompt text belongs to (stable across processes and Python versions: sha256, not ``hash``)."""
    b = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 20
    return next(name for name, r in PARTS.items() if b in r)


def all_prompts(family: str) -> list[str]:
    """Every prompt text of one family, in a fixed order."""
    if family == "list":
        return [f"list {NUMBERS[n]} {c} starting with {l}" for c in sorted(CATEGORIES) for l in letters(c)
                for n in (2, 3)]
    if family == "describe":
        return [f"describe the {n} using {a} and {b}" for n in NOUNS for a in ADJECTIVES for b in ADJECTIVES
                if a != b]
    return [f"what is {a} plus {b}" for a in range(21) for b in range(21)]


@lru_cache(maxsize=None)
def prompts_in(part: str) -> dict[str, tuple[str, ...]]:
    """``{family: prompts}`` of one part."""
    if part not in PARTS:
        from gprl import GprlError

        raise GprlError(f"unknown part of the world's grammar {part!r}; known: {', '.join(PARTS)}")
    return {f: tuple(p for p in all_prompts(f) if part_of(p) == part) for f in FAMILIES}


def draw(part: str, n: int, seed: int) -> list[str]:
    """``n`` prompts of ``part``, families in turn (uniform), each uniformly among the family's prompts of the part;
    with replacement (the list family holds a handful per part)."""
    rng, pool = random.Random(seed), prompts_in(part)
    return [rng.choice(pool[FAMILIES[i % len(FAMILIES)]]) for i in range(n)]


def distinct() -> dict[str, dict[str, int]]:
    return {part: {f: len(ps) for f, ps in prompts_in(part).items()} for part in PARTS}
