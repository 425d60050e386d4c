"""A fake OpenAI-compatible chat endpoint on the loopback address, for testing API judges without a network.

It answers AlpacaEval's weighted classifier prompt the way GPT-4-turbo does (one token with log-probabilities of
'm' and 'M'), records the Authorization header of every request, and answers without any usable token when the
prompt contains ``UNPARSEABLE`` (so the judge's parser fails on that pair). Given ``reply`` (request body -> text), it
answers every request with that text instead: canned judgments for the benchmarks whose judge writes its verdict."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional


class FakeOpenAI:
    def __init__(self, reply: Optional[Callable[[dict], str]] = None):
        self.auth: list[str] = []
        self.prompts: list[str] = []
        self.bodies: list[dict] = []
        self.reply = reply
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.auth.append(self.headers.get("Authorization", ""))
                text = json.dumps(body.get("messages", body.get("prompt")))
                owner.prompts.append(text)
                owner.bodies.append(body)
                if owner.reply is not None:
                    top = [{"token": owner.reply(body), "bytes": [], "logprob": 0.0}]
                elif "UNPARSEABLE" in text:
                    top = [{"token": "Both", "bytes": [66], "logprob": -0.1}]
                else:  # prefers output (m) with probability 0.8
                    top = [{"token": "m", "bytes": [109], "logprob": -0.223}, {"token": "M", "bytes": [77], "logprob": -1.609}]
                reply = {"id": "fake", "object": "chat.completion", "created": 0, "model": body.get("model", "fake"),
                         "choices": [{"index": 0, "finish_reason": "length",
                                      "message": {"role": "assistant", "content": top[0]["token"]},
                                      "logprobs": {"content": [{**top[0], "top_logprobs": top}]}}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
