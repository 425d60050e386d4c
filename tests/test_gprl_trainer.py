"""GPRL on TRL's GRPOTrainer with a tiny local policy and a tiny GPM: two steps change every policy parameter,
the ``grpo`` estimator reproduces TRL's own advantages, the monitor state is logged."""

import datasets
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig

from gprl.advantages import GPRLConfig, MonitorConfig
from gprl.models import GeneralPreferenceModel, RewardModelSpec
from gprl.trainers.gprl_trainer import GPRLTrainer

PROMPTS = ["Name a fruit.", "Name a colour.", "Say hello.", "Count to three."]


def make_trainer(tmp_path, policy_dir, rm_dir, k, estimator, monitor=None):
    torch.manual_seed(0)
    rm = GeneralPreferenceModel.from_backbone(rm_dir, RewardModelSpec(k=k, max_length=64))
    policy = AutoModelForCausalLM.from_pretrained(policy_dir)
    tok = AutoTokenizer.from_pretrained(policy_dir)
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_steps=2,
                      max_completion_length=6, learning_rate=1e-2, beta=0.04, loss_type="grpo", use_cpu=True,
                      bf16=False, gradient_checkpointing=False, report_to="none", logging_steps=1, save_strategy="no",
                      seed=0, temperature=1.0)
    ds = datasets.Dataset.from_dict({"prompt": PROMPTS * 2})
    return GPRLTrainer(model=policy, args=args, train_dataset=ds, processing_class=tok, reward_model=rm,
                       estimator=estimator, estimator_cfg=GPRLConfig(kappa=0.0), monitor_cfg=monitor)


@pytest.mark.parametrize("k, estimator", [(4, "gprl"), (1, "grpo")])
def test_two_steps_change_every_policy_parameter(tmp_path, tiny_decoder, tiny_encoder, k, estimator):
    tr = make_trainer(tmp_path, tiny_decoder, tiny_encoder, k, estimator, MonitorConfig() if k > 1 else None)
    before = {n: p.detach().clone() for n, p in tr.model.named_parameters()}
    tr.train()
    unchanged = [n for n, p in tr.model.named_parameters() if torch.equal(before[n], p.detach())]
    assert not unchanged, unchanged
    logs = tr.state.log_history
    assert any("loss" in r for r in logs)
    if k > 1:
        assert any("gprl/clip_eps" in r for r in logs) and any("gprl/axis0_adv_share" in r for r in logs)
        assert any("gprl/axis1_gain" in r and "gprl/axis1_win_vs_ref" in r for r in logs)


def test_grpo_estimator_reproduces_trls_advantages(tmp_path, tiny_decoder, tiny_encoder):
    tr = make_trainer(tmp_path, tiny_decoder, tiny_encoder, 1, "grpo")
    batch = [{"prompt": p} for p in PROMPTS[:1]] * 4
    out = tr._generate_and_score_completions(batch)
    assert torch.allclose(out["advantages"], tr.trl_advantages, atol=1e-5)


@pytest.mark.parametrize("experiment, k", [("alpaca_gprl", 2), ("alpaca_grpo", 1)])
def test_cli_trains_a_reward_model_then_the_policy(tiny_encoder, tiny_decoder, pairs_file, judge_dir, tmp_path,
                                                   experiment, k):
    import json

    from tests.helpers import policy_overrides, run_cli

    r = run_cli([f"+experiment={experiment}", f"k={k}",
                 *policy_overrides(tiny_encoder, tiny_decoder, judge_dir, pairs_file, tmp_path),
                 "rl.steps=2", "rl.prompts_per_step=2", "rl.max_completion_length=6", "rl.lr=1e-3"])
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["steps"] == 2 and res["k"] == k and res["estimator"] == experiment.split("_")[1]
    assert len(list((tmp_path / "cache" / "reward_models").glob(f"k{k}-*/model/gpm_config.json"))) == 1
    assert (tmp_path / "run" / "policy" / "config.json").exists()
    assert res["policy_eval"]["n"] == 4 and "win rate vs initial" in r.stdout
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("reward" in x for x in logged)
