"""Batched sampling from a causal LM with ``transformers.generate`` (the cluster path swaps in vLLM through TRL's
GRPO settings; offline sampling for iterative PO and evaluation stays here)."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm


def chat_prompt(tok, prompt: str) -> str:
    """The text the policy sees: its chat template around one user turn, or around every turn of a multi-turn
    ``Conversation`` (gprl.data.schema), if it has one; else the prompt (a conversation's transcript) as it is."""
    if getattr(tok, "chat_template", None):
        messages = getattr(prompt, "messages", None) or [{"role": "user", "content": prompt}]
        return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return prompt


@torch.no_grad()
def generate(model, tok, prompts: list[str], n: int = 1, max_new_tokens: int = 64, temperature: float = 0.7,
             top_p: float = 0.9, seed: int = 0, batch_size: int = 32, desc: str = "generating") -> list[list[str]]:
    """``n`` answers per prompt (``[prompt][sample]``); greedy when ``temperature == 0``. Seeded: the same call
    gives the same answers, and the caller's random state is left as it was."""
    model.eval()
    texts = [chat_prompt(tok, p) for p in prompts for _ in range(n)]
    sample = temperature > 0
    side, tok.padding_side = tok.padding_side, "left"
    try:
        with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []):
            torch.manual_seed(seed)
            out = []
            for s in tqdm(range(0, len(texts), batch_size), desc=desc, unit="batch", leave=False):
                enc = tok(texts[s:s + batch_size], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(model.device)
                ids = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], max_new_tokens=max_new_tokens, do_sample=sample,
                                     temperature=temperature if sample else None, top_p=top_p if sample else None,
                                     top_k=None, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
                out += tok.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tok.padding_side = side
    return [[a.strip() for a in out[i * n:(i + 1) * n]] for i in range(len(prompts))]
