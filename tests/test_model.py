"""GeneralPreferenceModel on tiny local encoder and decoder backbones."""

import pytest
import torch

from gprl import GprlError
from gprl.models import GeneralPreferenceModel, RewardModelSpec
from gprl.trainers.rm_trainer import PairCollator
from tests.conftest import PAIRS

RESPONSES = ["An apple.", "A chair.", "Blue, like the sky.", "I do not know."]


def make(backbone, **kw):
    torch.manual_seed(0)
    return GeneralPreferenceModel.from_backbone(backbone, RewardModelSpec(**{"k": 4, "max_length": 64, **kw}))


def test_score_matrix_is_skew_symmetric(tiny_backbone):
    m = make(tiny_backbone)
    S = m.score_matrix("Name a fruit.", RESPONSES)
    assert S.shape == (4, 4)
    assert torch.allclose(S, -S.T, atol=1e-6)
    assert torch.all(S.diagonal() == 0)
    assert S.abs().max() > 0


def test_l2_and_gate_shapes(tiny_backbone):
    m = make(tiny_backbone, k=6)
    v, lam = m.embed(["Name a fruit."] * 4, RESPONSES)
    assert v.shape == (4, 6) and lam.shape == (4, 3)
    assert torch.allclose(v.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert torch.allclose(lam.sum(-1), torch.ones(4), atol=1e-5) and torch.all(lam >= 0)


def test_gate_depends_on_the_prompt_only(tiny_backbone):
    """Decoders read h_x at the last prompt token (causal attention); encoders use a prompt-only pass."""
    m = make(tiny_backbone)
    _, lam = m.embed(["Name a fruit."] * 4 + ["What is 2+2?"], RESPONSES + ["4"])
    assert torch.allclose(lam[:4], lam[0].expand(4, -1), atol=1e-5)
    assert not torch.allclose(lam[0], lam[4])


def test_k1_is_a_scalar_bt_model(tiny_backbone):
    m = make(tiny_backbone, k=1)
    assert m.gate is None and m.head.out_features == 1
    v, lam = m.embed(["Name a fruit."] * 4, RESPONSES)
    assert lam is None
    S = m.score_matrix("Name a fruit.", RESPONSES)
    assert torch.allclose(S, v - v.T, atol=1e-6)


def test_gate_and_head_get_gradients(tiny_backbone):
    m = make(tiny_backbone)
    m.train()
    batch = PairCollator(m)(PAIRS[:4])
    batch.pop("margin")
    v, lam = m(**batch)
    b = v.shape[0] // 2
    loss = -torch.nn.functional.logsigmoid(m.pair_scores(v[:b], v[b:], lam[:b]) / 0.1).mean()
    loss.backward()
    assert m.gate.weight.grad is not None and m.gate.weight.grad.abs().sum() > 0
    assert m.head.weight.grad.abs().sum() > 0


def test_k_plus_one_passes_for_k_responses(tiny_encoder):
    """An encoder GPM with a gate scores K responses with K sequences + 1 prompt-only sequence."""
    m = make(tiny_encoder)
    rows = []
    m.backbone.register_forward_hook(lambda mod, args, kwargs, out: rows.append(kwargs["input_ids"].shape[0]),
                                     with_kwargs=True)
    m.score_matrix("Name a fruit.", RESPONSES + [r + " Yes." for r in RESPONSES])
    assert sum(rows) == 8 + 1
    rows.clear()
    m.score_matrix("Name a fruit.", RESPONSES * 2)  # a repeated response is embedded once
    assert sum(rows) == 4 + 1


def test_save_and_load_roundtrip(tiny_backbone, tmp_path):
    m = make(tiny_backbone, k=4, tau=0.1)
    S = m.score_matrix("Name a fruit.", RESPONSES)
    m.save_pretrained(tmp_path / "rm")
    m2 = GeneralPreferenceModel.from_pretrained(tmp_path / "rm")
    assert m2.spec.k == 4 and m2.spec.gate and m2.spec.l2
    assert torch.allclose(m2.score_matrix("Name a fruit.", RESPONSES), S, atol=1e-6)


def test_bad_specs_and_paths(tmp_path):
    with pytest.raises(GprlError, match="k=3"):
        RewardModelSpec(k=3)
    with pytest.raises(GprlError, match="tau"):
        RewardModelSpec(k=2, tau=0)
    with pytest.raises(GprlError, match="not a gprl reward model"):
        GeneralPreferenceModel.from_pretrained(tmp_path)


def test_hub_names_go_through_snapshot_download(tiny_encoder, tmp_path, monkeypatch):
    """Where the Hub exists a saved reward model loads by repository name: the name is resolved with
    huggingface_hub.snapshot_download (replaced here by a local copy, since this machine has no Hub)."""
    import huggingface_hub

    m = make(tiny_encoder)
    m.save_pretrained(tmp_path / "repo")
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id: calls.append(repo_id) or str(tmp_path / "repo"))
    m2 = GeneralPreferenceModel.from_pretrained("someone/gpm-tiny")
    assert calls == ["someone/gpm-tiny"] and m2.spec.k == 4
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(GprlError, match="neither a local directory nor loadable from the Hub"):
        GeneralPreferenceModel.from_pretrained("someone/missing")
