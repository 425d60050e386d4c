"""``results/world/v1/`` (the first world): the comparison table (markdown + csv), the proxy reward models' gold accuracy, cycle rates,
monitor events and PNG curves, with the command, date and commit that produced them."""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path

from gprl.world.oracle import ASPECTS


def _ms(xs: list[float], scale: float = 100.0) -> str:
    xs = [scale * x for x in xs]
    if len(xs) == 1:
        return f"{xs[0]:.1f}"
    return f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs):.1f}"


def summarise(runs: list[dict]) -> list[dict]:
    """One row per arm: final and best held-out gold win rate, proxy gain, KL, length, final aspects (per seed)."""
    by = defaultdict(list)
    for r in runs:
        by[r["arm"]].append(r)
    rows = []
    for arm, rs in by.items():
        final = [r["evals"][-1] for r in rs]
        first = [r["evals"][0] for r in rs]
        row = {"arm": arm, "k": rs[0]["k"], "seeds": len(rs),
               "gold_win_final": [f["gold_win"] for f in final],
               "gold_win_best": [max(e["gold_win"] for e in r["evals"][1:]) for r in rs],
               "proxy_gain": [f["proxy_win"] - s["proxy_win"] for f, s in zip(final, first)],
               "kl": [f["kl"] for f in final], "length": [f["length"] for f in final],
               "monitor_triggers": [len(r["monitor_events"]) for r in rs], "minutes": [r["minutes"] for r in rs]}
        row.update({f"gold_{a}": [f[f"gold_{a}"] - s[f"gold_{a}"] for f, s in zip(final, first)] for a in ASPECTS})
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    head = ("| arm | k | final gold win vs start (%) | best gold win (%) | proxy gain (pts) | KL to start | length "
            "| " + " | ".join(f"Δ {a} (pts)" for a in ASPECTS) + " | monitor triggers | min/run |")
    sep = "|" + "---|" * (head.count("|") - 1)
    body = []
    for r in rows:
        body.append(f"| {r['arm']} | {r['k']} | {_ms(r['gold_win_final'])} | {_ms(r['gold_win_best'])} | "
                    f"{_ms(r['proxy_gain'])} | {_ms(r['kl'], 1)} | {_ms(r['length'], 1)} | "
                    + " | ".join(_ms(r[f'gold_{a}']) for a in ASPECTS)
                    + f" | {sum(r['monitor_triggers'])} | {statistics.mean(r['minutes']):.1f} |")
    return "\n".join([head, sep, *body])


def _curves(runs: list[dict], key: str) -> dict[str, tuple[list[int], list[float]]]:
    by = defaultdict(list)
    for r in runs:
        by[r["arm"]].append(r["evals"])
    out = {}
    for arm, evs in by.items():
        steps = [e["step"] for e in evs[0]]
        out[arm] = (steps, [statistics.mean(ev[i][key] for ev in evs) for i in range(len(steps))])
    return out


def plot(runs: list[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    gold, proxy = _curves(runs, "gold_win"), _curves(runs, "proxy_win")
    arms = list(gold)
    cols = 4
    fig, axes = plt.subplots((len(arms) + cols - 1) // cols, cols, figsize=(4 * cols, 3 * ((len(arms) + cols - 1) // cols)),
                             squeeze=False, sharey=True)
    for ax, arm in zip(axes.flat, arms):
        ax.plot(*gold[arm], "o-", label="gold win vs start")
        ax.plot(*proxy[arm], "s--", label="proxy P(win) vs start")
        ax.axhline(0.5, color="grey", lw=0.5)
        ax.set_title(arm, fontsize=9)
        ax.set_xlabel("step")
    for ax in list(axes.flat)[len(arms):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Held-out gold win rate and proxy win probability against the starting policy (mean over seeds)")
    fig.tight_layout()
    fig.savefig(out / "gold_vs_proxy.png", dpi=110)
    plt.close(fig)
    files.append("gold_vs_proxy.png")

    show = [a for a in ("grpo_bt", "gprl") if a in gold]
    if show:
        fig, axes = plt.subplots(1, len(ASPECTS), figsize=(4 * len(ASPECTS), 3), squeeze=False)
        for ax, asp in zip(axes[0], ASPECTS):
            c = _curves(runs, f"gold_{asp}")
            for arm in show:
                ax.plot(*c[arm], "o-", label=arm)
            ax.set_title(f"gold {asp}", fontsize=9)
            ax.set_xlabel("step")
        axes[0][0].legend(fontsize=7)
        fig.suptitle("Per-aspect gold scores on held-out prompts (mean over seeds)")
        fig.tight_layout()
        fig.savefig(out / "aspects_grpo_vs_gprl.png", dpi=110)
        plt.close(fig)
        files.append("aspects_grpo_vs_gprl.png")
    return files


def monitor_view(runs: list[dict]) -> list[str]:
    """What the drift monitor saw in each online GPRL run: per-axis gains against the reference answer and the
    dominance of the largest gain (it flags exploitation above 0.7 with a gain above 0.05)."""
    lines = []
    for r in runs:
        steps = [h for h in r["rollouts"] if "gprl/axis0_gain" in h]
        if not steps:
            continue
        n = sum(1 for k in steps[0] if k.endswith("_gain"))
        peak, dom_at = -1.0, None
        for h in steps:
            g = [h[f"gprl/axis{i}_gain"] for i in range(n)]
            pos = [max(x, 0.0) for x in g]
            if max(g) > 0.05:
                d = max(pos) / (sum(pos) + 1e-6)
                if d > peak:
                    peak, dom_at = d, (h.get("step"), g)
        last = [steps[-1][f"gprl/axis{i}_gain"] for i in range(n)]
        lines.append(f"- {r['arm']} seed {r['seed']}: final per-axis gains vs the reference answer "
                     f"{', '.join(f'{x:+.3f}' for x in last)}; "
                     + (f"highest dominance {peak:.2f} (step {dom_at[0]}, gains {', '.join(f'{x:+.3f}' for x in dom_at[1])})"
                        if dom_at else "no axis gained more than 0.05"))
    return lines


def plot_monitor(runs: list[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = [r for r in runs if r["arm"] == "gprl" and any("gprl/axis0_gain" in h for h in r["rollouts"])]
    if not rs:
        return []
    fig, axes = plt.subplots(1, len(rs), figsize=(5 * len(rs), 3), squeeze=False)
    for ax, r in zip(axes[0], rs):
        steps = [h for h in r["rollouts"] if "gprl/axis0_gain" in h]
        x = [h.get("step", i + 1) for i, h in enumerate(steps)]
        n = sum(1 for k in steps[0] if k.endswith("_gain"))
        for i in range(n):
            ax.plot(x, [h[f"gprl/axis{i}_gain"] for h in steps], label=f"axis {i} gain")
        gold = [h.get("rewards/gold_win/mean") for h in steps]
        ax.plot(x, [g - gold[0] for g in gold], "k:", label="gold win (rollouts) - start")
        ax.axhline(0.05, color="grey", lw=0.5)
        ax.set_title(f"gprl seed {r['seed']}: what the monitor sees", fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "monitor_gprl.png", dpi=110)
    plt.close(fig)
    return ["monitor_gprl.png"]


def write_report(out: Path, runs: list[dict], proxies: dict, cycles: dict, meta: dict) -> None:
    rows = summarise(runs)
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        keys = [k for k in rows[0] if k not in ("arm", "k", "seeds")]
        w.writerow(["arm", "k", "seeds", *keys])
        for r in rows:
            w.writerow([r["arm"], r["k"], r["seeds"], *(";".join(f"{x:.4f}" for x in r[k]) for k in keys)])
    figs = plot(runs, out) + plot_monitor(runs, out)
    with open(out / "runs.jsonl", "w") as f:  # every run's per-step records: held-out evals, rollouts, monitor
        for r in sorted(runs, key=lambda r: (r["arm"], r["seed"])):
            f.write(json.dumps(r) + "\n")
    s = meta["scale"]
    lines = [
        f"# Preference world: every algorithm against the gold oracle ({meta['scale_name']} scale)",
        "",
        f"Command: `{meta.get('command') or 'python -m gprl.world.experiment --scale ' + meta['scale_name']}`"
        f"{' (`make reproduce-world`)' if meta['scale_name'] == 'full' and 'lr' not in (meta.get('command') or '') else ''}; date {meta['date']}; commit "
        f"{meta['git_commit']}; arm runs took {sum(r['minutes'] for r in runs):.0f} min in all on this machine's 2 CPU "
        f"cores (this invocation {meta['minutes']} min; finished runs are cached and reused). Seeds: {list(s['seeds'])}.",
        "",
        f"Equal compute per arm: {s['steps']} optimiser steps of {s['prompts_per_step']} prompts x {s['generations']} "
        f"samples for online arms (each sample batch serves 2 updates), the same prompts and number of samples "
        f"in {s['iterations']} iterations for iterative arms; lr {s['lr']}; answers of at most {s['max_tokens']} tokens. "
        f"Evaluation: {s['eval_prompts']} held-out prompts, the arm's sample against the starting policy's sample; "
        "gold win counts ties as half. 'Proxy gain' is the change of the training proxy's win probability against "
        "the same answers; Δ aspect is final minus start.",
        "",
        table(rows),
        "",
        "## Proxy reward models (trained on gold-labelled pairs of the starting policy's samples)",
        "",
        "| k | held-out gold accuracy (%) | n | " + " | ".join(sorted(next(iter(proxies.values()))["per_family"])) + " |",
        "|---|---|---|" + "---|" * len(next(iter(proxies.values()))["per_family"]),
        *[f"| {k} | {100 * v['heldout_gold_accuracy']:.1f} | {v['n']} | "
          + " | ".join(f"{100 * x:.1f}" for _, x in sorted(v["per_family"].items())) + " |" for k, v in sorted(proxies.items())],
        "",
        "## How often the gold preference cycles",
        "",
        "Share of strictly ordered triples that are cyclic (a > b > c > a), and of prompts with at least one cycle "
        "among 6 answers:",
        "",
        "| answers from | family | cyclic triples (%) | prompts with a cycle (%) |",
        "|---|---|---|---|",
        *[f"| {src} | {fam} | {100 * v['cyclic_triples']:.2f} | {100 * v['prompts_with_a_cycle']:.1f} |"
          for src, fams in cycles.items() for fam, v in fams.items()],
        "",
        "## Monitor events (online GPRL arms)",
        "",
        *([f"- {r['arm']} seed {r['seed']}: " + (", ".join(f"step {e['step']} {e['trigger']} on axis {e['axis']}"
                                                          for e in r["monitor_events"]) or "none")
           for r in runs if r["arm"].startswith("gprl")] or ["- no GPRL arm in this run"]),
        "",
        "What the monitor saw (per-axis gain = smoothed win rate of the rollouts against the reference policy's "
        "greedy answer under the proxy, minus its value at step 0):",
        "",
        *(monitor_view(runs) or ["- per-axis gains were not logged in these runs"]),
        "",
        "Per-step records of every run (held-out evaluations; for online arms every training step's proxy reward, "
        "gold aspects, KL, length and monitor state): `runs.jsonl`, one run per line.",
        "",
        "## Figures",
        "",
        *[f"![{f}]({f})" for f in figs],
        "",
        f"Starting policy: {meta['starting_policy']['parameters'] / 1e6:.2f}M parameters, held-out perplexity "
        f"{meta['starting_policy']['held_out_perplexity']:.2f} on grammar answers of mixed quality.",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))
