"""Online RL with a general preference reward model on TRL's ``GRPOTrainer`` (subclassed, not forked).

``GPMReward`` is an ordinary TRL reward function backed by a frozen GPM: it returns each completion's scalar
GPO estimate ``s-hat_i = (1/G) sum_j s(y_i > y_j | x)`` (a BT model's ``r_i`` when k=1; plus the verifier
axis where a prompt has one; ``gprl.advantages.scalar_reward``), which TRL logs as
the reward, and keeps the group's embeddings and eigenvalues. ``GPRLTrainer`` then replaces TRL's advantages
with an estimator from ``gprl.advantages.ADVANTAGES`` (``grpo`` reproduces TRL's own, ``gprl`` is SPEC 3.3),
feeds the drift monitor, and applies its corrections to TRL's clip range (``epsilon_low/high``) and KL
coefficient (``beta``). Everything else (generation, log-probs, the clipped loss, checkpoints) is TRL's.

Several processes: TRL splits each rollout batch over them (a prompt's group may span two). ``GPMReward`` gathers
the batch's embeddings, eigenvalues and verifier rewards, so every process forms the same groups, advantages,
running scales and monitor state; each trains on its own slice of the advantages (``GPMReward.local``).

The monitor's anchors are greedy answers of the frozen reference policy, generated once per prompt: TRL's
``ref_model`` where TRL keeps one; the base model with its adapters disabled under LoRA (TRL's own ``use_adapter``,
as its KL term does); a frozen copy of the starting policy, taken when the trainer is built, when ``beta=0``
leaves TRL without a reference. Logged per rollout batch: each axis's advantage share, its correlation with the
completion length (``gprl/axis{l}_adv_len_corr``, SPEC 3.3's verbosity probe; ``gprl/adv_len_corr`` for the
aggregate), the monitor's state; TRL itself logs the clip fractions (``clip_ratio/*``) and the KL.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
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
        self.accelerator = None  # set by GPRLTrainer: with several processes the rollout batch is gathered
        self.last: list[Group] = []  # the whole rollout batch's groups, in every process
        self.last_prompts: list[str] = []
        self.local = slice(None)  # this process's completions within the rollout batch

    @torch.no_grad()
    def __call__(self, prompts, completions, **columns) -> list[float]:
        """This process's completions in, their rewards out; ``last`` holds every process's groups: TRL splits a
        rollout batch over the processes (a group may span two), so the embeddings are gathered, as TRL gathers
        scalar rewards, and every process forms the same groups, advantages and monitor state."""
        p = [_text(x) for x in prompts]
        c = [_text(x) for x in completions]
        v, lam = self.rm.embed(p, c, self.batch_size)
        ver = None
        if self.verifier is not None:
            cols = {k: v for k, v in columns.items() if isinstance(v, (list, tuple)) and len(v) == len(p)}  # per-row columns
            ver = [self.verifier(pp, cc, **{k: v[i] for k, v in cols.items()}) for i, (pp, cc) in enumerate(zip(p, c))]
        n, start = len(p), 0
        acc = self.accelerator
        if acc is not None and acc.num_processes > 1:
            from accelerate.utils import gather_object

            start = acc.process_index * n  # processes hold equal, consecutive parts of the batch (TRL's sampler)
            v = acc.gather(v.to(acc.device)).cpu()
            lam = None if lam is None else acc.gather(lam.to(acc.device)).cpu()
            p = gather_object(p)
            ver = None if ver is None else gather_object(ver)
        self.local = slice(start, start + n)
        self.last, self.last_prompts, out = [], p[:: self.G], []
        for s in range(0, len(p), self.G):
            gv = ver[s:s + self.G] if ver is not None else None
            g = Group(v=v[s:s + self.G], lam=None if lam is None else lam[s], tau=self.rm.spec.tau,
                      verifier=None if gv is None or gv[0] is None else torch.tensor(gv, dtype=torch.float32))
            self.last.append(g)
            out += scalar_reward(g).tolist()
        return out[self.local]


class GPRLTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose advantages come from ``gprl.advantages`` and whose trust region the monitor steers."""

    def __init__(self, *args, reward_model, estimator: str = "gprl", estimator_cfg: GPRLConfig | None = None,
                 monitor_cfg: MonitorConfig | None = None, verifier: Callable | None = None,
                 tracked: tuple[Callable, ...] = (), **kwargs):
        """``tracked``: extra TRL reward functions that are only logged (weight 0), e.g. a gold oracle's aspects;
        they are called after the GPM reward, so they may read ``self.gpm_reward.last``."""
        self.gpm_reward = GPMReward(reward_model, kwargs["args"].num_generations, verifier)
        # beta=0 without adapters: TRL keeps no reference model, so the monitor keeps a frozen copy of the starting
        # policy, taken before TRL patches the policy's forward (a deepcopy afterwards would still run the original)
        self._frozen_ref = None
        if monitor_cfg is not None and kwargs["args"].beta == 0.0 and kwargs.get("peft_config") is None:
            model = kwargs.get("model", args[0] if args else None)
            self._frozen_ref = copy.deepcopy(model).eval().requires_grad_(False)
        if tracked:
            kwargs["args"].reward_weights = [1.0] + [0.0] * len(tracked)
        super().__init__(*args, reward_funcs=[self.gpm_reward, *tracked], **kwargs)
        self.estimator = ADVANTAGES.get(estimator)(estimator_cfg or GPRLConfig())
        n_axes = 1 if reward_model.spec.k == 1 else reward_model.spec.k // 2
        self.monitor = DriftMonitor(n_axes, monitor_cfg) if monitor_cfg is not None else None
        if self.monitor is not None:
            self.monitor.eps, self.monitor.beta = self.epsilon_low, self.beta
            self.monitor.cfg.eps0, self.monitor.cfg.beta0 = self.epsilon_low, self.beta
        self.trl_advantages: torch.Tensor | None = None  # TRL's own (this process's part), for comparison and tests
        self.gpm_reward.accelerator = self.accelerator

    def _is_peft(self) -> bool:
        return hasattr(self.accelerator.unwrap_model(self.model), "peft_config")

    def _reference(self):
        """The frozen reference policy and a context that makes it the reference (adapters off under LoRA)."""
        if self.ref_model is not None:
            return self.accelerator.unwrap_model(self.ref_model), nullcontext()
        if self._frozen_ref is not None:
            return self._frozen_ref, nullcontext()
        from trl.trainer.utils import use_adapter

        model = self.accelerator.unwrap_model(self.model)
        return model, use_adapter(model, adapter_name="ref" if "ref" in model.peft_config else None)

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
        adv = torch.cat(advs)  # the whole rollout batch (every process's groups), in TRL's order
        out["advantages"] = adv[self.gpm_reward.local].to(out["advantages"].device, out["advantages"].dtype)
        if sigmas and hasattr(self.estimator, "update_scale"):
            self.estimator.update_scale(sigmas)
        lengths = self.accelerator.gather(out["completion_mask"].sum(1)).float().cpu()
        self._log_axes(infos, lengths, adv.float())
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

            ref, as_reference = self._reference()
            was_training = ref.training
            with as_reference:
                answers = [a[0] for a in generate(ref, self.processing_class, new, 1, self.max_completion_length,
                                                  temperature=0.0, desc="reference answers")]
            ref.train(was_training)
            v, _ = self.gpm_reward.rm.embed(new, answers)
            self._anchors.update(zip(new, v))
        return torch.stack([self._anchors[p] for p in prompts])

    def _log_axes(self, infos: list[dict], lengths: torch.Tensor, adv: torch.Tensor) -> None:
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["gprl/adv_len_corr"].append(_corr(adv, lengths))
        shares = [(i["weights"][:, None] * i["axis_adv"]).abs().mean(1) for i in infos if "axis_adv" in i]
        if shares and len(shares) == len(infos) and len({len(s) for s in shares}) == 1:
            s = torch.stack(shares).mean(0)
            for l, v in enumerate((s / s.sum().clamp_min(1e-12)).tolist()):
                self._metrics[mode][f"gprl/axis{l}_adv_share"].append(v)
            axis_adv = torch.cat([i["axis_adv"] for i in infos], 1)  # (L, N) in completion order
            for l in range(len(axis_adv)):
                self._metrics[mode][f"gprl/axis{l}_adv_len_corr"].append(_corr(axis_adv[l], lengths))
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


def _corr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson correlation; 0 when either side is constant (e.g. every completion hit the length limit)."""
    x, y = x.float() - x.float().mean(), y.float() - y.float().mean()
    d = float(x.norm() * y.norm())
    return float((x * y).sum()) / d if d > 0 else 0.0
