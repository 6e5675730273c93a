"""Backtrader plumbing that costs per feed or per order, made cheap for runs with thousands of
stock feeds and orders (the same results as Backtrader's own; ``tests/test_parallel_backtests.py``).

* :func:`bar_month_end`: the month-end of a Backtrader date number, cached.
* :class:`LeanAnalyzer`: a ``bt.Analyzer`` without the per-line aliases of every data.
* :class:`LeanBroker`: a ``BackBroker`` whose one-cancels-other check is O(1) for an order
  that is its own group (every plain order).
"""
from __future__ import annotations

from functools import lru_cache

import backtrader as bt
import pandas as pd

from feeds.panel import month_end


@lru_cache(maxsize=4096)
def bar_month_end(dtnum: float) -> pd.Timestamp:
    """The month-end of a Backtrader date number.

    Cached: analyzers ask it for the dates of every executed order, thousands of orders on a
    handful of bar dates, and each uncached call builds pandas indexes (it was half of a
    book's run time).
    """
    return month_end([bt.num2date(dtnum)])[0]


class _MetaLeanAnalyzer(type(bt.Analyzer)):
    def donew(cls, *args, **kwargs):
        # Backtrader gives every analyzer an attribute per line of every data (data12_close,
        # data12_3, ...): two setattr calls per line and feed, about a second per analyzer
        # with 3,000 feeds of 60 lines. Hide the datas while it does, then hand them over.
        strategy = bt.metabase.findowner(None, bt.Strategy)
        datas = strategy.datas if strategy is not None else []
        if strategy is not None:
            strategy.datas = []
        try:
            obj, args, kwargs = super().donew(*args, **kwargs)
        finally:
            if strategy is not None:
                strategy.datas = datas
        obj.datas = datas
        if datas:
            obj.data = datas[0]
        return obj, args, kwargs


class LeanAnalyzer(bt.Analyzer, metaclass=_MetaLeanAnalyzer):
    """A ``bt.Analyzer`` with ``strategy``, ``datas`` and ``data`` but without the aliases
    ``dataX``, ``dataX_Y`` and ``dataX_<line>`` (use ``self.datas[X].lines``)."""


class LeanBroker(bt.brokers.BackBroker):
    """``BackBroker`` with a cheaper one-cancels-other check.

    Backtrader puts every order in an OCO group, its own when it has no ``oco``, and after
    each execution, cancellation or margin call scans every pending order for members of
    that group (quadratic in the orders of a rebalance). A group of one holds only the order
    itself, which none of those callers still has pending (``next`` pops it before executing
    it, ``cancel`` removes it, a margin call never queued it), so the scan can find nothing:
    the group is dropped without it. Larger groups (real OCO orders) take Backtrader's path.
    """

    def _ococheck(self, order):
        ocoref = self._ocos.get(self._ocos[order.ref])
        if self._ocol.get(ocoref) == [order.ref]:
            del self._ocol[ocoref]
            return
        super()._ococheck(order)
