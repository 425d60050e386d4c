"""Every config composes; impossible settings give one clear error and a non-zero exit."""


import pytest

from gprl import GprlError
from tests.helpers import ROOT, compose_cfg, run_cli, run_config

EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
# slurm_local is launcher=slurm with other resources (test_slurm_launchers_requeue_and_the_local_one_asks_for_no_gpu)
LAUNCHERS = sorted(p.stem for p in (ROOT / "conf" / "launcher").glob("*.yaml") if p.stem != "slurm_local")
# values an experiment leaves for the user to fill in (???)
REQUIRED = {"rm_eval": ["reward_model.path=/tmp/rm", "eval.pairs=/tmp/pairs.jsonl"], "benchmark": ["benchmark.policy=/tmp/p"]}
TAU = {"alpaca_judge": 0.1}  # experiments that set reward_model.tau themselves


@pytest.mark.parametrize("launcher", LAUNCHERS)
@pytest.mark.parametrize("k", [1, 2, 4, 6, 8])
@pytest.mark.parametrize("experiment", [None, *EXPERIMENTS])
def test_every_config_composes(experiment, k, launcher):
    o = [f"k={k}", f"launcher={launcher}"]
    if experiment:
        o += [f"+experiment={experiment}", *REQUIRED.get(experiment, [])]
    cfg = compose_cfg(o, hydra_cfg=True)
    expected = {"local": "BasicLauncher", "submitit_local": "LocalLauncher", "slurm": "SlurmLauncher"}[launcher]
    assert cfg.hydra.launcher._target_.endswith(expected)
    rc = run_config(o)
    assert rc.k == k
    assert rc.loss_name == ("bt" if k == 1 else "gpm")
    assert rc.tau == TAU.get(experiment, 1.0 if k == 1 else 0.1)


def test_every_model_and_data_option_composes():
    for group in ("model", "data", "algo", "reward_model", "eval", "logger", "policy", "rl", "po"):
        for p in (ROOT / "conf" / group).glob("*.yaml"):
            extra = {"data/jsonl": ["data.train.path=x.jsonl"], "eval/pairs_only": ["eval.pairs=x.jsonl"]}
            run_config([f"{group}={p.stem}", *extra.get(f"{group}/{p.stem}", [])])


@pytest.mark.parametrize("override, message", [
    ("k=3", "embedding dimension k=3 is impossible"),
    ("k=0", "embedding dimension k=0 is impossible"),
    ("reward_model.tau=0", "tau must be > 0"),
    ("reward_model.loss=hinge", "unknown loss 'hinge'; known: bt, gpm"),
    ("data.train.source=nope", "unknown data source 'nope'"),
    ("task=nope", "unknown task 'nope'"),
    ("algo.lr=-1", "algo.lr must be > 0"),
    ("po.loss=ipo", "unknown preference-optimisation trainer 'ipo'; known: dpo, gpo, simpo, sppo"),
    ("po.num_samples=1", "po.num_samples must be >= 2"),
    ("policy.backbone=tiny-sft:big", "expected tiny-sft:HIDDENxLAYERS"),
    ("policy_eval.top_p=0", "0 < top_p <= 1"),
    ("rl.minibatches=3", r"rl.minibatches=3 must divide the rollout batch, rl.prompts_per_step x rl.num_generations = 16"),
    ("rl.minibatches=0", "rl.minibatches must be >= 1"),
])
def test_impossible_settings_are_rejected(override, message):
    with pytest.raises(GprlError, match=message):
        run_config([override])


def test_gpm_loss_with_k1_is_rejected():
    with pytest.raises(GprlError, match="loss 'gpm' needs an even"):
        run_config(["k=1", "reward_model.loss=gpm"])


def test_bad_config_exits_with_one_clear_line(tmp_path):
    r = run_cli(["k=3", f"hydra.run.dir={tmp_path}"])
    assert r.returncode == 2
    assert "gprl: error: embedding dimension k=3 is impossible" in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_key_fails_at_composition():
    r = run_cli(["algo.lrr=1"])
    assert r.returncode != 0 and "lrr" in r.stderr and "Traceback" not in r.stderr


def test_paper_settings_compose():
    """The cluster configs carry SPEC 1.2's hyperparameters."""
    rc = run_config(["model=gemma-2b-it", "algo=rm_paper", "data=skywork80k", "k=8"])
    assert rc.model.backbone == "google/gemma-2b-it" and rc.model.max_length == 2048
    a = rc.algo
    assert (a.lr, a.epochs, a.warmup_ratio, a.scheduler) == (1e-5, 2, 0.03, "cosine")
    assert (a.adam_beta1, a.adam_beta2, a.weight_decay, a.max_grad_norm, a.precision) == (0.9, 0.95, 0.0, 1.0, "bf16")
    assert a.deepspeed and (ROOT / a.deepspeed).exists()
    assert rc.data.train.hub_name == "Skywork/Skywork-Reward-Preference-80K-v0.2"


def test_preference_optimisation_configs_carry_the_paper_settings():
    """SPEC 2 and 4: GPO/SPPO beta 0.001, RMSprop, 3 iterations of K=5 at T=0.7/top-p 0.9; DPO beta 0.1;
    SimPO beta 2.5 with gamma/beta 0.55. The offline experiments change only the learning rate."""
    for loss in ("gpo", "sppo"):
        po = run_config([f"po={loss}"]).po
        assert (po.beta, po.optim, po.lr, po.iterations, po.num_samples) == (0.001, "rmsprop", 5e-7, 3, 5)
        assert (po.temperature, po.top_p, po.clamp) == (0.7, 0.9, 1000.0)
    assert run_config(["po=dpo"]).po.beta == 0.1
    simpo = run_config(["po=simpo"]).po
    assert (simpo.beta, simpo.gamma_beta_ratio, simpo.lr) == (2.5, 0.55, 1e-6)
    for loss in ("gpo", "sppo", "dpo", "simpo"):
        default = run_config([f"po={loss}"]).po
        exp = run_config([f"+experiment=alpaca_{loss}"]).po
        assert exp.loss == loss and {k for k in vars(default) if getattr(default, k) != getattr(exp, k)} == {"lr"}


def test_run_directory_names_are_deterministic_distinct_and_short():
    import run

    long = ",".join(f"data.train.path=/very/long/path/{i}" for i in range(20))
    assert run.slug(long) == run.slug(long) and len(run.slug(long)) <= 120
    assert run.slug(long) != run.slug(long + "x")
    assert run.slug("k=2,seed=1") == "k=2,seed=1" and run.slug("") == "default"
    assert "/" not in run.slug("reward_model.path=/a/b")


def test_cluster_experiments_carry_the_paper_settings():
    g = run_config(["+experiment=table2_gemma", "k=8"])
    ll = run_config(["+experiment=table2_llama", "k=6"])
    assert (g.model.backbone, g.algo.lr, ll.model.backbone, ll.algo.lr) == (
        "google/gemma-2b-it", 1e-5, "meta-llama/Llama-3.1-8B-Instruct", 2e-6)
    for c in (g, ll):
        assert (c.algo.batch_size * 8, c.algo.epochs, c.algo.scheduler, c.algo.warmup_ratio, c.model.max_length) == (
            32, 2, "cosine", 0.03, 2048)
        assert c.eval.reports == ["rewardbench"] and c.eval.sets["rewardbench"].hub_name == "allenai/reward-bench"
    cy = run_config(["+experiment=cyclic_gemma", "k=1"])
    assert (cy.algo.lr, cy.algo.batch_size, cy.algo.epochs, cy.tau) == (1e-6, 1, 50, 1.0)
    assert cy.data.train.source == "cyclic_ultrafeedback" and run_config(["+experiment=cyclic_gemma"]).tau == 0.1


def test_multirun_flag_may_follow_overrides():
    """`run.py +experiment=X -m k=2,4` (the README's form) reaches Hydra as `-m +experiment=X k=2,4`."""
    import run

    assert run.hoist_multirun_flag(["run.py", "+experiment=x", "-m", "k=2,4"]) == ["run.py", "-m", "+experiment=x", "k=2,4"]
    assert run.hoist_multirun_flag(["run.py", "k=1"]) == ["run.py", "k=1"]


def test_config_fields_added_later_leave_cache_keys_unchanged():
    """Cached reward models and judges are named by a fingerprint of their configs: a field added later, at the
    value that reproduces the old behaviour, must not rename (and so retrain) them; another value must."""
    from dataclasses import asdict

    from gprl.config import AlgoConfig, DataConfig, SourceConfig
    from gprl.provenance import fingerprint

    def without(d: dict, *keys) -> dict:
        return {k: (without(v, *keys) if isinstance(v, dict) else v) for k, v in d.items() if k not in keys}

    assert fingerprint(SourceConfig()) == fingerprint(without(asdict(SourceConfig()), "max_text_chars"))
    assert fingerprint(DataConfig()) == fingerprint(without(asdict(DataConfig()), "max_text_chars"))  # nested
    assert fingerprint(SourceConfig(max_text_chars=10)) != fingerprint(without(asdict(SourceConfig()), "max_text_chars"))
    # algo.bf16 (false) became algo.precision; keys are made with precision resolved (fp32 or bf16)
    old_algo = {**without(asdict(AlgoConfig()), "head_lr", "cache_features", "global_batch_size", "precision"),
                "bf16": False}
    assert fingerprint(AlgoConfig(precision="fp32")) == fingerprint(old_algo)
    assert fingerprint(AlgoConfig(precision="fp32", head_lr=1e-3)) != fingerprint(old_algo)
    assert fingerprint(AlgoConfig(precision="fp32", global_batch_size=32)) != fingerprint(old_algo)
    assert fingerprint(AlgoConfig(precision="bf16")) == fingerprint({**old_algo, "bf16": True, "precision": "bf16"})


def test_a_run_made_before_minibatches_existed_is_not_the_same_settings():
    """Runs made before rl.minibatches took one optimiser step per rollout batch: a record without the key must
    differ from today's default 4, and match rl.minibatches=1; a key added at a default that is the old behaviour
    changes nothing."""
    from gprl.rundir import differences

    old = {"rl.steps": 20, "algo.lr": 5e-5}
    assert differences(old, {**old, "rl.minibatches": 4}) == ["rl.minibatches"]
    assert differences(old, {**old, "rl.minibatches": 1}) == []
    assert differences(old, {**old, "algo.head_lr": None}) == []
    # runs made before algo.precision trained in fp32: a bf16 run (auto on a bf16 CPU) is not the same settings
    assert differences(old, {**old, "algo.precision": "bf16"}) == ["algo.precision"]
    assert differences(old, {**old, "algo.precision": "fp32"}) == []


def test_slurm_launchers_requeue_and_the_local_one_asks_for_no_gpu():
    paper = compose_cfg(["launcher=slurm"], hydra_cfg=True).hydra.launcher
    local = compose_cfg(["launcher=slurm_local"], hydra_cfg=True).hydra.launcher
    assert paper.max_num_timeout > 0 and local.max_num_timeout == paper.max_num_timeout  # preempted / timed-out jobs requeue
    assert paper.gpus_per_node == 8 and local.gpus_per_node is None and local.cpus_per_task == 1 and local.tasks_per_node == 1
    assert local._target_.endswith("SlurmLauncher")
    assert run_config(["launcher=slurm_local", "k=2"]).k == 2


# experiments whose offline results are committed (results/): computed in fp32, so they pin it and stay reproducible
# on a CPU where algo.precision=auto would pick bf16
COMMITTED_FP32 = ["alpaca_dpo", "alpaca_gpo", "alpaca_gprl", "alpaca_grpo", "alpaca_simpo", "alpaca_sppo",
                  "alpaca_judge", "cyclic", "table2_rm"]


@pytest.mark.parametrize("experiment", COMMITTED_FP32)
def test_experiments_with_committed_results_pin_fp32(experiment):
    assert run_config([f"+experiment={experiment}"]).algo.precision == "fp32"


@pytest.mark.parametrize("where", ["evaluation.judges.reward_model", "gprl.policy_eval"])
def test_default_judges_train_in_fp32_whatever_the_run_uses(where, monkeypatch):
    """A judge is an instrument shared across runs and machines: the run's bf16 must not reach its cache key."""
    import dataclasses
    import importlib

    import gprl.tasks.reward_model as rm

    seen = []
    monkeypatch.setattr(rm, "cached_reward_model", lambda jcfg, kind: seen.append(jcfg) or "judge")
    cfg = run_config(["+experiment=benchmark", "benchmark.policy=/tmp/p"])
    cfg = dataclasses.replace(cfg, algo=dataclasses.replace(cfg.algo, precision="bf16"))
    importlib.import_module(where).judge_dir(cfg)
    assert seen and seen[0].algo.precision == "fp32" and cfg.algo.precision == "bf16"
