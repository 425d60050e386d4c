"""The offline dashboard: a static HTML page with PNG plots (matplotlib) of a sweep's runs, from their files alone.

Same comparison as the W&B workspace (``gprl.dashboard.workspace``): final metrics against k (each seed a dot, the
mean ± std over seeds a line), training curves coloured by k, GPRL's per-axis statistics per k, and a runs table.
"""

from __future__ import annotations

import html
import statistics
from pathlib import Path

from gprl.dashboard.runs import Run, curve_keys

CSS = """body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:22px}h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f1f1f1}td{white-space:nowrap}td.l,th.l{text-align:left}td.w{white-space:normal;overflow-wrap:anywhere;min-width:250px;
max-width:330px}img{max-width:100%;border:1px solid #eee}.note{color:#555;font-size:13px}.scroll{overflow-x:auto}"""


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(n: int, ncols: int = 3, size=(4.4, 3.0)):
    plt = _plt()
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _k_colours(ks: list[int]) -> dict[int, tuple]:
    cmap = _plt().get_cmap("tab10")  # distinct colours: k is a handful of discrete values
    return {k: cmap(i % 10) for i, k in enumerate(ks)}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _plt().close(fig)
    return path


def metric_vs_k(runs: list[Run], metrics: list[str], path: Path) -> Path | None:
    """One panel per metric: every finished run a dot at its k, the mean over seeds a line with ± std bars (one line
    per W&B group)."""
    done = [r for r in runs if r.finished]
    if not done or not metrics:
        return None
    fig, axes = _grid(len(metrics))
    groups = sorted({r.group for r in done})
    for ax, m in zip(axes, metrics):
        for g in groups:
            rs = [r for r in done if r.group == g and m in r.final]
            ks = sorted({r.k for r in rs})
            vals = {k: [r.final[m] for r in rs if r.k == k] for k in ks}
            means = [statistics.fmean(vals[k]) for k in ks]
            sds = [statistics.stdev(vals[k]) if len(vals[k]) > 1 else 0.0 for k in ks]
            line = ax.errorbar(ks, means, yerr=sds, marker="o", capsize=3, label=g if len(groups) > 1 else None)
            ax.scatter([r.k for r in rs], [r.final[m] for r in rs], s=12, alpha=0.45, color=line[0].get_color())
        ax.set_title(m, fontsize=10)
        ax.set_xlabel("k")
        ax.set_xticks(sorted({r.k for r in done}))
        ax.grid(alpha=0.3)
        if len(groups) > 1:
            ax.legend(fontsize=8)
    return _save(fig, path)


def curves(runs: list[Run], path: Path) -> Path | None:
    """One panel per logged training quantity (``runs.CURVES``) against step, each run a line coloured by its k."""
    keys = curve_keys(runs)
    if not keys:
        return None
    fig, axes = _grid(len(keys))
    colours = _k_colours(sorted({r.k for r in runs}))
    for ax, key in zip(axes, keys):
        labelled = set()
        for r in runs:
            pts = [(rec["step"], rec[key]) for rec in r.history if isinstance(rec.get(key), (int, float))]
            if pts:
                ax.plot(*zip(*pts), color=colours[r.k], alpha=0.8, lw=1.2,
                        label=None if r.k in labelled else f"k={r.k}")
                labelled.add(r.k)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def axis_stats(runs: list[Run], path: Path) -> Path | None:
    """GPRL's per-axis statistics: a row per statistic, a column per k, a line per axis (mean over seeds)."""
    stats = {r.k: r.axis_stats() for r in runs}
    names = sorted({s for st in stats.values() for s in st})
    ks = sorted(k for k, st in stats.items() if st)
    if not names:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(names), len(ks), figsize=(4.2 * len(ks), 2.6 * len(names)), squeeze=False)
    for j, k in enumerate(ks):
        per_run = [r.axis_stats() for r in runs if r.k == k]
        for i, name in enumerate(names):
            ax = axes[i][j]
            for axis in sorted({a for st in per_run for a in st.get(name, {})}):
                by_step: dict[int, list[float]] = {}
                for st in per_run:
                    for step, v in st.get(name, {}).get(axis, []):
                        by_step.setdefault(step, []).append(v)
                steps = sorted(by_step)
                ax.plot(steps, [statistics.fmean(by_step[s]) for s in steps], marker=".", label=f"axis {axis}")
            ax.set_title(f"k={k}: {name}", fontsize=10)
            ax.grid(alpha=0.3)
            if i == len(names) - 1:
                ax.set_xlabel("step")
            ax.legend(fontsize=7)
    return _save(fig, path)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else html.escape(str(v))


def runs_table(runs: list[Run], metrics: list[str]) -> str:
    head = ["run", "group", "job type", "k", "seed", "status", "tags"]
    rows = []
    for r in runs:
        cells = [f'<td class="l w">{html.escape(r.name)}</td>', f'<td class="l">{html.escape(r.group)}</td>',
                 f'<td class="l">{html.escape(r.job_type)}</td>', f"<td>{r.k}</td>", f"<td>{r.seed}</td>",
                 f'<td class="l">{"finished" if r.finished else "unfinished"}</td>',
                 f'<td class="l w">{html.escape(" ".join(r.tags))}</td>']
        cells += [f"<td>{_fmt(r.final[m])}</td>" if m in r.final else "<td>—</td>" for m in metrics]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    ths = "".join(f'<th class="l">{h}</th>' for h in head) + "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    return f'<div class="scroll"><table class="runs"><tr>{ths}</tr>\n' + "\n".join(rows) + "</table></div>"


def mean_table(runs: list[Run], metrics: list[str]) -> str:
    """Mean ± std over seeds per (group, k): the numbers the metric-vs-k plot draws."""
    done = [r for r in runs if r.finished]
    keys = sorted({(r.group, r.k) for r in done})
    rows = []
    for g, k in keys:
        rs = [r for r in done if (r.group, r.k) == (g, k)]
        cells = [f'<td class="l">{html.escape(g)}</td>', f"<td>{k}</td>", f"<td>{len(rs)}</td>"]
        for m in metrics:
            v = [r.final[m] for r in rs if m in r.final]
            cells.append("<td>—</td>" if not v else f"<td>{statistics.fmean(v):.4f}"
                         + (f" ± {statistics.stdev(v):.4f}" if len(v) > 1 else "") + "</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    ths = '<th class="l">group</th><th>k</th><th>runs</th>' + "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    return f'<div class="scroll"><table class="means"><tr>{ths}</tr>\n' + "\n".join(rows) + "</table></div>"


def write_page(runs: list[Run], metrics: list[str], out: Path, title: str, sources: list[str]) -> Path:
    """``out/index.html`` and its PNGs; returns the page."""
    out.mkdir(parents=True, exist_ok=True)
    plots = [("Final metrics against k (dots: runs; line: mean ± std over seeds)",
              metric_vs_k(runs, metrics, out / "metric_vs_k.png")),
             ("Training curves, coloured by k", curves(runs, out / "curves.png")),
             ("GPRL per-axis statistics (mean over seeds)", axis_stats(runs, out / "gprl_axes.png"))]
    done = sum(r.finished for r in runs)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             f'<p class="note">{len(runs)} runs ({done} finished), groups: '
             f'{html.escape(", ".join(sorted({r.group for r in runs})))}; from {html.escape(" ".join(sources))}. '
             "Final metrics: each run's results.json (what its W&B summary holds); curves: its metrics.jsonl.</p>",
             "<h2>Mean over seeds by k</h2>", mean_table(runs, metrics)]
    for heading, png in plots:
        if png is not None:
            parts += [f"<h2>{heading}</h2>", f'<img src="{png.name}" alt="{html.escape(heading)}">']
    parts += ["<h2>Runs</h2>", runs_table(runs, metrics), "</body></html>"]
    page = out / "index.html"
    page.write_text("\n".join(parts) + "\n")
    return page
