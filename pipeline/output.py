"""Atomic run directories and the trained-model cache.

A run writes everything into a private staging directory beside its destination and only
renames it into place when every file is written, so a failed or interrupted run leaves no
half-written directory and never touches an earlier run's results.

Safety rules:

- Every run directory holds a marker file (:data:`MARKER`, a small JSON). The tool only ever
  replaces a directory that carries it (or an empty one); anything else at the destination, a
  regular file or a folder of the user's own, is refused with :class:`OutputError`.
- A staging directory is locked (``flock``) by the process writing it. Debris that a killed
  process left (``.<name>.staging-*``, ``.<name>.old-*``, cache ``*.tmp``) is removed by the next
  run, but only when it carries the marker, is not locked, and is older than that run.
- Two runs publishing the same destination never mix: each stages privately and the last
  rename wins with a complete run.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from feeds.errors import UserError
from feeds.files import atomic_path

from . import interrupts

try:  # POSIX advisory locks; elsewhere stale debris is recognised by age alone
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

MARKER = ".lstm-tercile-run"
TOOL = "lstm-tercile"
_STARTED = time.time()  # debris newer than this process may belong to a concurrent run


class OutputError(UserError):
    """The output destination cannot be used (not ours, not writable, disk full, ...);
    ``str()`` is ``<what> (<path>)``."""

    def __init__(self, what: str, where: str = ""):
        super().__init__(f"{what} ({where})" if where else what)


def is_run_directory(path) -> bool:
    """True when ``path`` is a directory that this tool wrote (it holds a valid marker)."""
    marker = Path(path) / MARKER
    try:
        if marker.is_symlink() or not marker.is_file():
            return False
        return json.loads(marker.read_text(encoding="utf-8")).get("tool") == TOOL
    except (OSError, ValueError, AttributeError):
        return False


def _foreign(path: Path, attempts: int = 5) -> bool:
    """Whether ``path`` is a non-empty directory without this tool's marker.

    Concurrent runs of this tool move their runs aside and publish new ones there (see
    :func:`_publish`), so the checks may see two different directories: only a verdict on one
    and the same directory (inode and change time unchanged across the checks) counts.
    """
    for _ in range(attempts):
        try:
            before = path.stat()
            empty = next(path.iterdir(), None) is None
            ours = is_run_directory(path)
            after = path.stat()
        except FileNotFoundError:
            return False  # a concurrent run moved its run aside meanwhile
        except OSError as exc:
            raise OutputError(f"cannot read the output directory: {exc.strerror}", str(path)) from None
        if (before.st_ino, before.st_ctime_ns) == (after.st_ino, after.st_ctime_ns):
            return not empty and not ours
    return False  # it keeps changing: runs of this tool are publishing there


def check_output(path) -> Path:
    """Return ``path`` if a run may be published there, else raise :class:`OutputError`.

    Allowed: a path that does not exist yet (its parents are created), an empty directory, or
    an earlier run directory of this tool. Refused: a regular file, a symbolic link, a
    directory holding anything else, or a path below a regular file or in a directory the
    process cannot write.
    """
    path = Path(path)
    try:  # one look at the path: concurrent runs of this tool move their runs there and away
        status = path.lstat()
    except (FileNotFoundError, NotADirectoryError):  # (below a regular file: said below)
        status = None
    except OSError as exc:
        raise OutputError(f"cannot read the output: {exc.strerror}", str(path)) from None
    if status is not None:
        if stat.S_ISLNK(status.st_mode):
            raise OutputError("the output is a symbolic link; give the directory itself", str(path))
        if not stat.S_ISDIR(status.st_mode):
            raise OutputError("the output exists and is not a directory; nothing was written", str(path))
        if _foreign(path):
            raise OutputError(f"the output directory exists and is not a run of this tool (no {MARKER} marker); "
                              "choose another --output or remove it yourself", str(path))
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"the output would be below {ancestor}, which is not a directory", str(path))
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write in {ancestor} (permission denied)", str(path))
    return path


def os_error(exc: OSError, what: str) -> OutputError:
    """One-line :class:`OutputError` for a file-system failure (disk full, read-only, ...)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = f"disk full while writing the {what} ({reason}); nothing was left half-written"
    else:
        reason = f"cannot write the {what}: {reason}"
    return OutputError(reason, str(exc.filename or ""))


def _lock(directory: Path):
    """Hold an exclusive lock on ``directory`` (an open descriptor); ``None`` without fcntl."""
    if fcntl is None:
        return None
    fd = os.open(directory, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def unlock(fd) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)  # closing the descriptor releases the flock


def _write_marker(directory: Path, **info) -> None:
    (directory / MARKER).write_text(json.dumps({"tool": TOOL, "version": 1, "pid": os.getpid(),
                                                "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **info}),
                                    encoding="utf-8")


def staging_directory(parent: Path, prefix: str, suffix: str = "", **info) -> tuple[Path, object]:
    """A private, locked, marked directory ``parent/<prefix>XXXX<suffix>``: ``(path, lock)``."""
    path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    try:
        lock = _lock(path)
        _write_marker(path, **info)  # after the lock: a marked directory is never unlocked-but-live
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path, lock


def remove_stale(parent: Path, patterns) -> list[Path]:
    """Remove debris of killed runs in ``parent``: directories matching one of ``patterns`` that
    carry the marker, are older than this process and that no live process holds locked."""
    removed = []
    try:
        candidates = [p for pattern in patterns for p in Path(parent).glob(pattern)]
    except OSError:
        return removed
    for path in candidates:
        try:
            if path.is_symlink() or not path.is_dir():
                continue
            if not (is_run_directory(path) or _legacy_debris(path)):
                continue  # not ours
            if path.stat().st_mtime >= _STARTED:
                continue  # perhaps a concurrent run that started after this one
            fd = None
            if fcntl is not None:
                fd = os.open(path, os.O_RDONLY)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue  # a live run holds it
            try:
                shutil.rmtree(path, ignore_errors=True)
            finally:
                unlock(fd)
            removed.append(path)
        except OSError:
            continue
    return removed


#: What a run or cache directory holds; debris of a version before the marker holds nothing else.
_OURS = ("config.yaml", "model.pt", "baseline.pt", "composite.pt", "training.pt", "entry.json", "predictions.csv",
         "metrics.json", "report.html", "run.log", "tearsheet_*.html", "figures", "series", "*.tmp", ".*.tmp")


def _legacy_debris(path: Path) -> bool:
    """An empty placeholder, or a staging folder of an earlier version (no marker) holding only
    files this tool writes."""
    return all(any(entry.match(pattern) for pattern in _OURS) for entry in path.iterdir())


class RunDirectory:
    """Context manager: yields a staging directory, publishes it to ``final`` on success.

    On an exception (including ``KeyboardInterrupt`` and the CLI's SIGTERM) the staging
    directory is removed and ``final`` is left exactly as it was. On success an existing
    ``final`` (an earlier run of this tool, or an empty directory) is replaced by the new run.
    File-system failures (disk full, read-only) become :class:`OutputError`.
    """

    def __init__(self, final):
        self.final = Path(final)
        self.staging: Path | None = None
        self._lock = None

    def __enter__(self) -> Path:
        check_output(self.final)
        parent = self.final.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            remove_stale(parent, (f".{self.final.name}.staging-*", f".{self.final.name}.old-*"))
            self.staging, self._lock = staging_directory(parent, f".{self.final.name}.staging-",
                                                         name=self.final.name)
        except OSError as exc:
            raise os_error(exc, "run directory") from None
        return self.staging

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                interrupts.check()  # a signal whose exception was swallowed on the way publishes nothing
                publishable(self.staging)
                _publish(self.staging, self.final)
        except OSError as exc:
            raise os_error(exc, "run directory") from None
        finally:
            if self.staging is not None and self.staging.exists():
                shutil.rmtree(self.staging, ignore_errors=True)
            unlock(self._lock)
        return False


def _publish(staging: Path, final: Path, attempts: int = 5) -> None:
    """Rename ``staging`` onto ``final``, moving an earlier run there aside first.

    A concurrent run may publish between the two renames; then this one tries again (the last
    complete run wins), and a foreign directory that appeared meanwhile is refused.
    """
    for _ in range(attempts):
        check_output(final)
        old = None
        if final.exists() and is_run_directory(final):
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            try:
                os.replace(final, old)  # onto the empty placeholder
            except FileNotFoundError:  # a concurrent run moved it first
                pass
        try:
            os.replace(staging, final)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    raise OutputError("another run keeps publishing to the same output; try again", str(final))


def publishable(directory: Path) -> None:
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
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path`` (:func:`feeds.files.atomic_path`)."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)
