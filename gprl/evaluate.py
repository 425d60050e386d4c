"""Pairwise accuracy of a reward model: ``s(chosen > rejected | x) > 0``, beside "the longer response wins".

Each distinct (prompt, response) is embedded once and every pair is scored from the embeddings, so RM-Bench's
3 x 3 pairs per prompt cost 6 embeddings, not 9 pair passes (and an encoder's gate one pass per distinct prompt).
"""

from __future__ import annotations

from collections import defaultdict

import torch

from gprl.models.score import pair_scores


def score_pairs(model, pairs: list[dict], batch_size: int = 32, desc: str | None = "scoring",
                precision: str = "fp32") -> torch.Tensor:
    """``s(chosen > rejected)`` for each pair: ``(N,)``. ``model.embed`` embeds each distinct (prompt, response)
    once, batched by token length; ``precision``: fp32, bf16 (autocast) or auto (gprl.runtime)."""
    n = len(pairs)
    prompts = [p["prompt"] for p in pairs]
    v, lam = model.embed(prompts + prompts, [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs],
                         batch_size, precision, progress=desc)
    return pair_scores(v[:n], v[n:], None if lam is None else lam[:n])


def longer_wins(p: dict) -> float:
    """The length baseline: 1 if the chosen answer is longer (characters), 0.5 on a tie."""
    a, b = len(p["chosen"]), len(p["rejected"])
    return 1.0 if a > b else 0.5 if a == b else 0.0


def summarise(name: str, pairs: list[dict], scores: torch.Tensor) -> dict:
    """Accuracy, n and the length baseline for a set, with the same per subset when the pairs name one."""
    correct = (scores > 0).float().tolist()
    groups = defaultdict(list)
    for p, c in zip(pairs, correct):
        groups[p.get("subset")].append((c, longer_wins(p)))

    def stats(rows):
        return {"accuracy": sum(r[0] for r in rows) / len(rows), "n": len(rows),
                "longer_wins": sum(r[1] for r in rows) / len(rows)}

    out = {"set": name, **stats([(c, longer_wins(p)) for p, c in zip(pairs, correct)])}
    named = {k: v for k, v in groups.items() if k is not None}
    if len(named) > 1 or (named and None in groups):
        out["per_subset"] = {k: stats(v) for k, v in sorted(named.items())}
    return out


def format_table(results: list[dict], title: str = "") -> str:
    """A plain-text table: one row per set and per subset."""
    lines = [title] if title else []
    lines.append(f"{'set':<34} {'n':>6} {'accuracy':>9} {'longer wins':>12}")
    lines.append("-" * 64)
    for r in results:
        lines.append(f"{r['set']:<34} {r['n']:>6} {r['accuracy']:>9.3f} {r['longer_wins']:>12.3f}")
        for sub, s in r.get("per_subset", {}).items():
            lines.append(f"  {sub:<32} {s['n']:>6} {s['accuracy']:>9.3f} {s['longer_wins']:>12.3f}")
    return "\n".join(lines)
