"""A local Hugging Face chat model as judge, through alpaca_eval's ``huggingface_local_completions`` with the prompt
and text parser of an alpaca_eval evaluator config (default ``alpaca_eval_llama3_70b_fn``: the judge names the
better output; logprob-based configs need an API that returns log-probabilities). A GPU node runs the same with
``judge.kind=api judge.base_url=http://HOST:8000/v1`` against a vLLM server."""

from __future__ import annotations

from evaluation.judges import JUDGES, Annotator, count_calls, package_annotator


@JUDGES.register("hf_local")
def hf_local_judge(cfg) -> Annotator:
    from alpaca_eval.decoders import get_fn_completions

    j = cfg.judge
    conf = package_annotator(j.annotator)
    old = conf.pop("completions_kwargs", {})
    conf.pop("fn_completions", None)
    conf["completions_kwargs"] = {"model_name": j.model, "max_new_tokens": j.max_tokens or old.get("max_tokens", 100),
                                  "do_sample": False, "batch_size": j.batch_size,
                                  "model_kwargs": {"dtype": "auto"}}
    ann = Annotator(config=conf, record={"kind": "hf_local", "name": j.name, "model": j.model, "annotator": j.annotator})
    ann.kwargs["fn_completions"] = count_calls(ann, get_fn_completions("huggingface_local_completions"))
    return ann
