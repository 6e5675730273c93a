"""Atomic files: a reader never sees a half-written file, and a failed write leaves none behind.

The one implementation every package uses (checkpoints, the model cache, reports, series):
it lives in ``feeds``, the bottom layer every package may import.
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; it replaces ``path`` only if the block succeeds.

    The temporary name (``.<name>.<pid>-<random>.tmp``, in the same folder so that the final
    rename is atomic) is fresh, and the file is created by whoever writes it, so it gets the
    usual umask permissions. It is removed when the block fails, interrupts included; the
    folder of ``path`` is created when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path, data) -> Path:
    """Write ``data`` (bytes or a buffer) to ``path`` atomically (:func:`atomic_path`); return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    return path
