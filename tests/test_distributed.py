"""Several processes per job (gprl.distributed), the paper's global batch on any GPU count, DeepSpeed settings for
every trainer, and the generation backends (transformers here, vLLM on GPU nodes).

Fast: batch arithmetic for world sizes 1, 2, 8 from the composed configs, the DeepSpeed file in every trainer's
arguments, the guards (a process with several GPUs, indivisible batches, LoRA with ZeRO-3, vLLM not installed),
SLURM's variables turned into torch.distributed's. Slow (``make test-slow``): two CPU processes (torchrun, gloo)
against one with the same global batch, for reward-model training through run.py and for GPRL steps. Cluster
(``make test-cluster``, a live local SLURM cluster): the same with two SLURM tasks, through submitit
(``launcher=slurm``, ``tasks_per_node=2``) for run.py and through ``srun -n 2`` for GPRL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from gprl import GprlError
from tests.helpers import ROOT, run_config, tiny_overrides

PAPER_RL = ["rl.prompts_per_step=64", "rl.num_generations=8", "rl.minibatches=4"]  # SPEC 3.3: 512 rollouts, 4 steps


# ---- the global batch, for any number of processes ------------------------------------------------------------

@pytest.mark.parametrize("world, accum", [(1, 8), (2, 4), (8, 1)])
def test_rm_paper_global_batch_and_deepspeed(world, accum):
    from gprl.tasks.reward_model import training_kwargs

    cfg = run_config(["algo=rm_paper"])
    kw = training_kwargs(cfg, Path("/tmp/x"), "none", world=world)
    assert kw["per_device_train_batch_size"] * kw["gradient_accumulation_steps"] * world == 32  # SPEC 1.2
    assert kw["gradient_accumulation_steps"] == accum
    assert Path(kw["deepspeed"]) == ROOT / "slurm" / "ds_zero3.json" and Path(kw["deepspeed"]).is_file()


def test_indivisible_global_batch_is_refused():
    from gprl.tasks.reward_model import training_kwargs

    cfg = run_config(["algo=rm_paper"])
    with pytest.raises(GprlError, match=r"algo.global_batch_size=32 .* 3 process\(es\) = 12"):
        training_kwargs(cfg, Path("/tmp/x"), "none", world=3)
    with pytest.raises(GprlError, match="not both"):
        run_config(["algo=rm_paper", "algo.grad_accum=2"])
    with pytest.raises(GprlError, match="multiple of the per-device"):
        run_config(["algo.global_batch_size=10", "algo.batch_size=4"])


def test_without_global_batch_the_per_device_settings_stand():
    from gprl.tasks.reward_model import training_kwargs

    cfg = run_config(["algo.batch_size=16", "algo.grad_accum=2"])
    kw = training_kwargs(cfg, Path("/tmp/x"), "none", world=8)
    assert (kw["per_device_train_batch_size"], kw["gradient_accumulation_steps"], kw["deepspeed"]) == (16, 2, None)


@pytest.mark.parametrize("world, per_device", [(1, 128), (2, 64), (8, 16)])
def test_rl_global_batch_and_deepspeed(tmp_path, world, per_device):
    from gprl.tasks.rl import grpo_kwargs

    cfg = run_config(["task=train_rl", *PAPER_RL, "rl.deepspeed=slurm/ds_zero3.json"])
    kw = grpo_kwargs(cfg, tmp_path, "none", world=world)
    # one optimiser step = a quarter of the 64 x 8 rollout batch, over all processes
    assert kw["per_device_train_batch_size"] * world == 64 * 8 // 4
    assert kw["per_device_train_batch_size"] == per_device and kw["steps_per_generation"] == 4
    assert Path(kw["deepspeed"]) == ROOT / "slurm" / "ds_zero3.json"


def test_rl_indivisible_and_the_config_trl_builds(tmp_path):
    from trl import GRPOConfig

    from gprl.tasks.rl import grpo_kwargs

    cfg = run_config(["task=train_rl", "rl.prompts_per_step=4", "rl.num_generations=2", "rl.minibatches=1"])
    with pytest.raises(GprlError, match="cannot be split evenly over 3 process"):
        grpo_kwargs(cfg, tmp_path, "none", world=3)
    args = GRPOConfig(**grpo_kwargs(cfg, tmp_path, "none"))  # TRL accepts what we build (one process, no DeepSpeed)
    assert args.per_device_train_batch_size == 8 and args.num_generations == 2 and args.deepspeed is None


@pytest.mark.parametrize("world, per_device, accum", [(1, 8, 8), (2, 8, 4), (8, 8, 1)])
def test_po_global_batch_and_deepspeed(tmp_path, world, per_device, accum):
    from gprl.trainers.po import POSettings, _common

    cfg = run_config(["task=train_po", "po.batch_size=64", "po.per_device_batch_size=8"])  # SPEC 2: 8 per GPU x 8
    s = POSettings(loss="gpo", output_dir=str(tmp_path), beta=0.001, lr=5e-7, batch_size=cfg.po.batch_size,
                   per_device_batch_size=cfg.po.per_device_batch_size, deepspeed="ds.json")
    kw = _common(s, world=world)
    assert (kw["per_device_train_batch_size"], kw["gradient_accumulation_steps"]) == (per_device, accum)
    assert kw["deepspeed"] == "ds.json"
    kw = _common(POSettings(loss="gpo", output_dir=str(tmp_path), beta=0.1, lr=1e-6, batch_size=64), world=world)
    assert (kw["per_device_train_batch_size"], kw["gradient_accumulation_steps"]) == (64 // world, 1)
    with pytest.raises(GprlError, match="po.batch_size=64 .* 3 process"):
        _common(s, world=3)


def test_po_task_passes_deepspeed_and_batch(tmp_path, monkeypatch):
    """train_po's iteration hands po.deepspeed (from the project root) and the batch settings to the trainer."""
    from gprl.tasks import po as po_task
    from gprl.trainers import po as po_trainers

    seen = {}

    def fake_trainer(model, tok, dataset, settings, callbacks=()):
        seen["settings"] = settings
        raise RuntimeError("stop")

    monkeypatch.setitem(po_trainers.PO_TRAINERS._items, "gpo", fake_trainer)
    monkeypatch.setattr(po_task, "load_policy", lambda path, dtype: (None, None))
    monkeypatch.setattr("gprl.models.generation.sample", lambda *a, **k: [["a", "b"]] * len(a[2]))
    monkeypatch.setattr(po_task, "label_pairs", lambda rm, p, s, loss: [
        {"prompt": "p", "chosen": "a", "rejected": "b", "target_chosen": 1.0, "target_rejected": 0.0}])
    cfg = run_config(["task=train_po", "po.batch_size=64", "po.per_device_batch_size=8",
                      "po.deepspeed=slurm/ds_zero3.json", "po.prompts_per_iteration=1"])
    with pytest.raises(RuntimeError, match="stop"):
        po_task.run_iteration(cfg, 1, "policy", None, ["p"], tmp_path / "it1")
    s = seen["settings"]
    assert (s.batch_size, s.per_device_batch_size) == (64, 8)
    assert Path(s.deepspeed) == ROOT / "slurm" / "ds_zero3.json"


def test_deepspeed_file_checked_before_the_run(tmp_path):
    from gprl.checks import check_inputs

    cfg = run_config(["task=train_rl", f"rl.deepspeed={tmp_path / 'missing.json'}"])
    with pytest.raises(GprlError, match=r"rl.deepspeed=.*missing.json.*not a readable DeepSpeed JSON"):
        check_inputs(cfg)
    with pytest.raises(GprlError, match="LoRA adapters are merged"):
        run_config(["task=train_po", "policy.lora_r=8", "po.deepspeed=slurm/ds_zero3.json"])


# ---- one process per accelerator ------------------------------------------------------------------------------

def test_one_process_seeing_several_gpus_is_refused(tmp_path, monkeypatch):
    """transformers' Trainer would wrap the model in nn.DataParallel; the run stops with the launch to use."""
    from transformers import TrainingArguments

    from gprl.tasks.reward_model import training_args

    monkeypatch.setattr(TrainingArguments, "n_gpu", property(lambda self: 8))
    with pytest.raises(GprlError, match=r"one process sees 8 GPUs.*torchrun --nproc_per_node 8"):
        training_args(run_config([]), tmp_path, "none")


def test_slurm_tasks_become_torch_distributed_env(monkeypatch):
    from gprl import distributed

    monkeypatch.setattr(os, "environ", dict(os.environ))  # what export_slurm_env writes goes with the test
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SUBMITIT_EXECUTOR"):
        os.environ.pop(k, None)  # as in a plain `srun python run.py` step
    slurm = {"SLURM_JOB_ID": "42", "SLURM_NTASKS": "2", "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0",
             "SLURM_JOB_NODELIST": "node7", "SLURM_PROCID": "1", "SLURM_LOCALID": "1"}
    os.environ.update(slurm)
    distributed.export_slurm_env()
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"], os.environ["MASTER_ADDR"]) == \
        ("1", "2", "1", "node7")
    assert distributed.world_size() == 2 and not distributed.is_main()
    os.environ["RANK"] = "0"  # a launcher (torchrun) already set them: left alone
    distributed.export_slurm_env()
    assert os.environ["RANK"] == "0"


# ---- generation backends --------------------------------------------------------------------------------------

def test_generation_backends_registry_and_missing_vllm(tiny_decoder, monkeypatch):
    from gprl.models.generation import GENERATORS, generate, load_causal_lm, sample

    assert GENERATORS.names() == ["transformers", "vllm"]
    with pytest.raises(GprlError, match="unknown generation backend 'sglang'; known: transformers, vllm"):
        sample("sglang", tiny_decoder, ["Hi"])
    monkeypatch.setitem(sys.modules, "vllm", None)  # vLLM not importable (as here)
    with pytest.raises(GprlError, match=r"use_vllm=true generates with vLLM, which cannot be imported.*=false"):
        sample("vllm", tiny_decoder, ["Hi"])
    model, tok = load_causal_lm(tiny_decoder)
    got = sample("transformers", tiny_decoder, ["Hi", "Name a fruit."], 2, 4, 0.7, 0.9, seed=3)
    assert got == generate(model, tok, ["Hi", "Name a fruit."], 2, 4, 0.7, 0.9, seed=3)
    assert len(got) == 2 and all(len(a) == 2 for a in got)


def test_vllm_backend_plumbing_with_a_stand_in(monkeypatch):
    """What reaches vLLM's offline engine, and the [prompt][sample] shape back (a stand-in module: no vLLM here)."""
    from gprl.models.generation import sample

    calls = {}

    class LLM:
        def __init__(self, **kw):
            calls["llm"] = kw

        def chat(self, chats, params):
            calls["chats"], calls["params"] = chats, params
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f" {c[-1]['content']}-{i} ")
                                                   for i in range(params.kw["n"])]) for c in chats]

    class SamplingParams:
        def __init__(self, **kw):
            self.kw = kw

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    out = sample("vllm", "/models/policy", ["a", "b"], 3, 16, 0.7, 0.9, seed=5, dtype="bfloat16")
    assert out == [["a-0", "a-1", "a-2"], ["b-0", "b-1", "b-2"]]
    assert calls["llm"] == {"model": "/models/policy", "dtype": "bfloat16", "seed": 5}
    assert calls["params"].kw == {"n": 3, "temperature": 0.7, "top_p": 0.9, "max_tokens": 16, "seed": 5}
    assert calls["chats"][0] == [{"role": "user", "content": "a"}]


@pytest.mark.parametrize("overrides, key", [
    (["task=train_po", "po.use_vllm=true"], "po.use_vllm"),
    (["task=train_rl", "rl.use_vllm=true"], "rl.use_vllm"),
    (["task=benchmark", "benchmark.outputs=x", "benchmark.use_vllm=true"], "benchmark.use_vllm"),
])
def test_vllm_requested_without_vllm_stops_before_the_run(overrides, key, monkeypatch):
    from gprl.checks import _check_vllm

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(GprlError, match=rf"{key}=true generates with vLLM"):
        _check_vllm(run_config(overrides))
    _check_vllm(run_config([o for o in overrides if "use_vllm" not in o]))  # transformers: nothing to check


def test_benchmark_answers_dispatch_to_vllm(monkeypatch):
    from evaluation import benchmark

    seen = {}

    def fake_sample(backend, path, prompts, n, max_new_tokens, temperature, top_p, seed, **kw):
        seen.update(backend=backend, path=path, n=n, max_new_tokens=max_new_tokens)
        return [[f"answer to {p}"] for p in prompts]

    monkeypatch.setattr("gprl.models.generation.sample", fake_sample)
    cfg = run_config(["task=benchmark", "benchmark.outputs=x", "benchmark.use_vllm=true"])
    out = benchmark.generate_answers(cfg, "/models/p", ["q1", "q2"], {"max_new_tokens": 9, "temperature": 0.0,
                                                                     "top_p": 1.0}, "answers")
    assert out == ["answer to q1", "answer to q2"]
    assert seen == {"backend": "vllm", "path": "/models/p", "n": 1, "max_new_tokens": 9}


# ---- two processes against one (torchrun, gloo) -----------------------------------------------------------------

def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def _torchrun(args: list[str], nproc: int, log_dir: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """``nproc`` processes (``--standalone``: a free port); ``log_dir``: each rank's output in its own files."""
    logs = ["--log-dir", str(log_dir), "--redirects", "3"] if log_dir else []
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *logs, *args]
    if nproc == 1:
        cmd = [sys.executable, *args]
    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.mark.slow
def test_gprl_two_processes_equal_one(tmp_path, tiny_decoder, tiny_encoder):
    """Two GPRL rollout batches of 3 prompts x G=4 (one group spans the two processes): losses, rewards, per-axis
    statistics, the running scale and the monitor's view equal one process's with the same global batch, and
    each process trains on its own half of the advantages."""
    one, two = tmp_path / "one", tmp_path / "two"
    for out, n in ((one, 1), (two, 2)):
        out.mkdir()
        _torchrun(["tests/dist_worker.py", "gprl", str(out), tiny_decoder, tiny_encoder], n)
    a = json.loads((one / "rank0.json").read_text())
    ranks = [json.loads((two / f"rank{r}.json").read_text()) for r in (0, 1)]
    for b in ranks:
        assert b["world"] == 2
        for key in ("loss", "reward", "adv_share", "win", "sigma_bar"):
            assert b[key] == pytest.approx(a[key], abs=1e-5), key
        assert (b["eps"], b["beta"]) == (a["eps"], a["beta"])
    for step, full in enumerate(a["advantages"]):
        assert ranks[0]["advantages"][step] + ranks[1]["advantages"][step] == pytest.approx(full, abs=1e-5)
        assert len(ranks[1]["advantages"][step]) == len(full) // 2  # rank 1 trains on its half, not on nothing


@pytest.mark.slow
def test_reward_model_two_processes_equal_one_through_run_py(tmp_path, tiny_encoder, pairs_file):
    """``torchrun --nproc_per_node 2 run.py`` with global batch 8 (4 per process) against ``python run.py`` (4 x 2
    accumulation steps): the same losses and model; rank 0 alone writes results, the model and W&B."""
    base = [o for o in tiny_overrides(tiny_encoder, pairs_file, steps=3) if o != "logger=none"]
    base += ["logger=wandb_offline", "algo.global_batch_size=8", "algo.lr=1e-3", "algo.warmup_ratio=0",
             "algo.save_steps=100"]
    runs = {}
    for n in (1, 2):
        out = tmp_path / f"p{n}"
        _torchrun(["run.py", *base, f"hydra.run.dir={out}"], n, log_dir=tmp_path / "logs")
        runs[n] = out
    loss = {n: [json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()
                if '"loss"' in line] for n, d in runs.items()}
    assert len(loss[1]) == 3 and loss[2] == pytest.approx(loss[1], abs=1e-5)
    summary = {n: json.loads((d / "model" / "train_summary.json").read_text()) for n, d in runs.items()}
    assert (summary[1]["processes"], summary[2]["processes"]) == (1, 2)
    import torch

    heads = {n: torch.load(d / "model" / "heads.pt") for n, d in runs.items()}
    assert torch.allclose(heads[1]["head"]["weight"], heads[2]["head"]["weight"], atol=1e-5)
    res = {n: json.loads((d / "results.json").read_text()) for n, d in runs.items()}
    assert res[2]["accuracy"] == res[1]["accuracy"]
    d = runs[2]
    assert len(list((d / "wandb").glob("offline-run-*"))) == 1  # one W&B run: rank 0's
    assert not list(d.glob("*.tmp")) and not list(d.glob("results.*.json"))
    assert len(list(d.glob("**/fingerprint.json"))) == 1
    (rank0,), (rank1,) = (list((tmp_path / "logs").glob(f"**/attempt_0/{r}/stdout.log")) for r in (0, 1))
    assert "Pairwise accuracy" in rank0.read_text()  # rank 0 evaluated and reported
    assert "Pairwise accuracy" not in rank1.read_text() and "training a GPM" in rank1.read_text()  # rank 1 only trained


# ---- two SLURM tasks against one process (a live local cluster: slurm/local_cluster.sh up) ----------------------

def _cluster_or_skip() -> None:
    import shutil

    r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True) if shutil.which("sinfo") else None
    if r is None or r.returncode != 0 or not r.stdout.strip():
        pytest.skip("no SLURM cluster answers sinfo: start one with `make cluster-up` (root), or run `make test-cluster`")


# SLURM for the local one-node cluster (no GPU request, one CPU per task), two tasks in one job
LOCAL_SLURM = ["launcher=slurm_local", "hydra.launcher.mem_gb=4", "hydra.launcher.timeout_min=10",
               "hydra.launcher.tasks_per_node=2"]


@pytest.mark.cluster
def test_gprl_two_slurm_tasks_equal_one(tmp_path, tiny_decoder, tiny_encoder):
    """``srun -n 2``: gprl.distributed.setup joins the tasks from SLURM's variables (no torchrun); the GPRL steps
    equal one process's with the same global batch."""
    _cluster_or_skip()
    one, two = tmp_path / "one", tmp_path / "two"
    for out in (one, two):
        out.mkdir()
    _torchrun(["tests/dist_worker.py", "gprl", str(one), tiny_decoder, tiny_encoder], 1)
    r = subprocess.run(["srun", "-n", "2", "--cpus-per-task", "1", "--mem", "4G", "--time", "10", sys.executable,
                        "tests/dist_worker.py", "gprl", str(two), tiny_decoder, tiny_encoder],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    a = json.loads((one / "rank0.json").read_text())
    for rank in (0, 1):
        b = json.loads((two / f"rank{rank}.json").read_text())
        assert b["world"] == 2
        for key in ("loss", "reward", "win", "sigma_bar"):
            assert b[key] == pytest.approx(a[key], abs=1e-5), key


@pytest.mark.cluster
def test_reward_model_two_slurm_tasks_through_submitit(tmp_path, tiny_encoder, pairs_file):
    """``run.py -m launcher=slurm_local hydra.launcher.tasks_per_node=2``: one SLURM job, two tasks (submitit), the same
    losses and model as one local process with the same global batch; one W&B run, one results file."""
    _cluster_or_skip()
    base = [o for o in tiny_overrides(tiny_encoder, pairs_file, steps=3) if o != "logger=none"]
    base += ["logger=wandb_offline", "algo.global_batch_size=8", "algo.lr=1e-3", "algo.warmup_ratio=0",
             "algo.save_steps=100"]
    _torchrun(["run.py", *base, f"hydra.run.dir={tmp_path / 'local'}"], 1)
    r = subprocess.run([sys.executable, "run.py", "-m", *LOCAL_SLURM, *base, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (job,) = [p.parent for p in (tmp_path / "sweep").glob("*/results.json")]
    runs = {1: tmp_path / "local", 2: job}
    loss = {n: [json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()
                if '"loss"' in line] for n, d in runs.items()}
    assert len(loss[1]) == 3 and loss[2] == pytest.approx(loss[1], abs=1e-5)
    assert json.loads((job / "model" / "train_summary.json").read_text())["processes"] == 2
    assert len(list((job / "wandb").glob("offline-run-*"))) == 1
    logs = sorted((tmp_path / "sweep" / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2  # two tasks ran
