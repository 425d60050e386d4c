"""A run directory you can trust: one writer at a time, a record of the settings that made it, and checkpoints and
results that are checked before they are reused.

- ``claim``: held for a run's life. It takes ``<run_dir>/.lock`` (an exclusive ``flock``: the kernel drops it when
  the process ends, however it ends, so a crash or SIGKILL never leaves a stale lock; on NFSv4 Linux emulates it
  with a byte-range lock, so SLURM jobs on a shared file system exclude each other too) and compares the run's
  **config fingerprint** with the one stored in ``<run_dir>/fingerprint.json`` when the run started. A run made
  with other settings is refused, never reused or overwritten; ``.hydra/`` (written here, once, when a run starts;
  Hydra's own writer is off: ``hydra.output_subdir: null``) keeps describing the result it sits beside.
- ``last_good_checkpoint``: the newest ``checkpoint-N`` whose files are whole (a kill during the Trainer's save
  leaves a partial one); partial ones are moved aside with one printed line.
- ``model_is_whole`` / ``read_finished``: a finished model or results file that is unreadable is not "finished".

The library never imports Hydra: ``run.py`` passes what Hydra knows (the record to write, keys to leave out).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
import zipfile
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable

from gprl import GprlError

FINGERPRINT = "fingerprint.json"
LOCK = ".lock"
RESULTS = "results.json"

# keys that never change what a run computes (where its output goes, how it is logged, forward-pass batch sizes):
# the same idea as hydra.job.config.override_dirname.exclude_keys in conf/config.yaml, whose keys run.py adds.
# Not benchmark.batch_size: answers are sampled batch by batch from one seed, so the batch size changes them.
ALWAYS_EXCLUDED = ("name", "logger", "paths", "eval.batch_size", "judge.batch_size")
# config groups a task never reads
UNUSED_BY_TASK = {
    "train_rm": ("policy", "rl", "po", "policy_eval", "benchmark", "judge"),
    "eval_rm": ("algo", "policy", "rl", "po", "policy_eval", "benchmark", "judge"),
    "train_rl": ("po",),
    "train_po": ("rl",),
    "benchmark": ("data", "eval", "reward_model", "policy_eval", "rl", "po"),
}


# ---- config fingerprint ---------------------------------------------------------------------------------------

def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def effective_config(cfg, exclude: Iterable[str] = ()) -> dict:
    """The settings that decide what a run computes, as ``{dotted.key: value}``: the resolved config less
    ``ALWAYS_EXCLUDED``, ``exclude`` and the groups its task never reads (a policy run's benchmark settings only
    count when it ends with benchmarks)."""
    drop = set(ALWAYS_EXCLUDED) | set(exclude) | set(UNUSED_BY_TASK.get(cfg.task, ()))
    if cfg.task in ("train_rl", "train_po") and not cfg.policy_eval.benchmarks:
        drop |= {"benchmark", "judge"}
    flat = _flat(json.loads(json.dumps(asdict(cfg), default=str)))
    return {k: v for k, v in sorted(flat.items()) if not any(k == d or k.startswith(d + ".") for d in drop)}


def fingerprint_of(effective: dict) -> str:
    return hashlib.sha256(json.dumps(effective, sort_keys=True).encode()).hexdigest()[:16]


def config_fingerprint(cfg, exclude: Iterable[str] = ()) -> str:
    """Short hash of ``effective_config``: stored with every finished model and result."""
    return fingerprint_of(effective_config(cfg, exclude))


def _defaults() -> dict:
    from gprl.config import RunConfig

    return _flat(json.loads(json.dumps(asdict(RunConfig()), default=str)))


# Fields added to the code whose default is NOT what runs made before them did: a record without the key ran with
# this value (provenance.ADDED_LATER is the same idea for cache keys, where the old behaviour is the default).
# before rl.minibatches, every rollout batch served one optimiser step; before algo.precision (auto by default),
# reward models trained and were evaluated in fp32
FORMER_VALUES = {"rl.minibatches": 1, "algo.precision": "fp32"}


def differences(old: dict, new: dict) -> list[str]:
    """Keys whose values differ. A key the old record lacks counts as unchanged when it holds the value runs had
    before the field existed (FORMER_VALUES, else its schema default: a field added to the code since, at its
    default, changes nothing that was computed); a key the code no longer has is not compared."""
    defaults = None
    out = []
    for k in sorted(new):
        if k in old:
            if old[k] != new[k]:
                out.append(k)
            continue
        defaults = _defaults() if defaults is None else defaults
        before = FORMER_VALUES[k] if k in FORMER_VALUES else defaults.get(k, object())
        if before != new[k]:
            out.append(k)
    return out


def describe_difference(old: dict, new: dict, limit: int = 4) -> str:
    keys = differences(old, new)
    parts = [f"{k}={json.dumps(new[k])} (was {json.dumps(old.get(k, '<unset>'))})" for k in keys[:limit]]
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(parts) + more


# ---- one writer -------------------------------------------------------------------------------------------------

class RunLock:
    """An exclusive, non-blocking ``flock`` on ``path`` whose file says who holds it (PID, host, since when).

    Not ``filelock.FileLock``: that truncates the lock file when it opens it, so a second copy would erase the
    holder's name before it could report it. The OS releases the lock when the holder's process ends."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise GprlError(f"{self.path.parent} is in use by another gprl run ({self.holder()}): one writer per "
                            f"run directory; wait for it to finish, or stop it and re-run this command to resume") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        os.fsync(fd)
        self.fd = fd

    def holder(self) -> str:
        for _ in range(20):  # the holder writes its name right after it takes the lock
            try:
                h = json.loads(self.path.read_text())
                return f"PID {h['pid']} on host {h['host']}, since {h['since']}"
            except (OSError, ValueError, KeyError, TypeError):
                time.sleep(0.05)
        return "holder unknown"

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def writable(directory: Path) -> bool:
    """Whether a file can be created in ``directory`` (tried, not guessed: root ignores permission bits, and a
    read-only mount refuses root too)."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def output_problem(run_dir: Path) -> str | None:
    """Why ``run_dir`` cannot be written, or None: checked before Hydra creates it (and its log file)."""
    run_dir = Path(run_dir).absolute()
    if run_dir.is_dir():  # a finished run may be shown from a read-only folder (``claim`` decides)
        return None if writable(run_dir) or (run_dir / RESULTS).exists() else f"output folder {run_dir} is not writable"
    if run_dir.exists():
        return f"output folder {run_dir} is a file, not a folder"
    parent = run_dir.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not writable(parent):
        return f"cannot create output folder {run_dir}: {parent} is not writable"
    return None


def _has_work(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds results or state a re-run would reuse: results, a trained model or policy,
    checkpoints. (Benchmark answers and judgments key their own caches; a log is not reused.)"""
    return any((run_dir / n).exists() for n in (RESULTS, "model", "checkpoints", "policy", "policy_checkpoints", "iter1"))


def _check_fingerprint(run_dir: Path, effective: dict) -> bool:
    """True when ``run_dir`` holds a fingerprint equal to ``effective``; False when it holds none, or another but
    no work was done under it yet; GprlError when its work was made with other settings (or they are unknown)."""
    f = run_dir / FINGERPRINT
    if not f.exists():
        return False
    try:
        old = json.loads(f.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        if not _has_work(run_dir):
            return False
        raise GprlError(f"{f} is unreadable ({type(e).__name__}), so the settings that made this run are unknown: "
                        f"delete {run_dir} to start it again, or start a new run with a different name=") from None
    if not differences(old, effective):
        return True
    if not _has_work(run_dir):
        return False
    raise GprlError(f"{run_dir} holds a run made with other settings: {describe_difference(old, effective)}; "
                    f"it is left as it is: start a new run with a different name= (or hydra.run.dir=DIR), or "
                    f"delete {run_dir} to redo it with these settings")


@contextmanager
def claim(cfg, run_dir: Path, record: Callable[[], dict[str, str]] = dict, exclude: Iterable[str] = ()):
    """Hold ``run_dir`` for the run's life: the lock, then the fingerprint check; a run starting in it writes its
    record (``record()``: file name under ``.hydra/`` -> text) and ``fingerprint.json`` before any work.

    A finished run in a folder that cannot be written is shown as it is (no lock: nothing will be written)."""
    run_dir = Path(run_dir)
    effective = effective_config(cfg, exclude)
    if not writable(run_dir):
        if (run_dir / RESULTS).exists() and cfg.task != "eval_rm":
            _check_fingerprint(run_dir, effective)
            yield
            return
        raise GprlError(f"output folder {run_dir} is not writable: make it writable, or choose another with "
                        f"hydra.run.dir=DIR")
    lock = RunLock(run_dir / LOCK)
    lock.acquire()
    try:
        if not _check_fingerprint(run_dir, effective):
            if (run_dir / FINGERPRINT).exists() or not _has_work(run_dir):
                for name, text in record().items():
                    (run_dir / ".hydra").mkdir(exist_ok=True)
                    _atomic_text(run_dir / ".hydra" / name, text)
                _atomic_text(run_dir / FINGERPRINT, json.dumps(
                    {"fingerprint": fingerprint_of(effective), "task": cfg.task, "config": effective}, indent=1) + "\n")
            else:
                print(f"[gprl] {run_dir} predates config fingerprints: the settings that made it cannot be checked")
        yield
    finally:
        lock.release()


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ---- whole files ----------------------------------------------------------------------------------------------

def file_problem(p: Path) -> str | None:
    """Why a checkpoint or model file is not whole, or None. Cheap structural checks, nothing is loaded:
    safetensors (header length + the byte range it declares = the file size), torch.save's zip archives (``.pt``,
    ``.pth``, ``.bin``: a truncated zip has no central directory), JSON (parses)."""
    try:
        size = p.stat().st_size
        if size == 0:
            return f"{p.name} is empty"
        if p.suffix == ".safetensors":
            with p.open("rb") as f:
                n = int.from_bytes(f.read(8), "little")
                if n <= 0 or 8 + n > size:
                    return f"{p.name} is truncated"
                header = json.loads(f.read(n))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
            return None if 8 + n + end == size else f"{p.name} is truncated"
        if p.suffix in (".pt", ".pth", ".bin"):
            if not zipfile.is_zipfile(p):
                return f"{p.name} is truncated or not a torch.save archive"
            with zipfile.ZipFile(p) as z:
                z.infolist()
            return None
        if p.suffix == ".json":
            json.loads(p.read_text())
    except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as e:
        return f"{p.name} is unreadable ({type(e).__name__})"
    return None


WEIGHTS = ("*.safetensors", "*.bin", "*.pt")


def checkpoint_problem(d: Path) -> str | None:
    """Why a Trainer checkpoint directory is not whole, or None. ``trainer_state.json`` is the Trainer's last
    write, so a kill during the save leaves it missing or leaves an earlier file truncated."""
    if not (d / "trainer_state.json").exists():
        return "trainer_state.json is missing"
    files = [p for p in sorted(d.rglob("*")) if p.is_file()]
    if not any(p.match(w) for p in files for w in WEIGHTS):
        return "it holds no model weights"
    for p in files:
        if (why := file_problem(p)) is not None:
            return why
    try:
        json.loads((d / "trainer_state.json").read_text())["global_step"]
    except (ValueError, KeyError, TypeError):
        return "trainer_state.json has no global_step"
    return None


_CKPT = re.compile(r"^checkpoint-(\d+)$")


def last_good_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest whole ``checkpoint-N`` under ``ckpt_dir`` (what ``Trainer.train(resume_from_checkpoint=...)``
    takes), or None to start over. Each newer partial one is moved to ``incomplete-checkpoint-N`` (out of the
    Trainer's sight: its rotation would otherwise count it) with one printed line."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return None
    found = sorted(((int(m.group(1)), p) for p in ckpt_dir.iterdir() if p.is_dir() and (m := _CKPT.match(p.name))),
                   reverse=True)
    for n, (step, d) in enumerate(found):
        why = checkpoint_problem(d)
        if why is None:
            return str(d)
        aside = ckpt_dir / f"incomplete-{d.name}"
        shutil.rmtree(aside, ignore_errors=True)
        d.rename(aside)
        then = f"resuming from {found[n + 1][1].name}" if n + 1 < len(found) else "no earlier checkpoint: starting over"
        print(f"[gprl] {d} is incomplete ({why}; a kill during its save?): moved it to {aside.name}; {then}")
    return None


def model_problem(d: Path) -> str | None:
    """Why a saved gprl reward model directory (``model/``) is not whole, or None."""
    if not (d / "gpm_config.json").exists():
        return "gpm_config.json is missing"
    files = [p for p in sorted(d.rglob("*")) if p.is_file()]
    for p in files:
        if (why := file_problem(p)) is not None:
            return why
    if not (d / "heads.pt").exists() or not list((d / "backbone").glob("*.safetensors")) + list((d / "backbone").glob("*.bin")):
        return "heads.pt or the backbone weights are missing"
    return None


def move_aside(path: Path, why: str) -> Path:
    """Rename a damaged artefact to ``<name>.damaged`` (replacing an older one) and say so in one line."""
    aside = path.with_name(path.name + ".damaged")
    if aside.is_dir():
        shutil.rmtree(aside)
    elif aside.exists():
        aside.unlink()
    path.rename(aside)
    print(f"[gprl] {path} is damaged ({why}): moved it to {aside.name}; it will be made again")
    return aside


def read_finished(results: Path) -> dict | None:
    """A finished ``results.json`` as a dict; None when there is none. An unreadable one (truncated by hand or by
    a full disk) is moved aside with one line, and the run is done again."""
    if not results.exists():
        return None
    try:
        res = json.loads(results.read_text())
        if isinstance(res, dict):
            return res
        why = "not a JSON object"
    except (OSError, ValueError) as e:
        why = f"{type(e).__name__}"
    try:
        move_aside(results, why)
    except OSError:
        raise GprlError(f"{results} is damaged ({why}) and cannot be moved aside: delete it to redo the run") from None
    return None


def trim_log(path: Path, checkpoint: str | None) -> None:
    """Before resuming from ``checkpoint-N`` (or starting over: None), drop the ``metrics.jsonl`` records an
    interrupted run logged after step N, and any half-written last line: those steps are trained and logged again."""
    path = Path(path)
    if not path.exists():
        return
    step = int(Path(checkpoint).name.rsplit("-", 1)[1]) if checkpoint else 0
    keep = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line + "\n")
        except (ValueError, AttributeError):
            pass
    _atomic_text(path, "".join(keep))
