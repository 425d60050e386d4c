"""What produced a result: git commit and package versions, recorded in every results file and table."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fingerprint(*parts) -> str:
    """A short stable hash of configs and values (dataclasses as dicts): names cached artefacts by what made them."""
    import hashlib
    import json
    from dataclasses import asdict, is_dataclass

    blob = json.dumps([asdict(p) if is_dataclass(p) else p for p in parts], sort_keys=True, default=str)
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
