"""Evaluation at forward-pass speed (gprl.evaluate, GeneralPreferenceModel.features_of): the deduplicated,
length-bucketed batches give the scores of one plain forward pass per pair, in the pairs' own order."""

import random

import pytest
import torch

from gprl import GprlError
from gprl.evaluate import score_pairs
from gprl.models import GeneralPreferenceModel, RewardModelSpec
from gprl.runtime import cpu_flags, resolve_precision
from gprl.trainers.rm_trainer import PairCollator


def _pairs(n=23, seed=0):
    """Pairs of very different lengths, with shared prompts and responses (as RM-Bench has) and a repeated pair."""
    rng = random.Random(seed)
    words = "apple blue chair sky seven river quiet north lamp green answer".split()
    text = lambda k: " ".join(rng.choice(words) for _ in range(k))  # noqa: E731
    prompts = [text(rng.randint(1, 30)) for _ in range(7)]
    pairs = []
    for _ in range(n):
        p = rng.choice(prompts)
        pairs.append({"prompt": p, "chosen": text(rng.randint(1, 40)), "rejected": text(rng.randint(1, 40))})
    pairs[5]["chosen"] = pairs[3]["rejected"]
    pairs[5]["prompt"] = pairs[3]["prompt"]
    pairs.append(dict(pairs[0]))
    return pairs


def _one_pass_per_pair(model, pairs):
    """The definition: s(chosen > rejected) from one forward pass over that pair alone (no batching, no cache)."""
    model.eval()
    out = []
    with torch.no_grad():
        for p in pairs:
            batch = PairCollator(model)([p])
            batch.pop("margin")
            v, lam = model(**batch)
            out.append(model.pair_scores(v[:1], v[1:], None if lam is None else lam[:1]))
    return torch.cat(out)


@pytest.mark.parametrize("k", [1, 4])
def test_bucketed_scores_equal_one_pass_per_pair(tiny_backbone, k):
    torch.manual_seed(0)
    model = GeneralPreferenceModel.from_backbone(tiny_backbone, RewardModelSpec(k=k, max_length=48))
    pairs = _pairs()
    ref = _one_pass_per_pair(model, pairs)
    got = score_pairs(model, pairs, batch_size=4, desc=None)
    assert got.shape == (len(pairs),)
    assert ref.abs().max() > 1e-3  # scores that can tell a wrong order from the right one
    assert torch.allclose(got, ref, atol=1e-5), (got - ref).abs().max()


def test_features_of_restores_input_order(tiny_encoder):
    torch.manual_seed(0)
    model = GeneralPreferenceModel.from_backbone(tiny_encoder, RewardModelSpec(k=4, max_length=48))
    pairs = _pairs()
    prompts, responses = [p["prompt"] for p in pairs], [p["chosen"] for p in pairs]
    h_y, h_x = model.features_of(prompts, responses, batch_size=3)
    for i in (0, 7, len(pairs) - 1):
        alone_y, alone_x = model.features_of([prompts[i]], [responses[i]])
        assert torch.allclose(h_y[i], alone_y[0], atol=1e-5) and torch.allclose(h_x[i], alone_x[0], atol=1e-5)
    assert not h_y.is_inference()  # usable by autograd (FeatureCache trains heads on them)


def test_precision_auto_follows_the_cpu_flags(monkeypatch):
    from gprl import runtime

    assert cpu_flags("processor : 0\nflags : fpu sse avx512f avx512_bf16\n") >= {"avx512_bf16"}
    assert cpu_flags("Features : fp asimd bf16\n") == {"fp", "asimd", "bf16"}
    for flags, want in (({"avx512f", "avx2"}, "fp32"), ({"avx512f", "avx512_bf16"}, "bf16"), ({"amx_bf16"}, "bf16")):
        runtime.native_bf16.cache_clear()
        monkeypatch.setattr(runtime, "cpu_flags", lambda cpuinfo=None, f=flags: f)
        assert resolve_precision("auto", "cpu") == want
        assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    runtime.native_bf16.cache_clear()
    with pytest.raises(GprlError, match="algo.precision must be one of auto, fp32, bf16"):
        resolve_precision("fp16")


def test_bf16_scores_stay_close_to_fp32(tiny_encoder):
    torch.manual_seed(0)
    model = GeneralPreferenceModel.from_backbone(tiny_encoder, RewardModelSpec(k=4, max_length=48))
    pairs = _pairs()
    fp32 = score_pairs(model, pairs, desc=None)
    bf16 = score_pairs(model, pairs, desc=None, precision="bf16")
    assert not torch.equal(fp32, bf16)  # autocast really ran
    assert (fp32 - bf16).abs().max() < 0.05 * fp32.abs().max()
