"""Training curves of a table's runs: every row's and seed's ``metrics.jsonl`` as one CSV and one plot.

    python -m gprl.loss_curves experiments/table1.yaml --scale offline     # -> results/table1_loss.{csv,png}

Reads the runs ``python -m gprl.tables run`` made (the same sweep directories); a row with no finished run is
skipped with a message. The plot has one column per row pair of the manifest's ``baseline`` links (e.g. BT and the
GPM on one cyclic set): training loss on top (log scale), the training batch's pair accuracy below.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from gprl.tables import ROOT, Manifest, sweep_dir

FIELDS = ("step", "loss", "train_pair_accuracy", "learning_rate", "grad_norm")


def curves(m: Manifest, scale: str, out_root: Path) -> list[dict]:
    """One record per logged step: row id, label, seed and the logged values."""
    out = []
    for row in m.rows_for(scale):
        runs = sorted(sweep_dir(m, scale, row, out_root).glob("*/metrics.jsonl"))
        if not runs:
            print(f"[loss_curves] {row.id}: no runs in {sweep_dir(m, scale, row, out_root)}; skipped")
        for log in runs:
            res = log.parent / "results.json"
            seed = json.loads(res.read_text())["seed"] if res.exists() else log.parent.name
            for line in log.read_text().splitlines():
                rec = json.loads(line)
                if "loss" in rec:  # not the end-of-training summary
                    out.append({"row": row.id, "label": row.label or row.id, "seed": seed,
                                **{k: rec.get(k) for k in FIELDS}})
    return out


def write_csv(records: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["row", "label", "seed", *FIELDS])
        w.writeheader()
        w.writerows(records)


def plot(m: Manifest, scale: str, records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {r.id: r for r in m.rows_for(scale)}
    panels = [(r.baseline, r.id) for r in rows.values() if r.baseline in rows] or [(r,) for r in rows]
    fig, axes = plt.subplots(2, len(panels), figsize=(3.6 * len(panels), 5.6), squeeze=False, sharex=True)
    for col, ids in enumerate(panels):
        for style, rid in zip(("--", "-"), ids):
            by_seed: dict = {}
            for rec in records:
                if rec["row"] == rid:
                    by_seed.setdefault(rec["seed"], []).append(rec)
            for n, (seed, recs) in enumerate(sorted(by_seed.items(), key=lambda kv: str(kv[0]))):
                steps = [r["step"] for r in recs]
                kw = {"ls": style, "color": f"C{n}", "lw": 1.2, "label": f"{rows[rid].label.split(',')[0]} seed {seed}"}
                axes[0, col].plot(steps, [max(r["loss"], 1e-6) for r in recs], **kw)
                axes[1, col].plot(steps, [100 * r["train_pair_accuracy"] for r in recs], **kw)
        axes[0, col].set_title(rows[ids[-1]].label.split(", ", 1)[-1], fontsize=9)
        axes[0, col].set_yscale("log")
        axes[1, col].axhline(200 / 3, color="grey", lw=0.8, ls=":")
        axes[1, col].set_ylim(30, 101)
        axes[1, col].set_xlabel("optimizer step")
    axes[0, 0].set_ylabel("training loss")
    axes[1, 0].set_ylabel("training pair accuracy (%)")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(f"Table {m.table} ({scale}): training curves; dotted line: 66.7, BT's ceiling on 3-cycles",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m gprl.loss_curves", description=__doc__.splitlines()[0])
    ap.add_argument("manifest")
    ap.add_argument("--scale", default="offline")
    ap.add_argument("--out", default=str(ROOT / "multirun"), help="root of the run directories")
    ap.add_argument("--results", default=str(ROOT / "results"))
    a = ap.parse_args(argv)
    m = Manifest.load(a.manifest)
    records = curves(m, a.scale, Path(a.out))
    Path(a.results).mkdir(parents=True, exist_ok=True)
    stem = Path(a.results) / (f"table{m.table}_loss" + ("" if a.scale == "offline" else f"_{a.scale}"))
    write_csv(records, stem.with_suffix(".csv"))
    plot(m, a.scale, records, stem.with_suffix(".png"))
    print(f"[loss_curves] wrote {stem}.csv and {stem}.png ({len(records)} logged steps)")


if __name__ == "__main__":
    main()
