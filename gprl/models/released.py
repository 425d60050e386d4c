"""The GPM paper's released reward models, in the reference repo's format, as a gprl ``GeneralPreferenceModel``.

    GeneralPreferenceModel.from_pretrained("general-preference/GPM-Llama-3.1-8B")   # or GPM-Gemma-2B, or a local copy

The format [CODE general-preference/general-preference-model:
``general_preference/models/rw_model_general_preference.py`` ``_get_reward_model``, the same class in
``gpm_example_usage.py`` ``get_reward_model``; saved by ``general_preference/utils/deepspeed.py`` ``save_model`` =
``model.save_pretrained(state_dict=named_parameters)``]:

- ``class CustomRewardModel(<Arch>ForCausalLM)`` runs ``super().__init__(config)``, then
  ``setattr(self, self.base_model_prefix, <Arch>Model(config))``,
  ``self.value_head = nn.Linear(hidden, value_head_dim, bias=False)`` and, with ``add_prompt_head``,
  ``self.prompt_head = nn.Linear(hidden, value_head_dim // 2, bias=False)``.
  The safetensors keys are therefore the causal LM's (``model.embed_tokens.weight``, ``model.layers.N...``,
  ``model.norm.weight``, ``lm_head.weight`` unless tied) plus ``value_head.weight`` ``(value_head_dim, hidden)`` and
  ``prompt_head.weight`` ``(value_head_dim / 2, hidden)``; the Hub repos are sharded (``model.safetensors.index.json``).
- ``config.json`` is the backbone's config with ``"architectures": ["CustomRewardModel"]`` (seen in
  huggingface.co/general-preference/GPM-Gemma-2-2B/blob/main/config.json: ``model_type`` gemma2,
  ``transformers_version`` 4.43.4). Nothing in it records value_head_dim or the gate (the reference scripts take
  ``--value_head_dim 8 --add_prompt_head`` as flags, ``rewardbench_eval/run_rm_rewardbench.sh``), so both are read
  from the weight shapes (SPEC 1.1: GPM-Llama-3.1-8B 6, GPM-Gemma-2B 8, both gated; ``gpm_example_usage.py`` passes
  ``value_head_dim=4`` for GPM-Llama-3.1-8B, so the sources disagree and only the shape is trusted).
- Scoring (``GPMPipeline``, ``CustomLeftPadRewardBenchPipeline``): the value head at the last token with EOS forced
  there, the prompt head at the last token of the prompt-only chat template (``ReferenceFormatter``), embeddings
  L2-normalised, ``lambda = softmax(prompt_head(h_x))``, ``s = v_c^T R(lambda)^T v_r``; tau = 0.1 in ``GPMPipeline``.

Backbone weights load through transformers' ``AutoModel.from_pretrained`` (which drops the ``model.`` prefix; the
unused ``lm_head``/``value_head``/``prompt_head`` keys are reported as unexpected), the heads through ``safetensors``.
Only safetensors checkpoints are recognised (the released ones are).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from gprl import GprlError

HEAD = "value_head.weight"  # (value_head_dim, hidden): the embedding head; value_head_dim is gprl's k
GATE = "prompt_head.weight"  # (value_head_dim // 2, hidden): the eigenvalue gate, softmax over subspaces
INDEX, SINGLE = "model.safetensors.index.json", "model.safetensors"

# what the reference pipelines use (gpm_example_usage.py GPMPipeline: tau=0.1, max_length=4096; BT: tau 1)
DEFAULTS = {"l2": True, "pooling": "last", "max_length": 4096, "formatting": "reference"}


def read_heads(directory: str | Path) -> dict[str, torch.Tensor] | None:
    """``{HEAD: tensor[, GATE: tensor]}`` from a checkpoint directory in the reference format, else None."""
    from safetensors import safe_open

    d = Path(directory)
    if not (d / "config.json").exists():
        return None
    if (d / INDEX).exists():
        weight_map = json.loads((d / INDEX).read_text()).get("weight_map", {})
        files = {key: d / weight_map[key] for key in (HEAD, GATE) if key in weight_map}
    elif (d / SINGLE).exists():
        files = {HEAD: d / SINGLE, GATE: d / SINGLE}
    else:
        return None
    heads = {}
    for key, f in files.items():
        with safe_open(str(f), framework="pt") as st:
            if key in st.keys():
                heads[key] = st.get_tensor(key)
    return heads if HEAD in heads else None


def load(directory: str | Path, heads: dict[str, torch.Tensor], dtype: str = "float32", **overrides):
    """Build gprl's GPM with the checkpoint's dimensions, its backbone weights and both heads.

    ``overrides`` replace spec fields (e.g. ``tau``, ``max_length``); the defaults are the reference pipelines'.
    """
    from gprl.models.backbone import load_backbone
    from gprl.models.reward_model import GeneralPreferenceModel, RewardModelSpec

    head = heads[HEAD]
    k = head.shape[0]
    gate = heads.get(GATE)
    if gate is not None and tuple(gate.shape) != (k // 2, head.shape[1]):
        raise GprlError(f"{directory}: {GATE} has shape {tuple(gate.shape)}, expected ({k // 2}, {head.shape[1]})")
    spec = RewardModelSpec(**{**DEFAULTS, "k": k, "gate": gate is not None, "tau": 0.1 if k > 1 else 1.0,
                              "backbone": str(directory), **overrides})
    if spec.uses_gate and gate is None:
        raise GprlError(f"{directory}: gate=True but the checkpoint has no {GATE}")
    backbone, tokenizer = load_backbone(str(directory), dtype, strict=True)
    if backbone.config.hidden_size != head.shape[1]:
        raise GprlError(f"{directory}: {HEAD} expects hidden size {head.shape[1]}, the backbone has "
                        f"{backbone.config.hidden_size}")
    model = GeneralPreferenceModel(backbone, tokenizer, spec)
    with torch.no_grad():
        model.head.weight.copy_(head)
        if model.gate is not None:
            model.gate.weight.copy_(gate)
    return model
