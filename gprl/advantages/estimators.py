"""Group-relative advantages for one prompt's group of G responses.

GRPO (DeepSeekMath, TRL's ``GRPOTrainer`` with ``scale_rewards="group"``)::

    A_i = (r_i - mean(r)) / (std(r) + 1e-4)          std unbiased, as torch.std

GPRL (SPEC 3.3, [OURS] where the paper is silent): per skew-symmetric axis l of the GPM, with
``c^l_ij = (v_i[2l] v_j[2l+1] - v_i[2l+1] v_j[2l]) / tau``::

    r^l_i  = (1/G) sum_j c^l_ij                      per-axis GPO estimator (paper eq. 5.6; the diagonal is 0)
    A^l_i  = r^l_i / (max(sigma^l, kappa * sigmabar^l) + 1e-4)
             sigma^l = std_j(r^l_j) (unbiased); sigmabar^l an EMA of the batch mean of sigma^l; the floor stops
             noise amplification on axes where the prompt is indifferent. It applies only to prompts with two or
             more axes (GPM axes plus the verifier axis): it exists to keep an indifferent axis from outvoting
             the others in the sum below, and a prompt with one axis has no others ([OURS], a refinement of
             SPEC 3.3, which applies it everywhere; with it, GPRL at the shipped kappa would not reduce to GRPO)
    w_l    = lambda_l(x) m_l / sum_l' lambda_l'(x) m_l'      eigenvalues of the gate x drift-monitor multipliers
    A_i    = sum_l w_l A^l_i

Deviation from SPEC 3.3, deliberately: SPEC writes ``r^l_i`` as the mean over j != i and ``sigma^l`` as the RMS.
Both only rescale every ``r^l`` of a group by the same factor, which cancels in ``r/sigma`` except against the
1e-4 epsilon; the form above makes the reduction exact: with one axis (a BT reward model, ``c_ij = r_i - r_j``,
so ``r_i - mean(r)``; a k=2 GPM; or a verifier alone), GPRL's advantages at the shipped config equal TRL's GRPO
advantages to float rounding (tested at 1e-6, also for groups much narrower than the running scale).

A verifiable reward ``v(x, y)`` in [0, 1] enters as one more axis (SPEC 3.4): the disk-game embedding
``[v(y), 1]`` gives ``c_ij = v_i - v_j``, so its per-axis advantage is GRPO's on the verifier; it has its own
weight instead of a gate eigenvalue. Prompts without a verifier simply have no such axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from gprl.models.score import axis_scores
from gprl.registry import Registry

ADVANTAGES: Registry = Registry("advantage estimator")
EPS = 1e-4  # TRL GRPO's epsilon


def grpo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """TRL GRPO (``scale_rewards="group"``) for one group: ``(G,) -> (G,)``."""
    return (rewards - rewards.mean()) / (rewards.std() + EPS)


@dataclass
class Group:
    """One prompt's G responses as the reward model sees them.

    ``v``: ``(G, k)`` GPM embeddings (or ``(G, 1)`` BT rewards); ``lam``: ``(k/2,)`` gate eigenvalues or None;
    ``verifier``: ``(G,)`` verifiable rewards or None (prompt without a checker); ``tau``: the RM temperature.
    """

    v: torch.Tensor
    lam: torch.Tensor | None = None
    verifier: torch.Tensor | None = None
    tau: float = 1.0

    def axis_matrix(self) -> torch.Tensor:
        """``c^l_ij``: ``(L, G, G)`` pairwise scores per axis (GPM axes, then the verifier axis if any)."""
        c = axis_scores(self.v[:, None, :], self.v[None, :, :]) / self.tau  # (G, G, L)
        c = c.permute(2, 0, 1)
        if self.verifier is not None:
            r = self.verifier.to(c.dtype)
            c = torch.cat([c, (r[:, None] - r[None, :])[None]], 0)
        return c


@dataclass
class GPRLConfig:
    kappa: float = 0.25  # floor on each axis's scale, as a fraction of its running mean scale (0 = no floor;
    #                      applies only to prompts with 2+ axes)
    sigma_decay: float = 0.99  # EMA decay of the running mean scale per axis
    verifier_weight: float = 1.0  # weight of the verifier axis relative to the GPM axes (which share weight 1)
    normalize_per_axis: bool = True  # ablation: False = normalise the aggregated score once (GRPO on s-hat)
    uniform_eigenvalues: bool = False  # ablation: ignore the gate, lambda_l = 1/(k/2)


@ADVANTAGES.register("grpo")
@dataclass
class GRPOEstimator:
    """Scalar rewards: BT ``r_i`` (k=1), or a GPM reduced to the GPO estimator ``s-hat_i = mean_j s_ij``."""

    cfg: GPRLConfig = field(default_factory=GPRLConfig)

    def __call__(self, g: Group) -> tuple[torch.Tensor, dict]:
        return grpo_advantages(scalar_reward(g, self.cfg)), {}


def scalar_reward(g: Group, cfg: GPRLConfig | None = None) -> torch.Tensor:
    """One number per response: BT ``r_i / tau`` (k=1), else the GPO estimate ``mean_j s_ij`` with the gate's
    eigenvalues, plus the verifier axis ``v_i - mean(v)`` when the prompt has one. ``(G,)``."""
    cfg = cfg or GPRLConfig()
    if g.v.shape[-1] == 1 and g.verifier is None:
        return g.v[:, 0] / g.tau
    c = g.axis_matrix()
    w = _weights(g, torch.ones(c.shape[0]), cfg)
    return (w[:, None, None] * c).sum(0).mean(1)


@ADVANTAGES.register("gprl")
class GPRLEstimator:
    """Per-axis group-relative advantages, each normalised on its own scale, aggregated by eigenvalue x monitor
    multiplier. Keeps the running scale per axis; ``multipliers`` are set by the drift monitor."""

    def __init__(self, cfg: GPRLConfig | None = None):
        self.cfg = cfg or GPRLConfig()
        self.sigma_bar: torch.Tensor | None = None
        self.multipliers: torch.Tensor | None = None

    def per_axis(self, g: Group, c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Unweighted per-axis advantages ``(L, G)`` and the group's per-axis scales ``(L,)``."""
        r = (g.axis_matrix() if c is None else c).mean(2)  # (L, G): 1/G sum_j c^l_ij
        sigma = r.std(1)
        L = len(sigma)  # a prompt without a verifier has one axis fewer than one with it
        floor = (self.cfg.kappa * self.sigma_bar[:L] if L > 1 and self.sigma_bar is not None and len(self.sigma_bar) >= L
                 else torch.zeros_like(sigma))  # one axis: nothing to outvote, no floor (GRPO exactly)
        return r / (torch.maximum(sigma, floor) + EPS)[:, None], sigma

    def __call__(self, g: Group) -> tuple[torch.Tensor, dict]:
        c = g.axis_matrix()
        if self.multipliers is None or len(self.multipliers) < c.shape[0]:  # grow (verifier axis), never reset
            old = self.multipliers if self.multipliers is not None else torch.ones(0)
            self.multipliers = torch.cat([old, torch.ones(c.shape[0] - len(old))])
        w = _weights(g, self.multipliers, self.cfg)
        if not self.cfg.normalize_per_axis:  # ablation: aggregate first, normalise once
            return grpo_advantages((w[:, None, None] * c).sum(0).mean(1)), {"weights": w}
        a_axis, sigma = self.per_axis(g, c)
        return (w[:, None] * a_axis).sum(0), {"weights": w, "axis_adv": a_axis, "sigma": sigma}

    def update_scale(self, sigmas: list[torch.Tensor] | torch.Tensor) -> None:
        """After a batch: fold the batch mean of the per-axis scales (one ``(L_b,)`` per group; groups without a
        verifier lack the last axis) into the running mean, axis by axis."""
        L = max(len(s) for s in sigmas)
        if self.sigma_bar is not None:
            L = max(L, len(self.sigma_bar))  # a batch without verifier prompts leaves the verifier axis as it was
        padded = torch.full((len(sigmas), L), float("nan"))
        for i, s in enumerate(sigmas):
            padded[i, : len(s)] = s
        m = padded.nanmean(0)
        if self.sigma_bar is None:
            self.sigma_bar = m.clone()
            return
        if len(self.sigma_bar) < L:
            self.sigma_bar = torch.cat([self.sigma_bar, m[len(self.sigma_bar):]])
        d, seen = self.cfg.sigma_decay, ~torch.isnan(m)
        self.sigma_bar[seen] = d * self.sigma_bar[seen] + (1 - d) * m[seen]


def _weights(g: Group, multipliers: torch.Tensor, cfg: GPRLConfig) -> torch.Tensor:
    """``w_l = lambda_l m_l / sum lambda m`` over the GPM axes, then the verifier axis with its own weight."""
    k = g.v.shape[-1]
    n_gpm = 1 if k == 1 else k // 2  # k = 0: a verifier-only prompt
    lam = g.lam if (g.lam is not None and not cfg.uniform_eigenvalues) else torch.full((n_gpm,), 1.0 / max(1, n_gpm))
    lam = lam.to(multipliers.dtype)
    w = lam * multipliers[:n_gpm]
    w = w / w.sum()
    if g.verifier is not None:
        w = torch.cat([w, cfg.verifier_weight * multipliers[n_gpm:n_gpm + 1]])
    return w
