"""How well an offline judge ranks the AlpacaEval 2.0 leaderboard.

For every shipped model that is on the official AlpacaEval 2.0 leaderboard (GPT-4-turbo annotator), the judge
compares the model's outputs on the 161 test-split instructions with the reference ``gpt4_1106_preview``
(output_1 = reference, output_2 = model: AlpacaEval's convention), the package computes win rate (WR) and
length-controlled win rate (LC) from those preferences, and the ranking is compared with the official one by
Spearman and Kendall. Beside the judge, the same pipeline runs "the longer answer wins" and the official
GPT-4-turbo annotations restricted to the same 161 instructions (the upper bound that 161 instructions allow).

    python -m evaluation.judge_agreement --judge outputs/alpaca_judge/default/model [--also DIR ...]

Writes ``results/judge_agreement.{csv,md}``. Judge embeddings are cached per (judge, model) under
``.cache/gprl/judge_agreement/``, so a re-run only recomputes the metrics.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from gprl import GprlError
from evaluation.alpaca_eval2 import shipped_outputs

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "gpt4_1106_preview"
ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
LEADERBOARD = f"alpaca_eval/leaderboards/data_AlpacaEval_2/{ANNOTATOR}_leaderboard.csv"
ANNOTATIONS = f"alpaca_eval/annotations_slim/{ANNOTATOR}.jsonl.gz"
INSTRUCTIONS = "alpaca_eval/alpaca_eval_instructions.jsonl"
OUTPUTS = "alpaca_eval/model_outputs"

Preferences = list[Optional[float]]  # AlpacaEval format per instruction: 1 = output_1 better, 2 = output_2; None = none


# ---- the benchmark: instructions, outputs, official leaderboard ---------------------------------------------

@dataclass
class Bench:
    rows: list[dict]  # test-split instructions: idx, dataset, instruction (file order)
    outputs: dict[str, list[str]]  # model (file name) -> outputs aligned with rows; includes REFERENCE
    official: dict[str, dict]  # model -> {"name", "lc", "wr"} from the official leaderboard
    annotations: dict[str, Preferences] = field(default_factory=dict)  # official GPT-4-turbo prefs on rows, if any
    shared: Optional[Path] = None  # the shipped data folder (LC's offline reconstruction reads it)

    @property
    def models(self) -> list[str]:
        """Leaderboard models with shipped outputs, best official LC first (the reference among them)."""
        return sorted(self.official, key=lambda m: -self.official[m]["lc"])


def _need(shared: Path, rel: str) -> Path:
    p = shared / rel
    if not p.exists():
        raise GprlError(f"missing data file {p} (pass --shared-data DIR or set GPRL_SHARED_DATA)")
    return p


def leaderboard(path: Path) -> dict[str, dict]:
    """model key -> official LC/WR. The key is the model's results directory (its ``samples`` link), which is the
    name of its file in ``model_outputs/``; display names differ."""
    out = {}
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            link = r.get("samples") or ""
            if "/results/" in link:
                key = link.split("/results/")[1].split("/")[0]
                out[key] = {"name": r["name"], "lc": float(r["length_controlled_winrate"]),
                            "wr": float(r["win_rate"])}
    return out


def load_bench(shared: Path, split: str = "test") -> Bench:
    from gprl.data.sources import alpaca_split

    keep = alpaca_split()[split]
    rows = [r for r in map(json.loads, _need(shared, INSTRUCTIONS).read_text().splitlines()) if r["idx"] in keep]
    board = leaderboard(_need(shared, LEADERBOARD))
    out_dir = _need(shared, OUTPUTS)
    _need(shared, f"{OUTPUTS}/{REFERENCE}.json.gz")
    outputs, official = {}, {}
    for key in sorted(board):
        f = out_dir / f"{key}.json.gz"
        if f.exists():
            table = shipped_outputs(shared, str(f))
            outputs[key] = [table.get(r["instruction"], "") for r in rows]  # a missing answer is empty
            official[key] = board[key]
    bench = Bench(rows, outputs, official, shared=shared)
    bench.annotations = official_preferences(_need(shared, ANNOTATIONS), bench)
    return bench


def official_preferences(path: Path, bench: Bench) -> dict[str, Preferences]:
    """The shipped GPT-4-turbo annotations of each model against the reference on the bench's instructions (models
    without annotations are absent; a null preference stays None; duplicated rows: the first)."""
    pos = {r["instruction"]: i for i, r in enumerate(bench.rows)}
    out: dict[str, Preferences] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            g, i = r["generator_2"], pos.get(r["instruction"])
            if i is None or g not in bench.official or r["generator_1"] != REFERENCE:
                continue
            prefs = out.setdefault(g, [math.nan] * len(bench.rows))
            if isinstance(prefs[i], float) and math.isnan(prefs[i]):  # first row wins
                prefs[i] = None if r.get("preference") is None else float(r["preference"])
    return {g: [None if isinstance(p, float) and math.isnan(p) else p for p in v] for g, v in out.items()}


def longer_wins(reference: list[str], outputs: list[str]) -> Preferences:
    """The length baseline: 2 if the model's output is longer (characters) than the reference's, 1 if shorter."""
    return [2.0 if len(b) > len(a) else 1.0 if len(b) < len(a) else 1.5 for a, b in zip(reference, outputs)]


# ---- the judge: gprl reward model, embeddings cached per (judge, model) -------------------------------------

class JudgeScorer:
    """``1 + P(model > reference)`` per instruction, as ``evaluation.judges.reward_model.preferences`` computes it,
    but with each (instruction, output) embedded once and cached: the reference is embedded once per judge."""

    def __init__(self, path: Path, cache: Path, batch_size: int = 32):
        from evaluation.judges.reward_model import load

        if not (path / "gpm_config.json").exists():
            raise GprlError(f"{path} is not a trained gprl reward model (no gpm_config.json)")
        self.path, self.batch_size = path, batch_size
        self.model = load(path)
        self.dir = cache / "judge_agreement" / _dir_hash(path)
        self.wall_s = 0.0  # seconds spent embedding (not cached)

    def embed(self, name: str, prompts: list[str], responses: list[str]):
        import torch
        from tqdm.auto import tqdm

        f = self.dir / f"{name}-{_text_hash(prompts, responses)}.pt"
        if f.exists():
            return torch.load(f)
        t0 = time.time()
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))  # less padding
        v, lam = [None] * len(order), [None] * len(order)
        for s in tqdm(range(0, len(order), self.batch_size), desc=f"embed {name}", unit="batch", leave=False):
            idx = order[s:s + self.batch_size]
            bv, blam = self.model.embed([prompts[i] for i in idx], [responses[i] for i in idx], len(idx))
            for n, i in enumerate(idx):
                v[i], lam[i] = bv[n], None if blam is None else blam[n]
        out = (torch.stack(v), None if lam[0] is None else torch.stack(lam))
        self.dir.mkdir(parents=True, exist_ok=True)
        torch.save(out, f.with_suffix(".tmp"))
        os.replace(f.with_suffix(".tmp"), f)
        self.wall_s += time.time() - t0
        return out

    def __call__(self, name: str, prompts: list[str], reference: list[str], outputs: list[str]) -> Preferences:
        import torch

        from gprl.models.score import pair_scores

        v_ref, _ = self.embed(REFERENCE, prompts, reference)
        v, lam = self.embed(name, prompts, outputs)
        s = pair_scores(v, v_ref, lam)  # s(output_2 > output_1); the gate reads the output_2 rows, as preferences()
        return (1.0 + torch.sigmoid(s.float() / self.model.spec.tau)).tolist()


def _dir_hash(path: Path) -> str:
    """What the embeddings depend on: weights and head settings, not the temperature (calibration rewrites it)."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix != ".json"):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    spec = {k: v for k, v in json.loads((path / "gpm_config.json").read_text()).items() if k != "tau"}
    h.update(json.dumps(spec, sort_keys=True).encode())
    return h.hexdigest()[:12]


def _text_hash(prompts: list[str], responses: list[str]) -> str:
    return hashlib.sha256(json.dumps([prompts, responses]).encode()).hexdigest()[:12]


# ---- metrics and rank agreement -------------------------------------------------------------------------------

def annotations(bench: Bench, model: str, prefs: Preferences, annotator: str) -> list[dict]:
    """AlpacaEval-format annotation rows (output_1 = reference) for one model."""
    ref = bench.outputs[REFERENCE]
    return [{"instruction": r["instruction"], "dataset": r["dataset"], "index": r["idx"], "output_1": ref[i],
             "output_2": bench.outputs[model][i], "generator_1": REFERENCE, "generator_2": model,
             "annotator": annotator, "preference": p} for i, (r, p) in enumerate(zip(bench.rows, prefs))]


def package_metrics(rows: list[dict], shared: Optional[Path]) -> tuple[float, float, str]:
    """(WR, LC, where LC's Hub-only inputs came from) by the alpaca_eval package through ``evaluation.alpaca_lc``.
    The package takes the row index as the instruction id, so rows are indexed by their AlpacaEval ``idx``."""
    import pandas as pd

    from evaluation.alpaca_lc import length_controlled_winrate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn's deprecations inside the package's GLM
        m = length_controlled_winrate(pd.DataFrame(rows).set_index("index"), shared_data=shared)
    return float(m["win_rate"]), float(m["length_controlled_winrate"]), str(m.get("lc_source"))


def rank_agreement(ours: list[float], official: list[float]) -> dict[str, float]:
    """Spearman and Kendall (tau-b) of two score lists over the entries where both are finite."""
    from scipy.stats import kendalltau, spearmanr

    pairs = [(a, b) for a, b in zip(ours, official) if a is not None and b is not None
             and math.isfinite(a) and math.isfinite(b)]
    if len(pairs) < 3:
        return {"spearman": math.nan, "kendall": math.nan, "n": len(pairs)}
    x, y = zip(*pairs)
    return {"spearman": float(spearmanr(x, y).statistic), "kendall": float(kendalltau(x, y).statistic),
            "n": len(pairs)}


Method = Callable[[str], Optional[Preferences]]  # model -> preferences on the bench rows (None: not available)


def collect(bench: Bench, methods: dict[str, Method]) -> list[dict]:
    """One row per leaderboard model: official LC/WR, then ``<method>_lc``, ``<method>_wr``, ``<method>_n`` per
    method. The reference against itself is a tie on every instruction by construction (LC = WR = 50)."""
    from tqdm.auto import tqdm

    table = []
    for m in tqdm(bench.models, desc="models", unit="model"):
        outs = bench.outputs[m]
        row = {"model": m, "official_lc": bench.official[m]["lc"], "official_wr": bench.official[m]["wr"],
               "avg_length": sum(map(len, outs)) / len(outs)}
        for name, method in methods.items():
            prefs = [1.5] * len(outs) if m == REFERENCE else method(m)
            if prefs is None:
                row.update({f"{name}_lc": math.nan, f"{name}_wr": math.nan, f"{name}_n": 0})
                continue
            wr, lc, row["lc_source"] = package_metrics(annotations(bench, m, prefs, name), bench.shared)
            row.update({f"{name}_lc": lc, f"{name}_wr": wr, f"{name}_n": sum(p is not None for p in prefs)})
        table.append(row)
    return table


def agreement(table: list[dict], method: str, models: Optional[set[str]] = None) -> dict[str, dict]:
    """LC vs official LC and WR vs official WR for one method, over ``models`` (default: all rows)."""
    rows = [r for r in table if models is None or r["model"] in models]
    return {k: rank_agreement([r[f"{method}_{k}"] for r in rows], [r[f"official_{k}"] for r in rows])
            for k in ("lc", "wr")}


def pair_accuracy(bench: Bench, prefs: dict[str, Preferences]) -> tuple[float, int]:
    """How often a method picks the same side as the official annotation (official ties and nulls skipped)."""
    hits = n = 0
    for m, off in bench.annotations.items():
        if m == REFERENCE or m not in prefs:
            continue
        for p, o in zip(prefs[m], off):
            if o is None or p is None or o == 1.5:
                continue
            n += 1
            hits += (p > 1.5) == (o > 1.5)
    return (hits / n if n else math.nan), n


# ---- report ---------------------------------------------------------------------------------------------------

CSV_FIELDS = ["model", "official_lc", "official_wr", "ours_lc", "ours_wr", "n", "avg_length",
              "longer_lc", "longer_wr", "gpt4t161_lc", "gpt4t161_wr", "gpt4t161_n"]
LABELS = {"ours": "offline judge", "longer": "longer answer wins",
          "gpt4t161": "official GPT-4-turbo annotations, 161 test instructions"}


def write_csv(table: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in table:
            w.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in {**r, "n": r["ours_n"]}.items()})


def judge_info(path: Path) -> dict:
    """What a judge directory says about itself: head settings, training summary, held-out accuracy, overrides."""
    def read(p: Path):
        return json.loads(p.read_text()) if p.exists() else {}

    res = read(path.parent / "results.json")
    held = {s["set"]: s for s in res.get("sets", [])}
    return {"config": read(path / "gpm_config.json"), "train": read(path / "train_summary.json"), "heldout": held,
            "calibration": read(path / "calibration.json")}


def _f(x: float, d: int = 3) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{d}f}"


def agreement_lines(table: list[dict], methods: list[str], labels: dict[str, str]) -> list[str]:
    annotated = {r["model"] for r in table if r.get("gpt4t161_n")}
    lines = ["| method | models | Spearman LC | Kendall LC | Spearman WR | Kendall WR |", "|---|---|---|---|---|---|"]
    for subset, models in (("all", None), ("annotated", annotated)):
        for m in methods:
            a = agreement(table, m, models)
            if a["wr"]["n"] and not (m == "gpt4t161" and subset == "all"):  # the upper bound: annotated models only
                lines.append(f"| {labels.get(m, m)} | {a['wr']['n']} ({subset}) | {_f(a['lc']['spearman'])} | "
                             f"{_f(a['lc']['kendall'])} | {_f(a['wr']['spearman'])} | {_f(a['wr']['kendall'])} |")
    return lines


def write_md(path: Path, table: list[dict], judges: dict[str, dict], accuracy: dict[str, tuple[float, int]],
             labels: dict[str, str], command: str, wall: dict[str, float]) -> None:
    from gprl.provenance import git_commit

    methods = [m for m in labels if f"{m}_wr" in table[0]]
    L = ["# Offline judge vs the official AlpacaEval 2.0 leaderboard", "",
         f"`{command}` — {time.strftime('%Y-%m-%d %H:%M')}, git `{git_commit()}`.", "",
         f"{len(table)} shipped models on the official leaderboard ({ANNOTATOR}), the reference `{REFERENCE}` "
         "among them at LC = WR = 50 by construction (against itself every instruction is a tie). Each model's "
         "outputs on the 161 test-split instructions (never seen in training) are judged against the reference's "
         "(output_1 = reference, output_2 = model); WR and LC are the alpaca_eval package's, computed per model "
         "from those 161 preferences (LC: `evaluation.alpaca_lc`, its Hub-only inputs from: "
         f"{table[-1].get('lc_source')}). "
         "\"annotated\": the models that also have shipped official annotations, where the upper bound is "
         "defined.", "",
         "## Rank agreement with the official leaderboard", "", *agreement_lines(table, methods, labels), "",
         "## The judges", ""]
    for m, info in judges.items():
        c, t, h, cal = info["config"], info["train"], info["heldout"], info["calibration"]
        acc, n = accuracy.get(m, (math.nan, 0))
        tau = (f"tau {c.get('tau'):.4g} (fitted on {cal['pairs']} train-split reference/model pairs, "
               f"{cal['instructions']} instructions; trained with {cal['tau_before']:.4g})" if cal
               else f"tau {c.get('tau')} (as trained)")
        L.append(f"- **{labels[m]}** (`{info['path']}`): k={c.get('k')} ({'BT' if c.get('k') == 1 else 'GPM'}), "
                 f"{tau}, backbone `{c.get('backbone')}`, max_length {c.get('max_length')}; "
                 f"{t.get('pairs', '?')} training pairs, "
                 f"{_f(t.get('wall_s', math.nan), 0)} s of training. Agreement with GPT-4-turbo on the annotated "
                 f"test pairs (model vs reference): {_f(acc)} (n={n})"
                 + "".join(f"; {k} accuracy {_f(v['accuracy'])} (longer wins {_f(v['longer_wins'])}, n={v['n']})"
                           for k, v in h.items())
                 + f". Scoring wall time this run: {_f(wall.get(m, 0.0), 0)} s (0 = cached).")
    if "longer" in accuracy:
        L.append(f"- longer answer wins: agreement with GPT-4-turbo on the same test pairs {_f(accuracy['longer'][0])}"
                 f" (n={accuracy['longer'][1]}).")
    notes = path.with_name(path.stem + ".notes.md")
    if notes.exists():  # hand-written: how the judge is made, what was tried, the reading (kept across re-runs)
        L += ["", notes.read_text().rstrip()]
    L += ["", "## Per model", "", "Rows in official LC order; avg length: mean characters of the 161 test outputs.", "",
          "| model | official LC | official WR | ours LC | ours WR | longer LC | GPT-4-t 161 LC | avg length |",
          "|---|---|---|---|---|---|---|---|"]
    for r in table:
        cells = [r[k] for k in ("official_lc", "official_wr", "ours_lc", "ours_wr", "longer_lc", "gpt4t161_lc")]
        L.append(f"| {r['model']} | " + " | ".join(_f(x, 1) for x in cells) + f" | {r['avg_length']:.0f} |")
    path.write_text("\n".join(L) + "\n")


# ---- command line -----------------------------------------------------------------------------------------------

def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.judge_agreement", description=__doc__.split("\n\n")[0])
    ap.add_argument("--judge", required=True, type=Path, help="a trained gprl reward model directory")
    ap.add_argument("--also", nargs="*", type=Path, default=[], help="other judges to compare (named by run directory)")
    ap.add_argument("--shared-data", type=Path,
                    default=Path(os.environ.get("GPRL_SHARED_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "gprl")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "judge_agreement.csv")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # LC's Hub files: the local cache, else the offline reconstruction
    try:
        for p in [args.judge, *args.also]:
            if not p.is_dir():
                raise GprlError(f"judge directory {p} does not exist")
        bench = load_bench(args.shared_data)
        prompts, ref = [r["instruction"] for r in bench.rows], bench.outputs[REFERENCE]
        scorers = {"ours": JudgeScorer(args.judge, args.cache, args.batch_size)}
        scorers.update({f"judge{i + 2}": JudgeScorer(p, args.cache, args.batch_size)
                        for i, p in enumerate(args.also)})
        cache: dict[str, dict[str, Preferences]] = {k: {} for k in scorers}

        def judged(key: str) -> Method:
            def method(m: str) -> Preferences:
                cache[key][m] = scorers[key](m, prompts, ref, bench.outputs[m])
                return cache[key][m]
            return method

        methods: dict[str, Method] = {k: judged(k) for k in scorers}
        methods["longer"] = lambda m: longer_wins(ref, bench.outputs[m])
        methods["gpt4t161"] = lambda m: bench.annotations.get(m)
        table = collect(bench, methods)
    except GprlError as e:
        print(f"gprl: error: {e}", file=sys.stderr)
        return 2
    labels = {**LABELS, **{k: f"judge `{s.path.parent.name}`" for k, s in scorers.items() if k != "ours"}}
    order = ["ours", *[k for k in scorers if k != "ours"], "longer", "gpt4t161"]
    labels = {k: labels[k] for k in order}
    write_csv(table, args.out)
    judges = {k: {**judge_info(s.path), "path": str(s.path)} for k, s in scorers.items()}
    accuracy = {k: pair_accuracy(bench, v) for k, v in cache.items()}
    accuracy["longer"] = pair_accuracy(bench, {m: longer_wins(ref, bench.outputs[m]) for m in bench.annotations})
    command = "python -m evaluation.judge_agreement " + " ".join(sys.argv[1:] if argv is None else argv)
    write_md(args.out.with_suffix(".md"), table, judges, accuracy, labels, command,
             {k: s.wall_s for k, s in scorers.items()})
    print("\n".join(agreement_lines(table, list(labels), labels)))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
