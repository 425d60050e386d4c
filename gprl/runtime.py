"""Choices made for the machine a run lands on: numeric precision and CPU threads (docs/benchmarks.md).

``precision`` is ``fp32``, ``bf16`` (autocast: matmuls in bfloat16, weights and optimiser state in fp32) or ``auto``:
bf16 where the hardware computes it natively (CUDA devices that report bf16 support; CPUs with the ``avx512_bf16``
or ``amx_bf16`` flags, or ``bf16`` on ARM), else fp32, because CPUs without those instructions emulate bf16 and run
slower than fp32. ``run.py`` resolves ``auto`` once, before the run's settings are recorded, so the record, the
config fingerprint and ``results.json`` name the precision that was used.
"""

from __future__ import annotations

import contextlib
import math
import os
from functools import lru_cache
from pathlib import Path

from gprl import GprlError

PRECISIONS = ("auto", "fp32", "bf16")


def check_precision(value: str, key: str = "algo.precision") -> None:
    if value not in PRECISIONS:
        raise GprlError(f"{key} must be one of {', '.join(PRECISIONS)}, got {value!r}")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``: ``flags`` on x86, ``Features`` on ARM); empty where unknown."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX512-BF16, x86 AMX, ARMv8.6 BF16


@lru_cache(maxsize=None)
def native_bf16(device_type: str = "cpu") -> tuple[bool, str]:
    """Whether ``device_type`` computes bf16 natively, and the evidence (a flag name or the CUDA check)."""
    import torch

    if device_type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return ok, "torch.cuda.is_bf16_supported()"
    found = [f for f in NATIVE_BF16_FLAGS if f in cpu_flags()]
    return bool(found), (f"CPU flag {found[0]}" if found else "no avx512_bf16/amx_bf16/bf16 CPU flag")


def device_type() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_precision(value: str, device: str | None = None) -> str:
    """``auto`` -> ``bf16`` where ``device`` (default: the one this process trains on) has native bf16, else
    ``fp32``; ``fp32`` and ``bf16`` are returned as given."""
    check_precision(value)
    if value != "auto":
        return value
    return "bf16" if native_bf16(device or device_type())[0] else "fp32"


def autocast(precision: str, device: str | None = None):
    """The forward-pass context for a resolved ``precision``: bf16 autocast, or nothing for fp32."""
    import torch

    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device or device_type(), dtype=torch.bfloat16)


def usable_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (a container's ``--cpus``)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return n


def set_threads() -> int:
    """Intra-op threads for CPU work: ``OMP_NUM_THREADS`` where set, else torch's default (one per physical core)
    capped by ``usable_cpus`` (torch counts the host's cores, so in a container limited to 2 CPUs it would start
    one thread per host core and oversubscribe them). Returns the number set."""
    import torch

    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        n = int(os.environ["OMP_NUM_THREADS"])
    else:
        n = min(torch.get_num_threads(), usable_cpus())
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()
