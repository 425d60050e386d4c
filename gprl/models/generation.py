"""Batched sampling from a causal LM: ``transformers.generate`` here, vLLM on GPU nodes.

``generate`` samples from an in-memory model (transformers). ``sample`` is the door for offline sampling at scale
(GPO/SPPO iterations, benchmark answers): a backend from ``GENERATORS`` (``transformers`` | ``vllm``) over a model
directory, with the prompts split over the job's processes and the answers gathered back in order. GRPO/GPRL
rollouts use TRL's own vLLM path (``rl.use_vllm``).
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from gprl import GprlError
from gprl.registry import Registry

GENERATORS: Registry = Registry("generation backend")


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


def load_causal_lm(path: str, dtype: str = "float32"):
    """A causal LM and its tokenizer (pad = EOS where it has none; no token_type_ids)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gprl.models.backbone import DTYPES

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.model_input_names = ["input_ids", "attention_mask"]  # a causal LM takes no token_type_ids (BERT-style vocabularies add them)
    return AutoModelForCausalLM.from_pretrained(path, dtype=DTYPES[dtype]), tok


def require_vllm(key: str) -> None:
    """One clear message when ``key=true`` asks for vLLM and it cannot be imported here."""
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        raise GprlError(f"{key}=true generates with vLLM, which cannot be imported here ({e}): install it on a GPU "
                        f"node (pip install -e .[gpu]), or set {key}=false to generate with transformers") from None


@GENERATORS.register("transformers")
def transformers_backend(path: str, prompts: list, n: int, max_new_tokens: int, temperature: float, top_p: float,
                         seed: int, dtype: str = "float32", batch_size: int = 32, desc: str = "generating",
                         model=None, tok=None) -> list[list[str]]:
    """``generate`` on ``model``/``tok`` if given, else on the model loaded from ``path``."""
    if model is None:
        model, tok = load_causal_lm(path, dtype)
    return generate(model, tok, prompts, n, max_new_tokens, temperature, top_p, seed, batch_size, desc)


@GENERATORS.register("vllm")
def vllm_backend(path: str, prompts: list, n: int, max_new_tokens: int, temperature: float, top_p: float,
                 seed: int, dtype: str = "float32", batch_size: int = 32, desc: str = "generating",
                 model=None, tok=None) -> list[list[str]]:
    """vLLM's offline engine on ``path`` (GPU nodes; not run on the CPU machines this project is tested on): the
    policy's chat template (vLLM's ``chat``), ``n`` samples per prompt; the engine is freed afterwards, so the GPU
    is the trainer's again."""
    require_vllm("use_vllm")
    import gc

    from vllm import LLM, SamplingParams

    llm = LLM(model=str(path), dtype=dtype, seed=seed)
    params = SamplingParams(n=n, temperature=temperature, top_p=top_p if temperature > 0 else 1.0,
                            max_tokens=max_new_tokens, seed=seed)
    chats = [getattr(p, "messages", None) or [{"role": "user", "content": p}] for p in prompts]  # multi-turn kept
    out = [[c.text.strip() for c in o.outputs] for o in llm.chat(chats, params)]
    del llm
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out


def sample(backend: str, path: str, prompts: list, n: int = 1, max_new_tokens: int = 64, temperature: float = 0.7,
           top_p: float = 0.9, seed: int = 0, **kwargs) -> list[list[str]]:
    """``n`` answers per prompt (``[prompt][sample]``) from ``GENERATORS[backend]``. With several processes each
    samples every ``world``-th prompt (seed + rank) and every process gets all answers, in prompt order."""
    from gprl import distributed

    fn = GENERATORS.get(backend)
    world, rank = distributed.world_size(), distributed.rank()
    if world == 1:
        return fn(path, prompts, n, max_new_tokens, temperature, top_p, seed, **kwargs)
    import torch.distributed as dist

    mine = fn(path, prompts[rank::world], n, max_new_tokens, temperature, top_p, seed + rank, **kwargs)
    parts: list = [None] * world
    dist.all_gather_object(parts, mine)
    out: list = [None] * len(prompts)
    for r, part in enumerate(parts):
        out[r::world] = part
    return out
