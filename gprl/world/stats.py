"""World v2's statistics, fixed before any v2 run (docs/world.md, "Statistics"):

* primary: the gold win rate against the starting policy at the final evaluation, and the area under the gold
  curve (trapezoid over the evaluation points, step 0 included, divided by the span: a mean win rate);
* secondary: the gold win rate at matched KL, ``KL* = 2`` nats (linear interpolation along a run's evaluations;
  a run that never reaches ``KL*`` has none);
* paired 95% intervals for GPRL minus each baseline by a two-level bootstrap: resample seeds (the pairing unit:
  the same seed means the same prompts, proxies and starting answers) and, within them, evaluation draws (the
  same draws for both arms).

Per-draw outcomes are arrays ``(seeds, draws)``: the mean over a draw's samples of gold's verdict (1 win, 0.5 tie,
0 loss) against the starting policy's answer.
"""

from __future__ import annotations

import numpy as np

KL_STAR = 2.0


def auc(steps: list[int], values: np.ndarray) -> np.ndarray:
    """Trapezoid area under ``values`` (``(..., points)``) over ``steps``, divided by the span."""
    s = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    return ((v[..., 1:] + v[..., :-1]) / 2 * np.diff(s)).sum(-1) / (s[-1] - s[0])


def at_kl(kls: list[float], values: list[float], kl_star: float = KL_STAR) -> float | None:
    """``values`` linearly interpolated where the run's KL first reaches ``kl_star``; None if it never does."""
    for i in range(1, len(kls)):
        lo, hi = kls[i - 1], kls[i]
        if lo <= kl_star <= hi and hi > lo:
            t = (kl_star - lo) / (hi - lo)
            return float(values[i - 1] + t * (values[i] - values[i - 1]))
    return None


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean of ``a - b`` (both ``(seeds, draws)``, paired by position) with a two-level 95% bootstrap interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2:
        from gprl import GprlError

        raise GprlError(f"paired bootstrap needs two (seeds, draws) arrays of one shape, got {a.shape} and {b.shape}")
    d = a - b
    S, N = d.shape
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for i in range(n_boot):
        rows = d[rng.integers(0, S, S)]
        means[i] = rows[:, rng.integers(0, N, N)].mean()
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"diff": float(d.mean()), "lo": float(lo), "hi": float(hi), "seeds": S, "draws": N,
            "per_seed": d.mean(1).tolist()}


def seed_bootstrap(x: list[float], n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean and a 95% bootstrap interval over seeds (for per-run numbers such as the matched-KL win rate)."""
    x = np.asarray([v for v in x if v is not None], dtype=float)
    if len(x) == 0:
        return {"diff": None, "lo": None, "hi": None, "seeds": 0}
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (n_boot, len(x)))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"diff": float(x.mean()), "lo": float(lo), "hi": float(hi), "seeds": len(x)}
