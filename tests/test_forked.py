"""pipeline.forked: jobs in forked workers behave as in one process."""
import os
import pickle
import threading
import time

import pytest

from feeds.errors import UserError
from pipeline import forked

pytestmark = pytest.mark.skipif(forked.workers_for(2, 2) < 2, reason="no fork on this platform")


def _square_plus(state, item):
    return state["offset"] + item * item


def _fails_on(state, item):
    if item in state["user"]:
        raise UserError(f"job {item} is wrong")
    if item in state["bug"]:
        raise ZeroDivisionError(f"bug in job {item}")
    time.sleep(0.05 * item)
    return os.getpid()


def test_workers_give_what_one_process_gives_and_inherit_the_state():
    state = {"offset": 7}  # never pickled: a lambda in it would not survive a trip
    state["unpicklable"] = lambda: None
    items = list(range(12))
    with forked.imap(_square_plus, state, items, 1) as serial:
        expected = dict(serial)
    with forked.imap(_square_plus, state, items, 2, order=items[::-1]) as parallel:
        got = dict(parallel)
    assert got == expected == {i: 7 + i * i for i in items}


def test_the_first_failing_job_in_the_callers_order_is_raised_as_one_line():
    state = {"user": {5}, "bug": {2}}
    # job 5 is handed out first and fails first, but job 2 comes first in the caller's order
    with pytest.raises(ZeroDivisionError, match="bug in job 2") as caught:
        with forked.imap(_fails_on, state, list(range(8)), 2, order=[5, 4, 3, 2, 1, 0, 6, 7]) as jobs:
            list(jobs)
    assert caught.value.__cause__ is not None  # the worker's traceback, as text
    with pytest.raises(UserError, match="job 5 is wrong") as caught:
        with forked.imap(_fails_on, {"user": {5}, "bug": set()}, list(range(8)), 2) as jobs:
            list(jobs)
    assert caught.value.__cause__ is None  # one line: no worker traceback attached


def test_leaving_the_context_early_ends_every_worker():
    with forked.imap(_fails_on, {"user": set(), "bug": set()}, list(range(6)), 2) as jobs:
        index, pid = next(iter(jobs))
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _large(state, item):
    return bytes(state * item)


def test_a_result_goes_back_as_a_file_so_a_killed_worker_never_holds_the_queue(tmp_path, monkeypatch):
    # The pool's queue has one write lock for all workers: a worker killed while sending a large
    # result (pool.terminate after Ctrl-C) kept it, and the shutdown waited on it forever. A job
    # sends its result's file name only, whatever the result's size.
    monkeypatch.setattr(forked, "_STATE", (_large, 4_000_000, str(tmp_path), threading.Event()))
    index, outcome = forked._run_job((3, 2))
    assert index == 3 and isinstance(outcome, forked._ResultFile)
    assert len(pickle.dumps(outcome)) < 200
    assert outcome.load() == bytes(8_000_000) and not os.path.exists(outcome)
    with forked.imap(_large, 1_000_000, [5, 1, 7], 2) as jobs:
        assert sorted(jobs) == [(0, bytes(5_000_000)), (1, bytes(1_000_000)), (2, bytes(7_000_000))]


def _holds_the_lock(state, item):
    if item == 0:
        raise ZeroDivisionError("bug in job 0")
    if item == 1:
        with state["lock"]:  # as a worker holds the result queue's write lock while it sends
            state["held"].set()
            time.sleep(1.0)
        return
    time.sleep(0.05)  # the parent, told of job 0's failure, has time to say so: 38 jobs take 1.9 s
    with state["ran"].get_lock():
        state["ran"].value += 1


def test_an_error_lets_the_running_jobs_finish_and_skips_the_rest():
    # pool.terminate after an error killed the workers at once: a lock one held stayed held, and
    # when that was the result queue's, the pool's shutdown waited on it for ever (CI hung once)
    import multiprocessing

    context = multiprocessing.get_context("fork")
    state = {"lock": context.Lock(), "held": context.Event(), "ran": context.Value("i", 0)}
    with pytest.raises(ZeroDivisionError, match="bug in job 0"):
        with forked.imap(_holds_the_lock, state, list(range(40)), 2, order=[1, 0, *range(2, 40)]) as jobs:
            assert state["held"].wait(10)  # job 1 holds the lock when job 0 fails
            list(jobs)
    assert state["lock"].acquire(timeout=1), "a worker was ended while it held the lock"
    assert state["ran"].value < 38  # the jobs after the failure were skipped, not run
