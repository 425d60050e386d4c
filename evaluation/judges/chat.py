"""A judge as a chat model, for the benchmarks whose judge writes a verdict in text (MT-Bench, Arena-Hard,
WildBench): a list of chat requests in, the judge's texts out. The benchmark owns the prompts and the parsing; this
module owns calling the judge, the cache and the cost.

    api       any OpenAI-compatible endpoint through the ``openai`` client (GPT-4, GPT-4-turbo, GPT-4o, a vLLM
              server): ``judge.model``, or the benchmark's own paper judge from ``judge.models`` (conf/judge/paper.yaml)
    hf_local  a local Hugging Face chat model (greedy, its chat template), e.g. ``judge.model=tiny-sft:256x6``

Every judgment is cached on disk by (judge, model, endpoint, request), so a re-run, another run directory or another
policy that asks the same question of the same judge calls nothing; the key is read from ``judge.api_key_env`` at
call time and handed to the client in memory only. Before any call the number of requests not yet in the cache is
printed (with an estimated cost when the model's price is known: ``judge.prices`` or the list below), and a progress
bar counts them.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gprl import GprlError
from gprl.provenance import fingerprint

# list prices in USD per million (input, output) tokens when written; judge.prices=[IN,OUT] overrides
PRICES = {"gpt-4": (30.0, 60.0), "gpt-4-0613": (30.0, 60.0), "gpt-4-1106-preview": (10.0, 30.0),
          "gpt-4-turbo-2024-04-09": (10.0, 30.0), "gpt-4o-2024-05-13": (5.0, 15.0), "gpt-4o-2024-08-06": (2.5, 10.0),
          "gpt-4o-mini-2024-07-18": (0.15, 0.6), "gpt-4.1": (2.0, 8.0), "deepseek-chat": (0.27, 1.1)}


@dataclass
class ChatJudge:
    """One judge model behind one endpoint (or one local model), with its cache."""

    name: str  # judge.name
    kind: str  # api | hf_local
    model: str  # the model asked (endpoint name, or local directory / tiny-sft name)
    complete: Callable[[dict], str]  # one request {messages, temperature, max_tokens[, response_format]} -> text
    cache_dir: Path
    record: dict  # what results.json says about the judge (no secrets)
    prices: tuple[float, float] | None = None
    parallel: int = 1  # concurrent requests (api)
    calls: list = field(default_factory=list)  # requests sent by this process (tests and cost)

    def _cache(self) -> Path:
        return self.cache_dir / "judgments.jsonl"

    def judge(self, requests: list[dict], desc: str) -> list[str]:
        """The judge's text for every request, cached requests first; the rest with a progress bar."""
        from tqdm.auto import tqdm

        cache = {}
        if self._cache().exists():
            for line in self._cache().read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    cache[rec["key"]] = rec["output"]
        keys = [fingerprint(self.record["model"], self.record.get("base_url"), r) for r in requests]
        todo = sorted({k: i for i, k in enumerate(keys) if k not in cache}.values())
        cost = self.estimate(requests[i] for i in todo)
        print(f"[gprl] {desc}: {len(requests)} judgments by {self.name} ({self.model}): {len(requests) - len(todo)} "
              f"cached, {len(todo)} to make" + (f", estimated cost {cost}" if todo and cost else ""), flush=True)
        if todo:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            lock = threading.Lock()
            bar = tqdm(total=len(todo), desc=f"{desc} ({self.name})", unit="call")

            def one(i: int) -> None:
                out = self.complete(requests[i])
                with lock:
                    self.calls.append(1)
                    cache[keys[i]] = out
                    with self._cache().open("a") as f:  # appended as it comes: an interrupted run keeps its calls
                        f.write(json.dumps({"key": keys[i], "output": out}) + "\n")
                    bar.update(1)

            try:
                if self.parallel > 1:
                    with ThreadPoolExecutor(self.parallel) as ex:
                        list(ex.map(one, todo))
                else:
                    for i in todo:
                        one(i)
            finally:
                bar.close()
        return [cache[k] for k in keys]

    def estimate(self, requests) -> str:
        """'$X.XX input + at most $Y.YY output' from prompt characters / 4 and each request's max_tokens."""
        if not self.prices:
            return ""
        chars = out = 0
        for r in requests:
            chars += sum(len(m["content"]) for m in r["messages"])
            out += r["max_tokens"]
        p_in, p_out = self.prices
        return f"${chars / 4 * p_in / 1e6:.2f} input (prompt characters / 4) + at most ${out * p_out / 1e6:.2f} output"


def build_chat_judge(cfg, benchmark: str, default_model: str | None = None) -> ChatJudge:
    """The chat judge of ``cfg.judge`` for ``benchmark``: ``judge.models[benchmark]`` if set (the paper's judge per
    benchmark), else ``judge.model``, else ``default_model``. A reward-model or replay judge is not a chat judge: one
    clear message. A missing API key stops here, before any work."""
    j = cfg.judge
    model = (j.models or {}).get(benchmark) or j.model or default_model
    root = Path(cfg.paths.root or ".") / cfg.paths.cache / "judges" / "chat"
    if j.kind == "api":
        j.api_key()  # a missing key stops here, before any work
        record = {"kind": "api", "name": j.name, "model": model, "base_url": j.base_url or "api.openai.com",
                  "api_key_env": j.api_key_env}
        prices = tuple(j.prices) if j.prices else PRICES.get(model)
        return ChatJudge(j.name, "api", model, _openai_completion(j, model), root / f"{j.name}-{fingerprint(record)}",
                         record, prices, j.parallel)
    if j.kind == "hf_local":
        from gprl.models.tiny import resolve_policy
        from gprl.tasks.common import data_context

        path = resolve_policy(model, Path(cfg.paths.root or ".") / cfg.paths.cache, data_context(cfg).shared_data)
        record = {"kind": "hf_local", "name": j.name, "model": model, "path": str(path),
                  "max_new_tokens_cap": j.max_tokens}
        return ChatJudge(j.name, "hf_local", model, _hf_completion(path, j), root / f"{j.name}-{fingerprint(record)}",
                         record)
    raise GprlError(f"judge {j.name!r} (kind {j.kind}) gives pairwise preferences, not the text verdicts that "
                    f"{benchmark} parses: use an API judge (e.g. judge=gpt4 or judge=paper) or judge=hf_local")


def _openai_completion(j, model: str) -> Callable[[dict], str]:
    import logging

    import openai

    for name in ("httpx", "httpx2", "openai"):  # one INFO line per request otherwise; the progress bar counts them
        logging.getLogger(name).setLevel(logging.WARNING)

    clients = []

    def complete(req: dict) -> str:
        if not clients:  # the key from the environment at call time, in memory only
            clients.append(openai.OpenAI(api_key=os.environ.get(j.api_key_env), base_url=j.base_url, max_retries=5))
        kw = {k: req[k] for k in ("temperature", "max_tokens", "response_format") if k in req}
        try:
            r = clients[0].chat.completions.create(model=model, messages=req["messages"], n=1, **kw)
        except openai.OpenAIError as e:
            raise GprlError(f"judge {j.name!r} at {j.base_url or 'api.openai.com'}: {type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200] if str(e) else ''}") from None
        return r.choices[0].message.content or ""

    return complete


def _hf_completion(path: str, j) -> Callable[[dict], str]:
    """Greedy generation with the judge's chat template (a system turn is folded into the user turn when the template
    has no system role); ``judge.max_tokens`` caps the request's max_tokens (a CPU budget)."""
    loaded = []
    lock = threading.Lock()

    def complete(req: dict) -> str:
        import torch

        from gprl.tasks.policy import load_policy

        with lock:
            if not loaded:
                loaded.extend(load_policy(str(path)))
            model, tok = loaded
            messages = req["messages"]
            if getattr(tok, "chat_template", None):
                try:
                    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                except Exception:  # a template without a system role
                    merged = [{"role": "user", "content": "\n\n".join(m["content"] for m in messages if m["role"] != "assistant")}]
                    text = tok.apply_chat_template(merged, add_generation_prompt=True, tokenize=False)
            else:
                text = "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant:"
            n = min(req["max_tokens"], j.max_tokens or req["max_tokens"])
            enc = tok(text, return_tensors="pt", add_special_tokens=False)
            with torch.no_grad():
                ids = model.generate(**enc, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
            return tok.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    return complete
