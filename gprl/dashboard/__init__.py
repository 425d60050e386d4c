"""Dashboards of a sweep: an offline HTML page with PNG plots, and the W&B workspace of the same comparison as code.

    python -m gprl.dashboard multirun/alpaca_gprl                      # a sweep directory (or run directories)
    python -m gprl.dashboard experiments/table2.yaml --scale offline   # every row of a table manifest
    python -m gprl.dashboard multirun/alpaca_gprl --entity TEAM --save # also save the W&B workspace (needs a server)

Writes ``<out>/index.html`` with ``metric_vs_k.png``, ``curves.png``, ``gprl_axes.png`` (GPRL runs), the runs table,
and ``<out>/workspace.json``: the W&B workspace built with ``wandb-workspaces`` (sections: final metrics vs k,
training curves per k, GPRL per-axis statistics, runs), saved to W&B only with ``--save``. Every run is read from its
own files (``.hydra/config.yaml``, ``results.json``, ``metrics.jsonl``); the W&B runs are found by their group.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gprl import GprlError

ROOT = Path(__file__).resolve().parents[2]


def sources(paths: list[str], scale: str, runs_root: Path) -> list[Path]:
    """Run or sweep directories; a table manifest (``.yaml``) stands for its rows' sweep directories at ``scale``."""
    from gprl.tables import Manifest, sweep_dir

    out = []
    for p in paths:
        if p.endswith((".yaml", ".yml")):
            m = Manifest.load(p)
            out += [sweep_dir(m, scale, row, runs_root) for row in m.rows_for(scale) if not row.policy_of]
        else:
            out.append(Path(p))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m gprl.dashboard", description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+", help="run directories, sweep directories or table manifests (experiments/*.yaml)")
    ap.add_argument("--out", default=None, help="output folder (default results/dashboards/<group>)")
    ap.add_argument("--metrics", nargs="+", default=None,
                    help="final-metric keys to compare, as regexes (default: gprl.dashboard.runs.HEADLINE)")
    ap.add_argument("--scale", default="offline", help="manifests: the scale whose runs to show")
    ap.add_argument("--runs-root", default=str(ROOT / "multirun"), help="manifests: root of the table run directories")
    ap.add_argument("--entity", default=os.environ.get("WANDB_ENTITY", "ENTITY"), help="W&B entity of the workspace")
    ap.add_argument("--project", default="gprl", help="W&B project of the workspace (logger.project)")
    ap.add_argument("--save", action="store_true", help="save the workspace to W&B (needs a server and a login)")
    args = ap.parse_args(argv)
    try:
        from gprl.dashboard import offline, workspace
        from gprl.dashboard.runs import HEADLINE, headline, load_runs

        runs = load_runs(sources(args.paths, args.scale, Path(args.runs_root)))
        metrics = headline(runs, tuple(args.metrics) if args.metrics else HEADLINE)
        groups = sorted({r.group for r in runs})
        name = "+".join(groups)
        out = Path(args.out) if args.out else ROOT / "results" / "dashboards" / name
        page = offline.write_page(runs, metrics, out, f"gprl sweep: {name}", args.paths)
        view = workspace.build(runs, metrics, args.entity, args.project, f"gprl {name}")
        (out / "workspace.json").write_text(workspace.spec_json(view) + "\n")
        print(f"[dashboard] {len(runs)} runs, {len(metrics)} metrics: {page}")
        print(f"[dashboard] W&B workspace built ({len(view.sections)} sections; {out / 'workspace.json'})"
              + ("" if args.save else "; not saved (add --save, with a W&B server and login)"))
        if args.save:
            if args.entity == "ENTITY":
                raise GprlError("--save needs --entity (or WANDB_ENTITY): the W&B team or user to save the workspace to")
            print(f"[dashboard] saved: {view.save().url}")
    except GprlError as e:
        print(f"gprl: error: {e}", file=sys.stderr)
        sys.exit(2)
