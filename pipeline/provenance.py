"""What a run's results came from besides its config: the code and the data files.

A run records :func:`inputs_stamp` in ``metrics.json → checks.inputs``; a sweep re-run
(:func:`pipeline.sweep.run_sweep`) reuses a complete point only when its config *and* this stamp
are unchanged, so an edited data file or a code update runs the point again.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from .config import RunConfig

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("feeds", "signals", "strategies", "reports", "pipeline")  # the code behind a run's figures
DATA_FILES = ("path", "industry_map")


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 (16 hex digits) of the project's source files that shape a run's outputs."""
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def inputs_stamp(config: RunConfig, root: Path) -> dict:
    """``{"code": code_digest(), "data.path": {"size", "mtime_ns"}, ...}`` for the data files the
    run reads (none for the synthetic market: its config determines it). Size and modification
    time, as make does: a changed file is seen without reading it."""
    stamp = {"code": code_digest()}
    if config.data.source != "synthetic":
        for key in DATA_FILES:
            name = getattr(config.data, key)
            if name:
                path = Path(name) if Path(name).is_absolute() else Path(root) / name
                try:
                    status = path.stat()
                except OSError:
                    continue  # the data stage names a missing file
                stamp[f"data.{key}"] = {"size": status.st_size, "mtime_ns": status.st_mtime_ns}
    return stamp
