"""Several processes per job: who this process is, the global batch split over them, and the guards.

How processes start (each runs ``run.py`` with the same overrides; one process per GPU, or per CPU slot):

* ``torchrun --nproc_per_node N run.py ...`` (or ``accelerate launch``): the launcher sets ``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
* SLURM, ``launcher=slurm`` (submitit starts ``tasks_per_node`` tasks per node) or ``srun`` in ``slurm/run.sbatch``:
  ``setup`` exports the same variables from SLURM's (submitit's ``TorchDistributedEnvironment``).

transformers' Trainer (and TRL's trainers on it) then initialise ``torch.distributed`` through accelerate from
those variables: NCCL on GPUs, gloo on CPU; DeepSpeed (``algo/rl/po.deepspeed``) the same way. Only rank 0 writes
the run directory's record, ``results.json``, summaries, the final model and W&B; every rank takes part in
training and in the collective gather of a ZeRO-3 model when it is saved.
"""

from __future__ import annotations

import os

from gprl import GprlError


def setup() -> None:
    """Join the job's processes: export torch.distributed's variables from SLURM's when a SLURM job step runs
    several tasks and no launcher (torchrun, accelerate) set them, then start the process group (NCCL on GPUs, gloo
    on CPU), so the run's own steps can wait for each other (``barrier``) before the first Trainer, which reuses it.
    Does nothing for one process."""
    export_slurm_env()
    if world_size() < 2:
        return
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")


def export_slurm_env() -> None:
    """``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT`` from a SLURM step of several tasks
    (submitit's ``TorchDistributedEnvironment``), unless a launcher set them already."""
    if "RANK" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) < 2:
        return
    from submitit.helpers import TorchDistributedEnvironment

    # submitit sets SUBMITIT_EXECUTOR in its own jobs; a plain `srun python run.py` step (slurm/run.sbatch) is read
    # from the same SLURM variables
    os.environ.setdefault("SUBMITIT_EXECUTOR", "slurm")
    # every task sees the node's GPUs; transformers puts rank r on cuda:LOCAL_RANK
    TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes results, summaries, the final model and W&B."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process (nothing to wait for with one, or before torch.distributed is initialised)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def per_device(global_batch: int, world: int, key: str, accumulation: int = 1) -> int:
    """The per-device batch that makes ``per_device x accumulation x world == global_batch``; a clear error when
    no whole number does."""
    if global_batch % (world * accumulation):
        raise GprlError(f"{key}={global_batch} cannot be split evenly over {world} process(es) x {accumulation} "
                        f"accumulation step(s): choose a global batch divisible by {world * accumulation}, or "
                        f"another number of GPUs/tasks")
    return global_batch // (world * accumulation)


def accumulation(global_batch: int, per_device_batch: int, world: int, key: str) -> int:
    """Gradient-accumulation steps so that ``per_device_batch x accumulation x world == global_batch``, derived at
    launch from the world size (so the paper's global batch runs on any GPU count); a clear error when not whole."""
    step = per_device_batch * world
    if global_batch % step:
        raise GprlError(f"{key}={global_batch} is not a multiple of the per-device batch {per_device_batch} x "
                        f"{world} process(es) = {step}: change the per-device batch or the number of GPUs/tasks so "
                        f"that it divides the global batch")
    return global_batch // step


def deepspeed_file(path: str | None, root: str = "") -> str | None:
    """A DeepSpeed JSON named in a config (``algo/rl/po.deepspeed``), relative paths from the project root."""
    if not path:
        return None
    from pathlib import Path

    p = Path(path).expanduser()
    return str(p if p.is_absolute() or not root else Path(root) / p)


def check_devices(args) -> None:
    """One process per accelerator: transformers' Trainer silently falls back to ``nn.DataParallel`` when one
    process sees several GPUs, which is not the distributed training (or DeepSpeed) a config asks for."""
    if getattr(args, "n_gpu", 1) > 1:
        raise GprlError(f"one process sees {args.n_gpu} GPUs: transformers would run it with nn.DataParallel instead "
                        f"of one process per GPU. Launch one process per GPU (torchrun --nproc_per_node "
                        f"{args.n_gpu} run.py ..., or launcher=slurm with hydra.launcher.tasks_per_node="
                        f"{args.n_gpu}), or make one GPU visible (CUDA_VISIBLE_DEVICES=0)")
