"""World v2 (gprl.world.split / raters / stats / v2 / report2): held-out by construction, the biased rater and the
label mixture, the pre-registered statistics, the drift monitor firing on the biased axis in the world, and the
whole pipeline on a tiny budget."""

import dataclasses
import json
import random

import numpy as np
import pytest

from gprl import GprlError
from gprl.world.grammar import FAMILIES, parse_prompt, sample_prompt
from gprl.world.raters import biased_prefers, filler, mixture_pairs
from gprl.world.split import PARTS, all_prompts, distinct, draw, part_of, prompts_in
from gprl.world.stats import at_kl, auc, paired_bootstrap, seed_bootstrap


def test_the_parts_share_no_prompt_and_cover_the_grammar():
    every = {p for f in FAMILIES for p in all_prompts(f)}
    parts = {name: {p for ps in prompts_in(name).values() for p in ps} for name in PARTS}
    assert sum(len(s) for s in parts.values()) == len(every)  # each prompt in exactly one part
    for a in PARTS:
        for b in PARTS:
            if a < b:
                assert not parts[a] & parts[b], (a, b)
    rng = random.Random(0)
    assert {sample_prompt(rng).text for _ in range(3000)} <= every  # the grammar's sampler stays inside
    assert all(n > 0 for counts in distinct().values() for n in counts.values())  # every family in every part


def test_what_the_experiment_draws_is_held_out_for_every_seed():
    from gprl.world.v2 import EVAL_SEED, SCALES2, train_prompts

    scale = SCALES2["full"]
    ev = set(draw("eval", scale.eval_draws, EVAL_SEED))
    for seed in scale.seeds:
        train = set(train_prompts(scale, seed))
        proxy = set(draw("proxy", scale.proxy_prompts, 200 + seed))
        val = set(draw("proxy_val", scale.proxy_val_prompts, 300 + seed))
        assert not (train & ev or proxy & ev or val & ev or train & val or proxy & val or train & proxy)
        assert {part_of(p) for p in train} == {"train"} and {part_of(p) for p in ev} == {"eval"}
    assert {parse_prompt(p).family for p in ev} == set(FAMILIES)
    with pytest.raises(GprlError, match="unknown part"):
        prompts_in("test")


def test_the_biased_rater_prefers_filler_and_otherwise_agrees_with_gold():
    p = "what is 7 plus 5"
    assert filler("7 plus 5 is really 12 . hope this helps .") == 1
    assert biased_prefers(p, "7 plus 5 is 13 really very .", "7 plus 5 is 12 .") == 1.0  # gold says the opposite
    assert biased_prefers(p, "7 plus 5 is 12 .", "7 plus 5 is 13 .") == 1.0  # same filler: gold decides
    prompts, samples = [p], [["7 plus 5 is 12 .", "7 plus 5 is 13 really .", "7 plus 5 is 12 quite very ."]]
    gold_only = mixture_pairs(prompts, samples, 10, bias=0.0, seed=0)
    assert all(r["rater"] == "gold" and r["agrees_with_gold"] for r in gold_only)
    biased = mixture_pairs(prompts, samples, 10, bias=1.0, seed=0)
    assert all(filler(r["chosen"]) > filler(r["rejected"]) for r in biased) and len(biased) == 3
    assert not all(r["agrees_with_gold"] for r in biased)


def test_statistics_by_hand():
    assert auc([0, 10, 20], np.array([0.5, 0.7, 0.9])) == pytest.approx(0.7)
    assert auc([0, 10, 30], np.array([[0.5, 0.7, 0.7], [0.5, 0.5, 0.5]])).tolist() == pytest.approx([(6 + 14) / 30, 0.5])
    assert at_kl([0.0, 1.0, 3.0], [0.5, 0.6, 0.8], kl_star=2.0) == pytest.approx(0.7)
    assert at_kl([0.0, 1.0], [0.5, 0.6], kl_star=2.0) is None
    rng = np.random.default_rng(0)
    a = rng.random((6, 500))
    same = paired_bootstrap(a, a)
    assert same["diff"] == 0 and same["lo"] == 0 and same["hi"] == 0
    shifted = paired_bootstrap(a + 0.1, a)
    assert shifted["diff"] == pytest.approx(0.1) and shifted["lo"] == pytest.approx(0.1) and shifted["hi"] == pytest.approx(0.1)
    noisy = paired_bootstrap(a, rng.random((6, 500)))
    assert noisy["lo"] < noisy["diff"] < noisy["hi"] and noisy["hi"] - noisy["lo"] > 0.01
    assert seed_bootstrap([None, None])["diff"] is None
    with pytest.raises(GprlError, match="one shape"):
        paired_bootstrap(a, a[:, :10])


def _tiny_policy(tmp_path, monkeypatch):
    from gprl.world import models

    monkeypatch.setattr(models, "POLICY_SPEC_V2", dataclasses.replace(models.POLICY_SPEC_V2, hidden=32, layers=1,
                                                                      steps=40, batch_size=16, held_out=4))
    monkeypatch.setattr(models, "N_DEMOS_V2", 400)
    return models.starting_policy(tmp_path / "cache", version=2)


def _monitored_run(policy, monitor: bool, out):
    """GPRL in the world on a hand-written proxy: axis 0 scores filler words (the biased rater's taste), axis 1
    gold brevity (which filler costs). Returns run_rl's record."""
    from types import SimpleNamespace

    from gprl.world.experiment import run_rl
    from gprl.world.raters import AxisProxy, filler_feature, gold_feature

    rm = AxisProxy((filler_feature, gold_feature("brevity")))
    scale = SimpleNamespace(steps=24, prompts_per_step=4, generations=4, max_tokens=16, eval_points=1, lr=2e-2)
    arm = {"estimator": "gprl", "monitor": monitor}
    prompts = draw("train", 48, seed=5)
    return run_rl(arm, policy, rm, scale, 0, out, lambda model, step: {"step": step}, prompts=prompts)


def test_the_monitor_fires_on_the_biased_axis_and_changes_the_trajectory(tmp_path, monkeypatch):
    """A policy pushed along a filler axis: the monitor flags that axis (it gains alone, or brevity regresses while
    it gains), halves its weight and tightens the trust region; the run is the no-monitor run's until then, and
    afterwards the filler axis's share of the advantage falls below the no-monitor run's."""
    policy = _tiny_policy(tmp_path, monkeypatch)
    on = _monitored_run(policy, True, tmp_path / "on")
    off = _monitored_run(policy, False, tmp_path / "off")
    events = on["monitor_events"]
    assert events and events[0]["axis"] == 0 and events[0]["trigger"] in ("single_axis", "regression")
    assert events[0]["multipliers"][0] == 0.5 and events[0]["eps"] < 0.2 and events[0]["beta"] > 0.04
    t = events[0]["step"]  # the monitor's step = the rollout batch after which it corrected
    r_on, r_off = on["rollouts"], off["rollouts"]
    # one rollout batch per two optimiser steps (num_iterations=2): rollout records are the even steps' logs
    key = "gprl/axis0_adv_share"
    batches_on = [r[key] for r in r_on if key in r]
    batches_off = [r[key] for r in r_off if key in r]
    assert batches_on[:t] == pytest.approx(batches_off[:t], abs=1e-6)  # identical until the correction
    after = slice(t, len(batches_on))
    assert np.mean(batches_on[after]) < np.mean(batches_off[after]) - 0.05


def test_world_v2_end_to_end_on_a_tiny_budget(tmp_path, monkeypatch):
    from gprl.world import v2

    _tiny_policy(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    tiny = v2.Scale2(proxy_prompts=12, proxy_pairs=30, proxy_val_prompts=8, bias=0.35, rm_epochs=1, steps=2,
                     prompts_per_step=2, generations=2, iterations=1, eval_draws=6, eval_samples=2, eval_points=1,
                     seeds=(0, 1), max_tokens=8)
    monkeypatch.setitem(v2.SCALES2, "tiny", tiny)
    from tests.helpers import ROOT

    arms = ["grpo_bt", "gprl", "gpo_gpm"]
    out = v2.reproduce2("tiny", tmp_path / "res", tmp_path / "cache", arms,
                        shared_data=str(ROOT / ".." / "shared" / "data"))
    text = (out / "README.md").read_text()
    for arm in arms:
        assert f"| {arm} |" in text
    assert "| grpo_bt | 2 |" in text  # the paired table: gprl minus grpo_bt over two seeds
    pr = json.loads((out / "paired.json").read_text())
    assert {r["baseline"] for r in pr} == {"grpo_bt", "gpo_gpm"} and pr[0]["final"]["draws"] == 6
    run = json.loads((tmp_path / "outputs/world-work/v2-tiny/runs/gprl-s1.json").read_text())
    assert [e["step"] for e in run["evals"]] == [0, 2] and len(run["evals"][-1]["outcomes"]) == 6
    assert "proxy_gpm_axis1" in run["evals"][-1] and run["evals"][0]["kl"] == 0
    proxies = json.loads((tmp_path / "outputs/world-work/v2-tiny/proxies/s0/proxies.json").read_text())
    assert set(proxies["gpm"]["axis_correlations"][0]) == {"correct", "brevity", "fluency", "style", "length", "filler"}
    # an extended variant (--steps) is a separate set of runs on the same proxies
    v2.reproduce2("tiny", tmp_path / "res4", tmp_path / "cache", ["grpo_bt"], seeds=[0], steps=4,
                  shared_data=str(ROOT / ".." / "shared" / "data"))
    ext = json.loads((tmp_path / "outputs/world-work/v2-tiny-steps4/runs/grpo_bt-s0.json").read_text())
    assert [e["step"] for e in ext["evals"]] == [0, 4]
    assert not (tmp_path / "outputs/world-work/v2-tiny-steps4/proxies").exists()
    # finished runs are reused: a second invocation trains nothing, and keeps the reading written by hand
    (out / "README.md").write_text(text + "\n## Reading (by hand)\n\nWhat the intervals show.\n")
    monkeypatch.setattr(v2, "run_arm", lambda *a, **k: pytest.fail("a finished run was run again"))
    v2.reproduce2("tiny", out, tmp_path / "cache", arms, shared_data=str(ROOT / ".." / "shared" / "data"))
    again = (out / "README.md").read_text()
    assert again.count("## Reading (by hand)\n\nWhat the intervals show.") == 1 and again.index("## Every arm") < again.index("## Reading")


@pytest.mark.parametrize("argv, message", [(["--arms", "gprl,nope"], "unknown arm(s) nope"),
                                           (["--seeds", "0,x"], "--seeds must be comma-separated integers"),
                                           (["--lr", "0"], "--lr must be > 0")])
def test_bad_arguments_stop_with_one_message(argv, message):
    from gprl.world.v2 import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert message in str(e.value)


def test_the_shared_data_path_reaches_every_worker(monkeypatch, tmp_path):
    """``--shared-data`` (default ``$GPRL_SHARED_DATA``, as conf/paths) goes to the runs of this process and to the
    command line of every worker process, not a fixed ``../shared/data``."""
    from gprl.world import v2
    from gprl.world import models as world_models

    seen, cmds = [], []
    monkeypatch.setattr(v2, "run_seed", lambda *a: seen.append(a[-1]))
    monkeypatch.setenv("GPRL_SHARED_DATA", str(tmp_path / "data-from-env"))
    v2.main(["--scale", "smoke", "--seeds", "0", "--worker"])
    v2.main(["--scale", "smoke", "--seeds", "0", "--worker", "--shared-data", str(tmp_path / "flag")])
    assert seen == [str(tmp_path / "data-from-env"), str(tmp_path / "flag")]

    class Done:
        def __init__(self, cmd, env):
            cmds.append(cmd)

        def wait(self):
            return 1  # a failed worker: reproduce2 stops before it reads any run

    monkeypatch.setattr(world_models, "starting_policy", lambda *a, **k: tmp_path)
    monkeypatch.setattr(v2.subprocess, "Popen", Done)
    with pytest.raises(GprlError, match="a worker failed"):
        v2.reproduce2("smoke", tmp_path / "out", tmp_path / "cache", ["gprl"], [0, 1], workers=2,
                      shared_data=str(tmp_path / "flag"))
    assert len(cmds) == 2 and all(c[c.index("--shared-data") + 1] == str(tmp_path / "flag") for c in cmds), cmds
