"""The policy-benchmark layer and AlpacaEval 2.0 through the alpaca_eval package: every judge config composes, an API
judge on a loopback fake endpoint never writes its key anywhere, unparseable judgments are counted, answers and
judgments are cached (a second run calls no judge and generates nothing), and bad inputs stop with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import ROOT, run_cli, run_config

pytest.importorskip("alpaca_eval")

JUDGES = sorted(p.stem for p in (ROOT / "conf" / "judge").glob("*.yaml"))
N = 12  # instructions per test run (a fixed subset of the test split)


@pytest.mark.parametrize("judge", JUDGES)
def test_every_judge_config_composes(judge):
    extra = ["judge.model=some/model"] if judge == "hf_local" else []
    cfg = run_config(["+experiment=benchmark", "benchmark.outputs=x", f"judge={judge}", *extra])
    assert cfg.task == "benchmark" and cfg.judge.name
    if cfg.judge.kind == "api":
        assert cfg.judge.model and cfg.judge.api_key_env and "key" not in json.dumps(cfg.judge.annotator).lower()


def _answers_file(tmp_path: Path, transform=lambda i, r: r["output"]) -> Path:
    """A native AlpacaEval outputs file for the test run's instructions (a shipped model's answers, transformed)."""
    from evaluation.alpaca_eval2 import instructions, shipped_outputs
    from gprl.tasks.common import data_context

    cfg = run_config(["+experiment=benchmark", "benchmark.outputs=x", f"benchmark.max_instances={N}"])
    table = shipped_outputs(data_context(cfg).shared_data, "alpaca-7b")
    rows = [{"instruction": r["instruction"], "output": table[r["instruction"]]} for r in instructions(cfg)]
    f = tmp_path / "answers.json"
    f.write_text(json.dumps([{**r, "output": transform(i, r)} for i, r in enumerate(rows)]))
    return f


def _args(tmp_path, answers, *extra) -> list[str]:
    return ["+experiment=benchmark", f"benchmark.outputs={answers}", f"benchmark.max_instances={N}",
            f"paths.cache={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}", *extra]


def _result(tmp_path) -> dict:
    return json.loads((tmp_path / "run" / "benchmarks" / "alpaca_eval2" / "results.json").read_text())


def test_api_judge_never_writes_its_key_and_counts_unparseable(tmp_path, monkeypatch):
    key = "sk-planted-" + "7f3a9c1e5b2d4f60"
    server = FakeOpenAI()
    try:
        answers = _answers_file(tmp_path, lambda i, r: "UNPARSEABLE " + r["output"] if i < 2 else r["output"])
        monkeypatch.setenv("GPRL_TEST_KEY", key)
        monkeypatch.setenv("WANDB_MODE", "offline")
        p = run_cli(_args(tmp_path, answers, "judge=gpt4_turbo", f"judge.base_url={server.url}",
                          "judge.api_key_env=GPRL_TEST_KEY", "logger=wandb_offline"))
        assert p.returncode == 0, p.stderr[-3000:]
    finally:
        server.close()
    assert server.auth and all(a == f"Bearer {key}" for a in server.auth)  # the key reached the endpoint...
    written = [f for d in (tmp_path / "run", tmp_path / "cache") for f in d.rglob("*") if f.is_file()]
    assert any(f.parent.name.startswith("run-") or "wandb" in str(f) for f in written)  # W&B wrote its run too
    leaks = [str(f) for f in written if key.encode() in f.read_bytes()]
    assert not leaks, f"API key written to {leaks}"  # ...and nowhere on disk
    assert key not in p.stdout + p.stderr
    res = _result(tmp_path)
    assert res["n_unparsed"] == 2 and res["metrics"]["n_total"] == N - 2 and len(res["unparsed_instructions"]) == 2
    assert "could not be parsed" in p.stdout
    # the fake judge gives the first-shown output probability 0.8; the package shows outputs in random order and
    # maps the verdict back, so every parsed preference is 1.2 or 1.8, and the win rate is their mean
    ann = json.loads((tmp_path / "run" / "benchmarks" / "alpaca_eval2" / "annotations.json").read_text())
    prefs = [a["preference"] for a in ann]
    assert len(prefs) == N - 2 and all(min(abs(p - 1.2), abs(p - 1.8)) < 1e-3 for p in prefs)
    assert res["metrics"]["win_rate"] == pytest.approx(100 * sum(p - 1 for p in prefs) / len(prefs), abs=1e-6)


def test_missing_key_and_unreachable_endpoint_are_one_line(tmp_path, monkeypatch):
    answers = _answers_file(tmp_path)
    monkeypatch.delenv("GPRL_TEST_KEY", raising=False)
    p = run_cli(_args(tmp_path, answers, "judge=gpt4_turbo", "judge.api_key_env=GPRL_TEST_KEY"))
    assert p.returncode == 2 and "GPRL_TEST_KEY" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "run" / "benchmarks" / "alpaca_eval2" / "model_outputs.json").exists()  # before any work
    monkeypatch.setenv("GPRL_TEST_KEY", "sk-x")
    p = run_cli(_args(tmp_path, answers, "judge=gpt4_turbo", "judge.api_key_env=GPRL_TEST_KEY",
                      "judge.base_url=http://127.0.0.1:9/v1"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "127.0.0.1:9" in p.stderr and "APIConnectionError" in p.stderr


@pytest.fixture(scope="module")
def judge_model(tmp_path_factory, tiny_encoder) -> str:
    from gprl.models import GeneralPreferenceModel
    from gprl.models.reward_model import RewardModelSpec

    d = tmp_path_factory.mktemp("judge")
    GeneralPreferenceModel.from_backbone(tiny_encoder, RewardModelSpec(k=4)).save_pretrained(d)
    return str(d)


def test_policy_answers_and_judgments_are_cached(tmp_path, tiny_decoder, judge_model):
    args = ["+experiment=benchmark", f"benchmark.policy={tiny_decoder}", f"benchmark.max_instances={N}",
            "benchmark.max_new_tokens=8", "benchmark.empty_outputs=lose", f"judge.path={judge_model}",
            f"paths.cache={tmp_path / 'cache'}", "logger=none"]
    first = run_cli([*args, f"hydra.run.dir={tmp_path / 'a'}"])
    assert first.returncode == 0, first.stderr[-3000:]
    a = json.loads((tmp_path / "a" / "benchmarks" / "alpaca_eval2" / "results.json").read_text())
    out = json.loads((tmp_path / "a" / "benchmarks" / "alpaca_eval2" / "model_outputs.json").read_text())
    assert len(out) == N and {"instruction", "output", "generator", "dataset"} <= set(out[0])
    assert a["judge_calls"] == N - a["n_empty"] > 0
    # a second run directory: the judge's annotation cache is shared, so no judge call; answers are generated anew
    second = run_cli([*args, f"hydra.run.dir={tmp_path / 'b'}"])
    assert second.returncode == 0, second.stderr[-3000:]
    b = json.loads((tmp_path / "b" / "benchmarks" / "alpaca_eval2" / "results.json").read_text())
    assert b["judge_calls"] == 0
    for k in ("win_rate", "length_controlled_winrate", "n_total"):
        assert b["metrics"][k] == pytest.approx(a["metrics"][k], abs=1e-9)
    # the same run directory again after its results were removed: answers reused, no judge call
    (tmp_path / "b" / "benchmarks" / "alpaca_eval2" / "results.json").unlink()
    (tmp_path / "b" / "results.json").unlink()
    third = run_cli([*args, f"hydra.run.dir={tmp_path / 'b'}"])
    assert third.returncode == 0 and "reusing 12 answers" in third.stdout
    f = tmp_path / "b" / "benchmarks" / "alpaca_eval2" / "results.json"
    assert json.loads(f.read_text())["judge_calls"] == 0
    # a truncated benchmark result (a full disk, an editor) is moved aside with one line and redone from the caches
    f.write_text(f.read_text()[:40])
    (tmp_path / "b" / "results.json").unlink()
    fourth = run_cli([*args, f"hydra.run.dir={tmp_path / 'b'}"])
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    assert "is damaged (JSONDecodeError): moved it to results.json.damaged" in fourth.stdout
    assert json.loads(f.read_text())["metrics"]["win_rate"] == pytest.approx(a["metrics"]["win_rate"], abs=1e-9)


def test_empty_answers_stop_the_run_or_lose(tmp_path, judge_model):
    answers = _answers_file(tmp_path, lambda i, r: "" if i == 0 else r["output"])
    p = run_cli(_args(tmp_path, answers, f"judge.path={judge_model}", "logger=none"))
    assert p.returncode == 2 and "1 of 12 answers" in p.stderr and "Traceback" not in p.stderr
    p = run_cli(_args(tmp_path, answers, f"judge.path={judge_model}", "logger=none", "benchmark.empty_outputs=lose"))
    assert p.returncode == 0, p.stderr[-3000:]
    res = _result(tmp_path)
    assert res["n_empty"] == 1 and res["judge_calls"] == N - 1
    ann = json.loads((tmp_path / "run" / "benchmarks" / "alpaca_eval2" / "annotations.json").read_text())
    assert sum(a["preference"] == 1.0 and a["output_2"] == "" for a in ann) == 1


def test_official_judge_replays_a_shipped_models_win_rate(tmp_path):
    """The shipped annotations through the same path as any judge: claude-2's official win rate (17.19)."""
    p = run_cli(["+experiment=benchmark", "benchmark.outputs=claude-2", "benchmark.split=all", "judge=official",
                 f"paths.cache={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}", "logger=none"])
    assert p.returncode == 0, p.stderr[-3000:]
    res = _result(tmp_path)
    assert res["metrics"]["win_rate"] == pytest.approx(17.188240356708075, abs=0.01) and res["n_unparsed"] == 0


@pytest.mark.parametrize("model", ["dir", "tiny:32x2"])
def test_local_hf_judge_runs_and_an_all_unparseable_judge_is_one_line(tmp_path, tiny_decoder, model):
    """An untrained local chat model as judge (a directory, or a laptop-policy name as the text-verdict judges take
    it): every verdict is unparseable, counted, and the run stops clearly."""
    model = tiny_decoder if model == "dir" else model
    p = run_cli(["+experiment=benchmark", "benchmark.outputs=claude-2", "benchmark.max_instances=3", "judge=hf_local",
                 f"judge.model={model}", "judge.max_tokens=5", "logger=none", f"paths.cache={tmp_path / 'cache'}",
                 f"hydra.run.dir={tmp_path / 'run'}"])
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "no usable preference for any of 3 instructions (3 unparseable)" in p.stderr


def test_small_policy_context_gets_an_answer_budget_and_cut_prompts(tiny_decoder):
    """A 176-token laptop policy asked for 128 new tokens: answers get half its context, long prompts are cut, short
    ones untouched (clipping the budget to the longest prompt left answers of one token)."""
    from transformers import AutoTokenizer

    from evaluation.benchmark import fit_context

    tok = AutoTokenizer.from_pretrained(tiny_decoder)
    prompts = ["Name a fruit.", " ".join(["word"] * 300)]
    out, n = fit_context(tok, prompts, 128, 176, "test")
    assert n == 88 and out[0] == prompts[0]
    assert len(tok(out[1], add_special_tokens=False)["input_ids"]) <= 176 - 88 - 16 < 300
    assert fit_context(tok, prompts, 128, 8192, "test") == (prompts, 128)  # a large context is left alone
