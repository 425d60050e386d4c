"""The preference world's language: a few hundred words, three task families, and a generator of responses of
mixed quality (the SFT data of the world's starting policy).

Prompts (one line each, lower case, space-separated tokens):

* ``list``     "list three animals starting with b"          -> "bear , bee and bat ."
* ``describe`` "describe the river using calm and cold"      -> "the river is calm and cold ."
* ``arith``    "what is 7 plus 5"                            -> "7 plus 5 is 12 ."   (exact verifier)

Every response is a sequence of vocabulary tokens; a well-formed one may end with the style marker
``hope this helps .``. The generator corrupts each aspect independently (wrong items, missing words, wrong sums,
filler, broken word order, marker or not), so the starting policy's samples vary along every gold aspect.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

CATEGORIES: dict[str, list[str]] = {
    "animals": "bear bee bat bison boar cat cow crab crow camel deer dog duck dove eel elk emu fox frog ferret goat "
               "gull hare hen horse heron lamb lion lynx mole moth mouse owl ox otter pig pony puma rat ram seal "
               "swan snake wolf wasp".split(),
    "fruits": "apple apricot banana berry cherry coconut date fig grape guava kiwi lemon lime mango melon olive "
              "orange peach pear plum quince raisin".split(),
    "tools": "axe awl brush bucket chisel clamp drill file fork hammer hoe knife ladder lever mallet nail pliers "
             "rake rope saw shovel spade wrench".split(),
    "places": "bank bakery barn beach cafe castle church farm forest garden harbor hill house lake market mill "
              "park port river school shop tower valley".split(),
    "colours": "amber beige black blue brown coral cream cyan gold green grey lilac maroon navy ochre pink plum "
               "purple red rose ruby tan teal white".split(),
}
ADJECTIVES = ("big small warm cold calm loud quiet bright dark soft hard old new fast slow wet dry green "
              "tall short clean busy sweet sharp round heavy light gentle wild".split())
NOUNS = "river forest city garden ocean mountain village kitchen market desert winter morning".split()
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}
MARKER = ["hope", "this", "helps", "."]
FILLER = "really very quite truly indeed also".split()
FAMILIES = ("list", "describe", "arith")


@dataclass(frozen=True)
class Prompt:
    family: str
    text: str
    category: str = ""
    letter: str = ""
    n: int = 0
    noun: str = ""
    words: tuple[str, ...] = ()
    a: int = 0
    b: int = 0


def letters(category: str, min_words: int = 3) -> list[str]:
    """Initial letters with at least ``min_words`` words in ``category``."""
    counts: dict[str, int] = {}
    for w in CATEGORIES[category]:
        counts[w[0]] = counts.get(w[0], 0) + 1
    return sorted(c for c, n in counts.items() if n >= min_words)


def valid_items(p: Prompt) -> list[str]:
    return [w for w in CATEGORIES[p.category] if w.startswith(p.letter)]


def sample_prompt(rng: random.Random, family: str | None = None) -> Prompt:
    family = family or rng.choice(FAMILIES)
    if family == "list":
        cat = rng.choice(sorted(CATEGORIES))
        letter = rng.choice(letters(cat))
        n = rng.choice([2, 3])
        return Prompt("list", f"list {NUMBERS[n]} {cat} starting with {letter}", category=cat, letter=letter, n=n)
    if family == "describe":
        noun = rng.choice(NOUNS)
        w = tuple(rng.sample(ADJECTIVES, 2))
        return Prompt("describe", f"describe the {noun} using {w[0]} and {w[1]}", noun=noun, words=w)
    a, b = rng.randint(0, 20), rng.randint(0, 20)
    return Prompt("arith", f"what is {a} plus {b}", a=a, b=b)


def ideal_response(p: Prompt, rng: random.Random, marker: bool = False) -> list[str]:
    """A correct, brief, fluent answer (the grammar's clean form)."""
    if p.family == "list":
        items = rng.sample(valid_items(p), p.n)
        body = _join(items)
    elif p.family == "describe":
        body = ["the", p.noun, "is", p.words[0], "and", p.words[1], "."]
    else:
        body = [str(p.a), "plus", str(p.b), "is", str(p.a + p.b), "."]
    return body + (MARKER if marker else [])


def _join(items: list[str]) -> list[str]:
    out: list[str] = []
    for i, w in enumerate(items):
        if i and i == len(items) - 1:
            out.append("and")
        elif i:
            out.append(",")
        out.append(w)
    return out + ["."]


def mixed_response(p: Prompt, rng: random.Random) -> list[str]:
    """One answer with each aspect corrupted independently (about half of them keep each aspect intact)."""
    if p.family == "list":
        pool = valid_items(p)
        wrong = [w for c, ws in CATEGORIES.items() for w in ws if w not in pool]
        n_bad = rng.choice([0, 0, 1, 2]) if p.n > 1 else rng.choice([0, 1])
        items = rng.sample(pool, max(0, p.n - n_bad)) + rng.sample(wrong, n_bad)
        if rng.random() < 0.2:
            items += rng.sample(pool, 1)  # one too many (possibly a repeat)
        rng.shuffle(items)
        body = _join(items)
    elif p.family == "describe":
        body = _describe(p, rng, wrong=0.4)
    else:
        c = p.a + p.b if rng.random() < 0.5 else p.a + p.b + rng.choice([-2, -1, 1, 2, 10])
        body = [str(p.a), "plus", str(p.b), "is", str(max(c, 0)), "."]
    return _restyle(body, rng, filler=0.3, swap=0.25)


def _describe(p: Prompt, rng: random.Random, wrong: float) -> list[str]:
    words = list(p.words)
    if rng.random() < wrong:
        words[rng.randrange(2)] = rng.choice([a for a in ADJECTIVES if a not in p.words])
    return ["the", p.noun, "is", words[0], "and", words[1], "."]


def _restyle(body: list[str], rng: random.Random, filler: float, swap: float) -> list[str]:
    """Style noise on a body: one to four filler words with probability ``filler`` (brevity and fluency suffer),
    two swapped neighbours with probability ``swap`` (fluency suffers), the marker half of the time."""
    if rng.random() < filler:
        for _ in range(rng.randint(1, 4)):
            body.insert(rng.randrange(1, len(body)), rng.choice(FILLER))
    if rng.random() < swap:
        i = rng.randrange(len(body) - 1)
        body[i], body[i + 1] = body[i + 1], body[i]
    if rng.random() < 0.5:
        body += MARKER
    return body


def vocabulary() -> list[str]:
    """Every token a prompt or response can use (numbers 0-60 as digits)."""
    words = {w for ws in CATEGORIES.values() for w in ws} | set(ADJECTIVES) | set(NOUNS) | set(FILLER)
    words |= set(MARKER) | set(NUMBERS.values()) | set(CATEGORIES)
    words |= {"list", "starting", "with", "describe", "the", "using", "and", "what", "is", "plus", ",", "."}
    words |= {chr(c) for c in range(ord("a"), ord("z") + 1)} | {str(i) for i in range(61)}
    return sorted(words)


_NUM = {v: k for k, v in NUMBERS.items()}


def parse_prompt(text: str) -> Prompt:
    """The inverse of ``sample_prompt``'s text (the oracle needs the structured prompt back)."""
    t = text.split()
    try:
        if t[0] == "list":
            return Prompt("list", text, category=t[2], letter=t[5], n=_NUM[t[1]])
        if t[0] == "describe":
            return Prompt("describe", text, noun=t[2], words=(t[4], t[6]))
        if t[:2] == ["what", "is"]:
            return Prompt("arith", text, a=int(t[2]), b=int(t[4]))
    except (IndexError, KeyError, ValueError):
        pass
    from gprl import GprlError

    raise GprlError(f"not a prompt of the preference world: {text!r}")


def world_prompts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [sample_prompt(rng).text for _ in range(n)]


COMPETENT_FILLER = 0.06  # share of world v2's demonstrations with filler words (part of the policy's cache key)


def competent_response(p: Prompt, rng: random.Random) -> list[str]:
    """World v2's demonstrations: the content is right most of the time (list 0.8, describe 0.85, arith 0.8), so a
    policy trained on them starts competent; style varies as in ``mixed_response`` (two swapped neighbours 0.15,
    the marker half of the time), so every aspect still has spread. Filler is rare (0.06 of answers, one to four
    words): the policy can produce it, few of its samples differ in it, so a proxy that learned a taste for it
    still ranks most of the policy's own pairs right (``gprl.world.raters``)."""
    if p.family == "list":
        pool = valid_items(p)
        items = rng.sample(pool, p.n)
        if rng.random() < 0.2:
            items[rng.randrange(p.n)] = rng.choice([w for ws in CATEGORIES.values() for w in ws if w not in pool])
        body = _join(items)
    elif p.family == "describe":
        body = _describe(p, rng, wrong=0.15)
    else:
        c = p.a + p.b if rng.random() < 0.8 else max(0, p.a + p.b + rng.choice([-2, -1, 1, 2]))
        body = [str(p.a), "plus", str(p.b), "is", str(c), "."]
    return _restyle(body, rng, filler=COMPETENT_FILLER, swap=0.15)
