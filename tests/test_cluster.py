"""The SLURM path on a live one-node cluster (``slurm/local_cluster.sh up``; ``make test-cluster`` starts it): a
sweep's jobs land in the same run directories as local runs, a table's rows are submitted together, a sweep with
an invalid point or a GPU request the node cannot meet submits nothing, and a job preempted mid-training comes back,
resumes from its last checkpoint and ends where an uninterrupted run ends.

Every job is a tiny reward-model run (2-layer, 32-wide encoder built by conftest, 16 pairs); ``launcher=slurm_local``
asks for one CPU per job, so two jobs run at once on a 2-core node.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers import ROOT, run_cli, tiny_overrides

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module", autouse=True)
def cluster():
    r = subprocess.run([str(ROOT / "slurm" / "local_cluster.sh"), "status"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"no local SLURM cluster ({r.stdout.strip()}): start one with `make cluster-up` (root), or run "
                    f"`make test-cluster`")


def sweep_args(encoder: str, pairs_file: Path, sweep_dir: Path, *extra: str, steps: int = 2) -> list[str]:
    return ["-m", "launcher=slurm_local", *tiny_overrides(encoder, pairs_file, steps=steps), f"hydra.sweep.dir={sweep_dir}",
            *extra]


def job_ids(sweep_dir: Path) -> list[str]:
    """SLURM ids of the jobs a sweep submitted: submitit keeps one folder per job, named by its id (``N_i`` for the
    tasks of an array, ``N`` for a single job), holding its pickled submission."""
    return sorted(p.parent.name for p in (sweep_dir / ".submitit").glob("*/*_submitted.pkl"))


def job_info(job_id: str, settle_s: float = 60) -> dict[str, str]:
    """``scontrol show job`` as a dict (the local cluster keeps finished jobs for 10 minutes: MinJobAge=600).

    submitit calls a job done as soon as its result file exists, while the job's Python process may still be
    exiting (RUNNING), and slurmctld then shows COMPLETING until the node's epilogue is done: wait (up to
    ``settle_s``) while the job is in one of these two states, so that the state read is the one it ended in.
    CI saw a sweep's job read too early once; ``settle_s=0`` reads the state as it is now."""
    deadline = time.monotonic() + settle_s
    while True:
        out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True,
                             check=True).stdout
        info = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
        if info.get("JobState") not in ("RUNNING", "COMPLETING") or time.monotonic() > deadline:
            return info
        time.sleep(1)


def state(info: dict[str, str]) -> dict[str, str | None]:
    """The fields that say how a job ended (a whole ``scontrol`` record is too long to read in an assertion)."""
    return {k: info.get(k) for k in ("JobId", "JobState", "Reason", "ExitCode", "Restarts", "EndTime")}


def when(s: str) -> datetime:
    return datetime.fromisoformat(s)


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from gprl.models import GeneralPreferenceModel

    return {n: p.detach().clone() for n, p in GeneralPreferenceModel.from_pretrained(model_dir).named_parameters()}


def snapshot(d: Path) -> dict:
    """Every file of the run directories under ``d`` (not the lock, submitit's job files or Hydra's sweep-level
    multirun.yaml, which Hydra writes at every multirun)."""
    return {str(p.relative_to(d)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(d.rglob("*"))
            if p.is_file() and p.name not in (".lock", "multirun.yaml") and ".submitit" not in p.parts}


def test_sweep_runs_every_job_on_slurm_into_the_local_run_directories(tiny_encoder, pairs_file, tmp_path, capsys):
    import run

    sweep = tmp_path / "sweep"
    r = run_cli(sweep_args(tiny_encoder, pairs_file, sweep, "k=1,2"))
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    ids = job_ids(sweep)
    assert len(ids) == 2, ids
    info = [job_info(i) for i in ids]
    assert all(j["JobState"] == "COMPLETED" for j in info), [state(j) for j in info]
    runs = sorted(p for p in sweep.iterdir() if (p / "results.json").exists())
    assert sorted(results(p)["k"] for p in runs) == [1, 2]
    before = snapshot(sweep)
    # the same sweep run here (Hydra's basic launcher) finds both jobs' runs in the directories it would have made:
    # shown as finished, nothing trained or rewritten, no other directory made
    code = run.cli([a for a in sweep_args(tiny_encoder, pairs_file, sweep, "k=1,2") if a != "launcher=slurm_local"])
    out = capsys.readouterr().out
    assert code == 0 and out.count("this run is finished") == 2, out[-3000:]
    assert snapshot(sweep) == before


def test_invalid_sweep_point_or_impossible_gpu_request_submits_nothing(tiny_encoder, pairs_file, tmp_path):
    sweep = tmp_path / "sweep"
    r = run_cli(sweep_args(tiny_encoder, pairs_file, sweep, "k=2,3"))
    assert r.returncode == 2 and "sweep point k=3" in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert not sweep.exists()  # submitit writes its job files there before sbatch: nothing was submitted
    # launcher=slurm asks for 8 GPUs; this node has none: one line, nothing queued forever
    r = run_cli(sweep_args(tiny_encoder, pairs_file, sweep, "k=2", "launcher=slurm"))
    assert r.returncode == 2 and "but the nodes of this cluster have no GPUs" in r.stderr, r.stderr[-3000:]
    assert not sweep.exists()


def test_table_rows_are_submitted_together_and_collected(tiny_encoder, pairs_file, tmp_path):
    manifest = tmp_path / "table.yaml"
    tiny = tiny_overrides(tiny_encoder, pairs_file)
    manifest.write_text(yaml.safe_dump({
        "table": "c1", "title": "cluster test table", "source": "tests/test_cluster.py",
        "metrics": {"acc": "pairs/accuracy"}, "seeds": [0],
        "scales": {"tiny": {"overrides": tiny}},
        "rows": [{"id": "bt", "overrides": ["k=1"]}, {"id": "gpm", "overrides": ["k=2"], "baseline": "bt"}]}))
    out, res = tmp_path / "out", tmp_path / "results"
    r = subprocess.run([sys.executable, "-m", "gprl.tables", "run", str(manifest), "--scale", "tiny", "--launcher",
                        "slurm_local", "--out", str(out), "--results", str(res)], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "2 row(s) submitted together" in r.stdout
    ids = [i for d in sorted((out / "tables").iterdir()) for i in job_ids(d)]
    assert len(ids) == 2, ids
    info = [job_info(i) for i in ids]
    assert all(j["JobState"] == "COMPLETED" for j in info), [state(j) for j in info]
    # every row was in the queue before any row's job ended
    assert max(when(j["SubmitTime"]) for j in info) < min(when(j["EndTime"]) for j in info), \
        [(j["JobId"], j["SubmitTime"], j["StartTime"], j["EndTime"]) for j in info]
    table = (res / "c1_tiny.md").read_text()
    assert "| bt | acc |" in table and "| gpm | acc |" in table and "missing" not in table, table


def test_preempted_job_is_requeued_resumes_and_ends_as_an_uninterrupted_run(tiny_encoder, pairs_file, tmp_path):
    """Two identical jobs: one runs straight through; the other is preempted the way SLURM announces it to a
    submitit job (SIGTERM, then USR2: ``submitit.SlurmJob._interrupt``) once it has saved a checkpoint. submitit
    requeues it; the job that comes back resumes from that checkpoint and ends with the same per-step losses,
    weights and results. Requeued once more after it finished, it leaves the finished run as it was."""
    steps = ["algo.max_steps=30", "algo.save_steps=5", "algo.logging_steps=1"]
    sweeps = {name: tmp_path / name for name in ("straight", "preempted")}
    procs = {name: subprocess.Popen([sys.executable, str(ROOT / "run.py"),
                                     *sweep_args(tiny_encoder, pairs_file, d, "k=2", *steps)],
                                    cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name, d in sweeps.items()}
    pre = sweeps["preempted"]
    deadline = time.time() + 300
    while not list(pre.glob("*/checkpoints/checkpoint-*/trainer_state.json")):
        assert procs["preempted"].poll() is None and time.time() < deadline, "no checkpoint before the job ended"
        time.sleep(0.2)
    (job,) = job_ids(pre)
    run_dir = next(p for p in pre.iterdir() if p.is_dir() and p.name != ".submitit")
    subprocess.run(["scancel", "--signal", "TERM", job], check=True)
    subprocess.run(["scancel", "--signal", "USR2", job], check=True)
    outs = {name: p.communicate(timeout=400)[0] for name, p in procs.items()}
    assert all(p.returncode == 0 for p in procs.values()), {n: o[-3000:] for n, o in outs.items()}
    assert int(job_info(job)["Restarts"]) == 1
    log = "".join(f.read_text() for f in (pre / ".submitit" / job).glob("*_log.*"))
    assert "this job is preempted" in log, log[-3000:]
    resumed = re.findall(r"resuming from \S*checkpoint-(\d+)", log)
    assert resumed and 0 < int(resumed[-1]) < 30, log[-3000:]

    straight_dir = next(p for p in sweeps["straight"].iterdir() if p.is_dir() and p.name != ".submitit")
    assert straight_dir.name == run_dir.name

    def losses(d: Path) -> dict[int, float]:
        recs = [json.loads(ln) for ln in (d / "metrics.jsonl").read_text().splitlines()]
        return {r["step"]: r["loss"] for r in recs if "loss" in r}

    a, b = losses(straight_dir), losses(run_dir)
    assert sorted(a) == sorted(b) == list(range(1, 31))
    assert all(abs(a[s] - b[s]) <= 1e-5 for s in a), [(s, a[s], b[s]) for s in a if abs(a[s] - b[s]) > 1e-5]
    wa, wb = weights(straight_dir / "model"), weights(run_dir / "model")
    assert wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    ra, rb = results(straight_dir), results(run_dir)
    assert ra["metrics"] == rb["metrics"] and ra["config_fingerprint"] == rb["config_fingerprint"]

    # nothing finished is overwritten: SLURM requeues the finished job, which runs again and shows the run as it is
    before = snapshot(run_dir)
    subprocess.run(["scontrol", "requeue", job], check=True)
    deadline = time.time() + 300
    while (info := job_info(job, settle_s=0))["JobState"] != "COMPLETED" or int(info["Restarts"]) < 2:
        assert info["JobState"] in ("PENDING", "RUNNING", "COMPLETING", "COMPLETED", "REQUEUED"), state(info)
        assert time.time() < deadline, state(info)
        time.sleep(1)
    after = snapshot(run_dir)
    assert after.pop("run.log") != before.pop("run.log")  # the log says the job ran again (submitit's lines) ...
    assert after == before  # ... and nothing else changed: results, model, metrics, checkpoints, record
