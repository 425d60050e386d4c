"""evaluation.judge_agreement on tiny inputs: rank agreement, the per-model collection (reference handled, missing
methods), the cached judge scorer against evaluation.judges.reward_model.preferences, and the command line."""

import csv
import gzip
import json
import math

import pytest

from evaluation import judge_agreement as ja
from gprl.data.sources import alpaca_split


def test_rank_agreement_orders_and_skips_missing():
    up = ja.rank_agreement([1, 2, 3, 4], [10, 20, 30, 40])
    assert up["spearman"] == pytest.approx(1) and up["kendall"] == pytest.approx(1) and up["n"] == 4
    down = ja.rank_agreement([4, 3, 2, 1, math.nan], [10, 20, 30, 40, 50])
    assert down["spearman"] == pytest.approx(-1) and down["n"] == 4
    assert math.isnan(ja.rank_agreement([1, None], [1, 2])["spearman"])


def tiny_bench() -> ja.Bench:
    rows = [{"idx": i, "dataset": "d", "instruction": f"question {i}?"} for i in range(4)]
    ref = ["a reference answer of middling length"] * 4
    outputs = {ja.REFERENCE: ref, "long": ["x" * 80] * 4, "short": ["y"] * 4,
               "mixed": ["z" * 80, "z", "z" * 80, "z" * 80]}
    official = {ja.REFERENCE: {"name": "GPT-4", "lc": 50.0, "wr": 50.0}, "long": {"name": "L", "lc": 60.0, "wr": 70.0},
                "short": {"name": "S", "lc": 5.0, "wr": 2.0}, "mixed": {"name": "M", "lc": 55.0, "wr": 60.0}}
    return ja.Bench(rows, outputs, official, annotations={"long": [2.0, 2.0, 1.5, None]})


def test_collect_handles_reference_and_missing_annotations(monkeypatch):
    monkeypatch.setattr(ja, "package_metrics", lambda rows, shared: (
        100 * sum(r["preference"] - 1 for r in rows if r["preference"] is not None)
        / sum(r["preference"] is not None for r in rows), math.nan, "test"))
    b = tiny_bench()
    ref = b.outputs[ja.REFERENCE]
    table = ja.collect(b, {"longer": lambda m: ja.longer_wins(ref, b.outputs[m]),
                           "gpt4t161": lambda m: b.annotations.get(m)})
    by = {r["model"]: r for r in table}
    assert [r["model"] for r in table] == ["long", "mixed", ja.REFERENCE, "short"]  # official LC order
    assert by[ja.REFERENCE]["longer_wr"] == 50 and by[ja.REFERENCE]["gpt4t161_n"] == 4  # a tie with itself
    assert by["long"]["longer_wr"] == 100 and by["short"]["longer_wr"] == 0 and by["mixed"]["longer_wr"] == 75
    assert by["long"]["gpt4t161_wr"] == pytest.approx(100 * 2.5 / 3) and by["long"]["gpt4t161_n"] == 3
    assert by["short"]["gpt4t161_n"] == 0 and math.isnan(by["short"]["gpt4t161_wr"])
    assert ja.agreement(table, "longer")["wr"]["spearman"] == pytest.approx(1)
    assert ja.agreement(table, "gpt4t161")["wr"]["n"] == 2  # only the annotated rows count
    rows = ja.annotations(b, "long", [2.0] * 4, "t")
    assert rows[0]["output_1"] == ref[0] and rows[0]["output_2"] == "x" * 80 and rows[0]["generator_1"] == ja.REFERENCE


@pytest.fixture(scope="module")
def gpm_judge(tmp_path_factory, tiny_encoder):
    import torch

    from gprl.models import GeneralPreferenceModel, RewardModelSpec

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("gpm_judge")
    GeneralPreferenceModel.from_backbone(tiny_encoder, RewardModelSpec(k=4, max_length=64)).save_pretrained(d)
    return d


def test_cached_scorer_matches_the_judge_interface(gpm_judge, tmp_path):
    from evaluation.judges.reward_model import load, preferences

    b = tiny_bench()
    prompts, ref = [r["instruction"] for r in b.rows], b.outputs[ja.REFERENCE]
    scorer = ja.JudgeScorer(gpm_judge, tmp_path, batch_size=3)
    for m in ("long", "mixed"):
        want = preferences(load(gpm_judge), prompts, ref, b.outputs[m])
        assert scorer(m, prompts, ref, b.outputs[m]) == pytest.approx(want, abs=1e-5)
    assert len(list((tmp_path / "judge_agreement").rglob("*.pt"))) == 3  # the reference embedded once
    spent = scorer.wall_s
    scorer("long", prompts, ref, b.outputs["long"])
    assert scorer.wall_s == spent  # served from the cache


def write_shared(root, n_models: int = 3):
    """A tiny shared-data folder in the shipped layout: 3 test-split instructions, the reference and n models."""
    ae = root / "alpaca_eval"
    (ae / "model_outputs").mkdir(parents=True)
    (ae / "annotations_slim").mkdir()
    (ae / "leaderboards" / "data_AlpacaEval_2").mkdir(parents=True)
    idx = sorted(alpaca_split()["test"])[:3]
    instr = [{"idx": i, "dataset": "d", "instruction": f"question {i}?"} for i in idx]
    (ae / "alpaca_eval_instructions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in instr))
    models = [ja.REFERENCE] + [f"m{j}" for j in range(n_models)]
    for j, m in enumerate(models):
        rows = [{"instruction": r["instruction"], "output": "answer " * (j + 1), "generator": m} for r in instr]
        with gzip.open(ae / "model_outputs" / f"{m}.json.gz", "wt") as f:
            json.dump(rows, f)
    with gzip.open(root / ja.ANNOTATIONS, "wt") as f:
        for r in instr:
            f.write(json.dumps({"instruction": r["instruction"], "generator_1": ja.REFERENCE, "generator_2": "m0",
                                "preference": 1.2}) + "\n")
    with (root / ja.LEADERBOARD).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "length_controlled_winrate", "win_rate", "avg_length", "link", "samples", "filter"])
        for j, m in enumerate(models):
            w.writerow([m.upper(), 50 if m == ja.REFERENCE else 10 * j, 50 if m == ja.REFERENCE else 9 * j, 100, "",
                        f"https://github.com/tatsu-lab/alpaca_eval/blob/main/results/{m}/model_outputs.json", "x"])
        w.writerow(["Not shipped", 1, 1, 1, "", "https://x/results/absent/model_outputs.json", "x"])


def test_command_line_writes_csv_and_md(gpm_judge, tmp_path, monkeypatch):
    monkeypatch.setattr(ja, "package_metrics", lambda rows, shared: (
        100 * sum(r["preference"] - 1 for r in rows) / len(rows), math.nan, "test"))
    write_shared(tmp_path / "shared")
    out = tmp_path / "res" / "agree.csv"
    assert ja.main(["--judge", str(gpm_judge), "--shared-data", str(tmp_path / "shared"),
                    "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["model"] for r in rows] == ["gpt4_1106_preview", "m2", "m1", "m0"]
    assert rows[0]["ours_wr"] == "50.0" and rows[-1]["gpt4t161_wr"] == "20.0" and rows[-1]["n"] == "3"
    assert float(rows[1]["longer_wr"]) == 100.0
    md = out.with_suffix(".md").read_text()
    assert "| offline judge | 4 (all) |" in md and "Spearman LC" in md


def test_missing_files_fail_with_one_line(tmp_path, gpm_judge, capsys):
    assert ja.main(["--judge", str(gpm_judge), "--shared-data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gprl: error: missing data file")
    assert ja.main(["--judge", str(tmp_path / "none"), "--shared-data", str(tmp_path)]) == 2


def test_calibration_recovers_a_known_temperature():
    import torch

    from evaluation.judge_calibration import cross_entropy, fit_tau

    torch.manual_seed(0)
    s = torch.randn(4000) * 0.5
    targets = torch.sigmoid(s / 0.1).tolist()  # soft labels made with tau = 0.1
    tau, ce = fit_tau(s.tolist(), targets)
    assert tau == pytest.approx(0.1, rel=1e-3)
    assert ce <= cross_entropy(s.tolist(), targets, 1.0)
