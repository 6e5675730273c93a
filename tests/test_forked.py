"""pipeline.forked: jobs in forked workers behave as in one process."""
import os
import pickle
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
    monkeypatch.setattr(forked, "_STATE", (_large, 4_000_000, str(tmp_path)))
    index, outcome = forked._run_job((3, 2))
    assert index == 3 and isinstance(outcome, forked._ResultFile)
    assert len(pickle.dumps(outcome)) < 200
    assert outcome.load() == bytes(8_000_000) and not os.path.exists(outcome)
    with forked.imap(_large, 1_000_000, [5, 1, 7], 2) as jobs:
        assert sorted(jobs) == [(0, bytes(5_000_000)), (1, bytes(1_000_000)), (2, bytes(7_000_000))]


def _holds_the_lock(state, item):
    if item == 0:
        raise ZeroDivisionError("bug in job 0")  # the parent then ends the pool (pool.terminate)
    with state["lock"]:  # as a worker holds the result queue's write lock while it sends
        state["held"].set()
        time.sleep(60)


def test_a_worker_ended_while_it_holds_a_lock_releases_it():
    # pool.terminate's SIGTERM killed a worker at once: a lock it held stayed held, and when that
    # was the result queue's, the pool's shutdown waited on it forever (CI hung once)
    import multiprocessing

    context = multiprocessing.get_context("fork")
    state = {"lock": context.Lock(), "held": context.Event()}
    started = time.perf_counter()
    with pytest.raises(ZeroDivisionError):
        with forked.imap(_holds_the_lock, state, [0, 1], 2, order=[1, 0]) as jobs:
            assert state["held"].wait(10)  # job 1 holds the lock when job 0's failure ends the pool
            list(jobs)
    assert state["lock"].acquire(timeout=5), "the ended worker kept the lock"
    assert time.perf_counter() - started < 30  # not the 60 s of the job

