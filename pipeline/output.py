"""Atomic run directories and the trained-model cache.

A run writes everything into a hidden staging directory beside its destination and only
renames it into place when every file is written, so a failed or interrupted run leaves no
half-written directory and never touches an earlier run's results.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path


class RunDirectory:
    """Context manager: yields a staging directory, publishes it to ``final`` on success.

    On an exception (including ``KeyboardInterrupt``) the staging directory is removed and
    ``final`` is left exactly as it was. On success an existing ``final`` is replaced by the
    new run in two renames.
    """

    def __init__(self, final):
        self.final = Path(final)
        self.staging: Path | None = None

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.staging-", dir=self.final.parent))
        return self.staging

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return False
        _publishable(self.staging)
        old = None
        if self.final.exists():
            old = self.final.parent / f".{self.final.name}.old-{os.getpid()}"
            os.replace(self.final, old)
        os.replace(self.staging, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return False


def _publishable(directory: Path) -> None:
    """Give a staged run the usual permissions (mkdtemp and mkstemp create private ones)."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for path in directory.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def fingerprint(obj) -> str:
    """sha256 of a JSON-serialisable description (keys sorted), first 16 hex digits."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_atomic(path, write) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
