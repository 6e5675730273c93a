"""Where the points of a sweep run: one after another in this process, or as Ray tasks.

An executor has one method, :meth:`map`, which calls ``task(item)`` for every item and yields
``(index, result, error)`` as each call finishes (in finishing order, not item order): ``error``
is ``None`` when the call returned, else one line saying why it did not. A failing call never
stops the others. Ray is an optional extra (``pip install -e .[ray]``); :func:`make_executor`
falls back to the plain executor when it is not installed.
"""
from __future__ import annotations

import importlib.util
import logging
import signal
import threading
from typing import Any, Callable, Iterable, Iterator

from feeds.errors import UserError

EXECUTORS = ("auto", "ray", "plain")
# The project's own packages: shipped to a remote Ray cluster with every task, so the nodes need
# only the requirements installed, and always run the driver's version of the code.
PACKAGES = ("feeds", "signals", "strategies", "reports", "pipeline")
# A sweep exchanges configs and metrics dicts only; Ray's default object store (30% of memory,
# in /dev/shm) would be reserved for nothing.
LOCAL_OBJECT_STORE_BYTES = 128 * 2**20


class ExecutorError(UserError):
    """The executor asked for cannot be used (Ray missing, a cluster that does not answer);
    ``str()`` is ``<what> (<where>)``."""

    def __init__(self, what: str, where: str = ""):
        super().__init__(f"{what} ({where})" if where else what)


def error_line(exc: BaseException) -> str:
    """One line for a failed point: ``<ExceptionType>: <first line of its message>``.

    A Ray task error carries the task's own exception as ``cause``; that one is named.
    """
    exc = getattr(exc, "cause", None) or exc
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


Outcome = tuple[int, Any, "str | None"]


class PlainExecutor:
    """Runs the calls one after another in this process (no parallelism, no extra install)."""

    name = "plain"

    def map(self, task: Callable, items: Iterable) -> Iterator[Outcome]:
        for index, item in enumerate(items):
            try:
                result = task(item)
            except Exception as exc:  # one point's failure is reported, the others go on
                yield index, None, error_line(exc)
            else:
                yield index, result, None

    def close(self) -> None:
        """Nothing to release."""

    def describe(self) -> str:
        return "plain executor (in this process, one point at a time)"


class RayExecutor:
    """Runs each call as a Ray task: on a local Ray instance started here, or on a cluster.

    Parameters
    ----------
    address : str, optional
        A running cluster (``head:6379``, ``ray://head:10001``, ``auto``); ``None`` starts a local instance
        on this machine's cores (``num_cpus`` of them when given) and stops it in :meth:`close`.
    num_cpus : int, optional
        CPUs of the local instance (``None``: all of this machine's).
    cpus_per_task : int
        CPUs Ray reserves for each task; a task trains with that many torch threads, so the
        tasks running at once never ask for more cores than there are.
    env : dict of str -> str, optional
        Environment variables of every task's worker.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, cpus_per_task: int = 1,
                 env: dict[str, str] | None = None):
        import ray

        self._ray = ray
        runtime_env = {"env_vars": dict(env or {})}
        self._started = not ray.is_initialized()
        if self._started:
            common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
            # ray.init replaces the driver's SIGTERM handler (with sys.exit) and never puts it back:
            # the caller's (the CLI's cleanup, or the default) is restored right after it.
            main = threading.current_thread() is threading.main_thread()
            sigterm = signal.getsignal(signal.SIGTERM) if main else None
            try:
                if address:
                    runtime_env["py_modules"] = [importlib.import_module(name) for name in PACKAGES]
                    ray.init(address=address, runtime_env=runtime_env, **common)
                else:
                    # "local": always a new instance, even where `ray start` left a cluster address.
                    ray.init(address="local", num_cpus=num_cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                             runtime_env=runtime_env, **common)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = address or "a local Ray instance"
                raise ExecutorError(f"cannot start Ray: {error_line(exc)}", f"--ray-address {where}"
                                    if address else where) from None
            finally:
                if sigterm is not None:
                    signal.signal(signal.SIGTERM, sigterm)
        resources = ray.cluster_resources()
        # A GPU per task when the cluster has any: training then runs there (device: auto).
        self.options = {"num_cpus": cpus_per_task, "num_gpus": 1 if resources.get("GPU", 0) >= 1 else 0,
                        "max_retries": 0}
        self.resources = {k: resources.get(k, 0) for k in ("CPU", "GPU")}
        self.address = address

    def map(self, task: Callable, items: Iterable) -> Iterator[Outcome]:
        ray = self._ray
        remote = ray.remote(task).options(**self.options)
        pending = {remote.remote(item): index for index, item in enumerate(items)}
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as exc:  # the task raised, or its worker died (out of memory, killed)
                yield index, None, error_line(exc)
            else:
                yield index, result, None

    def close(self) -> None:
        """Stop the local Ray instance this executor started (a cluster is left running)."""
        if self._started:
            self._ray.shutdown()

    def describe(self) -> str:
        where = f"cluster {self.address}" if self.address else "local Ray instance"
        gpus = ", 1 GPU per point" if self.options["num_gpus"] else ""
        return (f"Ray ({where}: {self.resources['CPU']:g} CPUs, {self.resources['GPU']:g} GPUs; "
                f"{self.options['num_cpus']} CPU per point{gpus})")


def ray_available() -> bool:
    """True when the optional ``ray`` package is installed."""
    return importlib.util.find_spec("ray") is not None


def make_executor(kind: str = "auto", address: str | None = None, num_cpus: int | None = None,
                  cpus_per_task: int = 1, env: dict[str, str] | None = None):
    """The executor ``kind`` names: ``ray``, ``plain``, or ``auto`` (Ray when installed, else plain).

    Raises :class:`ExecutorError` for ``ray`` (or an ``address``) without Ray installed, or an
    ``address`` with the plain executor.
    """
    if kind not in EXECUTORS:
        raise ExecutorError(f"unknown executor '{kind}' (one of {', '.join(EXECUTORS)})", "--executor")
    if kind == "plain":
        if address:
            raise ExecutorError("--ray-address needs the Ray executor, not 'plain'", "--executor")
        return PlainExecutor()
    if not ray_available():
        if kind == "ray" or address:
            raise ExecutorError("Ray is not installed (pip install -e .[ray], or pip install ray)",
                                "--ray-address" if address else "--executor ray")
        return PlainExecutor()
    return RayExecutor(address=address, num_cpus=num_cpus, cpus_per_task=cpus_per_task, env=env)
