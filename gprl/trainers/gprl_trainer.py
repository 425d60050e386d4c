"""Online RL with a general preference reward model on TRL's ``GRPOTrainer`` (subclassed, not forked).

``GPMReward`` is an ordinary TRL reward function backed by a frozen GPM: it returns each completion's scalar
GPO estimate ``s-hat_i = (1/G) sum_j s(y_i > y_j | x)`` (a BT model's ``r_i`` when k=1; plus the verifier
axis where a prompt has one; ``gprl.advantages.scalar_reward``), which TRL logs as
the reward, and keeps the group's embeddings and eigenvalues. ``GPRLTrainer`` then replaces TRL's advantages
with an estimator from ``gprl.advantages.ADVANTAGES`` (``grpo`` reproduces TRL's own, ``gprl`` is SPEC 3.3),
feeds the drift monitor, and applies its corrections to TRL's clip range (``epsilon_low/high``) and KL
coefficient (``beta``). Everything else (generation, log-probs, the clipped loss, checkpoints) is TRL's.
"""

from __future__ import annotations

from typing import Callable

import torch
from trl import GRPOTrainer

from gprl.advantages import ADVANTAGES, DriftMonitor, GPRLConfig, Group, MonitorConfig, scalar_reward


def _text(x) -> str:
    """TRL passes plain strings, or chats (lists of {role, content}) for conversational data."""
    if isinstance(x, list):
        return x[-1]["content"] if x else ""
    return x


class GPMReward:
    """TRL reward function: ``(prompts, completions, **columns) -> list[float]``, backed by a frozen GPM."""

    __name__ = "gpm"

    def __init__(self, reward_model, num_generations: int, verifier: Callable | None = None, batch_size: int = 32):
        self.rm, self.G, self.verifier, self.batch_size = reward_model, num_generations, verifier, batch_size
        self.rm.requires_grad_(False)
        self.last: list[Group] = []
        self.last_prompts: list[str] = []

    @torch.no_grad()
    def __call__(self, prompts, completions, **columns) -> list[float]:
        p = [_text(x) for x in prompts]
        c = [_text(x) for x in completions]
        v, lam = self.rm.embed(p, c, self.batch_size)
        ver = None
        if self.verifier is not None:
            cols = {k: v for k, v in columns.items() if isinstance(v, (list, tuple)) and len(v) == len(p)}  # per-row columns
            ver = [self.verifier(pp, cc, **{k: v[i] for k, v in cols.items()}) for i, (pp, cc) in enumerate(zip(p, c))]
        self.last, self.last_prompts, out = [], p[:: self.G], []
        for s in range(0, len(p), self.G):
            gv = ver[s:s + self.G] if ver is not None else None
            g = Group(v=v[s:s + self.G], lam=None if lam is None else lam[s], tau=self.rm.spec.tau,
                      verifier=None if gv is None or gv[0] is None else torch.tensor(gv, dtype=torch.float32))
            self.last.append(g)
            out += scalar_reward(g).tolist()
        return out


class GPRLTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose advantages come from ``gprl.advantages`` and whose trust region the monitor steers."""

    def __init__(self, *args, reward_model, estimator: str = "gprl", estimator_cfg: GPRLConfig | None = None,
                 monitor_cfg: MonitorConfig | None = None, verifier: Callable | None = None,
                 tracked: tuple[Callable, ...] = (), **kwargs):
        """``tracked``: extra TRL reward functions that are only logged (weight 0), e.g. a gold oracle's aspects;
        they are called after the GPM reward, so they may read ``self.gpm_reward.last``."""
        self.gpm_reward = GPMReward(reward_model, kwargs["args"].num_generations, verifier)
        if tracked:
            kwargs["args"].reward_weights = [1.0] + [0.0] * len(tracked)
        super().__init__(*args, reward_funcs=[self.gpm_reward, *tracked], **kwargs)
        self.estimator = ADVANTAGES.get(estimator)(estimator_cfg or GPRLConfig())
        n_axes = 1 if reward_model.spec.k == 1 else reward_model.spec.k // 2
        self.monitor = DriftMonitor(n_axes, monitor_cfg) if monitor_cfg is not None else None
        if self.monitor is not None:
            self.monitor.eps, self.monitor.beta = self.epsilon_low, self.beta
            self.monitor.cfg.eps0, self.monitor.cfg.beta0 = self.epsilon_low, self.beta
        self.trl_advantages: torch.Tensor | None = None  # TRL's own, kept for comparison and tests

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        self.trl_advantages = out["advantages"].detach().clone()
        advs, sigmas, infos = [], [], []
        for g in self.gpm_reward.last:
            a, info = self.estimator(g)
            advs.append(a)
            infos.append(info)
            if "sigma" in info:
                sigmas.append(info["sigma"])
        adv = torch.cat(advs).to(out["advantages"].device, out["advantages"].dtype)
        n = len(out["advantages"])
        start = self.accelerator.process_index * n
        out["advantages"] = adv[start:start + n]
        if sigmas and hasattr(self.estimator, "update_scale"):
            self.estimator.update_scale(sigmas)
        self._log_axes(infos)
        return out

    @torch.no_grad()
    def _anchors_for(self, prompts: list[str]) -> torch.Tensor:
        """Reward-model embeddings ``(P, k)`` of the reference policy's greedy answers (generated once per prompt,
        in one batch for the prompts not seen before)."""
        if not hasattr(self, "_anchors"):
            self._anchors = {}
        new = [p for p in dict.fromkeys(prompts) if p not in self._anchors]
        if new:
            from gprl.models.generation import generate

            ref = self.ref_model if self.ref_model is not None else self.accelerator.unwrap_model(self.model)
            was_training = ref.training
            answers = [a[0] for a in generate(ref, self.processing_class, new, 1, self.max_completion_length,
                                              temperature=0.0, desc="reference answers")]
            ref.train(was_training)
            v, _ = self.gpm_reward.rm.embed(new, answers)
            self._anchors.update(zip(new, v))
        return torch.stack([self._anchors[p] for p in prompts])

    def _log_axes(self, infos: list[dict]) -> None:
        mode = "train" if self.model.training else "eval"
        shares = [(i["weights"][:, None] * i["axis_adv"]).abs().mean(1) for i in infos if "axis_adv" in i]
        if shares and len({len(s) for s in shares}) == 1:
            s = torch.stack(shares).mean(0)
            for l, v in enumerate((s / s.sum().clamp_min(1e-12)).tolist()):
                self._metrics[mode][f"gprl/axis{l}_adv_share"].append(v)
        if self.monitor is not None and self.gpm_reward.last:
            # per-axis win rate of the samples against the reference policy's greedy answer to the same prompt
            from gprl.models.score import axis_scores

            rates = []
            anchors = self._anchors_for(self.gpm_reward.last_prompts)
            for v_ref, g in zip(anchors, self.gpm_reward.last):
                c = axis_scores(g.v, v_ref.expand_as(g.v)) / g.tau  # (G, axes)
                rates.append(torch.sigmoid(c[:, : self.monitor.n_axes]).mean(0))
            state = self.monitor.update(torch.stack(rates).mean(0))
            self.epsilon_low = self.epsilon_high = state["eps"]
            self.beta = state["beta"]
            win = torch.stack(rates).mean(0)
            for l, m in enumerate(state["multipliers"]):
                self._metrics[mode][f"gprl/multiplier{l}"].append(m)
                self._metrics[mode][f"gprl/axis{l}_win_vs_ref"].append(float(win[l]))  # what the monitor watches
                self._metrics[mode][f"gprl/axis{l}_gain"].append(state["gains"][l])  # its smoothed gain since step 0
            self._metrics[mode]["gprl/clip_eps"].append(state["eps"])
            self._metrics[mode]["gprl/beta"].append(state["beta"])
            self._metrics[mode]["gprl/trigger"].append(float(state["trigger"] is not None))
            if hasattr(self.estimator, "multipliers") and self.estimator.multipliers is not None:
                self.estimator.multipliers[: self.monitor.n_axes] = self.monitor.multipliers
