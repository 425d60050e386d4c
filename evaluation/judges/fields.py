"""How a judge that is not a language model (a reward model, a table of shipped annotations) receives one pair
through alpaca_eval's annotator: a prompt template that only packs the three fields, unpacked again here."""

from __future__ import annotations

from pathlib import Path

from gprl import GprlError

TEMPLATE = Path(__file__).with_name("fields.txt")
SEP = "\x1f"  # ASCII unit separator: never in benchmark text (checked)


def unpack(prompt: str) -> tuple[str, str, str]:
    parts = prompt.split(SEP)
    if len(parts) != 5:
        raise GprlError("a benchmark text contains the ASCII unit separator (0x1f), which the offline judges reserve")
    return parts[1], parts[2], parts[3]
