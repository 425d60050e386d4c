"""Turn (prompt, response) text into token ids, and find the prompt representation for the scale gate.

Causal backbones (SPEC 1.1): the chat template when the tokenizer has one, else ``prompt\\nresponse``;
a multi-turn prompt (``gprl.data.schema.Conversation``) goes through the template with all its earlier user and
assistant turns, as rewardbench 0.1.2 renders it, and reads as its transcript where there is no template;
the sequence ends in EOS (the head reads the last token) and ``prompt_len`` marks the last token of the
prompt-only template, whose hidden state ``h_x`` feeds the gate in the same pass (causal attention makes it
depend on x only). Encoders (MiniLM): a text pair ``[CLS] prompt [SEP] response [SEP]`` and a separate
prompt-only pass for the gate.

``formatting="reference"`` (``ReferenceFormatter``) reproduces the GPM reference pipelines instead, for the released
checkpoints (``gprl.models.released``).
"""

from __future__ import annotations

from dataclasses import dataclass

from gprl.data.schema import prompt_messages


@dataclass
class Encoded:
    input_ids: list[int]
    prompt_len: int  # number of leading tokens that are the prompt (causal) / 0 for encoders


class Formatter:
    def __init__(self, tokenizer, decoder: bool, max_length: int):
        self.tok = tokenizer
        self.decoder = decoder
        self.max_length = max_length
        self.chat = decoder and getattr(tokenizer, "chat_template", None) is not None

    # ---- causal -------------------------------------------------------------------------------
    def _prompt_ids(self, prompt: str) -> list[int]:
        if self.chat:
            return list(self.tok.apply_chat_template(prompt_messages(prompt), add_generation_prompt=True,
                                                     tokenize=True, return_dict=False))
        return self.tok(str(prompt) + "\n", add_special_tokens=True)["input_ids"]

    def _response_ids(self, prompt: str, response: str, n_prompt: int) -> list[int]:
        if self.chat:
            full = list(self.tok.apply_chat_template(
                prompt_messages(prompt) + [{"role": "assistant", "content": response}], tokenize=True,
                return_dict=False))
            return full[n_prompt:]
        return self.tok(response, add_special_tokens=False)["input_ids"]

    def encode(self, prompt: str, response: str) -> Encoded:
        if not self.decoder:
            ids = self.tok(str(prompt), response, truncation="longest_first", max_length=self.max_length)["input_ids"]
            return Encoded(ids, 0)
        p = self._prompt_ids(prompt)
        r = self._response_ids(prompt, response, len(p))
        # keep the end of a long prompt (at most half the budget), then as much response as fits
        p = p[-max(1, min(len(p), self.max_length // 2)):] if len(p) + len(r) + 1 > self.max_length else p
        r = r[: self.max_length - len(p) - 1]
        eos = self.tok.eos_token_id
        ids = p + r
        if eos is not None and (not ids or ids[-1] != eos):
            ids = ids + [eos]
        return Encoded(ids[: self.max_length], len(p))

    def encode_prompt(self, prompt: str) -> list[int]:
        """Prompt-only ids for the encoder gate pass."""
        return self.tok(str(prompt), truncation=True, max_length=self.max_length)["input_ids"]


class ReferenceFormatter(Formatter):
    """The GPM reference pipelines' inputs, which the released checkpoints were trained and scored with.

    [CODE general-preference/general-preference-model ``gpm_example_usage.py`` ``GPMPipeline.__call__`` and
    ``rewardbench_eval/rewardbench_utils.py`` ``CustomLeftPadRewardBenchPipeline.__call__``]:
    ``text = tok.apply_chat_template(messages, tokenize=False)`` is tokenised with the tokenizer's own special tokens
    (so Llama-3.1 and Gemma get a second BOS), truncated on the right to ``max_length``, and the **last token is
    overwritten** with EOS (not appended). The gate reads index ``L - response_len - 1`` of the left-padded chosen
    sequence, ``response_len = len(tok(text)) - len(tok(chat([sample[0]])))``, the template of the first message
    alone **without** a generation prompt: unpadded, that is index ``len(tok(chat([sample[0]]))) - 1``, so
    ``prompt_len`` is that length. (For a multi-turn prompt, a ``Conversation``, ``sample[0]`` is its first user turn,
    as in the reference's RewardBench runs.)
    """

    def __init__(self, tokenizer, decoder: bool, max_length: int):
        super().__init__(tokenizer, decoder, max_length)
        if not decoder or getattr(tokenizer, "chat_template", None) is None:
            from gprl import GprlError

            raise GprlError("formatting='reference' needs a decoder whose tokenizer has a chat template")

    def _ids(self, messages: list[dict]) -> list[int]:
        text = self.tok.apply_chat_template(messages, tokenize=False)
        return list(self.tok(text, truncation=True, max_length=self.max_length)["input_ids"])

    def encode(self, prompt: str, response: str) -> Encoded:
        messages = prompt_messages(prompt) + [{"role": "assistant", "content": response}]
        ids = self._ids(messages)
        ids[-1] = self.tok.eos_token_id
        return Encoded(ids, min(len(self._ids(messages[:1])), len(ids)))


FORMATTERS = {"gprl": Formatter, "reference": ReferenceFormatter}
