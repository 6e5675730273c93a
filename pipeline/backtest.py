"""The backtest stage: one Backtrader run per selection × book (in parallel worker processes
when ``backtest.workers`` allows), and the online/offline check."""
from __future__ import annotations

import contextlib
import copy
import gc
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from signals.predictions import PROBABILITY_COLUMNS

from . import forked
from .config import RunConfig
from .data import RunData
from .memo import MemoSignal


def run_backtests(config: RunConfig, data: RunData, signal, dates, log, offline: pd.DataFrame | None = None) -> dict:
    """One Backtrader run per selection × book over the decision months ``dates``.

    Parameters
    ----------
    config, data : the run's
    signal : SignalModel
        The served model.
    dates : DatetimeIndex
        Decision months (the books also stream the month after the last, which realises it).
    log : callable
        Progress lines: one per book as it finishes.
    offline : DataFrame, optional
        ``signal``'s offline predictions on ``data.panel`` (the predict stage's): the books are
        served from them (:class:`~pipeline.memo.MemoSignal` checks that each streamed history
        holds exactly the inputs they were computed from). Decision months they lack are
        predicted here, once, before the books run.

    Returns ``{selection: {"baskets": frame, "books": {book: returns}, "turnover": {book: frame},
    "positions": {book: frame}, "transactions": {book: frame}, "predictions": in-backtest
    predictions}}``; the same for any ``backtest.workers``.
    """
    from strategies import AShareCommission
    from strategies.backtest import BookRunner

    bt = config.backtest
    dates = pd.DatetimeIndex(dates)
    start, end = dates[0], dates[-1] + pd.offsets.MonthEnd(1)
    memo = _served(signal, data.panel, dates, offline, log)
    costs = AShareCommission(commission=bt.costs.commission, min_commission=bt.costs.min_commission,
                             stamp_duty=bt.costs.stamp_duty, lot=bt.lot)
    runner = BookRunner(data.panel, memo, start=start, end=end, cash=bt.cash, commission=costs, lot=bt.lot)
    params = dict(top_pct=bt.top_pct, gross=bt.gross, lot=bt.lot, execution=bt.execution, last_decision=dates[-1])
    tasks = [BookTask(selection, book, params) for selection in bt.selections for book in bt.books]
    workers = forked.workers_for(bt.workers, len(tasks))
    if workers > 1:
        log(f"backtest: {len(tasks)} books in {workers} worker processes")
    results = {}
    # The panel, the runner's thousands of feeds and the model live through every book: frozen,
    # the garbage collections of each book skip them (they took a third of a book's time), and
    # forked workers do not write to (and so copy) the pages that hold them.
    gc.freeze()
    try:
        # closing: Ctrl-C between two books ends the workers now, not when the generator is collected
        with contextlib.closing(_run_tasks(runner, tasks, workers)) as finished:
            for task, result in finished:
                results[task.selection, task.book] = result
                log(f"backtest: {task.selection}/{task.book} {len(result['returns'])} months, "
                    f"cum {np.prod(1 + result['returns'].fillna(0)) - 1:+.2%} ({result['seconds']:.1f} s)")
    finally:
        gc.unfreeze()
    out = {}
    for selection in bt.selections:  # the order of the config, whatever the order books finished in
        block = out[selection] = {"books": {}, "turnover": {}, "positions": {}, "transactions": {}}
        for book in bt.books:
            result = results[selection, book]
            for name in ("turnover", "positions", "transactions"):
                block[name][book] = result[name]
            block["books"][book] = result["returns"]
            block.setdefault("baskets", result["baskets"])  # the same baskets in every book of a selection
            block.setdefault("predictions", result["predictions"])
    return out


def _served(signal, panel, dates, offline, log) -> MemoSignal:
    """``signal`` wrapped to serve the decision months ``dates`` from predictions made once:
    ``offline``'s, and the months it lacks predicted now (on the signal's device)."""
    memo = MemoSignal(signal)
    have = pd.DatetimeIndex([]) if offline is None else pd.DatetimeIndex(offline.index.get_level_values("date"))
    missing = dates[~dates.isin(have)]
    t0 = time.perf_counter()
    frames = ([] if offline is None else [offline]) + ([signal.predict_panel(panel, missing)] if len(missing) else [])
    for frame in frames:
        memo.add_offline(panel, frame)
    if len(missing):
        log(f"backtest: predicted {len(missing)} of the {len(dates)} decision months "
            f"({time.perf_counter() - t0:.1f} s)", "DEBUG")
    return memo


@dataclass(frozen=True)
class BookTask:
    """One book to trade: what a worker process receives (the runner it inherits)."""

    selection: str
    book: str
    params: dict


def _book(runner, task: BookTask) -> dict:
    """Trade one book on ``runner``; the plain results the later stages read (picklable: the
    strategy object is not), the book's warnings and its wall time. The one per-book
    function of the serial and the parallel path."""
    with warnings.catch_warnings(record=True) as caught:
        result = runner.run(selection=task.selection, book=task.book, **task.params)
    positions, transactions = result.strategy.analyzers.holdings.get_analysis()
    return {"returns": result.returns, "turnover": result.turnover, "positions": positions,
            "transactions": transactions, "baskets": result.baskets, "predictions": result.predictions,
            "warnings": [(w.message, w.category) for w in caught], "seconds": result.seconds}


def _run_tasks(runner, tasks: list[BookTask], workers: int):
    """Yield ``(task, result)`` as each book finishes: in this process (``workers`` = 1), else
    in ``workers`` forked processes. A book's warnings are raised here, in this process."""
    registry: dict = {}  # one "shown once" registry for all books, as in one process
    # A book's time grows with its orders, and so with the stocks it holds (on the default
    # market the class neutral book is the shortest and holds the fewest, the class long/short
    # one the longest and the most). Handed out largest first, the books do not leave one
    # worker trading a large book alone at the end.
    holdings = _holdings(runner.signal, tasks) if workers > 1 else [0] * len(tasks)
    order = sorted(range(len(tasks)), key=lambda i: (-holdings[i], tasks[i].book != "long_short"))
    state = (runner, _cpu_copy(runner.signal.signal) if workers > 1 else None)
    with forked.imap(_book_job, state, tasks, workers, order) as books:
        for index, result in books:
            for message, category in result.pop("warnings"):
                warnings.warn_explicit(message, category, __file__, 0, registry=registry)
            yield tasks[index], result


def _holdings(memo: MemoSignal, tasks: list[BookTask]) -> list[int]:
    """Stock-months each task's book would hold by the offline predictions (every predicted
    stock taken as tradable): the order of the books' sizes, to hand the largest out first."""
    from strategies.baskets import book_weights, form_baskets

    grids = memo.offline_grids()
    baskets = {}  # a selection's baskets, month by month: the same for each of its books
    for task in tasks:
        key = task.selection, task.params["top_pct"]
        if key not in baskets:
            baskets[key] = [form_baskets(grid, np.ones(len(grid), bool), *key) for grid in grids]
    return [sum(int(np.count_nonzero(book_weights(month, task.book)))
                for month in baskets[task.selection, task.params["top_pct"]]) for task in tasks]


# ------------------------------------------------------------------ worker processes
# The workers inherit the runner (the panel, its Backtrader feeds, the served signal with every
# month's predictions): a task is a BookTask and a result the plain frames of one book.
#
# CUDA: a forked child must not touch CUDA the parent initialised. The parent predicts every
# month the books decide before forking (see _served), so a child only looks answers up; should
# a history ever not match them, the child predicts with a CPU copy of the model made here.


def _cpu_copy(model):
    """A CPU copy of ``model`` when CUDA is initialised in this process (None otherwise)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_initialized() or not callable(getattr(model, "to", None)):
        return None
    return copy.deepcopy(model).to("cpu")


def _book_job(state, task: BookTask) -> dict:
    runner, cpu_model = state
    if cpu_model is not None:
        runner.signal.signal = cpu_model  # a worker's copy of the runner only
    return _book(runner, task)


def online_offline_gap(online: pd.DataFrame, offline: pd.DataFrame) -> float:
    """Largest |probability difference| between in-backtest and offline predictions on the
    offline decision months (the backtest also decides at its last bar, which realises nothing)."""
    cols = list(PROBABILITY_COLUMNS)
    online = online[online.index.get_level_values("date").isin(offline.index.get_level_values("date"))]
    # no join(suffixes=...): pandas < 3.1 lacks it (requirements allow pandas 2.2)
    joined = online[cols].add_suffix("_online").join(offline[cols], how="outer")
    diff = joined[[f"{c}_online" for c in cols]].to_numpy() - joined[cols].to_numpy()
    if np.isnan(diff).any():
        return float("inf")  # a stock predicted on one side only
    return float(np.abs(diff).max()) if diff.size else 0.0
