"""W&B run identity and summaries (gprl.runmeta, tasks.common) and the dashboards (gprl.dashboard): the workspace
spec is built without a server, the offline page holds the plots and the runs' values."""

from __future__ import annotations

import json
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.helpers import compose_cfg, run_config

GPRL = ["+experiment=alpaca_gprl"]


# ---- identity and summary -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, group, job_type, tags", [
    (["k=1"], "default", "reward_model", ["algorithm:bt", "k:1", "model:minilm", "data:alpaca_balanced"]),
    (["+experiment=table2_rm", "k=6", "logger.scale=offline"], "table2", "reward_model",
     ["algorithm:gpm", "k:6", "model:minilm", "data:alpaca_balanced", "scale:offline"]),
    (["+experiment=cyclic", "data.train.variant=correctness", "logger.group=cyc", "logger.tags=[mine]"], "cyc",
     "reward_model", ["algorithm:gpm", "k:4", "model:minilm", "data:cyclic_rm_bench/correctness", "mine"]),
    (GPRL + ["k=2"], "alpaca_gprl", "rl", ["algorithm:gprl", "k:2", "model:tiny-sft:256x6", "data:alpaca_prompts"]),
    (["+experiment=alpaca_sppo", "k=6"], "alpaca_sppo", "po", ["algorithm:sppo", "k:6", "model:tiny-sft:256x6",
                                                               "data:alpaca_prompts"]),
    (["+experiment=benchmark", 'benchmark.policy="outputs/alpaca_gpo/k=4"', "benchmark.names=[mt_bench]"], "benchmark",
     "benchmark", ["algorithm:benchmark", "k:4", "model:k=4", "data:mt_bench"]),
])
def test_every_task_has_a_group_job_type_and_tags(overrides, group, job_type, tags):
    from gprl.runmeta import identity

    assert identity(run_config(overrides)) == {"group": group, "job_type": job_type, "tags": tags}


def test_final_metrics_are_the_results_metrics_policy_eval_and_other_numbers():
    from gprl.runmeta import final_metrics

    res = {"task": "train_rl", "k": 4, "seed": 1, "reward_last": 0.25, "monitor_events": [], "steps": 6,
           "metrics": {"alpaca_eval2/lc_win_rate": 0.6}, "policy_eval": {"win_rate": 55.0, "judge": "x", "n": 20,
                                                                           "judge_check": {"accuracy": 0.7}}}
    assert final_metrics(res) == {"alpaca_eval2/lc_win_rate": 0.6, "policy_eval/win_rate": 55.0, "policy_eval/n": 20,
                                  "reward_last": 0.25, "steps": 6}


class FakeRun:
    def __init__(self, **kw):
        self.init, self.summary, self.finished = kw, {}, False

    def finish(self):
        self.finished = True


def test_wandb_init_gets_the_identity_and_the_summary_the_final_metrics(monkeypatch, tmp_path):
    import wandb

    from gprl.tasks.common import wandb_run, write_results

    runs = []
    monkeypatch.setattr(wandb, "init", lambda **kw: runs.append(FakeRun(**kw)) or runs[-1])
    cfg = run_config(["+experiment=table2_rm", "k=2", "seed=1", "logger=wandb_offline", "logger.scale=smoke"])
    res = {"k": 2, "seed": 1, "accuracy": 0.5, "metrics": {"rewardbench_standin/Chat": 0.75}}
    with wandb_run(cfg, tmp_path / "k=2,seed=1") as run:
        write_results(tmp_path / "results.json", res, run)
    (r,) = runs
    assert (r.init["group"], r.init["job_type"], r.init["name"]) == ("table2", "reward_model", "k=2,seed=1")
    assert r.init["tags"] == ["algorithm:gpm", "k:2", "model:minilm", "data:alpaca_balanced", "scale:smoke"]
    assert r.init["config"]["k"] == 2 and r.init["mode"] == "offline"
    assert r.summary == {"rewardbench_standin/Chat": 0.75, "accuracy": 0.5} and r.finished
    assert json.loads((tmp_path / "results.json").read_text()) == res


def test_tables_tag_runs_with_their_scale_without_changing_the_run_directory():
    from gprl.tables import ROOT, Manifest, command

    m = Manifest.load(ROOT / "experiments" / "table2.yaml")
    cmd = command(m, "smoke", m.rows[1], Path("/tmp/out"))
    assert "logger.scale=smoke" in cmd
    excluded = compose_cfg(["k=2"], hydra_cfg=True).hydra.job.config.override_dirname.exclude_keys
    assert "logger.scale" in excluded  # the run directory name (and so resume) does not depend on it


# ---- a sweep on disk ------------------------------------------------------------------------------------------------

SEEDS = (0, 1)
KS = (2, 4)


def _value(k: int, seed: int) -> float:
    return round(0.5 + 0.01 * k + 0.003 * seed, 4)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A GPRL k sweep as run.py leaves it: per run .hydra/config.yaml, metrics.jsonl with per-axis statistics and
    results.json; one run of k=6 is unfinished (no results.json)."""
    root = tmp_path_factory.mktemp("multirun") / "alpaca_gprl"
    for k, seed in [(k, s) for k in KS for s in SEEDS] + [(6, 0)]:
        d = root / f"k={k},seed={seed}"
        (d / ".hydra").mkdir(parents=True)
        cfg = compose_cfg(GPRL + [f"k={k}", f"seed={seed}"])
        (d / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
        log = [{"step": s, "loss": 1.0 / s, "reward": 0.1 * s + k, "kl": 0.01 * s, "completions/mean_length": 9 + s,
                **{f"gprl/axis{a}_gain": 0.1 * a + s for a in range(k // 2)},
                **{f"gprl/multiplier{a}": 1.0 for a in range(k // 2)}} for s in (1, 2, 3)]
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
        if k != 6:
            res = {"task": "train_rl", "k": k, "seed": seed, "reward_last": 0.3 + k,
                   "metrics": {"alpaca_eval2/lc_win_rate": _value(k, seed), "alpaca_eval2/win_rate": 0.4},
                   "policy_eval": {"win_rate": 50.0 + k + seed, "n": 20}}
            (d / "results.json").write_text(json.dumps(res))
    return root


METRICS = ["alpaca_eval2/lc_win_rate", "alpaca_eval2/win_rate", "policy_eval/win_rate"]


def test_runs_are_read_from_their_files(sweep):
    from gprl.dashboard.runs import headline, load_runs

    runs = load_runs([sweep])
    assert [(r.k, r.seed, r.finished) for r in runs] == [(2, 0, True), (2, 1, True), (4, 0, True), (4, 1, True),
                                                         (6, 0, False)]
    assert {r.group for r in runs} == {"alpaca_gprl"} and {r.job_type for r in runs} == {"rl"}
    assert headline(runs) == METRICS
    assert runs[2].axis_stats()["gain"] == {0: [(1, 1.0), (2, 2.0), (3, 3.0)], 1: [(1, 1.1), (2, 2.1), (3, 3.1)]}


def test_the_workspace_spec_is_built_without_a_server(sweep, monkeypatch):
    import wandb_workspaces.reports.v2 as wr

    from gprl.dashboard import workspace
    from gprl.dashboard.runs import headline, load_runs

    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens: any call to a server would fail
    runs = load_runs([sweep])
    view = workspace.build(runs, headline(runs), "team", "gprl", "gprl alpaca_gprl")
    by_name = {s.name: s.panels for s in view.sections}
    assert list(by_name) == ["Final metrics vs k", "Training curves per k", "GPRL per-axis statistics", "Runs"]
    scatter = by_name["Final metrics vs k"]
    assert [(p.x.name, p.y.name) for p in scatter] == [("k", m) for m in METRICS]
    curves = by_name["Training curves per k"]
    assert [p.y for p in curves] == [["train/loss"], ["train/kl"], ["train/completions/mean_length"]]
    assert all(p.x == "train/global_step" and p.groupby.name == "k" for p in curves)
    axes = {p.title: p.y for p in by_name["GPRL per-axis statistics"]}
    assert axes == {"gprl gain per axis": ["train/gprl/axis0_gain", "train/gprl/axis1_gain", "train/gprl/axis2_gain"],
                    "gprl multiplier per axis": ["train/gprl/multiplier0", "train/gprl/multiplier1",
                                                 "train/gprl/multiplier2"]}
    assert isinstance(by_name["Runs"][0], wr.RunComparer)
    assert view.runset_settings.pinned_columns == (["run:displayName", "config:k", "config:seed"]
                                                   + [f"summary:{m}" for m in METRICS])
    spec = json.loads(workspace.spec_json(view))  # what save() would send
    assert spec["entity"] == "team" and spec["project"] == "gprl" and "alpaca_gprl" in json.dumps(spec["spec"])


class Tables(HTMLParser):
    """Each <table> as rows of cell texts; every <img> src."""

    def __init__(self):
        super().__init__()
        self.tables, self.imgs, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "img":
            self.imgs.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def test_the_offline_page_has_the_plots_and_the_runs_values(sweep, tmp_path):
    from gprl.dashboard import main

    main([str(sweep), "--out", str(tmp_path / "dash")])
    page = Tables()
    page.feed((tmp_path / "dash" / "index.html").read_text())
    assert page.imgs == ["metric_vs_k.png", "curves.png", "gprl_axes.png"]
    for img in page.imgs:
        data = (tmp_path / "dash" / img).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    means, runs = page.tables
    assert runs[0][:7] == ["run", "group", "job type", "k", "seed", "status", "tags"] and runs[0][7:] == METRICS
    assert len(runs) == 1 + 5
    for row in runs[1:]:
        k, seed = int(row[3]), int(row[4])
        assert row[0] == f"k={k},seed={seed}" and row[1] == "alpaca_gprl" and row[2] == "rl"
        if k == 6:
            assert row[5] == "unfinished" and row[7:] == ["—"] * 3
        else:
            assert row[5] == "finished" and f"k:{k}" in row[6].split()
            assert row[7:] == [f"{_value(k, seed):.4f}", "0.4000", f"{50.0 + k + seed:.4f}"]
    assert [r[:3] for r in means[1:]] == [["alpaca_gprl", "2", "2"], ["alpaca_gprl", "4", "2"]]
    vals = [_value(4, s) for s in SEEDS]
    assert means[2][3] == f"{statistics.fmean(vals):.4f} ± {statistics.stdev(vals):.4f}"
    ws = json.loads((tmp_path / "dash" / "workspace.json").read_text())
    assert ws["display_name"] == "gprl alpaca_gprl"


def test_a_path_without_runs_is_one_clear_error(tmp_path, capsys):
    from gprl.dashboard import main

    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "nothing")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("gprl: error:") and "no .hydra/config.yaml" in err and len(err.splitlines()) == 1
    assert re.search("neither a run directory nor a sweep directory", err)


# ---- a real offline W&B run --------------------------------------------------------------------------------------

def wandb_records(run_dir: Path) -> dict:
    """The run record and final summary of the offline W&B run under ``run_dir`` (its ``.wandb`` file: LevelDB-log
    framing, 32 KiB blocks, of ``wandb_internal_pb2.Record`` messages)."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    data, pos, buf, out = path.read_bytes(), 7, b"", {"summary": {}}
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf)
            if rec.WhichOneof("record_type") == "run":
                out["run"] = rec.run
            elif rec.WhichOneof("record_type") == "summary":
                out["summary"].update({"/".join(i.nested_key) or i.key: json.loads(i.value_json)
                                       for i in rec.summary.update})
    return out


@pytest.mark.slow  # a tiny GPRL run with W&B offline: about a minute on 2 busy cores
def test_a_real_offline_run_has_its_identity_and_final_metrics(tiny_encoder, tiny_decoder, pairs_file, judge_dir,
                                                               tmp_path):
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT, policy_overrides

    o = [o for o in policy_overrides(tiny_encoder, tiny_decoder, judge_dir, pairs_file, tmp_path) if o != "logger=none"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "TOKENIZERS_PARALLELISM": "false"}
    r = subprocess.run([sys.executable, str(ROOT / "run.py"), "+experiment=alpaca_gprl", "k=2", *o,
                        "logger=wandb_offline", "logger.scale=tiny", "rl.steps=2", "rl.prompts_per_step=2",
                        "rl.max_completion_length=6"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = wandb_records(tmp_path / "run")
    run = got["run"]
    assert (run.run_group, run.job_type) == ("alpaca_gprl", "rl")
    assert list(run.tags) == ["algorithm:gprl", "k:2", f"model:{Path(tiny_decoder).name}", "data:alpaca_prompts",
                              "scale:tiny"]
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    want = {"policy_eval/win_rate": res["policy_eval"]["win_rate"], "reward_last": res["reward_last"],
            "steps": 2}
    assert {k: got["summary"].get(k) for k in want} == want
    assert any(k.startswith("train/gprl/axis0_") for k in got["summary"])  # the Trainer's history, same run
