"""Runs you can trust (issue 11). Every bad input ends with exit 2 and one ``gprl: error:`` line before any work,
and touches nothing finished; a run made with other settings is refused, never reused; one writer per run
directory; a kill during a checkpoint save never leaves a run that cannot resume.

The bad-input table runs ``run.cli`` in-process (what ``python run.py ARGS`` runs: the same exit code and the same
stderr line a user sees, without re-importing torch for every case); each case points at one shared finished run
and checks that it is left exactly as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import run
from tests.conftest import PAIRS
from tests.helpers import ROOT


def cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = run.cli(args)
    c = capsys.readouterr()
    return code, c.out, c.err


def snapshot(d: Path) -> dict:
    """Every file under ``d`` but the lock (which names its last holder): size, mtime and content hash."""
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
            for p in sorted(d.rglob("*")) if p.is_file() and p.name != ".lock"}


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def write_jsonl(p: Path, rows) -> Path:
    p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return p


class World:
    """One finished tiny run and the bad files the table feeds it."""

    def __init__(self, base: Path, encoder: str):
        self.base, self.encoder = base, encoder
        self.pairs = write_jsonl(base / "pairs.jsonl", PAIRS)
        self.run_dir = base / "finished"
        self.cache = base / "cache"
        good = self.pairs.read_bytes()
        f = base / "files"
        f.mkdir()
        (f / "gzip_no_ext.jsonl").write_bytes(gzip.compress(good))
        (f / "binary.jsonl").write_bytes(bytes(random.Random(0).randrange(256) for _ in range(4096)))
        (f / "latin1.jsonl").write_bytes(good.splitlines(keepends=True)[0]
                                         + '{"prompt": "caf\u00e9", "chosen": "a", "rejected": "b"}\n'.encode("latin-1"))
        write_jsonl(f / "malformed.jsonl", [PAIRS[0], '{"prompt": '])
        write_jsonl(f / "missing_field.jsonl", [{"prompt": "p", "chosen": "c"}])
        write_jsonl(f / "not_string.jsonl", [{"prompt": "p", "chosen": 5, "rejected": "r"}])
        write_jsonl(f / "empty_texts.jsonl", [{"prompt": "", "chosen": "", "rejected": ""}] * 8)
        write_jsonl(f / "identical.jsonl", [{**r, "rejected": r["chosen"]} for r in PAIRS])
        write_jsonl(f / "long_text.jsonl", [PAIRS[0], {**PAIRS[1], "chosen": "x" * 100_001}])
        (f / "nan_margin.jsonl").write_text('{"prompt": "p", "chosen": "c", "rejected": "r", "margin": NaN}\n')
        (f / "empty.jsonl").write_text("")
        write_jsonl(f / "assistant_last.jsonl", [{"prompt": [{"role": "user", "content": "hi"},
                                                             {"role": "assistant", "content": "hello"}],
                                                  "chosen": "a", "rejected": "b"}])
        (f / "a_folder.jsonl").mkdir()
        self.files = f
        # a SLURM whose nodes have no GPUs
        b = base / "fake_slurm"
        b.mkdir()
        for name, body in (("sbatch", 'echo "$@" >> "$(dirname "$0")/sbatch.calls"; exit 0'), ("sinfo", "echo '(null)'")):
            (b / name).write_text(f"#!/bin/sh\n{body}\n")
            (b / name).chmod(0o755)
        self.fake_slurm = b

    def overrides(self, **changes) -> dict:
        o = {"model.backbone": self.encoder, "model.max_length": "64", "model.freeze_layers": "0", "data": "jsonl",
             "data.train.path": str(self.pairs), "eval": "pairs_only", "eval.pairs": str(self.pairs), "logger": "none",
             "algo.max_steps": "2", "algo.batch_size": "4", "algo.save_steps": "2", "algo.logging_steps": "1",
             "paths.cache": str(self.cache), "hydra.run.dir": str(self.run_dir)}
        return {**o, **changes}

    def args(self, *flags: str, **changes) -> list[str]:
        """The finished run's command with ``changes`` (dotted keys as ``a__b``; None drops a key)."""
        changes = {k.replace("__", "."): v for k, v in changes.items()}
        return [*flags, *(f"{k}={v}" for k, v in self.overrides(**changes).items() if v is not None)]


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_encoder):
    w = World(tmp_path_factory.mktemp("reliability"), tiny_encoder)
    assert run.cli(w.args()) == 0
    assert (w.run_dir / "results.json").exists()
    return w


def f(name: str) -> str:
    return f"@{name}"  # a file of World.files, resolved in the test


# (id, overrides: dotted keys as a__b, a value None drops the key; "-m" sweeps; expected part of the error line)
BAD = [
    # impossible settings
    ("odd_k", {"k": "3"}, "embedding dimension k=3 is impossible"),
    ("zero_k", {"k": "0"}, "embedding dimension k=0 is impossible"),
    ("tau_zero", {"reward_model__tau": "0"}, "tau must be > 0"),
    ("unknown_loss", {"reward_model__loss": "hinge"}, "unknown loss 'hinge'; known: bt, gpm"),
    ("unknown_source", {"data__train__source": "nope"}, "unknown data source 'nope'"),
    ("unknown_task", {"task": "nope"}, "unknown task 'nope'"),
    ("negative_lr", {"algo__lr": "-1"}, "algo.lr must be > 0"),
    ("negative_seed", {"seed": "-1"}, "seed must be in [0, 2**32), got -1"),
    ("unknown_scheduler", {"algo__scheduler": "cosine_typo"}, "unknown algo.scheduler 'cosine_typo'; known: linear"),
    ("unknown_optim", {"algo__optim": "adamw_typo"}, "unknown algo.optim 'adamw_typo'; known:"),
    ("unknown_po_optim", {"po__optim": "sgdd"}, "unknown po.optim 'sgdd'"),
    ("zero_eval_pairs", {"eval__max_pairs_per_set": "0"}, "eval.max_pairs_per_set must be >= 1 or null"),
    ("zero_eval_batch", {"eval__batch_size": "0"}, "eval.batch_size must be >= 1"),
    ("bad_pooling", {"model__pooling": "max"}, "model.pooling must be auto|last|mean|cls"),
    ("bad_dtype", {"model__dtype": "int8"}, "model.dtype must be float32|bfloat16|float16"),
    ("tiny_max_length", {"model__max_length": "4"}, "model.max_length must be >= 8"),
    ("val_fraction_one", {"data__val_fraction": "1"}, "data.val_fraction must be in [0, 1)"),
    ("zero_max_pairs", {"data__train__max_pairs": "0"}, "max_pairs must be >= 1 or null"),
    ("unknown_report", {"eval__reports": "[nope]"}, "unknown report 'nope'"),
    ("bad_logger_mode", {"logger__mode": "nope"}, "logger.mode must be offline|online|disabled"),
    ("unknown_po_loss", {"po__loss": "ipo"}, "unknown preference-optimisation trainer 'ipo'"),
    ("rl_minibatches", {"rl__minibatches": "3"}, "rl.minibatches=3 must divide the rollout batch"),
    ("eval_rm_without_model", {"+experiment": "rm_eval"}, "task eval_rm needs reward_model.path"),
    # Hydra's own errors, one line
    ("k_not_a_number", {"k": "abc"}, "Error merging override k=abc (Value 'abc' of type 'str' could not be converted"),
    ("typo_key", {"algo__lrr": "1"}, "Could not override 'algo.lrr'"),
    ("unknown_group_option", {"model": "nope"}, "Could not find 'model/nope'; Available options in 'model':"),
    ("unknown_experiment", {"+experiment": "nope"}, "Could not find 'experiment/nope'"),
    ("sweep_without_m", {"k": "1,2"}, "To sweep over it, add --multirun"),
    ("equals_in_path", {"reward_model__path": "outputs/default/k=2/model"},
     "quote the value, e.g. 'reward_model.path=\"outputs/default/k=2/model\"'"),
    # paths, checked before anything trains
    ("missing_backbone_dir", {"model__backbone": "/nonexistent/backbone"}, "model.backbone=/nonexistent/backbone does not exist"),
    ("backbone_not_cached", {"model__backbone": "no-such-org/no-such-model"}, "only Hub models already in the Hugging Face cache"),
    ("missing_reward_model", {"reward_model__path": "/nonexistent/rm"}, "reward_model.path=/nonexistent/rm does not exist"),
    ("missing_policy", {"+experiment": "alpaca_gprl", "policy__backbone": "/nonexistent/policy"},
     "policy.backbone=/nonexistent/policy does not exist"),
    ("missing_judge", {"+experiment": "alpaca_gpo", "policy__backbone": "tiny:32x1", "policy_eval__judge": "/nonexistent/judge"},
     "policy_eval.judge=/nonexistent/judge does not exist"),
    ("missing_api_key", {"+experiment": "benchmark", "benchmark__outputs": "claude-2", "judge": "gpt4_turbo"},
     "needs an API key in the environment variable OPENAI_API_KEY"),
    ("missing_api_key_of_a_benchmarks_own_judge", {"+experiment": "benchmark", "benchmark__outputs": "claude-2",
                                                    "benchmark__names": "[alpaca_eval2,mt_bench]",
                                                    "+benchmark__judges__mt_bench": "gpt4"},
     "judge 'gpt4' needs an API key in the environment variable OPENAI_API_KEY"),
    ("missing_train_file", {"data__train__path": "/nonexistent/pairs.jsonl"}, "pairs file /nonexistent/pairs.jsonl does not exist"),
    ("missing_eval_file", {"eval__pairs": "/nonexistent/eval.jsonl"}, "eval.pairs: pairs file /nonexistent/eval.jsonl does not exist"),
    ("folder_as_file", {"data__train__path": f("a_folder.jsonl")}, "is a folder; it must be a .jsonl file"),
    ("missing_shared_data", {"paths__shared_data": "/nonexistent/data"}, "shared data folder /nonexistent/data does not exist"),
    # bad files (an evaluation file is read before training, too)
    ("gzip_without_gz", {"data__train__path": f("gzip_no_ext.jsonl")}, "gzip-compressed but its name does not end in .gz"),
    ("binary_file", {"eval__pairs": f("binary.jsonl")}, "not UTF-8 text"),
    ("latin1_byte", {"data__train__path": f("latin1.jsonl")}, "latin1.jsonl:2: not UTF-8 text: byte 0xe9"),
    ("malformed_json", {"eval__pairs": f("malformed.jsonl")}, "malformed.jsonl:2: malformed JSON line"),
    ("missing_field", {"data__train__path": f("missing_field.jsonl")}, "missing_field.jsonl:1: missing field(s) rejected"),
    ("chosen_not_text", {"data__train__path": f("not_string.jsonl")}, "field 'chosen' must be a string, got int"),
    ("empty_texts", {"data__train__path": f("empty_texts.jsonl")}, "all 8 pairs have chosen == rejected (or both empty)"),
    ("chosen_equals_rejected", {"eval__pairs": f("identical.jsonl")}, "all 16 pairs have chosen == rejected"),
    ("text_too_long", {"data__train__path": f("long_text.jsonl")},
     "long_text.jsonl:2: field 'chosen' is 100,001 characters, over the limit of 100,000"),
    ("nan_margin", {"data__train__path": f("nan_margin.jsonl")}, "margin must be a finite number, got nan"),
    ("empty_file", {"eval__pairs": f("empty.jsonl")}, "data source 'jsonl' (split 'train') gave no pairs"),
    ("prompt_ends_with_assistant", {"data__train__path": f("assistant_last.jsonl")}, "must end with a user turn"),
    # where and how it runs
    ("unwritable_output", {"hydra__run__dir": "/sys/gprl-run"}, "cannot create output folder /sys/gprl-run: /sys is not writable"),
    ("slurm_without_m", {"launcher": "slurm"}, "launcher=slurm sends the jobs of a sweep to SLURM and so needs -m"),
    ("slurm_not_installed", {"-m": True, "launcher": "slurm"}, "this machine has no sbatch on PATH"),
    ("slurm_without_gpus", {"-m": True, "launcher": "slurm", "@fake_slurm": True},
     "asks for hydra.launcher.gpus_per_node=8, but the nodes of this cluster have no GPUs"),
    ("sweep_with_bad_point", {"-m": True, "k": "2,3"}, "sweep point k=3"),
    ("slurm_sweep_with_bad_point", {"-m": True, "launcher": "slurm_local", "@fake_slurm": True, "k": "2,3"},
     "sweep point k=3"),
]


def test_the_table_covers_at_least_40_kinds_of_bad_input():
    assert len({c[0] for c in BAD}) == len(BAD) >= 40


@pytest.mark.parametrize("changes, expected", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_is_one_line_and_touches_nothing(world, changes, expected, capsys, monkeypatch, tmp_path):
    changes = dict(changes)
    flags = ["-m"] if changes.pop("-m", False) else []
    if flags:  # a sweep writes under hydra.sweep.dir
        changes.update({"hydra__run__dir": None, "hydra__sweep__dir": str(tmp_path / "sweep")})
    if changes.pop("@fake_slurm", False):
        monkeypatch.setenv("PATH", f"{world.fake_slurm}{os.pathsep}{os.environ['PATH']}")
    else:  # this machine's own SLURM, if any, must not matter
        monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                                   if not (Path(p) / "sbatch").exists()))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    changes = {k: (str(world.files / v[1:]) if isinstance(v, str) and v.startswith("@") else v) for k, v in changes.items()}
    before = snapshot(world.run_dir)
    code, out, err = cli(world.args(*flags, **changes), capsys)
    assert code == 2, (out[-2000:], err[-2000:])
    assert len(lines(err)) == 1 and err.startswith("gprl: error: "), err[-3000:]
    assert expected in err, err
    assert "Traceback" not in out + err
    assert snapshot(world.run_dir) == before
    assert not (tmp_path / "sweep").exists()  # a sweep with a bad point starts nothing
    assert not (world.fake_slurm / "sbatch.calls").exists()  # and submits nothing
    assert not world.cache.exists()  # nothing trained (policy runs would train their reward model first)


def test_finished_run_is_shown_not_redone_and_its_record_kept(world, capsys):
    before = snapshot(world.run_dir)
    code, out, err = cli(world.args(), capsys)
    assert code == 0 and "this run is finished" in out, err
    assert snapshot(world.run_dir) == before  # .hydra/ and results.json untouched
    res = json.loads((world.run_dir / "results.json").read_text())
    fp = json.loads((world.run_dir / "fingerprint.json").read_text())
    assert res["config_fingerprint"] == fp["fingerprint"]
    assert json.loads((world.run_dir / "model" / "train_summary.json").read_text())["config_fingerprint"] == fp["fingerprint"]
    assert (world.run_dir / ".hydra" / "config.yaml").exists()
    # keys that do not change what is computed leave the run reusable
    code, out, err = cli(world.args(eval__batch_size="7", logger="wandb_offline"), capsys)
    assert code == 0 and "this run is finished" in out, err
    assert snapshot(world.run_dir) == before


def test_changed_settings_refuse_the_finished_run(world, capsys):
    """After a default changes, the same command must not report the old run as its result."""
    before = snapshot(world.run_dir)
    code, out, err = cli(world.args(algo__lr="0.001", k="2"), capsys)
    assert code == 2 and len(lines(err)) == 1 and "Traceback" not in err, err
    assert f"{world.run_dir} holds a run made with other settings" in err
    assert "algo.lr=0.001 (was 5e-05)" in err and "k=2 (was 4)" in err and "different name=" in err
    assert snapshot(world.run_dir) == before


def test_a_setting_added_to_the_code_since_at_its_default_changes_nothing(world, capsys, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(world.run_dir, d)
    rec = json.loads((d / "fingerprint.json").read_text())
    assert rec["config"].pop("algo.max_grad_norm") == 1.0  # as if the run predates this field (default 1.0)
    (d / "fingerprint.json").write_text(json.dumps(rec))
    code, out, err = cli(world.args(hydra__run__dir=str(d)), capsys)
    assert code == 0 and "this run is finished" in out, err
    code, out, err = cli(world.args(hydra__run__dir=str(d), algo__max_grad_norm="0.5"), capsys)
    assert code == 2 and "algo.max_grad_norm=0.5 (was \"<unset>\")" in err, err


def test_read_only_finished_run_is_shown(world, capsys, tmp_path):
    """A finished run in a folder nobody may write is shown; an unfinished one is one line."""
    ro = [["chattr", "+i"], ["chattr", "-i"]] if os.geteuid() == 0 else None

    def lock(d: Path, on: bool):
        if ro is None:
            d.chmod(0o555 if on else 0o755)
        elif subprocess.run([*ro[0 if on else 1], str(d)], capture_output=True).returncode:
            pytest.skip("cannot make a folder read-only here (root without chattr)")

    before = snapshot(world.run_dir)
    lock(world.run_dir, True)
    try:
        code, out, err = cli(world.args(), capsys)
        assert code == 0 and "this run is finished" in out and "Traceback" not in err, err
        empty = tmp_path / "empty_run"
        empty.mkdir()
        lock(empty, True)
        try:
            code, out, err = cli(world.args(hydra__run__dir=str(empty)), capsys)
        finally:
            lock(empty, False)
        assert code == 2 and lines(err) == [f"gprl: error: output folder {empty} is not writable: choose another "
                                            f"with hydra.run.dir=DIR (hydra.sweep.dir=DIR with -m)"], err
    finally:
        lock(world.run_dir, False)
    assert snapshot(world.run_dir) == before


def test_identical_pairs_are_left_out_and_counted(world, capsys, tmp_path):
    rows = PAIRS[:14] + [{**PAIRS[0], "rejected": PAIRS[0]["chosen"]}, {**PAIRS[1], "chosen": " ", "rejected": ""}]
    pairs = write_jsonl(tmp_path / "some_identical.jsonl", rows)
    code, out, err = cli(["+experiment=rm_eval", f"reward_model.path={world.run_dir / 'model'}", f"eval.pairs={pairs}",
                          "logger=none", f"hydra.run.dir={tmp_path / 'ev'}"], capsys)
    assert code == 0, err
    assert f"{pairs}: left out 2 of 16 pairs whose chosen equals rejected" in out
    assert json.loads((tmp_path / "ev" / "results.json").read_text())["n"] == 14


# ---- one writer per run directory -------------------------------------------------------------------------------

def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1"}


def test_second_copy_of_a_running_command_refuses(world, capsys, tmp_path):
    from gprl.rundir import LOCK, RunLock

    args = world.args(hydra__run__dir=str(tmp_path / "busy"), algo__max_steps="100000", algo__save_steps="1000")
    first = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lock_file = tmp_path / "busy" / LOCK
        deadline = time.time() + 240
        while time.time() < deadline and first.poll() is None:
            if lock_file.exists() and f'"pid": {first.pid}' in lock_file.read_text():
                break
            time.sleep(0.5)
        assert first.poll() is None, "the first copy ended early"
        fingerprint = (tmp_path / "busy" / "fingerprint.json").read_text()
        code, out, err = cli(args, capsys)
        assert code == 2 and len(lines(err)) == 1 and "Traceback" not in err, err
        assert f"is in use by another gprl run (PID {first.pid} on host {os.uname().nodename}" in err
        assert f'"pid": {first.pid}' in lock_file.read_text()  # the second copy wrote nothing
        assert (tmp_path / "busy" / "fingerprint.json").read_text() == fingerprint
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # a crash releases the lock
    free = RunLock(tmp_path / "busy" / LOCK)
    free.acquire()
    free.release()


# ---- kills during a checkpoint save, damaged checkpoints and results ---------------------------------------------

KILL_IN_SAVE = """
import os, signal, sys
sys.path.insert(0, {root!r})
from transformers import Trainer
save = Trainer._save_optimizer_and_scheduler
def killed(self, output_dir):
    if self.state.global_step == 4:  # checkpoint-4's weights are written, its optimizer half written: SIGKILL
        with open(os.path.join(output_dir, "optimizer.pt"), "wb") as f:
            f.write(b"PK\\x03\\x04 half an archive")
        os.kill(os.getpid(), signal.SIGKILL)
    return save(self, output_dir)
Trainer._save_optimizer_and_scheduler = killed
import run
sys.exit(run.cli(sys.argv[1:]))
"""


def test_kill_during_checkpoint_save_resumes_from_the_previous_one(world, capsys, tmp_path):
    import torch

    from gprl.models import GeneralPreferenceModel

    killed, straight = tmp_path / "killed", tmp_path / "straight"
    args = world.args(hydra__run__dir=str(killed), algo__max_steps="6")
    r = subprocess.run([sys.executable, "-c", KILL_IN_SAVE.format(root=str(ROOT)), *args], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == -signal.SIGKILL, r.stderr[-3000:]
    assert (killed / "checkpoints" / "checkpoint-4").is_dir() and not (killed / "model").exists()
    code, out, err = cli(args, capsys)
    assert code == 0 and "Traceback" not in err, err[-3000:]
    notes = [ln for ln in lines(out) if "is incomplete" in ln]
    assert notes == [f"[gprl] {killed / 'checkpoints' / 'checkpoint-4'} is incomplete (trainer_state.json is missing; "
                     f"a kill during its save?): moved it to incomplete-checkpoint-4; "
                     f"resuming from checkpoint-2"], out
    assert (killed / "results.json").exists()
    steps = [json.loads(ln)["step"] for ln in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and len([s for s in steps if s == 3]) == 1  # no step logged twice
    assert cli(world.args(hydra__run__dir=str(straight), algo__max_steps="6"), capsys)[0] == 0
    a = GeneralPreferenceModel.from_pretrained(straight / "model").state_dict()
    b = GeneralPreferenceModel.from_pretrained(killed / "model").state_dict()
    for n in a:
        assert torch.allclose(a[n], b[n], atol=1e-6), n


@pytest.fixture(scope="module")
def interrupted(world, tmp_path_factory):
    """A run stopped after step 4 of 6 with whole checkpoints 2 and 4 (as a crash after a save leaves it)."""
    from gprl.tasks.reward_model import train
    from gprl.trainers.callbacks import StopAtStep
    from tests.helpers import run_config

    d = tmp_path_factory.mktemp("interrupted")
    cfg = run_config([a for a in world.args(algo__max_steps="6") if not a.startswith("hydra.")])
    assert train(cfg, d, callbacks=[StopAtStep(4)]).name == "checkpoints"
    assert sorted(p.name for p in (d / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    return cfg, d


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


DAMAGE = {
    "empty_dir": (lambda c: [shutil.rmtree(c), c.mkdir()], "trainer_state.json is missing"),
    "no_trainer_state": (lambda c: (c / "trainer_state.json").unlink(), "trainer_state.json is missing"),
    "truncated_trainer_state": (lambda c: _truncate(c / "trainer_state.json"), "trainer_state.json is unreadable"),
    "truncated_weights": (lambda c: _truncate(c / "model.safetensors"), "model.safetensors is truncated"),
    "truncated_optimizer": (lambda c: _truncate(c / "optimizer.pt"), "optimizer.pt is truncated"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_latest_checkpoint_falls_back(interrupted, tmp_path, capsys, damage):
    from gprl.tasks.reward_model import train

    cfg, src = interrupted
    d = tmp_path / "run"
    shutil.copytree(src, d)
    do, why = DAMAGE[damage]
    do(d / "checkpoints" / "checkpoint-4")
    assert train(cfg, d).name == "model"
    out = capsys.readouterr().out
    assert f"checkpoint-4 is incomplete ({why}" in out and "resuming from checkpoint-2" in out, out
    assert (d / "checkpoints" / "incomplete-checkpoint-4").is_dir()


def test_damaged_model_and_results_are_made_again(world, tmp_path, capsys):
    d = tmp_path / "run"
    shutil.copytree(world.run_dir, d)
    _truncate(d / "model" / "heads.pt")
    _truncate(d / "results.json")
    code, out, err = cli(world.args(hydra__run__dir=str(d)), capsys)
    assert code == 0 and "Traceback" not in err, err[-3000:]
    assert f"[gprl] {d / 'results.json'} is damaged (JSONDecodeError): moved it to results.json.damaged" in out
    assert f"[gprl] {d / 'model'} is damaged (heads.pt is truncated or not a torch.save archive)" in out
    assert json.loads((d / "results.json").read_text())["n"] == 16
    assert (d / "model.damaged").is_dir() and (d / "model" / "heads.pt").exists()
