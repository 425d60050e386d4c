"""The step clock every benchmark script shares: a Trainer callback that stamps the end of each optimiser step."""

from __future__ import annotations

import time

from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    """Seconds per step over the steps after the first ``skip`` (warm-up: allocation, first-call compilation)."""

    def __init__(self, skip: int = 2):
        self.skip, self.t = skip, []

    def on_step_end(self, args, state, control, **kw):
        self.t.append(time.perf_counter())

    def per_step(self) -> float:
        t = self.t[self.skip - 1:]
        return (t[-1] - t[0]) / (len(t) - 1)
