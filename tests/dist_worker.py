"""One process of a multi-process check (tests/test_distributed.py), started by torchrun or plainly:

    torchrun --nproc_per_node 2 tests/dist_worker.py gprl OUT POLICY_DIR RM_DIR
    python tests/dist_worker.py gprl OUT POLICY_DIR RM_DIR            # the same global batch in one process

``gprl``: two rollout batches of GPRLTrainer (per-axis advantages, the drift monitor) with a fixed global batch
(3 prompts x G=4, one optimiser step per rollout batch; with two processes one group spans both); generation is
replaced by a deterministic function of (prompt, index in its group, step), so one process and two sample the same
completions and the runs are comparable to float rounding. Writes ``OUT/rank{r}.json`` with the logged losses, rewards, advantages and monitor state.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# prompts of one token length each (so left padding never differs between one process's batch and two)
PROMPTS = ["Name a fruit.", "Name a colour.", "Name a river.", "Name a metal."]
PER_STEP, G, STEPS, NEW_TOKENS = 3, 4, 2, 5  # 3 x 4 = 12 completions, 6 per process: one group spans both


def deterministic_completions(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
    """Stands in for sampling: the same completion for the same (prompt, index in group, step) in any process."""
    import torch

    out = []
    vocab = self.processing_class.vocab_size
    first = self.accelerator.process_index * len(prompt_ids)  # this process's rows in the rollout batch
    for i, ids in enumerate(prompt_ids, start=first):
        key = f"{list(ids)}|{i % G}|{self.state.global_step}".encode()
        g = torch.Generator().manual_seed(int(hashlib.sha256(key).hexdigest()[:8], 16))
        toks = torch.randint(1000, vocab, (NEW_TOKENS,), generator=g).tolist()  # ids >= 1000: no special tokens
        out.append(toks)
    return out, None


def gprl(out: Path, policy_dir: str, rm_dir: str) -> None:
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig

    from gprl import distributed
    from gprl.advantages import GPRLConfig, MonitorConfig
    from gprl.models import GeneralPreferenceModel, RewardModelSpec
    from gprl.trainers.gprl_trainer import GPRLTrainer

    distributed.setup()
    world, rank = distributed.world_size(), distributed.rank()
    GPRLTrainer._generate_single_turn = deterministic_completions
    torch.manual_seed(0)
    rm = GeneralPreferenceModel.from_backbone(rm_dir, RewardModelSpec(k=4, max_length=64))
    policy = AutoModelForCausalLM.from_pretrained(policy_dir)
    tok = AutoTokenizer.from_pretrained(policy_dir)
    lengths = {len(tok(p)["input_ids"]) for p in PROMPTS}
    assert len(lengths) == 1, f"prompts of different token lengths {lengths}: padding would differ"
    global_batch = PER_STEP * G  # one rollout batch, one optimiser step
    args = GRPOConfig(output_dir=str(out / "ck"), per_device_train_batch_size=distributed.per_device(global_batch, world, "batch"),
                      num_generations=G, max_steps=STEPS, max_completion_length=NEW_TOKENS, learning_rate=1e-2,
                      beta=0.04, loss_type="grpo", use_cpu=True, bf16=False, gradient_checkpointing=False,
                      report_to="none", logging_steps=1, save_strategy="no", seed=0, temperature=1.0)
    ds = datasets.Dataset.from_dict({"prompt": PROMPTS * 4})
    tr = GPRLTrainer(model=policy, args=args, train_dataset=ds, processing_class=tok, reward_model=rm,
                     estimator="gprl", estimator_cfg=GPRLConfig(kappa=0.25), monitor_cfg=MonitorConfig(cooldown=1))
    advantages = []
    orig = GPRLTrainer._generate_and_score_completions

    def spy(self, inputs):
        res = orig(self, inputs)
        advantages.append(res["advantages"].tolist())
        return res

    tr._generate_and_score_completions = spy.__get__(tr)
    tr.train()
    log = [h for h in tr.state.log_history if "loss" in h]
    (out / f"rank{rank}.json").write_text(json.dumps({
        "world": world, "loss": [h["loss"] for h in log], "reward": [h["reward"] for h in log],
        "adv_share": [h.get("gprl/axis0_adv_share") for h in log], "win": [h.get("gprl/axis0_win_vs_ref") for h in log],
        "advantages": advantages, "sigma_bar": tr.estimator.sigma_bar.tolist(), "eps": tr.epsilon_low, "beta": tr.beta,
    }))


if __name__ == "__main__":
    mode, out, *rest = sys.argv[1:]
    {"gprl": gprl}[mode](Path(out), *rest)
