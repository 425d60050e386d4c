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


def make_trainer(tmp_path, policy_dir, rm_dir, k, estimator, monitor=None, estimator_cfg=None, peft_config=None,
                 **args):
    torch.manual_seed(0)
    rm = GeneralPreferenceModel.from_backbone(rm_dir, RewardModelSpec(k=k, max_length=64))
    policy = AutoModelForCausalLM.from_pretrained(policy_dir)
    tok = AutoTokenizer.from_pretrained(policy_dir)
    args = GRPOConfig(**{**dict(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_steps=2,
                      max_completion_length=6, learning_rate=1e-2, beta=0.04, loss_type="grpo", use_cpu=True,
                      bf16=False, gradient_checkpointing=False, report_to="none", logging_steps=1, save_strategy="no",
                      seed=0, temperature=1.0), **args})
    ds = datasets.Dataset.from_dict({"prompt": PROMPTS * 2})
    return GPRLTrainer(model=policy, args=args, train_dataset=ds, processing_class=tok, reward_model=rm,
                       estimator=estimator, estimator_cfg=estimator_cfg or GPRLConfig(kappa=0.0),
                       monitor_cfg=monitor, peft_config=peft_config)


def hand_advantages(groups, multipliers=None) -> torch.Tensor:
    """SPEC 3.3 by hand, for a first batch (no running scale yet, so no floor): per axis
    ``r^l_i = mean_j c^l_ij``, ``A^l = r^l / (std(r^l) + 1e-4)``, ``A = sum_l w_l A^l`` with ``w ~ lambda x m``."""
    out = []
    for g in groups:
        a, b = g.v[:, 0::2], g.v[:, 1::2]  # (G, L): the two coordinates of each 2-D subspace
        c = (a[:, None, :] * b[None, :, :] - b[:, None, :] * a[None, :, :]) / g.tau  # (G, G, L)
        r = c.mean(1).T  # (L, G)
        A = r / (r.std(1, keepdim=True) + 1e-4)
        m = torch.ones(len(r)) if multipliers is None else multipliers
        w = g.lam * m / (g.lam * m).sum()
        out.append((w[:, None] * A).sum(0))
    return torch.cat(out)


def hand_loss(tr, model, inputs, eps: float, beta: float) -> torch.Tensor:
    """TRL's "grpo" loss restated from the DeepSeekMath formula (SPEC 3.3), with log-probs from a plain forward and
    TRL 1.x's default importance weighting of the k3 KL estimate (exact on-policy, where the ratio is 1)."""
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    T = inputs["completion_ids"].shape[1]
    logits = model(input_ids=ids, attention_mask=mask).logits[:, -T - 1:-1] / tr.temperature
    logp = torch.log_softmax(logits.float(), -1).gather(-1, inputs["completion_ids"][..., None])[..., 0]
    A = inputs["advantages"][:, None]
    ratio = torch.exp(logp - inputs["old_per_token_logps"])
    ref = inputs["ref_per_token_logps"]
    k3 = (torch.exp(ref - logp) - (ref - logp) - 1) * ratio  # TRL weights k3 by the ratio (use_bias_correction_kl)
    per_token = -torch.min(ratio * A, ratio.clamp(1 - eps, 1 + eps) * A) + beta * k3
    cm = inputs["completion_mask"]
    return ((per_token * cm).sum(1) / cm.sum(1).clamp(min=1)).mean()


def off_policy(out: dict, scale: float = 0.3) -> dict:
    """The rollout's log-probs as if the policy had moved since sampling, so the importance ratio is not 1."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        old = out["ref_per_token_logps"] + scale * torch.randn(out["ref_per_token_logps"].shape, generator=g)
    return {**out, "old_per_token_logps": old}


def perturb(model, scale: float) -> None:
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


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
    # SPEC 3.3: each rollout batch (2 prompts x 4) serves 4 optimiser steps, and the clip fraction is reported
    assert res["minibatches"] == 4 and res["optimizer_steps"] == 8 and res["clip_fraction_mean"] is not None
    assert len(list((tmp_path / "cache" / "reward_models").glob(f"k{k}-*/model/gpm_config.json"))) == 1
    assert (tmp_path / "run" / "policy" / "config.json").exists()
    assert res["policy_eval"]["n"] == 4 and "win rate vs initial" in r.stdout
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("reward" in x for x in logged)


GROUP = [{"prompt": PROMPTS[0]}] * 4  # one prompt's G=4 completions


def test_a_k4_gprl_step_loss_is_trls_loss_of_the_per_axis_advantages(tmp_path, tiny_decoder, tiny_encoder):
    """GPRL's advantages (shipped estimator config) are what TRL's clipped loss uses, with TRL's eps and beta."""
    tr = make_trainer(tmp_path, tiny_decoder, tiny_encoder, 4, "gprl", estimator_cfg=GPRLConfig())
    perturb(tr.model, 0.02)  # the policy differs from TRL's reference, so the KL term is not zero
    out = tr._generate_and_score_completions(GROUP)
    expected = hand_advantages(tr.gpm_reward.last)
    assert torch.allclose(out["advantages"], expected, atol=1e-5)
    assert not torch.allclose(out["advantages"], tr.trl_advantages, atol=1e-2)  # not TRL's scalar GRPO
    inputs = off_policy(out)
    with torch.no_grad():
        loss = tr.compute_loss(tr.model, inputs)
        assert torch.allclose(loss, hand_loss(tr, tr.model, inputs, 0.2, 0.04), atol=1e-5)
        logged = tr._metrics["eval"]  # TRL files metrics under "eval" outside train()
        assert logged["clip_ratio/region_mean"][-1] > 0  # the clip range binds on this batch
        assert logged["kl"][-1] > 0


def test_a_monitor_trigger_reaches_trls_loss_and_the_next_advantages(tmp_path, tiny_decoder, tiny_encoder):
    """A trigger (forced by moving the monitor's start point: axis 0 gained, axis 1 regressed) halves eps, doubles
    beta for the loss TRL computes next, and down-weights the axis that gained (SPEC 3.3: argmax gain, also on a
    regression), whose multiplier then shapes the advantages of the next rollout batch."""
    tr = make_trainer(tmp_path, tiny_decoder, tiny_encoder, 4, "gprl", monitor=MonitorConfig(),
                      estimator_cfg=GPRLConfig(kappa=0.0))
    perturb(tr.model, 0.02)
    tr._generate_and_score_completions(GROUP)  # step 1: the monitor's start point p0
    assert tr.monitor.events == [] and (tr.epsilon_low, tr.beta) == (0.2, 0.04)
    tr.monitor.p0 = tr.monitor.p0 + torch.tensor([-0.5, 0.3])  # as if axis 0 had gained 50 points, axis 1 lost 30
    out = tr._generate_and_score_completions(GROUP)  # step 2: the trigger and its correction
    assert len(tr.monitor.events) == 1 and tr.monitor.events[0]["trigger"] == "regression"
    assert (tr.epsilon_low, tr.epsilon_high, tr.beta) == (0.1, 0.1, 0.08)
    inputs = off_policy(out)
    with torch.no_grad():
        loss = tr.compute_loss(tr.model, inputs)
        assert torch.allclose(loss, hand_loss(tr, tr.model, inputs, 0.1, 0.08), atol=1e-5)
        assert not torch.allclose(loss, hand_loss(tr, tr.model, inputs, 0.2, 0.04), atol=1e-3)
    m = tr.monitor.multipliers.clone()
    assert m.tolist() == [0.5, 1.25] and torch.equal(tr.estimator.multipliers[:2], m)
    out3 = tr._generate_and_score_completions(GROUP)  # step 3: advantages weighted by lambda x m
    expected = hand_advantages(tr.gpm_reward.last, m)
    assert torch.allclose(out3["advantages"], expected, atol=1e-5)
    assert not torch.allclose(out3["advantages"], hand_advantages(tr.gpm_reward.last), atol=1e-3)


def _initial_greedy_embedding(tr, policy_dir, prompt):
    from gprl.models.generation import generate

    start = AutoModelForCausalLM.from_pretrained(policy_dir)
    answer = generate(start, tr.processing_class, [prompt], 1, tr.max_completion_length, temperature=0.0)[0][0]
    moved = generate(tr.accelerator.unwrap_model(tr.model), tr.processing_class, [prompt], 1,
                     tr.max_completion_length, temperature=0.0)[0][0]
    assert moved != answer  # the test is only meaningful if the moving policy answers differently
    return tr.gpm_reward.rm.embed([prompt], [answer])[0][0]


def test_anchors_come_from_a_frozen_copy_when_beta_is_0(tmp_path, tiny_decoder, tiny_encoder):
    tr = make_trainer(tmp_path, tiny_decoder, tiny_encoder, 4, "gprl", monitor=MonitorConfig(), beta=0.0)
    assert tr.ref_model is None  # TRL keeps no reference at beta=0
    perturb(tr.model, 1.0)  # the policy moved far from where it started
    anchor = tr._anchors_for([PROMPTS[1]])[0]
    assert torch.allclose(anchor, _initial_greedy_embedding(tr, tiny_decoder, PROMPTS[1]), atol=1e-6)


def test_anchors_come_from_the_base_model_under_lora(tmp_path, tiny_decoder, tiny_encoder):
    from peft import LoraConfig

    tr = make_trainer(tmp_path, tiny_decoder, tiny_encoder, 4, "gprl", monitor=MonitorConfig(),
                      peft_config=LoraConfig(r=4, lora_alpha=8, task_type="CAUSAL_LM", target_modules=["q_proj", "v_proj"]))
    assert tr.ref_model is None and tr._frozen_ref is None  # TRL disables the adapters for its reference
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # trained adapters: LoRA's B starts at zero, so move it
        for n, p in tr.model.named_parameters():
            if "lora_B" in n:
                p.copy_(3.0 * torch.randn(p.shape, generator=g))
    anchor = tr._anchors_for([PROMPTS[2]])[0]
    assert torch.allclose(anchor, _initial_greedy_embedding(tr, tiny_decoder, PROMPTS[2]), atol=1e-6)


@pytest.mark.parametrize("minibatches", [1, 4])
def test_the_clip_range_binds_only_with_several_minibatches_per_rollout(tmp_path, tiny_decoder, tiny_encoder,
                                                                         minibatches):
    """TRL's ratio is exactly 1 when each rollout batch serves one optimiser step; with 4 (SPEC 3.3) it moves."""
    tr = make_trainer(tmp_path, tiny_decoder, tiny_encoder, 4, "gprl", learning_rate=5e-2,
                      per_device_train_batch_size=16 // minibatches, steps_per_generation=minibatches,
                      max_steps=2 * minibatches)
    tr.train()
    clipped = [h["clip_ratio/region_mean"] for h in tr.state.log_history if "clip_ratio/region_mean" in h]
    assert len(clipped) == 2 * minibatches
    assert (max(clipped) > 0) == (minibatches > 1)
    assert any("gprl/axis1_adv_len_corr" in h and "gprl/adv_len_corr" in h for h in tr.state.log_history)


def test_the_length_probe_is_pearsons_correlation():
    import numpy as np

    from gprl.trainers.gprl_trainer import _corr

    x, y = torch.tensor([0.5, -1.0, 2.0, 0.1, -0.3]), torch.tensor([7.0, 3.0, 12.0, 6.0, 6.0])
    assert _corr(x, y) == pytest.approx(float(np.corrcoef(x.numpy(), y.numpy())[0, 1]), abs=1e-6)
    assert _corr(x, -y) == pytest.approx(-_corr(x, y))
    assert _corr(x, torch.full((5,), 32.0)) == 0.0  # every completion at the length limit: no signal, not NaN


def test_the_length_probe_logs_the_batchs_own_correlation(tmp_path, tiny_decoder, tiny_encoder):
    from gprl.trainers.gprl_trainer import _corr

    tr = make_trainer(tmp_path, tiny_decoder, tiny_encoder, 4, "gprl")
    out = tr._generate_and_score_completions(GROUP)  # the tiny policy never stops early: all lengths are equal,
    lengths = torch.tensor([3.0, 6.0, 4.0, 5.0])  # so the probe is fed lengths that vary, as real completions do
    adv, info = tr.estimator(tr.gpm_reward.last[0])
    tr._log_axes([info], lengths, adv)
    logged = tr._metrics["eval"]
    assert logged["gprl/adv_len_corr"][-1] == pytest.approx(_corr(adv, lengths))
    for l in range(2):
        assert logged[f"gprl/axis{l}_adv_len_corr"][-1] == pytest.approx(_corr(info["axis_adv"][l], lengths))
    assert logged["gprl/axis0_adv_len_corr"][-1] != logged["gprl/axis1_adv_len_corr"][-1]
    assert abs(logged["gprl/adv_len_corr"][-1]) > 0.05
