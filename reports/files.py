"""Atomic output files: a reader never sees a half-written page."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path):
    """Yield a temporary sibling of ``path`` to write; it replaces ``path`` only if the block succeeds.

    The temporary file is created by whoever writes it (so it gets the usual umask
    permissions) and is removed when the block fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
