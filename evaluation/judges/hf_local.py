"""A local Hugging Face chat model as judge, with the prompt and text parser of an alpaca_eval evaluator config
(default ``alpaca_eval_llama3_70b_fn``: the judge names the better output; logprob-based configs need an endpoint
that returns log-probabilities). Generation is transformers' (greedy, the judge's chat template around the
config's ChatML messages): alpaca_eval 0.6.6's own ``huggingface_local_completions`` passes ``load_in_8bit`` to
``from_pretrained`` on CPU, which transformers 5 rejects. A GPU node runs a large judge with
``judge=vllm_server`` (vLLM's OpenAI-compatible endpoint) instead."""

from __future__ import annotations

from evaluation.judges import JUDGES, Annotator, count_calls, package_annotator


def _chat(tok, prompt: str) -> str:
    """The config's ChatML prompt as the judge model sees it: its own chat template if it has one."""
    from alpaca_eval.utils import prompt_to_chatml

    messages = prompt_to_chatml(prompt)
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant:"


@JUDGES.register("hf_local")
def hf_local_judge(cfg) -> Annotator:
    j = cfg.judge
    conf = package_annotator(j.annotator)
    max_new = j.max_tokens or conf.get("completions_kwargs", {}).get("max_tokens", 100)
    for k in ("completions_kwargs", "fn_completions"):
        conf.pop(k, None)
    ann = Annotator(config=conf, record={"kind": "hf_local", "name": j.name, "model": j.model, "annotator": j.annotator,
                                         "max_new_tokens": max_new})
    loaded = []

    def completions(prompts, **_):
        from pathlib import Path

        from gprl.models.tiny import resolve_policy
        from gprl.tasks.common import data_context
        from gprl.tasks.policy import load_policy

        if not loaded:  # a directory, a Hub name or a laptop policy (tiny-sft:HxL), as the text-verdict judges take
            cache = Path(cfg.paths.root or ".") / cfg.paths.cache
            loaded.extend(load_policy(str(resolve_policy(j.model, cache, data_context(cfg).shared_data))))
        model, tok = loaded
        texts = [_chat(tok, p) for p in prompts]
        side, tok.padding_side = tok.padding_side, "left"
        try:
            out = []
            for s in range(0, len(texts), j.batch_size):
                enc = tok(texts[s:s + j.batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
                ids = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
                out += tok.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        finally:
            tok.padding_side = side
        return {"completions": out}

    ann.kwargs["fn_completions"] = count_calls(ann, completions)
    return ann
