"""Work spread over forked worker processes that inherit what they read.

The books of the backtest stage and the tear sheets of the publish stage are independent
jobs over large shared inputs (the panel, thousands of Backtrader feeds, the served model).
Forked workers inherit those instead of receiving a pickled copy per job: a job is a small
picklable item and a result plain frames or a file name, which comes back through a private
temporary directory (only its file's name through the pool's queue).

:func:`imap` gives ``(index, result)`` as each job finishes and keeps the semantics of one
process: the error raised is that of the first failing job in the caller's order; a user
error (:class:`feeds.errors.UserError`) stays one line; a bug keeps its worker traceback as
its cause; after an error the workers finish the job they hold and skip the rest, Ctrl-C or
SIGTERM ends every worker at once, and a worker dies with its parent.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal as signals_module
import sys
import tempfile
from multiprocessing.pool import ExceptionWithTraceback

from feeds.errors import UserError

__all__ = ["workers_for", "imap"]


def workers_for(setting: int | None, jobs: int) -> int:
    """Worker processes for ``jobs`` jobs: ``setting`` (0 or None: the cores this process may
    run on), never more than there are jobs; 1 where processes cannot be forked."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1  # (Windows, and macOS where fork is unsafe): every job in this process
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(int(setting) if setting else cores, jobs))


_STATE = None  # what a worker's jobs read: the object handed to imap, inherited by the fork


@contextlib.contextmanager
def imap(function, state, items: list, workers: int, order=None):
    """Run ``function(state, item)`` for every item; the context is an iterator of ``(index,
    result)`` in the order the jobs finish.

    With ``workers`` > 1 the jobs start at once in that many forked processes, so the caller
    may do other work inside the context before it reads them; leaving the context ends
    every worker, whatever is left. With 1 they run in this process, one per item read.

    Parameters
    ----------
    function : callable
        A module-level function ``function(state, item)``.
    state : object
        Read by every job; inherited by the workers, never pickled.
    items : list
        The jobs (picklable).
    workers : int
        Processes to fork (see :func:`workers_for`).
    order : list of int, optional
        The order in which jobs are handed out to workers (default: ``items``'), e.g. the
        longest first so that it does not finish alone at the end while the others idle.
    """
    if workers <= 1:
        yield ((i, function(state, item)) for i, item in enumerate(items))
        return
    order = range(len(items)) if order is None else order
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="lstm-tercile-jobs-", ignore_cleanup_errors=True) as results:
        cancelled = context.Event()  # inherited by the workers: set, they skip the jobs left
        pool = context.Pool(workers, initializer=_start_worker,
                            initargs=(function, state, os.getpid(), results, cancelled))
        try:
            yield _collect(pool.imap_unordered(_run_job, [(i, items[i]) for i in order]), len(items))
            pool.close()
        except Exception:
            # An error: the workers finish the job they hold, skip the rest and leave. Killed
            # instead (pool.terminate), one sending its result kept the result queue's one
            # write lock for ever, and the pool's task handler, whose last act is a put on that
            # queue, waited on it for ever: CI hung so once.
            cancelled.set()
            pool.close()
            pool.join()
            raise
        finally:
            pool.terminate()  # Ctrl-C or SIGTERM here: no worker is left running
            pool.join()


def _collect(outcomes, n: int):
    running, failed = set(range(n)), {}
    for index, outcome in outcomes:
        running.discard(index)
        if isinstance(outcome, _ResultFile):
            outcome = outcome.load()
        if isinstance(outcome, BaseException):
            failed[index] = outcome
        elif not failed:
            yield index, outcome
        if failed and not any(i < min(failed) for i in running):
            error = failed[min(failed)]  # the first failing job in the caller's order, as in one process
            if isinstance(error, UserError):  # one line, no pickled traceback
                raise error.with_traceback(None) from None
            raise error  # a bug: its cause is the worker's traceback


class _ResultFile(str):
    """A job's result, pickled to this file by the worker (see :func:`_run_job`)."""

    def load(self):
        with open(self, "rb") as file:
            result = pickle.load(file)
        os.remove(self)
        return result


def _start_worker(function, state, parent: int, results: str, cancelled) -> None:
    global _STATE
    _STATE = (function, state, results, cancelled)
    # Ctrl-C reaches the whole process group: the parent answers it and ends the pool, so a
    # worker ignores it; SIGTERM (pool.terminate) ends a worker at once, not through a handler
    # inherited from the parent; and a worker dies with the parent, whatever kills it.
    signals_module.signal(signals_module.SIGINT, signals_module.SIG_IGN)
    signals_module.signal(signals_module.SIGTERM, signals_module.SIG_DFL)
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signals_module.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before that
        os._exit(1)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)  # one core per worker: the workers already fill the machine


def _run_job(item):
    # A result goes back as a file, the pool's queue carrying only its name. A worker holds
    # the queue's one write lock while it sends; killed then (pool.terminate after Ctrl-C or an
    # error) it would keep the lock forever and the pool's shutdown would wait on it forever.
    # A large result could take that long to send (the parent stops reading at shutdown): a
    # name never does.
    index, job = item
    function, state, results, cancelled = _STATE
    if cancelled.is_set():  # an earlier job failed: its error is the one raised
        return index, None
    try:
        result = function(state, job)
        path = _ResultFile(os.path.join(results, f"{index}.pickle"))
        with open(path, "wb") as file:
            pickle.dump(result, file, protocol=pickle.HIGHEST_PROTOCOL)
        return index, path
    except Exception as exc:  # sent back as a value, with the traceback as text (multiprocessing's way)
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:  # it would not survive the trip: its one line does
            lines = str(exc).strip().splitlines()
            kind = UserError if isinstance(exc, UserError) else RuntimeError
            exc = kind(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__)
        return index, ExceptionWithTraceback(exc, exc.__traceback__)
