"""A judge behind any OpenAI-compatible endpoint (GPT-4-turbo, GPT-4o-mini, DeepSeek, a vLLM server), through
alpaca_eval's own ``openai_completions`` with the prompt and parser of an alpaca_eval evaluator config.

The key is read from ``judge.api_key_env`` when the judge is built (a missing key stops the run before any work)
and handed to the package in memory only (``openai_api_keys``, which the package leaves out of its logs), so it
appears in no config, log, results file or W&B run.
"""

from __future__ import annotations

import os

from evaluation.judges import JUDGES, Annotator, package_annotator

NO_CLIENT_CONFIG = "<no client config file: key from judge.api_key_env>"


@JUDGES.register("api")
def api_judge(cfg) -> Annotator:
    j = cfg.judge
    key = j.api_key()
    conf = package_annotator(j.annotator)
    kw = conf.setdefault("completions_kwargs", {})
    kw["model_name"] = j.model
    if j.max_tokens is not None:
        kw["max_tokens"] = j.max_tokens
    if j.base_url:  # ours replaces the evaluator config's own endpoint
        kw.pop("client_kwargs", None)
    # the package's client-config file, if a user keeps one; else a path that is no file, so the key given here is used
    client_config = os.environ.get("OPENAI_CLIENT_CONFIG_PATH", NO_CLIENT_CONFIG)

    def decoding() -> dict:
        out = {"openai_api_keys": [os.environ.get(j.api_key_env, key)], "client_config_path": client_config}
        if j.base_url:
            out["openai_api_base"] = j.base_url
        return out

    return Annotator(config=conf, decoding=decoding,
                     record={"kind": "api", "name": j.name, "model": j.model, "base_url": j.base_url or "api.openai.com",
                             "annotator": j.annotator, "api_key_env": j.api_key_env})
