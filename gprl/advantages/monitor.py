"""GPRL's closed-loop drift monitor (SPEC 3.3, [OURS] thresholds): detect single-axis exploitation and correct it.

Each step the trainer reports, per axis l, the policy's win rate against the frozen reference's greedy answer
``p^l_t = mean_{x,i} sigmoid(c^l(y_i, y_ref))``. The monitor smooths it (EMA 0.9) and tracks the gain
``D_l = p~^l_t - p~^l_0`` since the start. Exploitation of ``l* = argmax D`` is flagged when

* the dominance ``max_l D_l+ / (sum_l D_l+ + 1e-6)`` exceeds 0.7, ``D_l* > 0.05`` and every other axis gained
  less than ``0.25 D_l*`` (needs at least two axes: with one, every gain would be "single-axis"); or
* any axis regressed: ``D_l < -0.05`` (hard trigger).

Correction (at most once every ``cooldown`` steps), the same for both triggers (SPEC 3.3): halve the multiplier of
``l* = argmax D`` (floor 0.2), raise every axis with ``D_l <= 0`` by 1.25x (cap 2), tighten the clip range
(``eps <- max(0.05, eps/2)``) and double the KL coefficient (cap 0.32). So a regression on one axis down-weights
the axis that gained most, the one the policy is trading it for. [OURS] where SPEC is silent: when every axis
regressed (``D_l* <= 0``) nothing is halved, because nothing was exploited; the trust region still tightens.
After ``calm_steps`` steps without a trigger everything relaxes back towards its start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class MonitorConfig:
    ema: float = 0.9  # smoothing of the per-axis win rates
    dominance: float = 0.7  # share of the total positive gain that one axis must hold to be "exploited"
    min_gain: float = 0.05  # ... with at least this gain (win-rate points / 100)
    others_ratio: float = 0.25  # ... while every other axis gained less than this fraction of it
    regress: float = -0.05  # hard trigger: an axis fell this far below its start
    cooldown: int = 20  # steps between corrections
    calm_steps: int = 50  # steps without a trigger before relaxing
    eps0: float = 0.2  # initial PPO clip range
    beta0: float = 0.04  # initial KL coefficient
    eps_min: float = 0.05
    beta_max: float = 0.32
    m_min: float = 0.2
    m_max: float = 2.0


@dataclass
class DriftMonitor:
    n_axes: int
    cfg: MonitorConfig = field(default_factory=MonitorConfig)

    def __post_init__(self):
        self.multipliers = torch.ones(self.n_axes)
        self.eps, self.beta = self.cfg.eps0, self.cfg.beta0
        self.p0: torch.Tensor | None = None
        self.p: torch.Tensor | None = None
        self.step = 0
        self.last_correction = -10**9
        self.last_trigger = 0
        self.events: list[dict] = []

    @property
    def gains(self) -> torch.Tensor:
        return torch.zeros(self.n_axes) if self.p is None else self.p - self.p0

    def update(self, win_rates: torch.Tensor) -> dict:
        """Feed this step's per-axis win rates ``(L,)``; returns the state (and the trigger, if any) to log."""
        self.step += 1
        w = win_rates.detach().float()
        if self.p is None:
            self.p0, self.p = w.clone(), w.clone()
        else:
            self.p = self.cfg.ema * self.p + (1 - self.cfg.ema) * w
        d = self.gains
        trigger = self._detect(d)
        axis = int(torch.argmax(d)) if trigger else None  # l*: the axis a correction down-weights
        if trigger:
            self.last_trigger = self.step
            if self.step - self.last_correction >= self.cfg.cooldown:
                self._correct(axis, d)
                self.last_correction = self.step
                self.events.append({"step": self.step, "trigger": trigger, "axis": axis,
                                    "regressed": torch.nonzero(d < self.cfg.regress).flatten().tolist(),
                                    "gains": d.tolist(), "multipliers": self.multipliers.tolist(),
                                    "eps": self.eps, "beta": self.beta})
        elif self.step - self.last_trigger >= self.cfg.calm_steps:
            self._recover()
        return {"trigger": trigger, "axis": axis, "gains": d.tolist(), "multipliers": self.multipliers.tolist(),
                "eps": self.eps, "beta": self.beta}

    def _detect(self, d: torch.Tensor) -> str | None:
        if bool((d < self.cfg.regress).any()):
            return "regression"
        pos = d.clamp_min(0)
        top = int(torch.argmax(d))
        dom = float(pos[top] / (pos.sum() + 1e-6))
        others = torch.cat([d[:top], d[top + 1:]])
        if (len(d) > 1 and dom > self.cfg.dominance and d[top] > self.cfg.min_gain
                and bool((others < self.cfg.others_ratio * d[top]).all())):
            return "single_axis"
        return None

    def _correct(self, axis: int, d: torch.Tensor) -> None:
        c = self.cfg
        if d[axis] > 0:  # l* = argmax D gained: the exploited axis (see the module docstring when none gained)
            self.multipliers[axis] = max(c.m_min, 0.5 * float(self.multipliers[axis]))
        flat = d <= 0
        self.multipliers[flat] = (1.25 * self.multipliers[flat]).clamp(max=c.m_max)
        self.eps = max(c.eps_min, 0.5 * self.eps)
        self.beta = min(c.beta_max, 2 * self.beta)

    def _recover(self) -> None:
        c = self.cfg
        self.multipliers = self.multipliers + 0.2 * (1 - self.multipliers)
        self.eps = min(c.eps0, 1.2 * self.eps)
        self.beta = max(c.beta0, self.beta / 1.2)
