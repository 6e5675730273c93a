"""Ctrl-C and SIGTERM for the main command: one exception, one cleanup, nothing published.

Within :func:`signals_raise`, SIGINT raises ``KeyboardInterrupt`` and SIGTERM raises
:class:`Terminated` (a ``KeyboardInterrupt``), so both unwind through the same cleanup: the
staging directories and half-written cache entries are removed (:mod:`pipeline.output`).

Python cannot deliver a handler's exception everywhere: raised while a weakref callback, a
``__del__`` or importlib's module-lock callback runs, it is printed as "Exception ignored" and
dropped, and the run would go on to finish and publish. So the signal is also recorded, and
:func:`check` raises it again: the pipeline calls it before each walk-forward fold, after the
train stage and before it publishes. The "Exception ignored" report of the recorded exception
is not printed: the run still ends with the one line every interrupted run gives.

Only the standard library here: the command line imports this before anything heavy.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading

_fired: KeyboardInterrupt | None = None  # within signals_raise: the run's signal, once it came


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler, so a terminated run cleans up exactly as Ctrl-C does."""


def check() -> None:
    """Raise the run's signal again if one came (its first raise may have been swallowed)."""
    if _fired is not None:
        raise _fired


def on_signal(signum, frame) -> None:
    """The handler: record the signal and raise it; a second signal must not interrupt the
    cleanup of the first, so it is ignored."""
    global _fired
    if _fired is not None:
        return
    _fired = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
    raise _fired


@contextlib.contextmanager
def signals_raise():
    """Within: SIGINT raises ``KeyboardInterrupt`` and SIGTERM raises :class:`Terminated`, once
    each run; the previous handlers come back after. Only in the main thread, and for each signal
    only where it has its default disposition (not when embedded in a program that handles
    signals itself; a SIGINT ignored by a background launch, e.g. ``nohup cmd &``, stays ignored)."""
    global _fired
    _fired = None
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        handlers = {sig: signal.signal(sig, on_signal) for sig, default in defaults.items()
                    if signal.getsignal(sig) is default}
    previous = sys.unraisablehook

    def unraisable(report):
        if _fired is None or report.exc_value is not _fired:
            previous(report)  # everything else as before

    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        _fired = None  # the next run, and code outside any run, start without one
        sys.unraisablehook = previous
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_deferred():
    """Within: SIGINT and SIGTERM (where :func:`signals_raise` handles them) are only recorded,
    and the first is raised when the block ends. For the heavy imports: torch's C++ extensions
    run Python code while they load, and an exception raised there by a signal handler reaches
    C++ that does not expect it, which aborts the process (seen: SIGINT at 1 s, inside
    ``torch.distributed``'s import: ``terminate called after throwing ... KeyboardInterrupt``)."""
    pending: list[int] = []
    replaced = {}
    if threading.current_thread() is threading.main_thread():
        replaced = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum))
                    for sig in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(sig) is on_signal}
    try:
        yield
    finally:
        for sig, handler in replaced.items():
            signal.signal(sig, handler)
    if pending:
        on_signal(pending[0], None)
