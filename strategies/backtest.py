"""One call that runs a book: a Cerebro with the panel feeds, the strategy, A-share costs and
the plugin's analyzers. Plain Backtrader users assemble the same pieces themselves (see
``examples/plain_backtrader.py``); this is the assembly the pipeline and the tests share.
:class:`BookRunner` runs several books on one such Cerebro (its feeds built once).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import backtrader as bt
import numpy as np
import pandas as pd

from feeds.btfeed import add_panel_feeds
from feeds.panel import Panel

from .analyzers import BasketReturns, PredictionLog, Turnover
from .commission import AShareCommission
from .lean import LeanBroker
from .positions import Holdings
from .tercile import LSTMTercileStrategy


@dataclass
class BookRun:
    """What :func:`run_book` returns.

    Attributes
    ----------
    returns : Series
        Monthly book return (broker value, costs included), indexed by the month-end at
        which it is realised (the month after each decision).
    baskets : DataFrame
        :class:`~strategies.analyzers.BasketReturns` (paper returns of every basket and the
        universe, same index convention).
    turnover : DataFrame
        :class:`~strategies.analyzers.Turnover`.
    prediction_log : DataFrame
        :class:`~strategies.analyzers.PredictionLog`.
    predictions : DataFrame
        The in-backtest predictions, ``(date, code) -> p_down, p_neutral, p_up, pred``.
    strategy : LSTMTercileStrategy
        The strategy instance (records, orders counters).
    seconds : float
        Wall time of ``cerebro.run()`` (:func:`run_book`: and of building the feeds).
    """

    returns: pd.Series
    baskets: pd.DataFrame
    turnover: pd.DataFrame
    prediction_log: pd.DataFrame
    predictions: pd.DataFrame
    strategy: LSTMTercileStrategy = field(repr=False)
    seconds: float = 0.0


class BookRunner:
    """Books of :class:`LSTMTercileStrategy` on one panel, one Cerebro for all of them.

    The Cerebro (panel feeds, broker with A-share costs, the plugin's analyzers) is built
    once; :meth:`run` trades one book on it. Backtrader resets the feeds and the broker at
    every ``cerebro.run()`` (as its own optimization does), so each book is what a fresh
    Cerebro would give, without building thousands of feeds again. One runner runs one book
    at a time.

    Parameters
    ----------
    panel : Panel
    signal : SignalModel
        Anything with the ``SignalModel`` serving interface.
    start, end : date-like, optional
        First and last decision month-end (see :func:`feeds.add_panel_feeds`; the window's
        months before ``start`` are handed to the strategy as history). The last decision
        has no realised month, so returns run from the month after ``start`` to ``end``.
    cash : float
        Starting cash of every book (large by default so 100-share lots barely bind).
    commission : AShareCommission, optional
        Default: ``AShareCommission(lot=lot)`` with the 2016 rates.
    cerebro_kwargs : dict, optional
        ``bt.Cerebro`` params (``preload``, ``runonce``, ``exactbars``...);
        ``stdstats`` is off unless given.
    lot : int, optional
        Board lot of the default commission (default: the strategy's).
    """

    def __init__(self, panel: Panel, signal, start=None, end=None, *, cash: float = 1e8,
                 commission: AShareCommission | None = None, cerebro_kwargs: dict | None = None,
                 lot: int | None = None):
        started = time.perf_counter()
        self.signal = signal
        cerebro = bt.Cerebro(**{"stdstats": False, **(cerebro_kwargs or {})})
        cerebro.broker = LeanBroker()
        cerebro.broker.setcash(cash)
        if commission is None:
            lot = dict(LSTMTercileStrategy.params._getitems())["lot"] if lot is None else lot
            commission = AShareCommission(lot=lot)
        cerebro.broker.addcommissioninfo(commission)
        add_panel_feeds(cerebro, panel, start=start, end=end, window=signal.window)
        cerebro.addanalyzer(BasketReturns, _name="baskets")
        cerebro.addanalyzer(Turnover, _name="turnover")
        cerebro.addanalyzer(PredictionLog, _name="predictions")
        cerebro.addanalyzer(Holdings, _name="holdings")  # month-end positions, transactions
        self.cerebro = cerebro
        self.build_seconds = time.perf_counter() - started

    def run(self, **params) -> BookRun:
        """Trade one book; ``params`` are :class:`LSTMTercileStrategy` params (``selection``,
        ``book``, ``top_pct``, ``gross``, ``lot``, ``rebalance``, ``execution``)."""
        started = time.perf_counter()
        cerebro = self.cerebro
        cerebro.strats.clear()  # Cerebro runs every strategy added; this run trades this book only
        cerebro.addstrategy(LSTMTercileStrategy, signal=self.signal, **params)
        strategy = cerebro.run()[0]
        seconds = time.perf_counter() - started
        records = strategy.records
        values = pd.Series([r.value for r in records], index=pd.DatetimeIndex([r.date for r in records]),
                           dtype=np.float64)
        returns = (values / values.shift(1) - 1.0).iloc[1:].rename(params.get("book", "high"))
        return BookRun(returns=returns.rename_axis("date"),
                       baskets=strategy.analyzers.baskets.get_analysis(),
                       turnover=strategy.analyzers.turnover.get_analysis(),
                       prediction_log=strategy.analyzers.predictions.get_analysis(),
                       predictions=strategy.predictions(), strategy=strategy, seconds=seconds)


def run_book(panel: Panel, signal, start=None, end=None, *, cash: float = 1e8,
             commission: AShareCommission | None = None, cerebro_kwargs: dict | None = None,
             **params) -> BookRun:
    """Backtest one book of :class:`LSTMTercileStrategy` on ``panel``.

    ``panel``, ``signal``, ``start``, ``end``, ``cash``, ``commission`` and ``cerebro_kwargs``
    as :class:`BookRunner`; ``**params`` are :class:`LSTMTercileStrategy` params
    (``selection``, ``book``, ``top_pct``, ``gross``, ``lot``, ``rebalance``, ``execution``).
    Several books of one panel: build one :class:`BookRunner` and call its ``run``.
    """
    started = time.perf_counter()
    runner = BookRunner(panel, signal, start, end, cash=cash, commission=commission,
                        cerebro_kwargs=cerebro_kwargs, lot=params.get("lot"))
    result = runner.run(**params)
    result.seconds = time.perf_counter() - started
    return result
