"""The one pairwise schema every loader returns:

    {"prompt": str, "chosen": str, "rejected": str, "margin": float (optional), "subset": str (optional)}

A prompt is text, or a multi-turn conversation: given as a list of ``{"role", "content"}`` turns ending with the
user turn that ``chosen`` and ``rejected`` answer (RewardBench's layout), it becomes a ``Conversation``, which keeps
every earlier user and assistant turn for the chat template (``gprl.models.formatting``).
"""

from __future__ import annotations

import math

from gprl import GprlError

REQUIRED = ("prompt", "chosen", "rejected")
ROLES = ("system", "user", "assistant")


class Conversation(str):
    """A multi-turn prompt. Its string value is the plain-text transcript (``User: ...\\n\\nAssistant: ...\\n\\nUser:
    ...``), so everything that treats a prompt as text (deduplication keys, caches, a tokenizer without a chat
    template, an encoder) sees the whole conversation; ``messages`` keeps the turns for the chat template, which is
    how the reward model reads it (as rewardbench 0.1.2's ``prepare_dialogue_from_tokenizer`` does). Equality and
    hashing are the transcript's."""

    def __new__(cls, messages: list[dict]):
        turns = tuple((m["role"], m["content"]) for m in messages)
        obj = super().__new__(cls, "\n\n".join(f"{r.capitalize()}: {c}" for r, c in turns))
        obj._turns = turns
        return obj

    @property
    def messages(self) -> list[dict]:
        return [{"role": r, "content": c} for r, c in self._turns]

    def __reduce__(self):  # pickle / deepcopy rebuild from the turns, not from the transcript
        return Conversation, (self.messages,)

    def __repr__(self) -> str:
        return f"Conversation({self.messages!r})"


def make_prompt(value, where: str) -> str:
    """A prompt field as text: a string as it is; a list of turns as a ``Conversation`` (one user turn alone is its
    plain text, so single-turn chats equal plain prompts). One clear error naming ``where`` otherwise."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        got = "an empty list" if isinstance(value, list) else type(value).__name__
        raise GprlError(f"{where}: field 'prompt' must be a string or a non-empty list of chat turns, got {got}")
    for i, m in enumerate(value):
        if not (isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)):
            raise GprlError(f"{where}: prompt turn {i} must be {{'role': {' | '.join(ROLES)}, 'content': str}}, "
                            f"got {m!r}"[:300])
    if value[-1]["role"] != "user":
        raise GprlError(f"{where}: a multi-turn prompt must end with a user turn, got {value[-1]['role']!r}")
    if len(value) == 1:
        return value[0]["content"]
    return Conversation(value)


def prompt_messages(prompt: str) -> list[dict]:
    """The chat turns of a prompt: a conversation's own, or one user turn for plain text."""
    if isinstance(prompt, Conversation):
        return prompt.messages
    return [{"role": "user", "content": prompt}]


MAX_TEXT_CHARS = 100_000  # SourceConfig.max_text_chars's default


def validate_pair(rec, where: str, max_chars: int | None = MAX_TEXT_CHARS) -> dict:
    """Return a clean record or raise one clear error naming ``where`` (file:line). A text longer than
    ``max_chars`` characters is an error (tokenizing a 20 MB answer takes a minute per step, and the model reads
    only its first ``model.max_length`` tokens)."""
    if not isinstance(rec, dict):
        raise GprlError(f"{where}: expected a JSON object with prompt/chosen/rejected, got {type(rec).__name__}")
    missing = [f for f in REQUIRED if f not in rec]
    if missing:
        raise GprlError(f"{where}: missing field(s) {', '.join(missing)} (need prompt, chosen, rejected)")
    for f in ("chosen", "rejected"):
        if not isinstance(rec[f], str):
            raise GprlError(f"{where}: field {f!r} must be a string, got {type(rec[f]).__name__}")
    out = {"prompt": make_prompt(rec["prompt"], where), "chosen": rec["chosen"], "rejected": rec["rejected"]}
    if max_chars is not None:
        for f in REQUIRED:
            if len(out[f]) > max_chars:
                raise GprlError(f"{where}: field {f!r} is {len(out[f]):,} characters, over the limit of {max_chars:,} "
                                f"per text (the source's max_text_chars): shorten it, or raise the limit")
    if rec.get("margin") is not None:
        m = rec["margin"]
        if not isinstance(m, (int, float)) or isinstance(m, bool) or not math.isfinite(m):
            raise GprlError(f"{where}: margin must be a finite number, got {m!r}")
        out["margin"] = float(m)
    if rec.get("subset") is not None:
        out["subset"] = str(rec["subset"])
    return out
