"""Paper-table manifests: every row composes at every scale; the runner and collector work end to end;
the cyclic datasets are 3-cycles; RewardBench section scoring matches hand-computed values."""

import csv
import json
import random

import pytest
import yaml

from gprl.config import SourceConfig
from gprl.data import DataContext, load_source
from gprl.data.cyclic import RMB_ASPECTS, UF_ASPECTS, find_cycle
from gprl.tables import Manifest, collect, overrides, run, sweep_dir
from tests.helpers import ROOT, run_config, tiny_overrides

MANIFESTS = sorted((ROOT / "experiments").glob("*.yaml"))
CTX = DataContext((ROOT / ".." / "shared" / "data").resolve(), ROOT)


def cases():
    for path in MANIFESTS:
        m = Manifest.load(path)
        for scale in m.scales:
            for row in m.rows_for(scale):
                yield pytest.param(path, scale, row.id, id=f"{path.stem}-{scale}-{row.id}")


@pytest.mark.parametrize("path, scale, row_id", list(cases()))
def test_every_manifest_row_composes(path, scale, row_id):
    m = Manifest.load(path)
    row = next(r for r in m.rows if r.id == row_id)
    o = [o for o in overrides(m, scale, row, ROOT / "multirun") if not o.startswith("hydra.")]
    cfg = run_config(o + [f"seed={m.seeds_for(scale)[0]}"])
    keys = set(m.metrics_for(scale).values())
    read = {k.split("/")[0] for k in keys if k.startswith(("alpaca_eval2/", "lm_harness/", "mt_bench/", "arena_hard/", "wildbench/"))}
    if read:  # a policy table: every row must produce the benchmark it reads
        asked = cfg.benchmark.names if cfg.task == "benchmark" else cfg.policy_eval.benchmarks
        assert cfg.task in ("benchmark", "train_po", "train_rl") and set(asked) == read
        # iteration rows read iter<N>/ of a PO run, or of a benchmark run over one (policy_of: its sweep directory)
        assert (row.metric_prefix == "") == (cfg.task in ("benchmark", "train_rl") and not row.policy_of)
    else:
        assert cfg.task == "train_rm"
    labels = set(m.metrics_for(scale))
    for paper in (row.paper or {}).values():
        assert set(paper) <= labels


def test_manifests_cover_the_paper_tables():
    t2 = Manifest.load(ROOT / "experiments" / "table2.yaml")
    assert [r.id for r in t2.rows] == ["k1", "k2", "k4", "k6", "k8"]
    assert t2.rows[-1].paper["gemma"]["Average"] == 74.5 and t2.rows[0].paper["llama"]["Average"] == 91.1
    t7 = Manifest.load(ROOT / "experiments" / "table7.yaml")
    assert len(t7.rows) == 16
    t1 = Manifest.load(ROOT / "experiments" / "table1.yaml")
    assert len(t1.rows_for("offline")) == 8 and len(t1.rows_for("cluster_gemma")) == 8


def test_runner_and_collector_end_to_end(tiny_encoder, pairs_file, tmp_path):
    manifest = {
        "table": "99", "title": "tiny", "source": "test", "metrics": {"acc": "pairs/accuracy"}, "seeds": [0, 1],
        "scales": {"tiny": {"overrides": [o for o in tiny_overrides(tiny_encoder, pairs_file) if "hydra" not in o],
                            "paper": "p"}},
        "rows": [{"id": "k1", "overrides": ["k=1"], "paper": {"p": {"acc": 50.0}}},
                 {"id": "k2", "overrides": ["k=2"], "baseline": "k1", "paper": {"p": {"acc": 60.0}}}],
    }
    path = tmp_path / "table99.yaml"
    path.write_text(yaml.safe_dump(manifest))
    m = Manifest.load(path)
    run(m, "tiny", tmp_path / "runs")
    csv_path, md_path = collect(m, "tiny", tmp_path / "runs", tmp_path / "results", "test")
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["row"] for r in rows] == ["k1", "k2"]
    assert all(r["seeds"] == "0 1" for r in rows)
    k2 = rows[1]
    assert float(k2["paper"]) == 60.0 and float(k2["paper_gain"]) == 10.0
    from gprl.tables import sweep_dir

    k2_dir = sweep_dir(m, "tiny", m.rows[1], tmp_path / "runs")
    res = [json.loads(p.read_text())["metrics"]["pairs/accuracy"] for p in k2_dir.glob("*/results.json")]
    assert len(res) == 2
    assert float(k2["ours_mean"]) == pytest.approx(100 * sum(res) / 2, abs=0.01)
    md = md_path.read_text()
    assert "runs made at commit" in md and "| k2 | acc | 60.0 |" in md


@pytest.mark.parametrize("variant", RMB_ASPECTS)
def test_offline_cyclic_sets_are_pure_three_cycles(variant):
    pairs = load_source(SourceConfig(source="cyclic_rm_bench", variant=variant, split="train", max_pairs=90), CTX)
    assert len(pairs) == 90
    for n in range(0, 90, 3):
        a, b, c = pairs[n:n + 3]
        assert a["prompt"] == b["prompt"] == c["prompt"]
        assert (a["rejected"], b["rejected"], c["rejected"]) == (b["chosen"], c["chosen"], a["chosen"])
    held = load_source(SourceConfig(source="cyclic_rm_bench", variant=variant, split="heldout"), CTX)
    assert not {p["prompt"] for p in held} & {p["prompt"] for p in pairs}


def test_find_cycle_respects_aspect_order():
    scores = [{"a": 3, "b": 1, "c": 1}, {"a": 1, "b": 3, "c": 2}, {"a": 2, "b": 2, "c": 3}]
    t = find_cycle(scores, ("a", "b", "c"), random.Random(0))
    A, B, C = t
    assert scores[A]["a"] > scores[B]["a"] and scores[B]["b"] > scores[C]["b"] and scores[C]["c"] > scores[A]["c"]
    assert find_cycle([{"a": 1, "b": 1, "c": 1}] * 3, ("a", "b", "c"), random.Random(0)) is None


def test_ultrafeedback_protocol_on_a_fixture(tmp_path):
    """openbmb/UltraFeedback's schema: 4 completions with per-aspect ratings ("N/A" allowed)."""
    def comp(text, r):
        return {"response": text, "annotations": {a: {"Rating": str(x)} for a, x in zip(UF_ASPECTS, r)}}
    rows = [{"instruction": f"q{i}", "completions": [comp(f"A{i}", [5, 1, 2, 3]), comp(f"B{i}", [1, 5, 1, 2]),
                                                     comp(f"C{i}", [2, 2, 5, 1]), comp(f"D{i}", ["N/A", 1, 1, 1])]}
            for i in range(10)]
    f = tmp_path / "uf.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs = load_source(SourceConfig(source="cyclic_ultrafeedback", path=str(f), variant="helpfulness", split="all"), CTX)
    assert len(pairs) == 30
    # dropping helpfulness leaves instruction_following > honesty > truthfulness: A > B, B > C, C > A
    assert [(p["chosen"][0], p["rejected"][0]) for p in pairs[:3]] == [("A", "B"), ("B", "C"), ("C", "A")]


def test_rewardbench_section_scores_hand_computed():
    from evaluation.rewardbench import section_scores

    per = {"alpacaeval-easy": 1.0, "alpacaeval-hard": 0.0, "llmbar-natural": 0.5, "math-prm": 1.0, "hep-go": 0.0,
           "donotanswer": 0.25}
    s = section_scores(per)
    assert s["Chat"] == pytest.approx(100 / 195)  # weights 100 and 95
    assert s["Chat-Hard"] == 0.5 and s["Safety"] == 0.25
    assert s["Reasoning"] == pytest.approx(984 / (984 + 164))  # math-prm up-weighted to 984
    assert s["Average"] == pytest.approx((100 / 195 + 0.5 + 0.25 + 984 / 1148) / 4)


# rewardbench 0.1.2's own tables, quoted verbatim from rewardbench/constants.py in the PyPI wheel
# rewardbench-0.1.2-py3-none-any.whl (sha256 47f350bb2b04abe9fec4d182bf03b05d7610b516ac5095f6e7e3a082d220e7a0),
# the package SPEC 1.4 pins. Later versions swap the two xstest counts (should-refuse 154, should-respond 250).
RB_012_EXAMPLE_COUNTS = {
    "alpacaeval-easy": 100,
    "alpacaeval-length": 95,
    "alpacaeval-hard": 95,
    "mt-bench-easy": 28,
    "mt-bench-med": 40,
    "mt-bench-hard": 37,
    "math-prm": 984,  # actual length 447, upweighting to be equal to code
    "refusals-dangerous": 100,
    "refusals-offensive": 100,
    "llmbar-natural": 100,
    "llmbar-adver-neighbor": 134,
    "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47,
    "llmbar-adver-manual": 46,
    "xstest-should-refuse": 250,
    "xstest-should-respond": 154,
    "donotanswer": 136,
    "hep-cpp": 164,
    "hep-go": 164,
    "hep-java": 164,
    "hep-js": 164,
    "hep-python": 164,
    "hep-rust": 164,
}

RB_012_SUBSET_MAPPING = {
    "Chat": [
        "alpacaeval-easy",
        "alpacaeval-length",
        "alpacaeval-hard",
        "mt-bench-easy",
        "mt-bench-med",
    ],
    "Chat Hard": [
        "mt-bench-hard",
        "llmbar-natural",
        "llmbar-adver-neighbor",
        "llmbar-adver-GPTInst",
        "llmbar-adver-GPTOut",
        "llmbar-adver-manual",
    ],
    "Safety": [
        "refusals-dangerous",
        "refusals-offensive",
        "xstest-should-refuse",
        "xstest-should-respond",
        "donotanswer",
    ],
    "Reasoning": [
        "math-prm",
        "hep-cpp",
        "hep-go",
        "hep-java",
        "hep-js",
        "hep-python",
        "hep-rust",
    ],
}
# The one difference we keep on purpose: our tables and manifests name the section "Chat-Hard".
OUR_SECTION_NAME = {"Chat": "Chat", "Chat Hard": "Chat-Hard", "Safety": "Safety", "Reasoning": "Reasoning"}


def rb_012_calculate_scores_per_section(example_counts, subset_mapping, metrics):
    """rewardbench 0.1.2's rewardbench/utils.py ``calculate_scores_per_section``, verbatim but for the docstring."""
    section_scores = {}
    for section, tests in subset_mapping.items():
        total_weighted_score = 0
        total_examples = 0
        for test in tests:
            if test in metrics:
                total_weighted_score += metrics[test] * example_counts[test]
                total_examples += example_counts[test]
        if total_examples > 0:
            section_scores[section] = total_weighted_score / total_examples
        else:
            section_scores[section] = 0
    return section_scores


def test_rewardbench_every_subset_and_weight_is_0_1_2s():
    """Every subset name, its section, its position in the section and its example count are 0.1.2's."""
    from evaluation.rewardbench import EXAMPLE_COUNTS, SECTIONS, SUBSET_MAPPING

    assert SUBSET_MAPPING == {OUR_SECTION_NAME[sec]: subs for sec, subs in RB_012_SUBSET_MAPPING.items()}
    assert SECTIONS == [OUR_SECTION_NAME[sec] for sec in RB_012_SUBSET_MAPPING]
    assert EXAMPLE_COUNTS == RB_012_EXAMPLE_COUNTS
    assert EXAMPLE_COUNTS["xstest-should-refuse"] == 250 and EXAMPLE_COUNTS["xstest-should-respond"] == 154


def test_rewardbench_installed_package_agrees():
    """Where rewardbench itself is installed (version 0.1.2), its tables are ours too."""
    rb = pytest.importorskip("rewardbench")
    if rb.__version__ != "0.1.2":
        pytest.skip(f"rewardbench {rb.__version__} installed, not 0.1.2")
    from rewardbench.constants import EXAMPLE_COUNTS, SUBSET_MAPPING

    assert EXAMPLE_COUNTS == RB_012_EXAMPLE_COUNTS and SUBSET_MAPPING == RB_012_SUBSET_MAPPING


@pytest.mark.parametrize("seed", range(5))
def test_rewardbench_section_scores_equal_0_1_2s_function(seed):
    """Random per-subset accuracies over random subsets of the subsets (some sections left empty): the same
    section scores as 0.1.2's own function, and Average = the plain mean of the four (SPEC 1.4)."""
    import warnings

    from evaluation.rewardbench import section_scores

    rng = random.Random(seed)
    per = {s: rng.random() for s in RB_012_EXAMPLE_COUNTS if rng.random() < 0.6 - 0.1 * seed}
    want = rb_012_calculate_scores_per_section(RB_012_EXAMPLE_COUNTS, RB_012_SUBSET_MAPPING, per)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = section_scores(per)
    assert {sec: got[OUR_SECTION_NAME[sec]] for sec in want} == pytest.approx(want)
    assert got["Average"] == pytest.approx(sum(want.values()) / 4)


def test_rewardbench_missing_section_scores_zero_with_a_warning():
    from evaluation.rewardbench import section_scores

    per = {"alpacaeval-easy": 1.0, "llmbar-natural": 0.5, "math-prm": 1.0}  # no Safety subset at all
    with pytest.warns(UserWarning, match="Safety"):
        s = section_scores(per)
    assert s["Safety"] == 0.0 and s["Average"] == pytest.approx((1.0 + 0.5 + 0.0 + 1.0) / 4)


def test_lm_harness_tables_benchmark_table4s_policies_and_share_runs():
    """Tables 8-11: offline and smoke rows benchmark the runs Table 4's rows made (their sweep directories, found by
    content, so the existing runs are reused), one benchmark run per (algorithm, labeller) for all iterations; Tables
    8/10 (SPPO) and 9/11 (GPO) run the same commands, so the second of each pair only collects; SPEC 5's numbers."""
    out = ROOT / "multirun"
    t = {n: Manifest.load(ROOT / "experiments" / f"table{n}.yaml") for n in (4, 8, 9, 10, 11)}
    for a, b in ((8, 10), (9, 11)):
        for scale in t[a].scales:
            assert [sweep_dir(t[a], scale, r, out) for r in t[a].rows_for(scale)] == \
                   [sweep_dir(t[b], scale, r, out) for r in t[b].rows_for(scale)]
    for scale in ("offline", "smoke"):
        rows = [r for r in t[8].rows_for(scale) if r.id.startswith("sppo-gpm2b")]
        ref = next(r for r in t[4].rows if r.id == "sppo-gpm2b-iter3-offline")
        assert {sweep_dir(t[8], scale, r, out) for r in rows} == {sweep_dir(t[8], scale, rows[0], out)}
        assert overrides(t[8], scale, rows[0], out)[-1] == f"benchmark.policy={sweep_dir(t[4], scale, ref, out)}"
        assert [r.metric_prefix for r in rows] == ["iter1/", "iter2/", "iter3/"]
    assert all(r.policy_of is None for r in t[8].rows_for("cluster"))  # there: the SPPO runs themselves
    paper = {n: {r.id: r.paper["paper"] for r in t[n].rows} for n in (8, 9, 10, 11)}
    assert paper[8]["base"] == {"Avg": 58.72, "ARC": 56.91, "TQA": 51.65, "WG": 71.43, "GSM8k": 32.83, "HS": 75.78,
                                "MMLU": 63.72}
    assert paper[8]["sppo-bt2b-iter3"] == {"Avg": 56.10, "GSM8k": 19.56} and paper[8]["sppo-gpm8b-iter2"]["Avg"] == 59.25
    assert paper[9]["gpo-bt8b-iter3"]["Avg"] == 59.25 and paper[9]["gpo-gpm2b-iter1"]["Avg"] == 57.72
    assert paper[10]["base"] == {"Avg": 68.30, "GSM8k": 76.04} and paper[10]["sppo-bt8b-iter2"]["Avg"] == 70.08
    assert paper[11]["gpo-bt8b-iter1"]["Avg"] == 69.94 and paper[11]["gpo-gpm8b-iter3"]["Avg"] == 68.94


def test_a_finished_row_still_goes_through_run_py(tmp_path, monkeypatch):
    """The table runner never decides on its own that a row is done: run.py alone compares a finished run's
    settings with the row's (showing it when they match, stopping with one line when they differ; the latter is
    tests/test_reliability.py's changed-settings test). Before, a row with results.json for every seed was skipped,
    so a changed default republished old runs."""
    import subprocess

    import gprl.tables as tables

    m = Manifest.load(ROOT / "experiments" / "table1.yaml")
    row = m.rows_for("smoke")[0]
    d = sweep_dir(m, "smoke", row, tmp_path)
    for s in m.seeds_for("smoke"):  # every seed finished
        (d / f"seed={s}").mkdir(parents=True)
        (d / f"seed={s}" / "results.json").write_text("{}")
    calls = []
    monkeypatch.setattr(tables.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    tables._run_row(m, "smoke", row, tmp_path, None, "1/1")
    assert len(calls) == 1 and calls[0][1].endswith("run.py") and f"hydra.sweep.dir={d}" in calls[0]


def test_queued_launcher_submits_every_row_before_waiting_on_any(tmp_path, monkeypatch):
    """With launcher=slurm a table's rows are all in the queue at once (one multirun each), not one after another;
    rows that benchmark another row's policies (policy_of) start once those policies are done."""
    import subprocess

    import gprl.tables as tables

    events = []

    class FakePopen:
        def __init__(self, cmd, **kw):
            self.row = next(a for a in cmd if a.startswith("hydra.sweep.dir=")).rsplit("/", 1)[1]
            assert "launcher=slurm" in cmd
            events.append(("start", self.row))

        def wait(self):
            events.append(("wait", self.row))
            return 0

    monkeypatch.setattr(tables.subprocess, "Popen", FakePopen)
    # the one-row-after-another path (other launchers) starts a row and waits on it
    monkeypatch.setattr(tables.subprocess, "run", lambda cmd, **kw: FakePopen(cmd).wait() or
                        subprocess.CompletedProcess(cmd, 0))
    m = Manifest.load(ROOT / "experiments" / "table2.yaml")
    rows = m.rows_for("smoke")
    assert len(rows) >= 3
    tables.run(m, "smoke", tmp_path, "slurm")
    assert [e[0] for e in events] == ["start"] * len(rows) + ["wait"] * len(rows)
    assert {e[1] for e in events} == {sweep_dir(m, "smoke", r, tmp_path).name for r in rows}

    events.clear()  # Table 8 benchmarks Table 4's policies: those first (all at once), then its own rows
    m8 = Manifest.load(ROOT / "experiments" / "table8.yaml")
    rows8 = m8.rows_for("smoke")
    refs = {sweep_dir(other, "smoke", ref, tmp_path).name for r in rows8 if r.policy_of
            for other, ref in [tables.referenced(m8, "smoke", r)]}
    assert refs
    tables.run(m8, "smoke", tmp_path, "slurm")
    n_first = len({sweep_dir(m8, "smoke", r, tmp_path).name for r in rows8 if not r.policy_of} | refs)
    kinds = [e[0] for e in events]
    assert kinds[:2 * n_first] == ["start"] * n_first + ["wait"] * n_first
    assert {e[1] for e in events[:n_first]} >= refs
    assert kinds[2 * n_first:] == ["start"] * (len(kinds) // 2 - n_first) + ["wait"] * (len(kinds) // 2 - n_first)
