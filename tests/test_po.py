"""Iterative preference optimisation (GPO, SPPO on TRL's DPOTrainer; DPO, SimPO through TRL), the sampling
helper and the held-out policy evaluation, on tiny local models."""

import json

import datasets
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gprl.losses.policy import iterative_targets
from gprl.models.generation import generate
from gprl.tasks.po import _chat, label_pairs
from gprl.trainers.po import PO_TRAINERS, POSettings

PROMPTS = ["Name a fruit.", "Name a colour.", "Say hello.", "Count to three."]


def _policy(path):
    tok = AutoTokenizer.from_pretrained(path)
    return AutoModelForCausalLM.from_pretrained(path), tok


def _pairs(targets=(3.0, -2.0)):
    rows = [{"prompt": p, "chosen": f"Yes {i} good answer.", "rejected": "no", "target_chosen": targets[0],
             "target_rejected": targets[1]} for i, p in enumerate(PROMPTS)]
    return datasets.Dataset.from_list([_chat(r) for r in rows])


def _settings(tmp_path, loss, **kw):
    beta = {"gpo": 0.5, "sppo": 0.5, "dpo": 0.1, "simpo": 2.5}[loss]
    return POSettings(loss=loss, output_dir=str(tmp_path / loss), beta=beta, lr=1e-2, batch_size=2, epochs=1.0,
                      warmup_ratio=0.0, scheduler="constant", optim="adamw_torch", **kw)


@pytest.mark.parametrize("loss", PO_TRAINERS.names())
def test_two_steps_change_every_policy_parameter(tmp_path, tiny_decoder, loss):
    model, tok = _policy(tiny_decoder)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = PO_TRAINERS.get(loss)(model, tok, _pairs(), _settings(tmp_path, loss))
    trainer.train()
    assert trainer.state.global_step == 2
    unchanged = [n for n, p in model.named_parameters() if torch.equal(before[n], p.detach())]
    assert not unchanged, unchanged


@pytest.mark.parametrize("loss", ["gpo", "sppo"])
def test_score_po_loss_at_the_reference_is_the_targets_alone(tmp_path, tiny_decoder, loss):
    """Before any update pi_theta = pi_t, so rho = 0 and the loss is 1/2 [(t_w')^2 + (t_l')^2] with t' the
    loss's target transform: a check that TRL's precomputed reference log-probs and ours line up exactly."""
    model, tok = _policy(tiny_decoder)
    s = _settings(tmp_path, loss, clamp=1000.0)
    trainer = PO_TRAINERS.get(loss)(model, tok, _pairs((3.0, -2.0)), s)
    batch = next(iter(trainer.get_train_dataloader()))
    model.train()  # dropout is off (TRL disables it), so this is deterministic
    with torch.no_grad():
        got = trainer.compute_loss(model, batch).item()
    if loss == "gpo":
        tw, tl = 3.0 / s.beta, -2.0 / s.beta
    else:
        tw, tl = (3.0 - 0.5) / s.beta, (-2.0 - 0.5) / s.beta
    assert got == pytest.approx(0.5 * (tw ** 2 + tl ** 2), rel=1e-5)
    assert trainer._metrics["train"]["rho/chosen"][-1] == pytest.approx(0.0, abs=1e-4)


class _FakeRM:
    """Embeds a response as its length (k=1, BT): longer = better."""

    class spec:
        tau, k = 1.0, 1

    def embed(self, prompts, responses, batch_size=32):
        return torch.tensor([[float(len(r))] for r in responses]), None


def test_label_pairs_takes_the_best_and_worst_sample_with_their_targets():
    samples = [["aa", "a", "aaaa", "aaa"], ["same", "same", "same", "same"]]
    rows = label_pairs(_FakeRM(), ["p1", "p2"], samples, "gpo")
    assert len(rows) == 1  # identical samples carry no preference
    r = rows[0]
    assert (r["chosen"], r["rejected"]) == ("aaaa", "a")
    t = iterative_targets(torch.tensor([[float(len(a) - len(b)) for b in samples[0]] for a in samples[0]]), 1.0)
    assert (r["target_chosen"], r["target_rejected"]) == (t["gpo_w"], t["gpo_l"])
    assert label_pairs(_FakeRM(), ["p1"], samples[:1], "sppo")[0]["target_chosen"] == t["sppo_w"]


def test_generate_is_seeded_and_leaves_the_callers_random_state_alone(tiny_decoder):
    model, tok = _policy(tiny_decoder)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = generate(model, tok, PROMPTS[:2], n=3, max_new_tokens=5, seed=7)
    assert torch.equal(state, torch.get_rng_state())
    assert len(a) == 2 and all(len(x) == 3 for x in a)
    assert a == generate(model, tok, PROMPTS[:2], n=3, max_new_tokens=5, seed=7)


def _eval_cfg(tmp_path, judge, pairs_file):
    from tests.helpers import run_config

    return run_config(["task=train_po", f"paths.cache={tmp_path / 'cache'}", f"policy_eval.judge={judge}",
                       "policy_eval.max_prompts=6", "policy_eval.max_new_tokens=6", "policy_eval.judge_check.source=jsonl",
                       f"policy_eval.judge_check.path={pairs_file}"])


def test_a_policy_against_itself_wins_half_by_ties(tmp_path, tiny_decoder, judge_dir, pairs_file):
    from gprl.policy_eval import evaluate_policy

    cfg = _eval_cfg(tmp_path, judge_dir, pairs_file)
    res = evaluate_policy(cfg, tiny_decoder, tiny_decoder, tmp_path)
    assert res["n"] == 6 and res["ties"] == 6 and res["win_rate"] == 50.0
    assert res["mean_words_trained"] == res["mean_words_initial"]
    assert 0.0 <= res["judge_check"]["accuracy"] <= 1.0
    lines = (tmp_path / "policy_eval_answers.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["judge_score"] == 0.0


def test_a_changed_policy_is_compared_and_the_initial_answers_are_cached(tmp_path, tiny_decoder, judge_dir, pairs_file):
    from gprl.models.tiny import build_causal_lm
    from gprl.policy_eval import evaluate_policy

    other = str(build_causal_lm(tmp_path / "other", hidden_size=32, num_layers=2, num_heads=2, seed=1))
    cfg = _eval_cfg(tmp_path, judge_dir, pairs_file)
    (tmp_path / "a").mkdir()
    res = evaluate_policy(cfg, tiny_decoder, other, tmp_path / "a")
    assert res["ties"] < 6 and 0.0 <= res["win_rate"] <= 100.0 and res["stderr"] > 0
    assert len(list((tmp_path / "cache" / "policy_answers").glob("*.json"))) == 1  # the initial policy's answers


@pytest.mark.parametrize("experiment, k", [("alpaca_gpo", 2), ("alpaca_simpo", 1)])
def test_cli_runs_iterations_then_the_evaluation(tiny_encoder, tiny_decoder, pairs_file, judge_dir, tmp_path,
                                                  experiment, k):
    from tests.helpers import policy_overrides, run_cli

    r = run_cli([f"+experiment={experiment}", f"k={k}",
                 *policy_overrides(tiny_encoder, tiny_decoder, judge_dir, pairs_file, tmp_path),
                 "po.iterations=2", "po.prompts_per_iteration=4", "po.num_samples=3", "po.max_completion_length=6",
                 "po.batch_size=2"])
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["k"] == k and len(res["iterations"]) == 2 and res["policy"].endswith("iter2/policy")
    assert res["policy_eval"]["n"] == 4 and "surface features" in r.stdout
    pairs = [json.loads(x) for x in (tmp_path / "run" / "iter1" / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["chosen"] != p["rejected"] for p in pairs)
    assert len(list((tmp_path / "cache" / "reward_models").glob(f"k{k}-*/model/gpm_config.json"))) == 1
    from gprl.policy_eval import collect, markdown

    rows = collect([tmp_path])
    assert [(x["algorithm"], x["k"]) for x in rows] == [(experiment.split("_")[1], k)]
    assert f"| {experiment.split('_')[1]} | {k} |" in markdown(rows)


@pytest.mark.parametrize("loss", ["gpo", "dpo"])
def test_lora_trains_only_the_adapters_and_saves_a_merged_model(tmp_path, tiny_decoder, loss):
    from peft import LoraConfig

    from gprl.tasks.policy import save_policy

    model, tok = _policy(tiny_decoder)
    lora = LoraConfig(r=2, lora_alpha=4, task_type="CAUSAL_LM", target_modules="all-linear")
    trainer = PO_TRAINERS.get(loss)(model, tok, _pairs(), _settings(tmp_path, loss, peft_config=lora))
    trained = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if not p.requires_grad}
    assert trained and all("lora_" in n for n in trained)
    trainer.train()
    params = dict(trainer.model.named_parameters())
    assert not [n for n in trained if torch.equal(trained[n], params[n].detach())]
    assert all(torch.equal(frozen[n], params[n].detach()) for n in frozen)
    save_policy(trainer, tok, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert not any("lora" in n for n, _ in merged.named_parameters())


def test_po_refuses_to_wrap_prompts_before_any_work(tmp_path):
    """Iterations take disjoint prompt parts; asking for more than the source has is one line, before training."""
    from tests.helpers import run_cli

    p = run_cli(["+experiment=alpaca_gpo", "po.iterations=3", "po.prompts_per_iteration=300", "logger=none",
                 f"paths.cache={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}"])
    assert p.returncode == 2 and "needs 900 distinct prompts" in p.stderr and "has 644" in p.stderr
    assert not (tmp_path / "cache").exists()  # no reward model or judge was trained


def test_policy_evaluation_prompts_do_not_depend_on_the_training_seed():
    """The held-out prompts a policy is judged on are the same for every training seed (eval.subsample_seed), so
    "± over seeds" in the policy tables is training variance only."""
    from gprl.policy_eval import _prompts
    from tests.helpers import run_config

    a, b = (_prompts(run_config(["+experiment=alpaca_gprl", f"seed={s}", "policy_eval.max_prompts=20"])) for s in (0, 1))
    assert len(a) == 20 and a == b
    c = _prompts(run_config(["+experiment=alpaca_gprl", "eval.subsample_seed=1", "policy_eval.max_prompts=20"]))
    assert c != a
