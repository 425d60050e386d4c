"""Training on the Trainer: every trainable parameter moves, resume equals an uninterrupted run, and the
command line trains, evaluates, refuses to redo finished work and fails clearly on bad data."""

import json

import pytest
import torch

from gprl.models import GeneralPreferenceModel
from gprl.tasks.reward_model import build_model, train
from gprl.trainers.callbacks import StopAtStep
from tests.helpers import run_cli, run_config, tiny_overrides


def cfg_for(backbone, pairs_file, steps, **extra):
    o = tiny_overrides(backbone, pairs_file, steps=steps) + [f"{k}={v}" for k, v in extra.items()]
    return run_config(o)


def params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("k", [1, 4])
def test_one_step_changes_every_trainable_parameter(tiny_backbone, pairs_file, tmp_path, k):
    from transformers import set_seed

    cfg = cfg_for(tiny_backbone, pairs_file, steps=1, k=k, **{"algo.lr": 1e-2, "algo.warmup_ratio": 0})
    set_seed(cfg.seed)
    before = params(build_model(cfg))
    final = train(cfg, tmp_path)
    after = params(GeneralPreferenceModel.from_pretrained(final))
    assert before.keys() == after.keys()
    unchanged = [n for n in before if torch.equal(before[n], after[n])]
    if k == 1 and "encoder" in tiny_backbone:
        # BT only sees r_w - r_l: the last LayerNorm's bias moves every mean-pooled reward by the same constant,
        # so its gradient is exactly zero. The GPM's skew-symmetric score has no such invariance (k=4 case).
        assert unchanged in ([], ["backbone.encoder.layer.1.output.LayerNorm.bias"])
    else:
        assert not unchanged, f"parameters that did not move: {unchanged}"
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in log)


def test_resume_equals_uninterrupted(tiny_encoder, pairs_file, tmp_path):
    cfg = cfg_for(tiny_encoder, pairs_file, steps=4)
    straight = params(GeneralPreferenceModel.from_pretrained(train(cfg, tmp_path / "a")))
    out = train(cfg, tmp_path / "b", callbacks=[StopAtStep(2)])  # "crash" after step 2 (checkpoint-2 saved)
    assert out.name == "checkpoints" and (out / "checkpoint-2").is_dir()
    resumed = params(GeneralPreferenceModel.from_pretrained(train(cfg, tmp_path / "b")))
    for n in straight:
        assert torch.allclose(straight[n], resumed[n], atol=1e-6), n


def test_cli_trains_evaluates_and_keeps_finished_results(tiny_encoder, pairs_file, tmp_path):
    run_dir = tmp_path / "run"
    r = run_cli(tiny_overrides(tiny_encoder, pairs_file, run_dir))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((run_dir / "results.json").read_text())
    assert res["n"] == 16 and 0 <= res["accuracy"] <= 1
    # algo.precision=auto is resolved once, before the run is recorded: the record and the results name what ran
    from gprl.runtime import resolve_precision

    assert res["precision"] == resolve_precision("auto") and res["threads"] >= 1
    assert json.loads((run_dir / "fingerprint.json").read_text())["config"]["algo.precision"] == res["precision"]
    assert set(res["per_subset"]) == {"easy", "hard"}
    assert "longer wins" in r.stdout
    mtime = (run_dir / "results.json").stat().st_mtime
    again = run_cli(tiny_overrides(tiny_encoder, pairs_file, run_dir))
    assert again.returncode == 0 and "this run is finished" in again.stdout
    assert (run_dir / "results.json").stat().st_mtime == mtime

    # evaluate the trained model on any pairwise file
    ev = run_cli(["+experiment=rm_eval", f"reward_model.path={run_dir / 'model'}", f"eval.pairs={pairs_file}",
                  "logger=none", f"hydra.run.dir={tmp_path / 'ev'}"])
    assert ev.returncode == 0, ev.stderr[-3000:]
    ev_res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert ev_res["accuracy"] == res["accuracy"] and ev_res["n"] == 16

    # a malformed file: one clear line, non-zero exit, earlier results untouched
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": \n')
    r = run_cli(["+experiment=rm_eval", f"reward_model.path={run_dir / 'model'}", f"eval.pairs={bad}",
                 "logger=none", f"hydra.run.dir={tmp_path / 'ev'}"])
    assert r.returncode == 2 and f"{bad}:2: malformed JSON line" in r.stderr and "Traceback" not in r.stderr
    assert json.loads((tmp_path / "ev" / "results.json").read_text()) == ev_res


def test_multirun_sweep_dirs_do_not_collide(tiny_encoder, pairs_file, tmp_path):
    o = [x for x in tiny_overrides(tiny_encoder, pairs_file) if not x.startswith("hydra.")]
    r = run_cli(["-m", "k=1,2", f"hydra.sweep.dir={tmp_path}", *o])
    assert r.returncode == 0, r.stderr[-3000:]
    dirs = sorted(p.parent.name for p in tmp_path.glob("*/results.json"))
    assert len(dirs) == 2 and dirs[0] != dirs[1]
    ks = sorted(json.loads((tmp_path / d / "results.json").read_text())["k"] for d in dirs)
    assert ks == [1, 2]


def test_nan_loss_is_a_clear_error():
    from gprl import GprlError
    from gprl.trainers.callbacks import check_finite

    with pytest.raises(GprlError, match="the training loss became nan at step 7"):
        check_finite(float("nan"), "the training loss", 7)


def test_head_lr_is_the_heads_param_group_and_lr_the_backbones(tiny_encoder, pairs_file, tmp_path):
    """algo.head_lr reaches the Trainer's optimizer as the value head's and the gate's own group; one Adam step
    then moves each head weight by about head_lr and each backbone weight by about lr (Adam's first step is
    +-lr per element)."""
    from gprl.losses import LOSSES
    from gprl.tasks.reward_model import training_args
    from gprl.trainers.rm_trainer import PairCollator, PreferenceTrainer, head_parameters
    from tests.conftest import PAIRS

    cfg = cfg_for(tiny_encoder, pairs_file, steps=1, k=4, **{"algo.lr": 1e-6, "algo.head_lr": 1e-2,
                                                             "algo.warmup_ratio": 0, "algo.weight_decay": 0.1})
    assert cfg.algo.head_lr == 1e-2
    model = build_model(cfg)
    trainer = PreferenceTrainer(model=model, args=training_args(cfg, tmp_path / "ck", "none"), train_dataset=PAIRS,
                                data_collator=PairCollator(model), loss_fn=LOSSES.get("gpm"), tau=0.1,
                                head_lr=cfg.algo.head_lr)
    groups = trainer.create_optimizer().param_groups
    heads = {id(p) for p in head_parameters(model)}
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sum(len(g["params"]) for g in groups) == len(trainable) == len(lr_of)  # each param in one group
    assert len(heads) == 2 and all(lr_of[i] == 1e-2 for i in heads)
    assert all(lr_of[id(p)] == 1e-6 for p in trainable if id(p) not in heads)
    assert all(g["weight_decay"] == 0.1 for g in groups if any(id(p) in heads for p in g["params"]))

    # through train(): the option is not dropped on the way
    before = params(build_model(cfg))
    after = params(GeneralPreferenceModel.from_pretrained(train(cfg, tmp_path / "run")))
    moved = {n: (after[n] - before[n]).abs().max().item() for n in before}
    for n, d in moved.items():
        if n.startswith(("head.", "gate.")):
            assert 5e-3 < d < 2e-2, (n, d)
        else:
            assert d < 2e-6, (n, d)


def test_head_lr_must_be_positive():
    from gprl import GprlError
    from gprl.config import AlgoConfig

    with pytest.raises(GprlError, match="algo.head_lr must be > 0"):
        AlgoConfig(head_lr=0.0)
    assert AlgoConfig().head_lr is None


def test_cached_features_are_the_backbones(tiny_backbone):
    """forward(h_y, h_x) from a FeatureCache gives the same embeddings and eigenvalues as forward on tokens."""
    from gprl.models import RewardModelSpec
    from gprl.trainers.rm_trainer import CachedPairCollator, FeatureCache, PairCollator
    from tests.conftest import PAIRS

    torch.manual_seed(0)
    model = GeneralPreferenceModel.from_backbone(tiny_backbone, RewardModelSpec(k=4, max_length=64)).eval()
    records = PAIRS[:4]
    cache = FeatureCache(model, PAIRS, batch_size=3)
    assert len(cache) == 8  # distinct (prompt, response)
    with torch.no_grad():
        tokens = PairCollator(model)(records)
        cached = CachedPairCollator(cache)(records)
        assert torch.equal(tokens.pop("margin"), cached.pop("margin"))
        v, lam = model(**tokens)
        cv, clam = model(**cached)
    assert torch.allclose(v, cv, atol=1e-5) and torch.allclose(lam, clam, atol=1e-5)


def test_cache_features_trains_as_a_frozen_backbone_and_saves_a_normal_model(tiny_encoder, pairs_file, tmp_path):
    """algo.cache_features=true gives the same heads as training with every backbone block frozen (tiny BERT:
    freeze_layers=2 freezes it all), leaves the backbone as loaded, and saves a model gprl loads and scores."""
    from gprl.evaluate import score_pairs
    from tests.conftest import PAIRS

    common = {"algo.head_lr": 1e-2, "algo.warmup_ratio": 0, "algo.precision": "fp32"}  # bf16 rounds differently per batch
    frozen = cfg_for(tiny_encoder, pairs_file, steps=3, **common, **{"model.freeze_layers": 2})
    cached = cfg_for(tiny_encoder, pairs_file, steps=3, **common, **{"algo.cache_features": True})
    a = GeneralPreferenceModel.from_pretrained(train(frozen, tmp_path / "frozen"))
    b = GeneralPreferenceModel.from_pretrained(train(cached, tmp_path / "cached"))
    start = params(build_model(cached))
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    for n in pa:
        assert torch.allclose(pa[n], pb[n], atol=1e-5), n
        if n.startswith("backbone."):
            assert torch.equal(pb[n], start[n]) if n in start else True
    assert not torch.allclose(pb["head.weight"], start["head.weight"])
    assert torch.allclose(score_pairs(a, PAIRS), score_pairs(b, PAIRS), atol=1e-5)
