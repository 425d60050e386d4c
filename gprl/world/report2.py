"""``results/world/v2/``: world v2's tables with paired intervals, the proxies (labels, gold accuracy, per-axis
correlations), the monitor's events, and curves of gold and proxy per step for every arm, with the command, date,
commit and wall time that produced them. Statistics as ``gprl.world.stats`` fixes them."""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from gprl.world.oracle import ASPECTS
from gprl.world.stats import KL_STAR, at_kl, auc, paired_bootstrap, seed_bootstrap

PRIMARY = "gprl"


def _by_arm(runs: list[dict]) -> dict[str, dict[int, dict]]:
    by: dict[str, dict[int, dict]] = defaultdict(dict)
    for r in runs:
        by[r["arm"]][r["seed"]] = r
    return by


def outcomes(run: dict) -> np.ndarray:
    """``(points, draws)`` per-draw gold outcomes at every evaluation of a run (step 0 first)."""
    return np.asarray([e["outcomes"] for e in run["evals"]], dtype=float)


def per_run(run: dict) -> dict:
    ev = run["evals"]
    steps = [e["step"] for e in ev]
    o = outcomes(run)
    return {"final": float(o[-1].mean()), "auc": float(auc(steps, o.mean(1))),
            "at_kl": at_kl([e["kl"] for e in ev], [e["gold_win"] for e in ev]),
            "draws_final": o[-1], "draws_auc": auc(steps, o.T)}


def _ms(xs: list[float], scale: float = 100.0) -> str:
    xs = [scale * x for x in xs if x is not None]
    if not xs:
        return "n/a"
    if len(xs) == 1:
        return f"{xs[0]:.1f}"
    return f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs):.1f}"


def arm_table(by: dict[str, dict[int, dict]]) -> tuple[str, list[dict]]:
    head = ("| arm | k | seeds | final gold win vs start (%) | gold AUC (%) | gold win at KL=2 (%) | GPM proxy win (%) "
            "| BT proxy win (%) | KL to start | length | filler words | "
            + " | ".join(f"Δ {a} (pts)" for a in ASPECTS) + " | monitor triggers | min/run |")
    rows, body = [], []
    for arm, rs in by.items():
        runs = [rs[s] for s in sorted(rs)]
        pr = [per_run(r) for r in runs]
        fin = [r["evals"][-1] for r in runs]
        st = [r["evals"][0] for r in runs]
        row = {"arm": arm, "k": runs[0]["k"], "seeds": len(runs), "final": [p["final"] for p in pr],
               "auc": [p["auc"] for p in pr], "at_kl": [p["at_kl"] for p in pr],
               "proxy_gpm": [f["proxy_gpm"] for f in fin], "proxy_bt": [f["proxy_bt"] for f in fin],
               "kl": [f["kl"] for f in fin], "length": [f["length"] for f in fin], "filler": [f["filler"] for f in fin],
               "triggers": [len(r["monitor_events"]) for r in runs], "minutes": [r["minutes"] for r in runs]}
        row.update({f"d_{a}": [f[f"gold_{a}"] - s[f"gold_{a}"] for f, s in zip(fin, st)] for a in ASPECTS})
        rows.append(row)
        n_kl = sum(x is not None for x in row["at_kl"])
        body.append(f"| {arm} | {row['k']} | {row['seeds']} | {_ms(row['final'])} | {_ms(row['auc'])} | "
                    f"{_ms(row['at_kl'])}{'' if n_kl == len(runs) else f' ({n_kl} of {len(runs)})'} | "
                    f"{_ms(row['proxy_gpm'])} | {_ms(row['proxy_bt'])} | {_ms(row['kl'], 1)} | "
                    f"{_ms(row['length'], 1)} | {_ms(row['filler'], 1)} | "
                    + " | ".join(_ms(row[f'd_{a}']) for a in ASPECTS)
                    + f" | {sum(row['triggers'])} | {statistics.mean(row['minutes']):.1f} |")
    sep = "|" + "---|" * (head.count("|") - 1)
    return "\n".join([head, sep, *body]), rows


def paired(by: dict[str, dict[int, dict]], primary: str = PRIMARY) -> list[dict]:
    """GPRL minus each other arm over the seeds both have: final, AUC (two-level bootstrap over seeds and draws)
    and the win rate at matched KL (bootstrap over seeds, where both runs reached KL*)."""
    if primary not in by:
        return []
    out = []
    for arm in by:
        if arm == primary:
            continue
        seeds = sorted(set(by[primary]) & set(by[arm]))
        if not seeds:
            continue
        a = [per_run(by[primary][s]) for s in seeds]
        b = [per_run(by[arm][s]) for s in seeds]
        kl = [x["at_kl"] - y["at_kl"] for x, y in zip(a, b) if x["at_kl"] is not None and y["at_kl"] is not None]
        out.append({"baseline": arm, "seeds": seeds,
                    "final": paired_bootstrap(np.stack([x["draws_final"] for x in a]),
                                              np.stack([y["draws_final"] for y in b])),
                    "auc": paired_bootstrap(np.stack([x["draws_auc"] for x in a]), np.stack([y["draws_auc"] for y in b])),
                    "at_kl": seed_bootstrap(kl)})
    return out


def _iv(d: dict) -> str:
    if d.get("diff") is None:
        return "n/a"
    sig = " *" if d["lo"] > 0 or d["hi"] < 0 else ""
    return f"{100 * d['diff']:+.1f} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}]{sig}"


def paired_table(rows: list[dict]) -> str:
    head = (f"| {PRIMARY} minus | seeds | final gold win (pts, 95% CI) | gold AUC (pts, 95% CI) | "
            f"gold win at KL={KL_STAR:g} (pts, 95% CI; seeds) |")
    body = [f"| {r['baseline']} | {len(r['seeds'])} | {_iv(r['final'])} | {_iv(r['auc'])} | {_iv(r['at_kl'])}; "
            f"{r['at_kl']['seeds']} |" for r in rows]
    return "\n".join([head, "|---|---|---|---|---|", *body])


def proxy_tables(proxies: dict) -> str:
    lines = ["| seed | labels | from the biased rater (%) | labels agreeing with gold (%) | held-out gold pairs | "
             "BT gold accuracy (%) | GPM gold accuracy (%) |", "|---|---|---|---|---|---|---|"]
    for s, p in sorted(proxies.items()):
        lab = p["labels"]
        lines.append(f"| {s} | {lab['pairs']} | {100 * lab['biased_share']:.1f} | {100 * lab['agree_with_gold']:.1f} | "
                     f"{lab['heldout_gold_pairs']} | {100 * p['bt']['heldout_gold_accuracy']:.1f} | "
                     f"{100 * p['gpm']['heldout_gold_accuracy']:.1f} |")
    feats = [*ASPECTS, "length", "filler"]
    lines += ["", "Correlation of each proxy axis's score c(a, b) with the difference a - b of each gold aspect, of length "
              "and of filler words, on the held-out gold pairs put in random order (mean over seeds; GPM axes in the "
              "order the model has them, so an axis index means nothing across seeds: per seed in `proxies.json` and "
              "below):", "",
              "| proxy axis | " + " | ".join(feats) + " |", "|" + "---|" * (len(feats) + 1)]
    for name in ("bt", "gpm"):
        n_ax = len(next(iter(proxies.values()))[name]["axis_correlations"])
        for l in range(n_ax):
            vals = [statistics.mean(p[name]["axis_correlations"][l][f] for p in proxies.values()) for f in feats]
            lines.append(f"| {name} axis {l} | " + " | ".join(f"{v:+.2f}" for v in vals) + " |")
    # the axis most aligned with filler, per seed (a name for "the single axis")
    lines += ["", "Per seed, the GPM axis most correlated with filler words (the \"filler axis\" of the per-axis figure) "
              "and its correlations:", ""]
    for s, p in sorted(proxies.items()):
        ax = p["gpm"]["axis_correlations"]
        l = filler_axis(p)
        lines.append(f"- seed {s}: axis {l}: filler {ax[l]['filler']:+.2f}, correct {ax[l]['correct']:+.2f}, "
                     f"brevity {ax[l]['brevity']:+.2f}, fluency {ax[l]['fluency']:+.2f}; the other axis: filler "
                     f"{ax[1 - l]['filler']:+.2f}, correct {ax[1 - l]['correct']:+.2f}")
    return "\n".join(lines)


def filler_axis(proxy: dict) -> int:
    """The GPM axis (of two) most correlated with filler words on the seed's held-out pairs."""
    ax = proxy["gpm"]["axis_correlations"]
    return max(range(len(ax)), key=lambda i: ax[i]["filler"])


def monitor_lines(by: dict[str, dict[int, dict]], proxies: dict) -> list[str]:
    out = []
    for arm, rs in by.items():
        if not _arm(arm).get("monitor"):
            continue
        for s in sorted(rs):
            ev, fa = rs[s]["monitor_events"], filler_axis(proxies[s]) if s in proxies else None
            out.append(f"- {arm} seed {s}: " + ("none" if not ev else "; ".join(
                f"step {e['step']} {e['trigger']} on axis {e['axis']}"
                + (" (the filler axis)" if e["axis"] == fa else " (not the filler axis)" if fa is not None else "")
                + " (gains " + ", ".join(f"{g:+.3f}" for g in e["gains"]) + f"), eps {e['eps']:.3f}, "
                f"beta {e['beta']:.3f}" for e in ev)))
    return out


def _arm(name: str) -> dict:
    from gprl.world.v2 import ARMS2

    return ARMS2.get(name, {})


def _mean_curve(rs: dict[int, dict], key: str) -> tuple[list[int], list[float]]:
    evs = [r["evals"] for r in rs.values()]
    steps = [e["step"] for e in evs[0]]
    return steps, [statistics.mean(ev[i][key] for ev in evs if i < len(ev) and key in ev[i]) for i in range(len(steps))]


def plot(by: dict[str, dict[int, dict]], out: Path, proxies: dict | None = None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    keys = [("gold_win", "gold win vs start"), ("proxy_gpm", "GPM proxy P(win) vs start"),
            ("proxy_bt", "BT proxy P(win) vs start"), ("filler", "filler words per answer"),
            ("gold_correct", "gold correct"), ("kl", "KL to start (nats)")]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, (key, title) in zip(axes.flat, keys):
        for arm, rs in by.items():
            x, y = _mean_curve(rs, key)
            ax.plot(x, y, marker="o", label=arm, linestyle="-" if _arm(arm).get("kind") == "rl" else "--")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("World v2: held-out evaluation, mean over seeds")
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=90)
    plt.close(fig)
    files.append("curves.png")
    gpm_arms = [a for a, rs in by.items() if any("proxy_gpm_axis0" in e for r in rs.values() for e in r["evals"])]
    if gpm_arms and proxies:
        cols = 4
        rows = (len(gpm_arms) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
        for ax, arm in zip(axes.flat, gpm_arms):
            for role, style in (("filler", "o-"), ("other", "s--")):
                curves = []
                for seed, r in by[arm].items():
                    l = filler_axis(proxies[seed]) if role == "filler" else 1 - filler_axis(proxies[seed])
                    curves.append([e[f"proxy_gpm_axis{l}"] for e in r["evals"]])
                steps = [e["step"] for e in next(iter(by[arm].values()))["evals"]]
                ax.plot(steps, np.mean(curves, 0), style, label=f"GPM {role} axis")
            x, y = _mean_curve(by[arm], "gold_win")
            ax.plot(x, y, "^-", color="k", label="gold win")
            ax.set_title(arm)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(gpm_arms):]:
            ax.axis("off")
        axes[0][0].legend(fontsize=7)
        fig.suptitle("Per-axis view: P(win) vs the starting answer on each GPM axis (the seed's axis most correlated "
                     "with filler, and the other), mean over seeds")
        fig.tight_layout()
        fig.savefig(out / "axes.png", dpi=90)
        plt.close(fig)
        files.append("axes.png")
    return files


def _compact(run: dict) -> dict:
    """A run for runs.jsonl: per-draw outcomes as a digit string (2 x the mean over 2 samples: 0 loss .. 4 win)."""
    r = json.loads(json.dumps(run))
    for e in r["evals"]:
        e["outcomes"] = "".join(str(round(o * 4)) for o in e["outcomes"])
    return r


def write_report2(out: Path, runs: list[dict], proxies: dict, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    by = _by_arm(runs)
    at, rows = arm_table(by)
    pr = paired(by)
    figs = plot(by, out, proxies)
    sc = meta["scale"]
    start = [r["evals"][0] for r in runs]
    parts = meta["parts"]
    text = [
        "# Preference world, version 2: an exploitable proxy, paired seeds, intervals",
        "",
        f"Command: `{meta.get('command') or 'make reproduce-world'}`; date {meta['date']}; commit {meta['git_commit']}. "
        f"Arm runs took {meta['arm_minutes']} CPU-minutes in all (one thread each; this invocation's wall time "
        f"{meta['minutes_this_invocation']} min; finished runs are cached and reused). Seeds: {meta['seeds']}.",
        "",
        f"Equal compute per arm: {sc['steps']} optimiser steps of {sc['prompts_per_step']} prompts x "
        f"{sc['generations']} samples for online arms (each sample batch serves 2 updates; lr {sc['lr']:g}), the same "
        f"prompts and number of samples in {sc['iterations']} iterations for iterative arms (lr {sc['po_lr']:g}); "
        f"answers of at most {sc['max_tokens']} tokens. Evaluation: {sc['eval_draws']} draws from the held-out `eval` "
        f"part x {sc['eval_samples']} samples, each against the starting policy's sample to the same draw "
        "(gold win counts ties as half); both proxies of the seed score every arm.",
        "",
        "Held out by construction (`gprl.world.split`, tested): distinct prompts per part "
        + "; ".join(f"{p}: " + ", ".join(f"{f} {n}" for f, n in v.items()) for p, v in parts.items()) + ".",
        "",
        f"Starting policy: held-out perplexity {meta['starting_policy'].get('held_out_perplexity', float('nan')):.2f}; "
        f"gold correct {_ms([s['gold_correct'] for s in start])} on the evaluation draws (mean over seeds), length "
        f"{_ms([s['length'] for s in start], 1)} tokens, filler words {_ms([s['filler'] for s in start], 1)}.",
        "",
        "## Every arm",
        "",
        "Mean ± std over seeds. Gold AUC: the gold curve's area over the evaluations (step 0 included) divided by the "
        f"span. Win at KL={KL_STAR:g}: interpolated where the run's KL first reaches it (n/a if never). Proxy win: the "
        "proxy's P(answer beats the starting answer) at the final evaluation (0.5 at the start).",
        "",
        at,
        "",
        f"## {PRIMARY} minus each baseline (paired by seed; 95% intervals)",
        "",
        "Final and AUC: two-level bootstrap (seeds, then the same evaluation draws for both arms), 2,000 resamples. "
        "Matched KL: bootstrap over the seeds where both runs reached KL*. `*`: the interval excludes 0.",
        "",
        paired_table(pr),
        "",
        "## Proxies (retrained per seed on mixture labels)",
        "",
        proxy_tables(proxies),
        "",
        "## Monitor events",
        "",
        *monitor_lines(by, proxies),
        "",
        "## Figures",
        "",
        *[f"![{f}]({f})" for f in figs],
        "",
        "Per-run records (every evaluation with its per-draw outcomes as digits 0-4 = 4 x the mean over two samples; "
        "online arms' per-step rollouts and monitor state): `runs.jsonl`; the paired intervals: `paired.json`.",
    ]
    readme = out / "README.md"
    if readme.exists() and "\n## Reading" in readme.read_text():  # a hand-written reading survives a re-report
        text += ["", "## Reading" + readme.read_text().split("\n## Reading", 1)[1].rstrip("\n")]
    readme.write_text("\n".join(text) + "\n")
    (out / "runs.jsonl").write_text("".join(json.dumps(_compact(r)) + "\n" for r in runs))
    (out / "paired.json").write_text(json.dumps(pr, indent=2) + "\n")
    (out / "proxies.json").write_text(json.dumps(proxies, indent=2) + "\n")
    with (out / "summary.csv").open("w", newline="") as f:
        w = csv.writer(f)
        keys = ["final", "auc", "at_kl", "proxy_gpm", "proxy_bt", "kl", "length", "filler",
                *(f"d_{a}" for a in ASPECTS), "triggers"]
        w.writerow(["arm", "k", "seeds", *keys])
        for r in rows:
            w.writerow([r["arm"], r["k"], r["seeds"], *(";".join("" if x is None else f"{x:.4f}" for x in r[k])
                                                        for k in keys)])
