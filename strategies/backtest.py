"""One call that runs a book: a Cerebro with the panel feeds, the strategy, A-share costs and
the plugin's analyzers. Plain Backtrader users assemble the same pieces themselves (see
``examples/plain_backtrader.py``); this is the assembly the pipeline and the tests share.
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
        Wall time of building the feeds and ``cerebro.run()``.
    """

    returns: pd.Series
    baskets: pd.DataFrame
    turnover: pd.DataFrame
    prediction_log: pd.DataFrame
    predictions: pd.DataFrame
    strategy: LSTMTercileStrategy = field(repr=False)
    seconds: float = 0.0


def run_book(panel: Panel, signal, start=None, end=None, *, cash: float = 1e8,
             commission: AShareCommission | None = None, cerebro_kwargs: dict | None = None,
             **params) -> BookRun:
    """Backtest one book of :class:`LSTMTercileStrategy` on ``panel``.

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
        Starting cash (large by default so 100-share lots barely bind).
    commission : AShareCommission, optional
        Default: ``AShareCommission(lot=params['lot'])`` with the 2016 rates.
    cerebro_kwargs : dict, optional
        ``bt.Cerebro`` params (``preload``, ``runonce``, ``exactbars``...);
        ``stdstats`` is off unless given.
    **params
        :class:`LSTMTercileStrategy` params (``selection``, ``book``, ``top_pct``, ``gross``,
        ``lot``, ``rebalance``, ``execution``).
    """
    started = time.perf_counter()
    cerebro = bt.Cerebro(**{"stdstats": False, **(cerebro_kwargs or {})})
    cerebro.broker.setcash(cash)
    lot = params.get("lot", dict(LSTMTercileStrategy.params._getitems())["lot"])
    cerebro.broker.addcommissioninfo(commission if commission is not None else AShareCommission(lot=lot))
    cerebro.addstrategy(LSTMTercileStrategy, signal=signal, **params)
    add_panel_feeds(cerebro, panel, start=start, end=end, window=signal.window)
    cerebro.addanalyzer(BasketReturns, _name="baskets")
    cerebro.addanalyzer(Turnover, _name="turnover")
    cerebro.addanalyzer(PredictionLog, _name="predictions")
    cerebro.addanalyzer(Holdings, _name="holdings")  # month-end positions, transactions
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
