"""The Backtrader data feed that streams month-end panel snapshots, one feed per stock.

:class:`PanelFeed` is a ``bt.feed.DataBase`` whose bars are the months in which its
stock is listed. Every bar carries

* ``open``, ``high``, ``low``, ``close``: the month-end close (the adjusted total-return
  index of the :class:`~feeds.panel.Panel`). Within a listing a missing close repeats the
  last known one; a listed month before the first known close streams 0 and is not
  tradable. Prices are never NaN, because Backtrader's broker values every position it
  has seen, empty ones included, as ``size * close``. ``volume`` and ``openinterest`` are
  NaN (a panel has no intramonth prices nor volume);
* the tradability flags ``listed`` (1.0 on every bar), ``suspended``, ``limit_up``,
  ``limit_down``, ``is_st`` (1.0 / 0.0), the ``industry`` index into
  ``feed.industries`` (-1 unknown) and, when the panel has caps, ``mcap``;
* one line per raw (unpreprocessed) factor, named by :func:`factor_line_name`.

The feed reads numpy arrays, never pandas cells: with ``preload`` (the Backtrader
default) :meth:`PanelFeed.preload` fills every line buffer from one array copy; without
it, :meth:`PanelFeed._load` copies one pre-built row per bar. Both produce the same lines.

:func:`add_panel_feeds` adds a whole panel (or a window of its months) to a Cerebro;
:func:`gather_snapshot` reads the current bar of many feeds at once, which is how
:class:`strategies.LSTMTercileStrategy` assembles its month-end cross-section. It also
reads stock feeds that carry the same lines (see :func:`pandas_feeds`).

Backtrader behaviour this module relies on (SPEC §9): a stock that lists late has no bar
before its listing, and one that delists keeps presenting its last bar, so "has a bar
now" is decided by comparing the feed's datetime with the strategy's.

The feed classes live in :mod:`feeds.btfeed_source` and the snapshot readers in
:mod:`feeds.btfeed_snapshots`; this module adds a panel to a Cerebro and re-exports both.
"""
from __future__ import annotations

import gc
from typing import Sequence

import backtrader as bt
import numpy as np
import pandas as pd

from .btfeed_snapshots import Snapshot, gather_snapshot, history_snapshots
from .btfeed_source import (FLAG_LINES, PRICE_LINES, STATIC_LINES, PanelFeed, PanelSource, factor_line_name,
                            factor_line_names, panel_feed_class, tradable_close)
from .panel import Panel, PanelError

__all__ = ["FLAG_LINES", "STATIC_LINES", "PRICE_LINES", "factor_line_name", "factor_line_names", "PanelSource",
           "PanelFeed", "panel_feed_class", "tradable_close", "streamed_rows", "add_panel_feeds", "Snapshot",
           "gather_snapshot", "history_snapshots", "pandas_feed_class", "pandas_feeds"]


def streamed_rows(panel: Panel, start=None, end=None, window: int | None = None) -> slice:
    """Rows of ``panel`` to stream for decisions from ``start`` to ``end``.

    ``window - 1`` months before ``start`` are included as warm-up (all earlier months
    when ``window`` is None).
    """
    rows = panel.rows_between(start, end)
    lo, hi = rows.start, rows.stop
    if window is not None:
        if int(window) < 1:
            raise PanelError(f"window must be at least 1, got {window}")
        lo = max(0, lo - (int(window) - 1)) if start is not None else lo
    elif start is not None:
        lo = 0
    return slice(lo, hi)


def _window_of_added_strategies(cerebro) -> int | None:
    """The largest ``signal.window`` among the strategies added to ``cerebro``.

    ``cerebro.optstrategy`` stores a one-shot iterator of parameter combinations; reading
    it would leave ``cerebro.run()`` nothing to run, so it is replaced by a list of the
    same combinations first (Cerebro takes any iterable there).
    """
    windows = []
    for k, group in enumerate(cerebro.strats):
        if not isinstance(group, (list, tuple)):
            group = cerebro.strats[k] = list(group)
        for _, _, kwargs in group:
            window = getattr(kwargs.get("signal"), "window", None)
            if window is not None:
                windows.append(int(window))
    return max(windows) if windows else None


def add_panel_feeds(cerebro: bt.Cerebro, panel: Panel, start=None, end=None,
                    window: int | None = None, **feed_params) -> list[PanelFeed]:
    """Add one :class:`PanelFeed` per stock of ``panel`` to ``cerebro``.

    Parameters
    ----------
    cerebro : bt.Cerebro
    panel : Panel
    start, end : date-like, optional
        First and last month-end to decide at (any date inside a month selects it).
        ``start=None``: the first month with ``window`` months of history (the panel's
        first month when no window is known).
    window : int, optional
        History length the signal needs. Default: the largest ``window`` of the ``signal``
        of the strategies already added to ``cerebro`` (``addstrategy`` or
        ``optstrategy``); without one, every month before ``start`` is history.
    **feed_params
        Extra :class:`PanelFeed` params (e.g. ``fromdate``, ``filters``).

    Returns
    -------
    list of PanelFeed
        The feeds added, in panel column order, named by stock code: every stock with a
        bar. A stock listed only in the history months gets no feed (Backtrader and its
        analyzers cannot value a feed without bars); its snapshots are still history.

    Notes
    -----
    The ``window - 1`` months before ``start`` are *history*, not bars: Backtrader's clock,
    broker and analyzers (TimeReturn, SharpeRatio, Returns, AnnualReturn, ...) start at
    ``start``, and ``LSTMTercileStrategy`` reads the history through
    :func:`history_snapshots` when it reaches ``start``, so its first decision there has
    a full window. Every feed carries ``start`` as ``feed.tradestart``. With ``filters``
    the history months are streamed as bars instead (a filter must see every bar), and
    the analyzers then include them.
    """
    if not isinstance(panel, Panel):
        raise PanelError(f"add_panel_feeds needs a Panel, got {type(panel).__name__}")
    if window is None:
        window = _window_of_added_strategies(cerebro)
    rows = streamed_rows(panel, start, end, window)
    cut = panel.take(rows=rows)
    tradestart = start
    if tradestart is None and window is not None:
        tradestart = cut.dates[min(int(window), cut.T) - 1]
    first_bar = None if feed_params.get("filters") else tradestart
    source = PanelSource(cut, tradestart=tradestart, first_bar=first_bar)
    cls = panel_feed_class(panel.factor_names, panel.mcap is not None)
    feeds = []
    # Each feed is 60+ line objects; pausing the cyclic garbage collector while thousands are
    # built spares it rescanning the growing heap (about 40% of the build time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for column in source.bar_columns():
            feed = cls(source=source, column=int(column), **feed_params)
            cerebro.adddata(feed, name=feed._name)
            feeds.append(feed)
    finally:
        if collecting:
            gc.enable()
    return feeds


# ------------------------------------------------------- stock PandasData interop
def pandas_feed_class(factor_names: Sequence[str], has_mcap: bool = False) -> type:
    """A stock ``bt.feeds.PandasData`` subclass with the same extra lines as :class:`PanelFeed`.

    For interoperability and as the baseline of ``benchmarks/feed_strategy.py``; every
    cell is read through pandas, so it is much slower than :class:`PanelFeed`.
    """
    lines = factor_line_names(list(factor_names))
    extra = STATIC_LINES + (("mcap",) if has_mcap else ()) + lines
    return type("PandasPanelData", (bt.feeds.PandasData,),
                {"lines": extra, "params": tuple((name, -1) for name in extra)
                 + (("timeframe", bt.TimeFrame.Months),), "__module__": __name__})


def pandas_feeds(panel: Panel, start=None, end=None, window: int | None = None) -> list:
    """Stock ``PandasData`` feeds (one DataFrame per stock) carrying :class:`PanelFeed`'s lines.

    Same bars and values as :func:`add_panel_feeds` would stream; not added to a Cerebro.
    """
    rows = streamed_rows(panel, start, end, window)
    source = PanelSource(panel.take(rows=rows), tradestart=start)
    cls = pandas_feed_class(panel.factor_names, panel.mcap is not None)
    names = [n for n in cls.lines.getlinealiases() if n != "datetime"]
    feeds = []
    for column in np.flatnonzero(source.panel.listed.any(axis=0)):
        bar_rows, values = source.bars(int(column), names)
        frame = pd.DataFrame(values.T, columns=names,
                             index=source.panel.dates[bar_rows])
        feeds.append(cls(dataname=frame, name=str(source.panel.codes[column])))
    return feeds
