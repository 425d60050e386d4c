"""Registered pairwise data sources. Each loader takes a ``SourceConfig`` and a ``DataContext`` and returns
records in the schema of ``gprl.data.schema``.

Shipped files are read from ``paths.shared_data`` (default ``../shared/data``, never copied into the repo);
see ``../shared/data/README.md`` for provenance and licences. Hub datasets load by name where the Hub is
reachable.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gprl import GprlError
from gprl.data.schema import validate_pair
from gprl.registry import Registry

SOURCES: Registry = Registry("data source")
SPLIT_FILE = Path(__file__).parent / "splits" / "alpaca_eval_split.json"
REFERENCE = "gpt4_1106_preview"  # AlpacaEval 2.0 reference generator


@dataclass
class DataContext:
    shared_data: Path  # the shipped data folder
    root: Path  # project root, for relative user paths
    seed: int = 0


def load_source(src, ctx: DataContext, quiet: bool = False) -> list[dict]:
    """Load one source and apply its ``max_pairs`` cap (a seeded sample). In a user's data (``jsonl``, ``hub``),
    pairs whose chosen equals rejected carry no preference (as an evaluation set they would score 0 without a
    word): they are left out and counted in one line, and a source made only of them is an error."""
    pairs = SOURCES.get(src.source)(src, ctx)
    if not pairs:
        raise GprlError(f"data source {src.source!r} (split {src.split!r}) gave no pairs")
    if src.source in ("jsonl", "hub"):
        pairs = _drop_identical(pairs, src.path if src.source == "jsonl" else src.hub_name, quiet)
    if src.max_pairs is not None and len(pairs) > src.max_pairs:
        pairs = random.Random(ctx.seed).sample(pairs, src.max_pairs)
    return pairs


def _drop_identical(pairs: list[dict], what: str, quiet: bool) -> list[dict]:
    keep = [r for r in pairs if r["chosen"].strip() != r["rejected"].strip()]
    if not keep:
        raise GprlError(f"{what}: all {len(pairs)} pairs have chosen == rejected (or both empty): nothing to learn "
                        f"or score")
    if len(keep) < len(pairs) and not quiet:
        print(f"[gprl] {what}: left out {len(pairs) - len(keep)} of {len(pairs)} pairs whose chosen equals rejected "
              f"(or both are empty): no preference to learn or score")
    return keep


def _file(ctx: DataContext | Path, rel: str) -> Path:
    p = (ctx if isinstance(ctx, Path) else ctx.shared_data) / rel
    if not p.exists():
        raise GprlError(f"missing data file {p} (set paths.shared_data to the folder holding the shipped data)")
    return p


def _read_json(p: Path):
    try:
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError, EOFError) as e:
        raise GprlError(f"malformed data file {p}: {_why(p, e)}") from None


def _why(p: Path, e: Exception) -> str:
    """A decoding error in words: gzip data under a name without .gz, other binary data, or a non-UTF-8 byte."""
    if isinstance(e, UnicodeDecodeError):
        try:
            head = p.read_bytes()[:2] if p.suffix != ".gz" else b""
        except OSError:
            head = b""
        if head == b"\x1f\x8b":
            return f"it is gzip-compressed but its name does not end in .gz (rename it to {p.name}.gz)"
        return (f"not UTF-8 text: byte 0x{e.object[e.start]:02x} at offset {e.start} of the line "
                f"(a binary file, or text in another encoding: save it as UTF-8)")
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _numbered_jsonl(p: Path) -> list[tuple[int, object]]:
    """``(line number, object)`` for every non-blank line; one clear error naming ``file:line`` otherwise (a line
    that is not UTF-8, as a binary file or a gzip file without .gz gives, included)."""
    opener = gzip.open if p.suffix == ".gz" else open
    rows = []
    try:
        with opener(p, "rb") as f:
            for i, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise GprlError(f"{p}:{i}: {_why(p, e)}") from None
                if line.strip():
                    try:
                        rows.append((i, json.loads(line)))
                    except (json.JSONDecodeError, RecursionError) as e:
                        raise GprlError(f"{p}:{i}: malformed JSON line ({getattr(e, 'msg', 'nested too deeply')})") from None
    except (OSError, EOFError) as e:
        raise GprlError(f"cannot read {p}: {_why(p, e)}") from None
    return rows


def _read_jsonl(p: Path) -> list:
    return [obj for _, obj in _numbered_jsonl(p)]


# ---- AlpacaEval: GPT-4-turbo judge preferences, balanced pairs of two non-reference models ---------------

def alpaca_split() -> dict[str, set[int]]:
    """The committed split of the 805 AlpacaEval instructions (by instruction index)."""
    s = json.loads(SPLIT_FILE.read_text())
    return {"train": set(s["train"]), "test": set(s["test"])}


@lru_cache(maxsize=2)
def _alpaca_tables(shared_data: Path):
    instr = _read_jsonl(_file(shared_data, "alpaca_eval/alpaca_eval_instructions.jsonl"))
    idx = {r["instruction"]: r["idx"] for r in instr}
    ann = _read_jsonl(_file(shared_data, "alpaca_eval/annotations_slim/weighted_alpaca_eval_gpt4_turbo.jsonl.gz"))
    out_dir = shared_data / "alpaca_eval" / "model_outputs"
    prefs: dict[int, dict[str, float]] = defaultdict(dict)  # instruction idx -> generator -> preference
    for r in ann:
        g, p = r["generator_2"], r.get("preference")
        if p is None or r["instruction"] not in idx or g == REFERENCE:
            continue
        prefs[idx[r["instruction"]]].setdefault(g, float(p))  # vicuna rows appear twice: keep the first
    gens = {g for d in prefs.values() for g in d} | {REFERENCE}
    outputs: dict[str, dict[str, str]] = {}
    for g in sorted(gens):
        f = out_dir / f"{g}.json.gz"
        if f.exists():
            outputs[g] = {r["instruction"]: r["output"] for r in _read_json(f)}
    text = {v: k for k, v in idx.items()}
    return text, prefs, outputs


@SOURCES.register("alpaca_balanced")
def alpaca_balanced(src, ctx: DataContext) -> list[dict]:
    """Pairs of two non-reference models' outputs on one instruction, ordered by their GPT-4-turbo preference
    against the common reference (``gpt4_1106_preview``), margin = the preference gap (data README).

    ``split`` = train | test (the committed split by instruction). ``length_balance`` keeps as many pairs
    whose chosen answer is the shorter one as the longer one, so "longer wins" cannot be learned.
    """
    return _balanced_pairs(src, ctx, with_reference=False)


@SOURCES.register("alpaca_with_reference")
def alpaca_with_reference(src, ctx: DataContext) -> list[dict]:
    """``alpaca_balanced`` plus the reference itself as a candidate at preference 1.5 (a tie with itself): pairs
    (reference, model) ordered by the GPT-4-turbo judgment, kept when it is at least ``min_gap`` from a tie. Half
    of each instruction's 24 pairs go to such pairs when there are enough. The AlpacaEval judge's own question."""
    return _balanced_pairs(src, ctx, with_reference=True)


def _balanced_pairs(src, ctx: DataContext, with_reference: bool) -> list[dict]:
    if src.split not in ("train", "test"):
        raise GprlError(f"{src.source} split must be train or test, got {src.split!r}")
    text, prefs, outputs = _alpaca_tables(ctx.shared_data)
    keep = alpaca_split()[src.split]
    rng = random.Random(ctx.seed)
    longer, shorter = [], []
    for i in sorted(keep):
        instr = text[i]
        cands = sorted((g, p) for g, p in prefs.get(i, {}).items() if g in outputs and instr in outputs[g])
        pairs = [(a, b) for n, a in enumerate(cands) for b in cands[n + 1:] if abs(a[1] - b[1]) >= src.min_gap]
        rng.shuffle(pairs)
        pairs = pairs[:24]  # at most 24 pairs per instruction keeps instructions diverse
        if with_reference and instr in outputs.get(REFERENCE, {}):
            ref = [((REFERENCE, 1.5), c) for c in cands if abs(c[1] - 1.5) >= src.min_gap]
            rng.shuffle(ref)
            pairs = ref[:12] + pairs[:24 - len(ref[:12])]
        for a, b in pairs:
            (cg, cp), (rg, rp) = (a, b) if a[1] > b[1] else (b, a)
            rec = {"prompt": instr, "chosen": outputs[cg][instr], "rejected": outputs[rg][instr],
                   "margin": round(cp - rp, 4), "subset": "alpaca_eval"}
            (longer if len(rec["chosen"]) > len(rec["rejected"]) else shorter).append(rec)
    if src.length_balance:
        n = min(len(longer), len(shorter))
        longer, shorter = rng.sample(longer, n), rng.sample(shorter, n)
    pairs = longer + shorter
    rng.shuffle(pairs)
    return pairs


@SOURCES.register("alpaca_prompts")
def alpaca_prompts(src, ctx: DataContext) -> list[dict]:
    """AlpacaEval instructions of one split (train | test), as prompts for online RL: ``{"prompt": ...}`` only."""
    if src.split not in ("train", "test"):
        raise GprlError(f"alpaca_prompts split must be train or test, got {src.split!r}")
    keep = alpaca_split()[src.split]
    rows = _read_jsonl(_file(ctx, "alpaca_eval/alpaca_eval_instructions.jsonl"))
    return [{"prompt": r["instruction"]} for r in rows if r["idx"] in keep]


@SOURCES.register("alpaca_sft")
def alpaca_sft(src, ctx: DataContext) -> list[dict]:
    """Every shipped model output on the AlpacaEval instructions of one split, as ``{"prompt", "response"}``
    demonstrations (for the tiny policy's SFT; the train split only, by the data README's rule)."""
    if src.split not in ("train", "test"):
        raise GprlError(f"alpaca_sft split must be train or test, got {src.split!r}")
    keep = alpaca_split()[src.split]
    instr = {r["instruction"]: r["idx"] for r in _read_jsonl(_file(ctx, "alpaca_eval/alpaca_eval_instructions.jsonl"))}
    out = []
    for f in sorted((_file(ctx, "alpaca_eval/model_outputs")).glob("*.json.gz")):
        for r in _read_json(f):
            if instr.get(r.get("instruction")) in keep and isinstance(r.get("output"), str) and r["output"].strip():
                out.append({"prompt": r["instruction"], "response": r["output"].strip()})
    return out


# ---- other shipped pairwise sets --------------------------------------------------------------------------

def _split_dialogue(text: str) -> tuple[str, str]:
    cut = text.rfind("\n\nAssistant:")
    if cut < 0:
        raise GprlError("hh-rlhf record without an '\\n\\nAssistant:' turn")
    return text[:cut].strip(), text[cut + len("\n\nAssistant:"):].strip()


@SOURCES.register("hh_harmless")
def hh_harmless(src, ctx: DataContext) -> list[dict]:
    """Anthropic HH-RLHF harmless-base test split: dialogues differing in the last assistant turn."""
    out = []
    for r in _read_jsonl(_file(ctx, "hh-rlhf/harmless-base/test.jsonl.gz")):
        prompt, chosen = _split_dialogue(r["chosen"])
        _, rejected = _split_dialogue(r["rejected"])
        if chosen != rejected:
            out.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "subset": "hh_harmless"})
    return out


@SOURCES.register("ultrafeedback")
def ultrafeedback(src, ctx: DataContext) -> list[dict]:
    """The 1,200-pair UltraFeedback-binarized sample (split train | eval); margin = overall score gap."""
    if src.split not in ("train", "eval"):
        raise GprlError(f"ultrafeedback split must be train or eval, got {src.split!r}")
    out = []
    f = _file(ctx, f"ultrafeedback_binarized_subset/{src.split}_clean.jsonl")
    for i, r in _numbered_jsonl(f):
        md = r.get("metadata") or {}
        gap = (md.get("score_chosen") or 0) - (md.get("score_rejected") or 0)
        out.append({**_chat_pair(r, f"{f}:{i}"), "margin": float(gap), "subset": "ultrafeedback"})
    return out


LLMBAR_FILES = {
    "llmbar-natural": "LLMBar_Natural.json",
    "llmbar-adver-neighbor": "LLMBar_Adversarial_Neighbor.json",
    "llmbar-adver-GPTInst": "LLMBar_Adversarial_GPTInst.json",
    "llmbar-adver-GPTOut": "LLMBar_Adversarial_GPTOut.json",
    "llmbar-adver-manual": "LLMBar_Adversarial_Manual.json",
}


@SOURCES.register("llmbar")
def llmbar(src, ctx: DataContext) -> list[dict]:
    """LLMBar: RewardBench's five Chat-Hard subsets (subset field = RewardBench's subset names)."""
    out = []
    for subset in src.subsets or list(LLMBAR_FILES):
        if subset not in LLMBAR_FILES:
            raise GprlError(f"unknown llmbar subset {subset!r}; known: {', '.join(LLMBAR_FILES)}")
        for r in _read_json(_file(ctx, f"llmbar/{LLMBAR_FILES[subset]}")):
            good, bad = (r["output_1"], r["output_2"]) if str(r["label"]) == "1" else (r["output_2"], r["output_1"])
            out.append({"prompt": r["input"], "chosen": good, "rejected": bad, "subset": subset})
    return out


RM_BENCH_SUBSETS = ("chat", "code", "safety-refuse", "safety-response")


@SOURCES.register("rm_bench")
def rm_bench(src, ctx: DataContext) -> list[dict]:
    """RM-Bench: per prompt 3 chosen x 3 rejected responses (styles concise / detailed / markdown) = 9 pairs."""
    out = []
    for subset in src.subsets or list(RM_BENCH_SUBSETS):
        if subset not in RM_BENCH_SUBSETS:
            raise GprlError(f"unknown rm_bench subset {subset!r}; known: {', '.join(RM_BENCH_SUBSETS)}")
        for r in _read_json(_file(ctx, f"rm_bench/{subset}_filtered.json")):
            for c in r["chosen"]:
                for j in r["rejected"]:
                    out.append({"prompt": r["prompt"], "chosen": c, "rejected": j, "subset": f"rm_bench-{subset}"})
    return out


# ---- user files and the Hub -------------------------------------------------------------------------------

@SOURCES.register("jsonl")
def jsonl(src, ctx: DataContext) -> list[dict]:
    """A user's own file in the schema: one {prompt, chosen, rejected[, margin][, subset]} object per line."""
    p = Path(src.path).expanduser()
    p = p if p.is_absolute() else ctx.root / p
    if not p.exists():
        raise GprlError(f"pairs file {p} does not exist")
    return [validate_pair(rec, f"{p}:{i}", src.max_text_chars) for i, rec in _numbered_jsonl(p)]


def _answer(x, where: str) -> str:
    """A response given as text, or as a conversation whose last turn is the assistant's answer."""
    if not isinstance(x, list):
        return x
    if not x or not isinstance(x[-1], dict) or x[-1].get("role") != "assistant":
        raise GprlError(f"{where}: a response given as a conversation must end with an assistant turn")
    return x[-1]["content"]


def _chat_pair(r: dict, where: str) -> dict:
    """prompt/chosen/rejected from a record in any of the usual layouts, keeping the whole conversation:
    chosen/rejected as text with a text prompt (RewardBench's single-turn sets); chosen/rejected as text with a
    prompt that is a list of turns (RewardBench's multi-turn layout); chosen/rejected as whole conversations
    (Skywork, UltraFeedback-binarized), where the prompt is every turn before the answer. A ``Conversation``
    (``gprl.data.schema``) keeps the earlier user *and* assistant turns for the chat template."""
    for f in ("chosen", "rejected"):
        if f not in r:
            raise GprlError(f"{where}: missing field {f!r}")
    c, j = r["chosen"], r["rejected"]
    histories = [x[:-1] for x in (c, j) if isinstance(x, list) and len(x) > 1]
    if histories:
        if histories[-1] != histories[0]:
            raise GprlError(f"{where}: chosen and rejected continue different conversations")
        prompt = histories[0]
    elif "prompt" in r and r["prompt"] is not None:
        prompt = r["prompt"]
    else:
        raise GprlError(f"{where}: no prompt: need a 'prompt' field or chosen/rejected given as conversations")
    return {"prompt": prompt, "chosen": _answer(c, where), "rejected": _answer(j, where)}


@SOURCES.register("hub")
def hub(src, ctx: DataContext) -> list[dict]:
    """A Hugging Face dataset by name (e.g. Skywork/Skywork-Reward-Preference-80K-v0.2, allenai/reward-bench) or a
    local dataset folder: prompt/chosen/rejected as text, prompt as a list of turns, or chosen/rejected as whole
    conversations; multi-turn prompts keep every earlier turn (``_chat_pair``); ``subset`` kept when present."""
    try:
        import datasets

        ds = datasets.load_dataset(src.hub_name, src.hub_config, split=src.split)
    except Exception as e:
        raise GprlError(f"cannot load Hub dataset {src.hub_name!r}: {str(e).splitlines()[0]}") from None
    out = []
    for i, r in enumerate(ds):
        where = f"{src.hub_name}[{i}]"
        rec = _chat_pair(r, where)
        if r.get("subset") is not None:
            rec["subset"] = r["subset"]
        out.append(validate_pair(rec, where, src.max_text_chars))
    return out
