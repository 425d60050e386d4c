"""LM-Harness through the real lm_eval on the local stand-in tasks with a tiny local decoder: ARC accuracy equals the
accuracy computed by hand from plain forward passes, the protocols' settings reach lm_eval (few-shot counts, MMLU's
unweighted mean over subjects), lm_eval's native results and sample files are written, and task ``benchmark`` reads
every iteration of an iterative policy run from its sweep directory as the table manifests do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gprl import GprlError
from tests.helpers import ROOT, run_config

pytest.importorskip("lm_eval")

STANDIN = ROOT / "evaluation" / "lm_harness_tasks"


def _rows(name: str, split: str) -> list[dict]:
    rows = [json.loads(x) for x in (STANDIN / "data" / f"{name}.jsonl").read_text().splitlines() if x.strip()]
    return [r for r in rows if r["split"] == split]


def _arc_by_hand(model_dir: str) -> tuple[list[list[float]], float, float]:
    """Per-choice log-likelihoods of the ARC stand-in's test questions with one plain forward pass each (the prompt
    ``Question: ...\\nAnswer:`` of lm_eval's arc tasks, continuation `` <choice>``), and acc / acc_norm from them."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    lls, acc, acc_norm = [], 0, 0
    for doc in _rows("arc_challenge", "test"):
        ctx = tok(f"Question: {doc['question']}\nAnswer:", add_special_tokens=False)["input_ids"]
        row = []
        for choice in doc["choices"]["text"]:
            cont = tok(" " + choice, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = model(torch.tensor([ctx + cont])).logits[0].log_softmax(-1)
            row.append(sum(float(logp[len(ctx) - 1 + i, t]) for i, t in enumerate(cont)))
        gold = doc["choices"]["label"].index(doc["answerKey"])
        acc += max(range(len(row)), key=lambda i: row[i]) == gold
        lens = [len(c) for c in doc["choices"]["text"]]
        acc_norm += max(range(len(row)), key=lambda i: row[i] / lens[i]) == gold
        lls.append(row)
    return lls, acc / len(lls), acc_norm / len(lls)


@pytest.fixture(scope="module")
def lm(tiny_decoder):
    from evaluation.lm_harness import harness_lm

    return harness_lm(tiny_decoder, batch_size=8, device="cpu")


def test_arc_accuracy_equals_hand_computed_and_native_files_are_written(lm, tiny_decoder, tmp_path):
    from evaluation.lm_harness import run_protocol

    res = run_protocol(lm, "harness_default", ["arc_challenge", "mmlu"], tmp_path, standin=True)
    lls, acc, acc_norm = _arc_by_hand(tiny_decoder)
    assert 0 < acc_norm < 1 and 0 < acc < 1  # the check can tell a right reading from a wrong one
    arc = res["tasks"]["arc_challenge"]
    assert arc["value"] == pytest.approx(acc_norm, abs=1e-12) and arc["metric"] == "acc_norm,none"
    assert arc["num_fewshot"] == 0 and arc["n_samples"] == len(lls) and arc["version"] == 1.0
    native = json.loads((tmp_path / res["native_results"]).read_text())
    assert native["results"]["gprl_standin_arc_challenge"]["acc,none"] == pytest.approx(acc, abs=1e-12)
    # lm_eval's own per-sample log-likelihoods are the hand-computed ones
    samples = [json.loads(x) for f in tmp_path.glob("samples_gprl_standin_arc_challenge_*.jsonl")
               for x in f.read_text().splitlines()]
    got = {s["doc_id"]: [float(r[0][0]) for r in s["resps"]] for s in samples}
    assert [x for i in range(len(lls)) for x in got[i]] == pytest.approx([x for row in lls for x in row], abs=1e-4)
    # MMLU in lm_eval's defaults: its group score, weighted by subject size; the average is the tasks' mean
    mmlu = native["results"]["gprl_standin_mmlu"]["acc,none"]
    assert res["tasks"]["mmlu"]["value"] == mmlu
    assert res["average"] == pytest.approx((acc_norm + mmlu) / 2, abs=1e-12)
    assert native["versions"]["gprl_standin_arc_challenge"] == 1.0 and (tmp_path / "table.md").exists()


def test_open_llm_v1_settings_reach_lm_eval(lm, tmp_path):
    from evaluation.lm_harness import run_protocol

    res = run_protocol(lm, "open_llm_v1", ["arc_challenge", "mmlu"], tmp_path, standin=True)
    native = json.loads((tmp_path / res["native_results"]).read_text())
    assert native["n-shot"]["gprl_standin_arc_challenge"] == 25
    assert native["n-shot"]["gprl_standin_mmlu_world_capitals"] == 5
    assert native["configs"]["gprl_standin_arc_challenge"]["num_fewshot"] == 25
    r = native["results"]
    subjects = [r[f"gprl_standin_mmlu_{s}"]["acc,none"] for s in ("elementary_arithmetic", "world_capitals")]
    assert res["tasks"]["mmlu"]["value"] == pytest.approx(sum(subjects) / 2, abs=1e-12)  # Open LLM v1: unweighted
    assert abs(res["tasks"]["mmlu"]["value"] - r["gprl_standin_mmlu"]["acc,none"]) > 1e-3  # lm_eval's: by size


def test_benchmark_task_reads_every_iteration_of_a_policy_sweep(tiny_decoder, tmp_path):
    """As a table row with ``policy_of`` runs it: benchmark.policy is the sweep directory of a GPO/SPPO run."""
    from gprl.tasks.benchmark import benchmark

    job = tmp_path / "sweep" / "seed=0"
    for t in (1, 2):
        shutil.copytree(tiny_decoder, job / f"iter{t}" / "policy")
    (job / "results.json").write_text(json.dumps({"task": "train_po", "seed": 0}))
    cfg = run_config(["+experiment=benchmark", "benchmark.names=[lm_harness]", f"benchmark.policy={job.parent}",
                      "benchmark.lm_harness.standin=true", "benchmark.lm_harness.tasks=[winogrande,gsm8k]",
                      "benchmark.lm_harness.limit=4", "benchmark.batch_size=4", "logger=none",
                      f"paths.cache={tmp_path / 'cache'}"])
    res = benchmark(cfg, tmp_path / "run")
    assert res["iterations"] == ["iter1", "iter2"]
    for it in ("iter1", "iter2"):
        lm = res["benchmarks"][it]["lm_harness"]
        assert lm["lm_eval_version"] and lm["task_versions"]["gprl_standin_winogrande"] == 1.0
        gsm8k = lm["protocols"]["harness_default"]["tasks"]["gsm8k"]  # generation, the "#### N" regex extraction
        assert gsm8k["metric"] == "exact_match,strict-match" and gsm8k["num_fewshot"] == 5 and gsm8k["n_samples"] == 4
        native = tmp_path / "run" / it / "benchmarks" / "lm_harness" / "lm_eval" / "harness_default"
        assert len(list(native.glob("results_*.json"))) == 1 and len(list(native.glob("samples_*.jsonl"))) == 2
        avg = lm["protocols"]["harness_default"]["average"]
        assert res["metrics"][f"{it}/lm_harness/harness_default/average"] == avg
        assert lm["headline"]["harness_default/average"] == round(100 * avg, 2)
    # the same weights: both iterations score the same
    assert len({res["metrics"][f"{it}/lm_harness/harness_default/average"] for it in ("iter1", "iter2")}) == 1


@pytest.mark.parametrize("override, message", [
    ("benchmark.lm_harness.protocols=[open_llm_v2]", "must be distinct names from harness_default, open_llm_v1"),
    ("benchmark.lm_harness.protocols=[]", "protocols must be distinct names"),
    ("benchmark.lm_harness.limit=0", "limit must be > 0"),
    ("benchmark.lm_harness.tasks=[gsm8k,gsm8k]", "names a task twice"),
])
def test_impossible_lm_harness_settings_are_rejected(override, message):
    with pytest.raises(GprlError, match=message):
        run_config(["+experiment=benchmark", "benchmark.policy=x", override])


def test_unknown_task_and_given_answers_are_one_clear_error(lm, tmp_path):
    from evaluation.benchmark import Answers
    from evaluation.lm_harness import lm_harness, run_protocol

    with pytest.raises(GprlError, match="has no task 'no_such_task'"):
        run_protocol(lm, "harness_default", ["no_such_task"], tmp_path, standin=True,
                     include_path=str(Path(tmp_path)))
    cfg = run_config(["+experiment=benchmark", "benchmark.outputs=x", "benchmark.names=[lm_harness]"])
    with pytest.raises(GprlError, match="give benchmark.policy, not benchmark.outputs"):
        lm_harness(cfg, Answers(None, "x", "x"), tmp_path)
