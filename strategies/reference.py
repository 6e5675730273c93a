"""Vectorized close-to-close reference of the strategy's books (no Backtrader).

:func:`book_returns` replays a book month by month in fractions of NAV from a
predictions frame and the panel: the baskets of :func:`~strategies.baskets.form_baskets`,
the target weights of :func:`~strategies.baskets.book_weights` and the trading rules of
:func:`~strategies.baskets.plan_rebalance`, filled at the decision month's close, with
fractional shares and no costs. Positions drift with prices between rebalances; a stock
that delists keeps its last close (as Backtrader values a feed that has ended). At zero
cost and ``lot=0`` the strategy's broker NAV equals it to float precision (tested).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from feeds.btfeed import tradable_close
from feeds.panel import Panel, PanelError, month_end
from signals.predictions import probability_grid

from .baskets import book_weights, check_choices, form_baskets, plan_rebalance


def book_returns(panel: Panel, predictions: pd.DataFrame, selection: str = "class",
                 book: str = "high", top_pct: float = 0.30, gross: float = 1.0,
                 rebalance: int = 1, start=None, end=None) -> pd.Series:
    """Monthly returns of ``book`` traded on ``predictions`` at the month-end close.

    Parameters
    ----------
    panel : Panel
        Prices (``close``), listing and the ``suspended`` / ``limit_up`` / ``limit_down``
        flags.
    predictions : DataFrame
        ``(date, code) -> p_down, p_neutral, p_up`` (``SignalModel.predict_panel`` or
        ``LSTMTercileStrategy.predictions()``). Its months from ``start`` to ``end`` are the
        decision months.
    selection, book, top_pct, gross, rebalance
        As the strategy's params.
    start, end : date-like, optional
        First and last decision month (default: all months of ``predictions``).

    Returns
    -------
    Series
        Book return per month, indexed by the month-end at which it is realised (the month
        after each decision, up to the panel's last month).
    """
    check_choices(selection, book, top_pct, gross)
    probs = probability_grid(predictions, panel.dates, panel.codes)
    decided = np.isin(panel.dates, pd.DatetimeIndex(predictions.index.get_level_values("date").unique()))
    if start is not None:
        decided &= panel.dates >= month_end([start])[0]
    if end is not None:
        decided &= panel.dates <= month_end([end])[0]
    rows = np.flatnonzero(decided)
    if not len(rows):
        raise PanelError("no decision month: the predictions cover no month of the panel in range")
    close = tradable_close(panel)
    tradable = panel.listed & ~panel.suspended & np.isfinite(close)
    price = pd.DataFrame(close).ffill().to_numpy()  # a delisted stock keeps its last close
    weights = np.zeros(panel.N)
    returns = {}
    n_decided = 0
    for t in range(rows[0], min(rows[-1] + 1, panel.T - 1)):
        if decided[t]:
            n_decided += 1
        if decided[t] and (n_decided - 1) % rebalance == 0:
            baskets = form_baskets(probs[t], tradable[t], selection, top_pct)
            target = book_weights(baskets, book, gross)
            weights = plan_rebalance(weights, target, tradable[t], tradable[t] & ~panel.limit_up[t],
                                     tradable[t] & ~panel.limit_down[t], cash=1.0 - weights.sum())
        growth = np.where(weights != 0, price[t + 1] / np.where(weights != 0, price[t], 1.0), 1.0)
        held = weights * growth
        nav = 1.0 - weights.sum() + held.sum()
        returns[panel.dates[t + 1]] = nav - 1.0
        weights = held / nav
    return pd.Series(returns, name=book, dtype=np.float64).rename_axis("date")
