"""What produced a result: git commit and package versions, recorded in every results file and table."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# Config fields added after artefacts were first cached under these fingerprints. At the value that reproduces the
# old behaviour they are left out of the hash, so adding a field never invalidates a cache (any other value does).
ADDED_LATER: dict[str, dict[str, object]] = {
    "AlgoConfig": {"head_lr": None, "cache_features": False, "global_batch_size": None, "precision": "fp32"},
    "SourceConfig": {"max_text_chars": 100_000},
}


# Config fields replaced since: the cache key keeps the old field, computed from the new one, so artefacts made
# before the change keep their keys (algo.bf16: false is algo.precision=fp32; auto is resolved before keys are made).
REPLACED: dict[str, dict[str, object]] = {
    "AlgoConfig": {"bf16": lambda a: a.precision == "bf16"},
}


def _plain(x):
    """``dataclasses.asdict`` without the ADDED_LATER fields at their old-behaviour values (REPLACED fields as they
    were)."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(x) and not isinstance(x, type):
        name = type(x).__name__
        added = ADDED_LATER.get(name, {})
        out = {f.name: _plain(getattr(x, f.name)) for f in fields(x)
               if not (f.name in added and getattr(x, f.name) == added[f.name])}
        return {**out, **{k: old(x) for k, old in REPLACED.get(name, {}).items()}}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def fingerprint(*parts) -> str:
    """A short stable hash of configs and values (dataclasses as dicts): names cached artefacts by what made them."""
    import hashlib
    import json

    blob = json.dumps([_plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def git_commit() -> str:
    """Short HEAD of the checkout the code runs from, with ``+dirty`` if tracked files differ from it."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("gprl", "torch", "transformers", "trl", "hydra-core"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out
