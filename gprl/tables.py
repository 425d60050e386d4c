"""Paper tables as data: run a manifest's rows through ``run.py`` (Hydra multirun, so ``--launcher slurm`` sends
the same table to a cluster, every row submitted at once) and collect ``results/tableN.{csv,md}`` with the paper's
numbers beside ours.

    python -m gprl.tables run experiments/table2.yaml --scale offline     # runs, then collects
    python -m gprl.tables collect experiments/table2.yaml --scale offline
    python -m gprl.tables list experiments/table2.yaml                     # rows and the commands they run

Manifest (YAML): ``table``, ``title``, ``source``, ``metrics`` (label -> results.json metrics key), ``seeds``,
``scales`` (name -> overrides, paper, note, seeds), ``rows`` (id, overrides, paper numbers per paper key,
optional ``baseline`` row id for "gain over baseline" columns, optional ``scales`` the row belongs to, optional
``metric_prefix`` when rows share one run and read different parts of it, e.g. a policy run's iterations), optional
``raw`` (metric labels that are not fractions, e.g. MT-Bench's 1-10 score or a count: printed as stored, not x100).
Finished runs are never redone: each row's sweep directory is deterministic and a run with results.json is
skipped by run.py itself.

A row with ``policy_of: experiments/tableN.yaml#ROW`` benchmarks the policies that row of another manifest trains
(at the same scale; run first if not finished) instead of training them again: task ``benchmark`` gets the other
row's sweep directory as ``benchmark.policy`` (e.g. Tables 8-11 read every iteration of Table 4's GPO/SPPO runs).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from gprl import GprlError
from gprl.provenance import git_commit, versions

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    id: str  # directory-safe row id
    overrides: list[str]  # run.py overrides of this row
    label: str = ""  # what the table prints
    paper: dict = field(default_factory=dict)  # paper key -> {metric label: number}
    baseline: Optional[str] = None  # row id whose numbers give the "gain over baseline" columns
    scales: Optional[list[str]] = None  # scales this row runs at (None = all)
    metric_prefix: str = ""  # prepended to every metric key: rows sharing one run read different parts (e.g. iter2/)
    policy_of: Optional[str] = None  # "experiments/tableN.yaml#ROW": benchmark that row's run (same scale) as benchmark.policy


@dataclass
class Scale:
    overrides: list[str]  # overrides for every row at this scale
    paper: Optional[str] = None  # which paper numbers compare with this scale
    note: str = ""  # printed under the table
    seeds: Optional[list[int]] = None  # overrides the manifest's seeds
    metrics: Optional[dict] = None  # overrides the manifest's metric keys (same labels), e.g. another report


@dataclass
class Manifest:
    table: str
    title: str
    source: str
    metrics: dict[str, str]
    seeds: list[int]
    scales: dict[str, Scale]
    rows: list[Row]
    raw: list[str] = field(default_factory=list)  # metric labels printed as stored (scores, counts), not as percentages
    path: Path = Path()

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
            m = cls(table=str(raw["table"]), title=raw["title"], source=raw["source"], metrics=raw["metrics"],
                    seeds=list(raw["seeds"]), scales={k: Scale(**v) for k, v in raw["scales"].items()},
                    rows=[Row(**r) for r in raw["rows"]], raw=list(raw.get("raw", [])), path=path)
        except FileNotFoundError:
            raise GprlError(f"manifest {path} does not exist") from None
        except (KeyError, TypeError, yaml.YAMLError) as e:
            raise GprlError(f"malformed manifest {path}: {e}") from None
        ids = [r.id for r in m.rows]
        if len(set(ids)) != len(ids):
            raise GprlError(f"{path}: duplicate row ids")
        for r in m.rows:
            if r.baseline is not None and r.baseline not in ids:
                raise GprlError(f"{path}: row {r.id} names unknown baseline {r.baseline!r}")
            if r.policy_of is not None and "#" not in r.policy_of:
                raise GprlError(f"{path}: row {r.id}: policy_of must be MANIFEST#ROW, got {r.policy_of!r}")
        return m

    def rows_for(self, scale: str) -> list[Row]:
        if scale not in self.scales:
            raise GprlError(f"{self.path}: unknown scale {scale!r}; known: {', '.join(self.scales)}")
        return [r for r in self.rows if r.scales is None or scale in r.scales]

    def metrics_for(self, scale: str) -> dict[str, str]:
        return self.scales[scale].metrics or self.metrics

    def seeds_for(self, scale: str) -> list[int]:
        return self.scales[scale].seeds or self.seeds


def referenced(m: Manifest, scale: str, row: Row) -> tuple[Manifest, Row]:
    """The manifest and row whose runs a ``policy_of`` row benchmarks (same scale, the same seeds or more)."""
    path, _, rid = row.policy_of.partition("#")
    other = Manifest.load(ROOT / path)
    ref = next((r for r in other.rows if r.id == rid), None)
    if ref is None or scale not in other.scales or ref not in other.rows_for(scale) or ref.policy_of:
        raise GprlError(f"{m.path}: row {row.id}: policy_of {row.policy_of!r} is not a row of {path} at scale {scale!r} "
                        f"(that itself trains)")
    if not set(m.seeds_for(scale)) <= set(other.seeds_for(scale)):
        raise GprlError(f"{m.path}: row {row.id}: seeds {m.seeds_for(scale)} are not all run by {row.policy_of}")
    return other, ref


def overrides(m: Manifest, scale: str, row: Row, out_root: Path) -> list[str]:
    """A row's run.py overrides at ``scale``; a ``policy_of`` row adds ``benchmark.policy=`` the referenced row's
    sweep directory (task benchmark takes its run with the same seed, every iteration of a GPO/SPPO run)."""
    out = m.scales[scale].overrides + row.overrides
    if row.policy_of:
        other, ref = referenced(m, scale, row)
        out = out + [f"benchmark.policy={sweep_dir(other, scale, ref, out_root)}"]
    return out


def sweep_dir(m: Manifest, scale: str, row: Row, out_root: Path) -> Path:
    """Content-addressed: the same overrides give the same directory, so tables that share a configuration
    (Table 2's k=2..8 rows are Table 7's gate+L2 rows) share its runs, and finished runs are reused. A ``policy_of``
    row's key includes the referenced run's key (not its path, so moving ``--out`` changes nothing)."""
    parts = m.scales[scale].overrides + row.overrides
    if row.policy_of:
        other, ref = referenced(m, scale, row)
        parts = parts + [f"policy_of={sweep_dir(other, scale, ref, out_root).name}"]
    key = hashlib.sha1(" ".join(sorted(parts)).encode()).hexdigest()[:12]
    return out_root / "tables" / key


def command(m: Manifest, scale: str, row: Row, out_root: Path, launcher: str | None = None) -> list[str]:
    seeds = ",".join(str(s) for s in m.seeds_for(scale))
    cmd = [sys.executable, str(ROOT / "run.py"), "-m", *overrides(m, scale, row, out_root),
           f"seed={seeds}", f"logger.scale={scale}", f"hydra.sweep.dir={sweep_dir(m, scale, row, out_root)}"]
    return cmd + ([f"launcher={launcher}"] if launcher else [])


# launchers whose jobs wait in a cluster queue: a table's rows are submitted together (one multirun per row, each
# a submitit job array, all started at once) and collected when every one is done. Other launchers run the jobs in
# this machine's processes, so rows run one after another.
QUEUED_LAUNCHERS = ("slurm", "slurm_local")


def _prepare_row(m: Manifest, scale: str, row: Row, out_root: Path, launcher: str | None, at: str) -> list[str]:
    """A row's run.py command, its sweep directory made and ``row.json`` written, the command printed."""
    cmd = command(m, scale, row, out_root, launcher)
    d = sweep_dir(m, scale, row, out_root)
    d.mkdir(parents=True, exist_ok=True)
    (d / "row.json").write_text(json.dumps({"table": m.table, "row": row.id, "scale": scale, "command": cmd[1:]}) + "\n")
    print(f"[tables] table {m.table} ({scale}) row {at}: {' '.join(cmd[1:])}", flush=True)
    return cmd


def _run_row(m: Manifest, scale: str, row: Row, out_root: Path, launcher: str | None, at: str) -> None:
    if row.policy_of:  # the policies it benchmarks first (a finished run is found, not redone)
        other, ref = referenced(m, scale, row)
        _run_row(other, scale, ref, out_root, launcher, f"{at}, its policies: table {other.table} row {ref.id}")
    # always through run.py, even when every seed has results: it alone decides whether a finished run was made
    # with these settings (then it is shown, not redone) or with others (then it stops with one line)
    r = subprocess.run(_prepare_row(m, scale, row, out_root, launcher, at), cwd=ROOT)
    if r.returncode != 0:
        raise GprlError(f"row {row.id} failed (exit {r.returncode}); finished rows are kept, re-run to resume")


def _submit_together(m: Manifest, scale: str, rows: list[Row], out_root: Path, launcher: str) -> None:
    """Every row's multirun at once (a queued launcher: each submits its job array and waits on it), in two
    rounds when rows benchmark another row's policies (``policy_of``): those policies first. Each row's output goes
    to ``<sweep dir>/launch.log``; a failed row is reported with its log's end once all are done."""
    first: dict[Path, tuple[Manifest, Row, str]] = {}
    for n, row in enumerate(rows, 1):
        if row.policy_of:
            other, ref = referenced(m, scale, row)
            first.setdefault(sweep_dir(other, scale, ref, out_root),
                             (other, ref, f"{n}/{len(rows)} {row.id}, its policies: table {other.table} row {ref.id}"))
        else:
            first.setdefault(sweep_dir(m, scale, row, out_root), (m, row, f"{n}/{len(rows)} {row.id}"))
    second = [(m, row, f"{n}/{len(rows)} {row.id}") for n, row in enumerate(rows, 1) if row.policy_of]
    failed = []
    for batch in (list(first.values()), second):
        procs = []
        for mm, row, at in batch:
            cmd = _prepare_row(mm, scale, row, out_root, launcher, at)
            log = sweep_dir(mm, scale, row, out_root) / "launch.log"
            with log.open("w") as f:
                procs.append((row, log, subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)))
        if procs:
            print(f"[tables] {len(procs)} row(s) submitted together; each row's output: <its sweep dir>/launch.log",
                  flush=True)
        for row, log, p in procs:
            code = p.wait()
            print(f"[tables] row {row.id}: " + ("done" if code == 0 else f"failed (exit {code}), see {log}"),
                  flush=True)
            if code != 0:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                print("\n".join("    " + ln for ln in tail), flush=True)
                failed.append(row.id)
        if failed:
            raise GprlError(f"row(s) {', '.join(failed)} failed; finished rows are kept, re-run to resume")


def run(m: Manifest, scale: str, out_root: Path, launcher: str | None = None) -> None:
    rows = m.rows_for(scale)
    if launcher in QUEUED_LAUNCHERS:
        _submit_together(m, scale, rows, out_root, launcher)
        return
    for n, row in enumerate(rows, 1):
        _run_row(m, scale, row, out_root, launcher, f"{n}/{len(rows)} {row.id}")


# ---- collection -------------------------------------------------------------------------------------------

def _stats(xs: list[float]) -> tuple[float, float]:
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def _data_version(shared: Path) -> str:
    f = Path(os.environ.get("GPRL_SHARED_DATA", shared)) / "MANIFEST.json"
    return hashlib.sha256(f.read_bytes()).hexdigest()[:12] if f.exists() else "unknown"


def _benchmark_results(b: dict) -> list[dict]:
    """Every benchmark result in a run's ``benchmarks`` (``{name: result}``, or ``{iterN: {name: result}}``)."""
    return [r for v in b.values() if isinstance(v, dict)
            for r in ([v] if "benchmark" in v else _benchmark_results(v))]


def collect(m: Manifest, scale: str, out_root: Path, results_dir: Path, cmdline: str) -> tuple[Path, Path]:
    """Write ``results_dir/table{N}.csv`` and ``.md``; a row with no finished seed is listed as missing."""
    paper_key = m.scales[scale].paper
    rows = m.rows_for(scale)
    metrics = m.metrics_for(scale)
    ours: dict[str, dict[str, list[float]]] = {}
    evaluators, seeds_seen, commits = set(), {}, set()
    for row in rows:
        runs = sorted(sweep_dir(m, scale, row, out_root).glob("*/results.json"))
        ours[row.id] = {label: [] for label in metrics}
        seeds_seen[row.id] = []
        for f in runs:
            res = json.loads(f.read_text())
            seeds_seen[row.id].append(res.get("seed"))
            commits.add(res.get("git_commit", "not recorded"))
            for label, key in metrics.items():
                if row.metric_prefix + key in res.get("metrics", {}):
                    ours[row.id][label].append((1 if label in m.raw else 100) * res["metrics"][row.metric_prefix + key])
            for v in [*res.values(), *_benchmark_results(res.get("benchmarks", {}))]:
                if isinstance(v, dict) and "version" in v:
                    evaluators.add(v["version"])
    table = []
    for row in rows:
        paper = (row.paper or {}).get(paper_key, {}) if paper_key else {}
        base = next((r for r in rows if r.id == row.baseline), None)
        for label in metrics:
            vals = ours[row.id][label]
            mean, std = _stats(vals) if vals else (None, None)
            p = paper.get(label) if paper else None
            rec = {"row": row.label or row.id, "metric": label, "paper": p,
                   "ours_mean": None if mean is None else round(mean, 2), "ours_std": None if std is None else round(std, 2),
                   "delta": None if (mean is None or p is None) else round(mean - p, 2),
                   "seeds": " ".join(str(s) for s in sorted(seeds_seen[row.id])) or "missing"}
            if base is not None:
                bvals = ours[base.id][label]
                bpaper = (base.paper or {}).get(paper_key, {}).get(label) if paper_key else None
                rec["paper_gain"] = None if (p is None or bpaper is None) else round(p - bpaper, 2)
                rec["ours_gain"] = None if (not vals or not bvals) else round(mean - _stats(bvals)[0], 2)
            table.append(rec)
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = (f"table{m.table}" if m.table[:1].isdigit() else m.table) + ("" if scale == "offline" else f"_{scale}")
    cols = ["row", "metric", "paper", "ours_mean", "ours_std", "delta", "paper_gain", "ours_gain", "seeds"]
    csv_path, md_path = results_dir / f"{stem}.csv", results_dir / f"{stem}.md"
    with csv_path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for rec in table:
            w.writerow({c: rec.get(c) for c in cols})
    shared = (ROOT / ".." / "shared" / "data").resolve()
    fmt = lambda x, sign=False, d=1: "—" if x is None else (f"{x:+.{d}f}" if sign else f"{x:.{d}f}")  # noqa: E731
    lines = [f"# Table {m.table}: {m.title}", "",
             f"- scale: `{scale}`; paper numbers: {paper_key or 'none at this scale'} ({m.source})",
             f"- command: `{cmdline}`",
             f"- collected: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} at git commit {git_commit()}; "
             f"runs made at commit(s): {', '.join(sorted(commits)) or 'none'}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
             f"- data: ../shared/data MANIFEST.json sha256 {_data_version(shared)}; evaluators: "
             + (", ".join(sorted(evaluators)) or "pairwise accuracy (gprl.evaluate)"),
             ]
    if m.scales[scale].note:
        lines += ["", m.scales[scale].note.strip()]
    lines += ["", "| row | metric | paper | ours (mean ± std) | Δ vs paper | gain over baseline: paper | ours | seeds |",
              "|---|---|---|---|---|---|---|---|"]
    for rec in table:
        n_seeds = len(rec["seeds"].split()) if rec["seeds"] != "missing" else 0
        d = 2 if rec["metric"] in m.raw else 1  # raw scores (MT-Bench's 1-10) keep the paper's two decimals
        ours_s = (("missing" if not n_seeds else "not measured") if rec["ours_mean"] is None
                  else f"{rec['ours_mean']:.{d}f}" if n_seeds < 2
                  else f"{rec['ours_mean']:.{d}f} ± {rec['ours_std']:.{d}f}")
        lines.append(f"| {rec['row']} | {rec['metric']} | {fmt(rec['paper'], d=d)} | {ours_s} | {fmt(rec['delta'], True, d)} | "
                     f"{fmt(rec.get('paper_gain'), True, d)} | {fmt(rec.get('ours_gain'), True, d)} | {rec['seeds']} |")
    md_path.write_text("\n".join(lines) + "\n")
    print(md_path.read_text())
    return csv_path, md_path


def summarize(sweep: Path, out: Path, cmdline: str) -> Path:
    """A sweep's runs grouped by their overrides other than ``seed``: accuracy per eval set (mean ± std over
    seeds) beside the "longer wins" baseline, as markdown."""
    import re

    groups: dict[str, list[dict]] = {}
    for f in sorted(sweep.glob("*/results.json")):
        key = re.sub(r"(^|,)seed=\d+", "", f.parent.name).strip(",") or "default"
        groups.setdefault(key, []).append(json.loads(f.read_text()))
    if not groups:
        raise GprlError(f"no finished runs (results.json) under {sweep}")
    lines = [f"# Runs in `{sweep.name}`", "", f"- command: `{cmdline}`",
             f"- collected: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; git commit: {git_commit()}",
             "- accuracy of s(chosen > rejected) > 0 in %, mean ± std over seeds; 'longer wins' = the length baseline", ""]
    for key, runs in groups.items():
        lines += [f"## {key} (seeds {' '.join(str(r['seed']) for r in runs)})", "",
                  "| set | n | accuracy | longer wins |", "|---|---|---|---|"]
        names = [r["set"] for r in runs[0]["sets"]]
        for name in names:
            rows = [next(x for x in r["sets"] if x["set"] == name) for r in runs]
            subs = list(rows[0].get("per_subset", {}))
            for label, get in [(name, lambda x: x)] + [(f"&nbsp;&nbsp;{s}", lambda x, s=s: x["per_subset"][s]) for s in subs]:
                acc = [100 * get(x)["accuracy"] for x in rows]
                m, sd = _stats(acc)
                lines.append(f"| {label} | {get(rows[0])['n']} | {m:.1f}" + (f" ± {sd:.1f}" if len(acc) > 1 else "")
                             + f" | {100 * get(rows[0])['longer_wins']:.1f} |")
        lines.append("")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(out.read_text())
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m gprl.tables", description="Run and collect paper-table manifests.")
    ap.add_argument("action", choices=["run", "collect", "list", "summarize"])
    ap.add_argument("manifest", help="a table manifest (run, collect, list) or a sweep directory (summarize)")
    ap.add_argument("--cmd", default="", help="summarize: the command that made the sweep, for the record")
    ap.add_argument("--scale", default="offline", help="a scale named in the manifest (offline, smoke, cluster_...)")
    ap.add_argument("--launcher", default=None, help="conf/launcher option for the sweeps (local, submitit_local, slurm, "
                    "slurm_local); with slurm and slurm_local every row is submitted at once")
    ap.add_argument("--out", default=str(ROOT / "multirun"), help="root of the run directories")
    ap.add_argument("--results", default=str(ROOT / "results"), help="where tableN.{csv,md} go")
    args = ap.parse_args(argv)
    try:
        if args.action == "summarize":
            summarize(Path(args.manifest), Path(args.results) / f"{Path(args.manifest).name}.md", args.cmd)
            return
        m = Manifest.load(args.manifest)
        out = Path(args.out)
        if args.action == "list":
            for row in m.rows_for(args.scale):
                print(f"{row.id}: {' '.join(command(m, args.scale, row, out, args.launcher)[1:])}")
            return
        if args.action == "run":
            run(m, args.scale, out, args.launcher)
        cmdline = f"python -m gprl.tables run {args.manifest} --scale {args.scale}"
        collect(m, args.scale, out, Path(args.results), cmdline)
    except GprlError as e:
        print(f"gprl: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
