#!/usr/bin/env python
"""The one entry point.

    python run.py                                    # embedded default: GPM (k=4, gate, L2) on MiniLM, offline
    python run.py k=1                                # the same as a Bradley-Terry model
    python run.py -m k=1,2,4,6,8                     # a sweep; each job gets its own output directory
    python run.py +experiment=rm_eval reward_model.path=DIR eval.pairs=FILE.jsonl
    python run.py +experiment=NAME launcher=slurm -m k=2,4,6,8   # the same sweep on a SLURM cluster
    torchrun --nproc_per_node 2 run.py ...           # one run, two processes (gprl.distributed)

Configs live in conf/ (groups: model, data, reward_model, algo, eval, logger, launcher, paths, experiment);
their schema is gprl.config.RunConfig, which rejects impossible settings with one clear message.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from gprl import GprlError
from gprl.config import RunConfig

ROOT = Path(__file__).resolve().parent


def slug(overrides: str, limit: int = 120) -> str:
    """A run directory name from Hydra's override string: deterministic (so a re-run finds its checkpoints),
    distinct for distinct overrides, one path component (no '/'), and short enough for any filesystem."""
    name = str(overrides).replace("/", "_").replace("\\", "_") or "default"
    if len(name) > limit:
        name = f"{name[:limit - 13]}..{hashlib.sha1(name.encode()).hexdigest()[:10]}"
    return name


def register_configs() -> None:
    """Schema in the ConfigStore, and the resolver that turns override lists into directory names."""
    ConfigStore.instance().store(name="schema", node=RunConfig)
    if not OmegaConf.has_resolver("slug"):
        OmegaConf.register_new_resolver("slug", slug)


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Validate a composed config (runs every ``__post_init__``); one clear GprlError on impossible settings."""
    cfg = cfg.copy()
    if not cfg.paths.root:
        cfg.paths.root = str(ROOT)
    try:
        return OmegaConf.to_object(cfg)
    except Exception as e:  # OmegaConf wraps errors raised inside __post_init__
        cause = e
        while cause is not None and not isinstance(cause, GprlError):
            cause = cause.__cause__ or cause.__context__
        raise (cause or GprlError(f"invalid config: {e}")) from None


def resolve_runtime(rc: RunConfig) -> RunConfig:
    """The machine's choices, made once before the run's settings are recorded: ``algo.precision=auto`` becomes
    what this machine runs (bf16 only with native bf16), and torch's CPU threads are set (gprl.runtime)."""
    import dataclasses

    from gprl.runtime import resolve_precision, set_threads

    set_threads()
    return dataclasses.replace(rc, algo=dataclasses.replace(rc.algo, precision=resolve_precision(rc.algo.precision)))


def fail(msg: str) -> None:
    print(f"gprl: error: {msg}", file=sys.stderr)
    sys.exit(2)


register_configs()


def hydra_record(cfg: DictConfig) -> dict[str, str]:
    """What Hydra writes to ``.hydra/`` (its own writer is off, ``hydra.output_subdir: null``, because it rewrote
    the record on every re-run): ``gprl.rundir.claim`` writes it once, when the run starts."""
    hc = HydraConfig.get()
    return {"config.yaml": OmegaConf.to_yaml(cfg), "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": hc})),
            "overrides.yaml": OmegaConf.to_yaml(hc.overrides.task)}


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="config")
def main(cfg: DictConfig) -> None:
    from contextlib import nullcontext

    from gprl import distributed
    from gprl.checks import check_inputs
    from gprl.rundir import claim
    from gprl.tasks import TASKS

    try:
        run_cfg = resolve_runtime(to_run_config(cfg))
        check_inputs(run_cfg)  # every path and user file, before the run directory is touched
        distributed.setup()  # several processes per job (torchrun, or SLURM tasks): join them
        hc = HydraConfig.get()
        run_dir = Path(hc.runtime.output_dir)
        # rank 0 holds the run directory (lock, fingerprint, record) for the job's processes
        with (claim(run_cfg, run_dir, record=lambda: hydra_record(cfg),
                    exclude=hc.job.config.override_dirname.exclude_keys) if distributed.is_main() else nullcontext()):
            distributed.barrier()
            TASKS.get(run_cfg.task)(run_cfg, run_dir)
    except GprlError as e:
        if "SUBMITIT_FOLDER" in os.environ:  # a job of a submitit sweep: Hydra records the error as the job's result
            raise  # and the submitting process reports it (a job that only exits leaves the sweep waiting where
            # SLURM has no accounting database: the local cluster)
        fail(str(e))


def hoist_multirun_flag(argv: list[str]) -> list[str]:
    """Hydra's argparse stops reading overrides at ``-m``: ``run.py +experiment=X -m k=2,4`` would reject
    ``k=2,4``. Moving ``-m``/``--multirun`` to the front makes that documented form work."""
    flags = [a for a in argv[1:] if a in ("-m", "--multirun")]
    return argv[:1] + flags + [a for a in argv[1:] if a not in ("-m", "--multirun")]


# ---- every check before any work --------------------------------------------------------------------------------

def _hydra_message(e: Exception) -> str:
    """Hydra's own message on one line (the search path it lists is left out), with the cause's first line."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if "Config search path:" in lines:
        lines = lines[:lines.index("Config search path:")]
    lines = [ln for ln in lines if not ln.startswith(("See https://hydra.cc", "full_key:", "object_type=",
                                                      "reference_type="))]
    msg = " ".join(ln if ln.endswith((".", ":")) else ln + ";" for ln in lines).rstrip(";")
    cause = e.__cause__
    if cause is not None and str(cause).strip():
        msg += f" ({str(cause).strip().splitlines()[0]})"
    return msg


def _parse(overrides: list[str]):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    for o in overrides:
        key, _, value = o.partition("=")
        try:
            parser.parse_overrides([o])
        except OverrideParseException as e:
            if "=" in value:
                raise GprlError(f"the value of {key} contains '=', which Hydra reads as the start of another "
                                f"override: quote the value, e.g. '{key}=\"{value}\"' (the single quotes keep the "
                                f"shell from removing the double ones)") from None
            raise GprlError(f"cannot read override {o!r}: {_hydra_message(e)}") from None
    return parser.parse_overrides(overrides)


def _slurm_problem(hydra_cfg, multirun: bool) -> str | None:
    import shutil
    import subprocess

    if not str(hydra_cfg.launcher.get("_target_", "")).endswith("SlurmLauncher"):
        return None
    if not multirun:
        return ("launcher=slurm sends the jobs of a sweep to SLURM and so needs -m (e.g. python run.py -m "
                "launcher=slurm k=2,4); without -m the run would start here: drop launcher=slurm to run it here")
    if shutil.which("sbatch") is None:
        return ("launcher=slurm needs SLURM, and this machine has no sbatch on PATH: submit from a SLURM login "
                "node, or run here with launcher=local (or launcher=submitit_local)")
    gpus = hydra_cfg.launcher.get("gpus_per_node") or 0
    if gpus and shutil.which("sinfo"):
        part = hydra_cfg.launcher.get("partition")
        cmd = ["sinfo", "-h", "-o", "%G"] + (["-p", str(part)] if part else [])
        try:
            gres = subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        if gres.strip() and "gpu" not in gres:
            where = f"partition {part}" if part else "this cluster"
            return (f"launcher=slurm asks for hydra.launcher.gpus_per_node={gpus}, but the nodes of {where} have no "
                    f"GPUs (sinfo reports gres {gres.split()[0]}): choose a GPU partition with "
                    f"hydra.launcher.partition=NAME, or set hydra.launcher.gpus_per_node=0")
    return None


def preflight(args: list[str]) -> None:
    """Validate every job of this command before Hydra starts any: each sweep point is composed and checked
    (config, paths, user data files, output folder), and SLURM is checked when it is the launcher. A sweep with
    an invalid point starts (or submits) nothing. Commands with Hydra's own flags (--help, --cfg, ...) are left to
    Hydra."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import open_dict
    from omegaconf.errors import OmegaConfBaseException

    from gprl.checks import check_inputs
    from gprl.rundir import output_problem

    multirun = any(a in ("-m", "--multirun") for a in args)
    overrides = [a for a in args if a not in ("-m", "--multirun")]
    if any(a.startswith("-") for a in overrides):
        return
    parsed = _parse(overrides)
    points = [p for batch in BasicSweeper.split_arguments(parsed, None) for p in batch] if multirun else [overrides]
    swept = {o.get_key_element() for o in parsed if o.is_sweep_override()}
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            for n, point in enumerate(points):
                where = f"sweep point {','.join(o for o in point if o.split('=')[0] in swept)}: " if len(points) > 1 else ""
                try:
                    c = compose("config", overrides=point, return_hydra_config=True)
                    HydraConfig.instance().set_config(c)
                    out = Path(c.hydra.sweep.dir) / c.hydra.sweep.subdir if multirun else Path(c.hydra.run.dir)
                    hydra_cfg = c.hydra
                    with open_dict(c):
                        del c["hydra"]
                except (HydraException, OmegaConfBaseException) as e:
                    raise GprlError(where + _hydra_message(e)) from None
                if n == 0 and (why := _slurm_problem(hydra_cfg, multirun)):
                    raise GprlError(why)
                try:
                    check_inputs(to_run_config(c))
                except GprlError as e:
                    raise GprlError(where + str(e)) from None
                if why := output_problem(out if out.is_absolute() else Path.cwd() / out):
                    raise GprlError(f"{where}{why}: choose another with hydra.run.dir=DIR (hydra.sweep.dir=DIR with -m)")
    finally:
        GlobalHydra.instance().clear()


def cli(argv: list[str] | None = None) -> int:
    """``python run.py ARGS``: every job checked (``preflight``), then Hydra's main; returns the exit status (2 and
    one ``gprl: error:`` line for anything a user can get wrong). Tests call it in-process."""
    from hydra.core.global_hydra import GlobalHydra

    argv = hoist_multirun_flag([str(ROOT / "run.py"), *(sys.argv[1:] if argv is None else argv)])
    try:
        preflight(argv[1:])
    except GprlError as e:
        print(f"gprl: error: {e}", file=sys.stderr)
        return 2
    saved, sys.argv = sys.argv, argv
    try:
        GlobalHydra.instance().clear()
        main()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved
        GlobalHydra.instance().clear()
    return 0


if __name__ == "__main__":
    sys.exit(cli())
