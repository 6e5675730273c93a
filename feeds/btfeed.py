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
"""
from __future__ import annotations

import array
import gc
import keyword
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import backtrader as bt
import numpy as np
import pandas as pd

from .panel import Panel, PanelError, month_end

FLAG_LINES = ("listed", "suspended", "limit_up", "limit_down", "is_st")
STATIC_LINES = FLAG_LINES + ("industry",)
PRICE_LINES = ("open", "high", "low", "close")
_RESERVED = set(PRICE_LINES) | {"volume", "openinterest", "datetime", "mcap"} | set(STATIC_LINES)


def factor_line_name(name: str) -> str:
    """The Backtrader line name of a factor: a Python identifier derived from ``name``.

    The name is NFKC-normalised (as Python normalises identifiers, so ``data.lines.<name>``
    in source code finds the line); letters of any script are kept, so ``"市盈率"`` is the
    line ``市盈率`` and ``"市净率"`` the line ``市净率``; every character that cannot be part
    of an identifier becomes ``_``. A name that starts with a digit or ``_``, is a Python
    keyword or clashes with a price, flag or metadata line gets an ``f_`` prefix.
    """
    normal = unicodedata.normalize("NFKC", str(name))
    line = "".join(ch if ("a" + ch).isidentifier() else "_" for ch in normal)
    if not line or not line.isidentifier() or keyword.iskeyword(line) or line in _RESERVED \
            or line.startswith("_"):
        line = "f_" + line
    return line


def factor_line_names(names: Sequence[str]) -> tuple[str, ...]:
    """:func:`factor_line_name` of every factor; two factors mapping to one name is an error."""
    lines = tuple(factor_line_name(n) for n in names)
    seen: dict[str, str] = {}
    for name, line in zip(names, lines):
        if line in seen:
            raise PanelError(f"factors '{seen[line]}' and '{name}' both map to the feed line '{line}'")
        seen[line] = name
    return lines


class PanelSource:
    """The arrays of one panel (or a window of its months) that all its feeds read.

    Built once by :func:`add_panel_feeds`; a feed copies its own stock's bars from here
    when it starts, and :func:`gather_snapshot` reads the current bars of many feeds in
    one vectorized gather.

    Parameters
    ----------
    panel : Panel
        The months to stream (already cut to the streamed window).
    tradestart : Timestamp or None
        First month-end at which a strategy should decide; earlier months are warm-up.
    first_bar : Timestamp or None
        First month streamed as a bar (default: the panel's first month). The months
        before it are *history*: the feeds do not stream them (Backtrader's clock, broker
        and analyzers start at ``first_bar``) but hand them to a strategy as the snapshots
        that preceded its first bar (:func:`history_snapshots`).
    """

    def __init__(self, panel: Panel, tradestart=None, first_bar=None):
        self.panel = panel
        self.tradestart = None if tradestart is None else month_end([tradestart])[0]
        self.dtnums = np.array([bt.date2num(d.to_pydatetime()) for d in panel.dates])
        self.factor_lines = factor_line_names(panel.factor_names)
        self.close = tradable_close(panel)
        self.first_row = 0 if first_bar is None else int(
            panel.dates.searchsorted(month_end([first_bar])[0], "left"))

    def bar_columns(self) -> np.ndarray:
        """Columns with at least one bar (one feed each)."""
        return np.flatnonzero(self.panel.listed[self.first_row:].any(axis=0))

    def history_only_columns(self) -> np.ndarray:
        """Columns listed in the history months only (no feed; their snapshots are history)."""
        listed = self.panel.listed
        return np.flatnonzero(listed[:self.first_row].any(axis=0) & ~listed[self.first_row:].any(axis=0))

    def rows_of(self, column: int) -> np.ndarray:
        """Panel rows of the months streamed as bars of stock ``column`` (it is listed)."""
        return np.flatnonzero(self.panel.listed[self.first_row:, column]) + self.first_row

    def row_at(self, dtnum: float) -> int | None:
        """The panel row of the month-end ``dtnum`` (a Backtrader date number), or None."""
        k = int(np.searchsorted(self.dtnums, dtnum))
        return k if k < len(self.dtnums) and self.dtnums[k] == dtnum else None

    def bars(self, column: int, lines: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The bars of stock ``column`` as ``(rows, values [len(lines), n_bars] float64)``."""
        p, rows = self.panel, self.rows_of(column)
        values = np.full((len(lines), len(rows)), np.nan)
        for k, line in enumerate(lines):
            if line == "datetime":
                values[k] = self.dtnums[rows]
            elif line in PRICE_LINES:
                # A listed month before the first known close streams 0, not NaN: the broker
                # values every position it has ever seen (PyFolio's, or an empty one that
                # getposition() creates) as size * close, and 0 * NaN would make it NaN.
                values[k] = np.nan_to_num(self.close[rows, column], nan=0.0)
            elif line in STATIC_LINES:
                values[k] = getattr(p, line)[rows, column]
            elif line == "mcap":
                values[k] = p.mcap[rows, column]
        factor_at = {line: j for j, line in enumerate(self.factor_lines)}
        idx = [k for k, line in enumerate(lines) if line in factor_at]
        if idx:
            values[idx] = p.factors[rows, column][:, [factor_at[lines[k]] for k in idx]].T
        return rows, values


def tradable_close(panel: Panel) -> np.ndarray:
    """The close the feeds stream ``[T, N]``: the panel's close, with the last finite close
    carried forward over listed months (NaN before the first one and where not listed)."""
    close, listed = panel.close, panel.listed
    T, N = close.shape
    finite = np.isfinite(close) & listed
    last = np.where(finite, np.arange(T)[:, None], -1)
    last = np.maximum.accumulate(last, axis=0)
    filled = close[np.maximum(last, 0), np.arange(N)[None, :]]
    return np.where(listed & (last >= 0), filled, np.nan)


class _FollowerBuffer(bt.LineBuffer):
    """A line buffer that shares its position with its feed's first line.

    Backtrader moves every line of a data feed one by one (``advance``, ``forward``,
    ``rewind``, ``home``...), always all of them together. A panel feed has 60+ lines and a
    run has thousands of feeds, so the moving dominated the run. The other lines of a
    :class:`PanelFeed` read the position (``_idx``, ``lencount``) of its ``close`` line and
    ignore writes to it; everything else (their own values, appends, pops) is unchanged.
    """

    _idx = property(lambda self: self._leader._idx, lambda self, value: None)
    lencount = property(lambda self: self._leader.lencount, lambda self, value: None)


class PanelFeed(bt.feed.DataBase):
    """One stock's month-end snapshots from a :class:`PanelSource`, as a Backtrader feed.

    Use :func:`add_panel_feeds` (or :func:`panel_feed_class` for the class with the factor
    lines of a panel) rather than this base class directly.

    Lines: ``close``, ``open``, ``high``, ``low`` (all the month-end close), ``volume``,
    ``openinterest`` (NaN), ``listed``, ``suspended``, ``limit_up``, ``limit_down``,
    ``is_st`` (0/1), ``industry`` (index into :attr:`industries`, -1 unknown), ``mcap``
    (when the panel has it) and one line per factor (:func:`factor_line_name`).

    Params:

      - ``source`` (default: ``None``): the :class:`PanelSource` to read
      - ``column`` (default: ``None``): the stock's column in the source panel
      - ``timeframe`` (default: ``bt.TimeFrame.Months``), ``compression`` (``1``)
      - every other ``bt.feed.DataBase`` param (``name``, ``fromdate``, ``todate``,
        ``filters``, ...) works as usual

    Attributes: ``code`` (the stock code, also the default ``name``), ``factor_names``
    (raw names, in line order), ``industries``, ``styles`` and ``tradestart`` (first
    decision month, or ``None``) describe the stream for strategies.
    """

    lines = STATIC_LINES
    params = (("source", None), ("column", None), ("timeframe", bt.TimeFrame.Months))
    factor_lines: tuple[str, ...] = ()
    has_mcap = False

    def __init__(self):
        source, column = self.p.source, self.p.column
        if not isinstance(source, PanelSource):
            raise PanelError("PanelFeed needs source=PanelSource(...); use feeds.add_panel_feeds()")
        if column is None or not 0 <= int(column) < source.panel.N:
            raise PanelError(f"PanelFeed column {column!r} is outside the panel's {source.panel.N} codes")
        if self.factor_lines != source.factor_lines or self.has_mcap != (source.panel.mcap is not None):
            raise PanelError("PanelFeed class does not match its source's factors; "
                             "use panel_feed_class(panel.factor_names, has_mcap)")
        self.code = str(source.panel.codes[int(column)])
        if not self.p.name:
            self._name = self.code
        self._rows = source.rows_of(int(column))
        leader, *followers = self.lines.lines
        for buf in followers:
            buf.__class__ = _FollowerBuffer
            buf._leader = leader

    # ---------------------------------------------------------- description
    @property
    def factor_names(self) -> list[str]:
        return list(self.p.source.panel.factor_names)

    @property
    def industries(self) -> list[str]:
        return list(self.p.source.panel.industries)

    @property
    def styles(self) -> dict[str, list[str]]:
        return dict(self.p.source.panel.styles)

    @property
    def tradestart(self):
        return self.p.source.tradestart

    # ------------------------------------------------------------- loading
    # Backtrader keeps a tick_<line> copy of every line of the current bar, for bars that
    # are updated while they form (replay, live). Only the broker reads them, the price
    # ones, and it falls back to the lines themselves when they are None. A month-end bar
    # never changes, so the copies stay None unless the feed is replayed or resampled:
    # with 60+ lines per feed the copying dominated a run.
    def _ticks_needed(self) -> bool:
        return bool(self.replaying or self.resampling)

    def _tick_nullify(self):
        if self._ticks_needed():
            super()._tick_nullify()

    def _tick_fill(self, force=False):
        if self._ticks_needed():
            super()._tick_fill(force)

    def qbuffer(self, savemem=0, replaying=False):
        # exactbars=1: keep one spare slot. Without it the empty bar DataBase.load() pushes
        # when the feed runs out evicts the last real one, and a delisted stock would present
        # no bar at all (Backtrader then fails reading its datetime).
        for line in self.lines:
            line.qbuffer(savemem=savemem, extrasize=1)

    # Cerebro asks every feed for its length and next datetime on every bar; these read the
    # buffer counters directly instead of through proxy calls, and advance moves the one
    # position all lines share (see _FollowerBuffer).
    def __len__(self):
        return self.lines.lines[0].lencount

    def advance_peek(self):
        clock = self.lines.datetime
        if clock.mode != bt.LineBuffer.UnBounded:
            return super().advance_peek()
        return clock.array[clock._idx + 1] if clock.lencount < clock.buflen() else float("inf")

    def advance(self, size=1, datamaster=None, ticks=True):
        if datamaster is not None or self._ticks_needed():
            return super().advance(size, datamaster, ticks)
        self.lines.lines[0].advance(size)

    def start(self):
        super().start()
        lines = self.lines.getlinealiases()
        _, self._values = self.p.source.bars(int(self.p.column), lines)
        self._n_bars = self._values.shape[1]
        self._bar_rows = None  # python rows for the bar-by-bar path, built on first use
        self._pos = -1

    def _fast_preload_ok(self) -> bool:
        # The bulk copy skips the per-bar checks of DataBase.load(); use it only when
        # they would not change anything.
        dates = self._values[self.lines.getlinealiases().index("datetime")]
        return (not self._filters and not self._ffilters and self._tzinput is None
                and not self._barstack and not self._barstash
                and self.fromdate <= dates.min(initial=np.inf) and self.todate >= dates.max(initial=-np.inf)
                and all(len(line.array) == 0 for line in self.lines))

    def preload(self):
        """Fill every line buffer from the numpy bars at once (same lines as :meth:`_load`)."""
        if not self._fast_preload_ok():
            return super().preload()
        for line, values in zip(self.lines, self._values):
            buf = array.array("d")
            buf.frombytes(np.ascontiguousarray(values, dtype=np.float64).tobytes())
            line.array = buf
        self._pos = self._n_bars - 1
        self._values = None  # the line buffers hold the bars now
        self._last()
        self.home()

    def _load(self):
        self._pos += 1
        if self._pos >= self._n_bars:
            return False
        if self._bar_rows is None:
            self._bar_rows = self._values.T.tolist()
        for line, value in zip(self.lines, self._bar_rows[self._pos]):
            line[0] = value
        return True


_FEED_CLASSES: dict[tuple, type] = {}


def panel_feed_class(factor_names: Sequence[str], has_mcap: bool = False) -> type:
    """The :class:`PanelFeed` subclass with one line per factor (created once per name set)."""
    lines = factor_line_names(list(factor_names))
    key = (lines, bool(has_mcap))
    cls = _FEED_CLASSES.get(key)
    if cls is None:
        extra = (("mcap",) if has_mcap else ()) + lines
        cls = type(f"PanelFeed{len(_FEED_CLASSES)}", (PanelFeed,),
                   {"lines": extra, "factor_lines": lines, "has_mcap": bool(has_mcap),
                    "__module__": __name__})
        _FEED_CLASSES[key] = cls
        # A module attribute, so pickle finds the class: cerebro.optstrategy with maxcpus > 1
        # sends the Cerebro, feeds included, to its (forked) worker processes.
        globals()[cls.__name__] = cls
    return cls


def streamed_rows(panel: Panel, start=None, end=None, window: int | None = None) -> slice:
    """Rows of ``panel`` to stream for decisions from ``start`` to ``end``.

    ``window - 1`` months before ``start`` are included as warm-up (all earlier months
    when ``window`` is None).
    """
    lo = 0 if start is None else int(panel.dates.searchsorted(month_end([start])[0], "left"))
    hi = panel.T if end is None else int(panel.dates.searchsorted(month_end([end])[0], "right"))
    if hi <= lo:
        raise PanelError(f"no months between {start} and {end} "
                         f"(panel covers {panel.dates[0].date()}..{panel.dates[-1].date()})")
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


# ------------------------------------------------------------------ snapshots
@dataclass
class Snapshot:
    """The current bar of many stock feeds, as arrays over those feeds (length N).

    ``present`` marks feeds with a bar at the snapshot date; every other field is
    NaN / False / -1 where it is False.
    """

    present: np.ndarray
    close: np.ndarray
    suspended: np.ndarray
    limit_up: np.ndarray
    limit_down: np.ndarray
    is_st: np.ndarray
    industry: np.ndarray
    mcap: np.ndarray | None
    factors: np.ndarray

    def tradable(self) -> np.ndarray:
        """Feeds with a bar now, not suspended, with a known close (NaN in ``close`` otherwise)."""
        return self.present & ~self.suspended & np.isfinite(self.close)

    def padded(self, extra: int) -> Snapshot:
        """This snapshot with ``extra`` absent entries appended (a no-op for 0)."""
        if not extra:
            return self
        empty = _empty_snapshot(extra, self.factors.shape[1], self.mcap is not None)
        return Snapshot(**{name: None if getattr(self, name) is None else
                           np.concatenate([getattr(self, name), getattr(empty, name)])
                           for name in self.__dataclass_fields__})


def _empty_snapshot(N: int, F: int, with_mcap: bool) -> Snapshot:
    return Snapshot(present=np.zeros(N, bool), close=np.full(N, np.nan),
                    industry=np.full(N, -1, np.int32), mcap=np.full(N, np.nan) if with_mcap else None,
                    factors=np.full((N, F), np.nan, np.float32),
                    **{name: np.zeros(N, bool) for name in FLAG_LINES[1:]})


def _fill_from_source(snap: Snapshot, src: PanelSource, row: int, js, cs, lines, name_of) -> None:
    """Write the panel values of ``src`` at ``row`` for columns ``cs`` into ``snap[js]``."""
    js, cs = np.asarray(js, dtype=np.int64), np.asarray(cs, dtype=np.int64)
    p = src.panel
    snap.present[js] = True
    snap.close[js] = src.close[row, cs]
    for name in FLAG_LINES[1:]:
        getattr(snap, name)[js] = getattr(p, name)[row, cs]
    snap.industry[js] = p.industry[row, cs]
    if snap.mcap is not None and p.mcap is not None:
        snap.mcap[js] = p.mcap[row, cs]
    at = {line: k for k, line in enumerate(src.factor_lines)}
    missing = [line for line in lines if line not in at]
    if missing:
        raise PanelError(f"feed '{name_of(int(js[0]))}' has no factor line '{missing[0]}'")
    snap.factors[js] = p.factors[row, cs][:, [at[line] for line in lines]]


def _vector_readable(data) -> bool:
    """A PanelFeed whose bars are its source's values: no filter changed, moved or dropped any."""
    return isinstance(data, PanelFeed) and not data._filters and not data._ffilters


def gather_snapshot(datas: Sequence, dtnum: float, factor_names: Sequence[str],
                    with_mcap: bool = False) -> Snapshot:
    """Read the bar that each of ``datas`` presents at ``dtnum`` (a Backtrader date number).

    A feed whose current datetime differs from ``dtnum`` (not listed yet, or delisted and
    still presenting its last bar) is not ``present``. :class:`PanelFeed` s are read in one
    vectorized gather from their source, at the panel row of ``dtnum`` (so bars dropped by
    ``fromdate`` cannot shift it); a feed with ``filters`` (which may change, add or drop
    bars) and any other feed are read through their lines (the factor lines named by
    :func:`factor_line_name`; missing flag lines count as 0, a missing ``industry`` line
    as -1). Either way the snapshot holds the values of the bar the feed presents.
    """
    N, F = len(datas), len(factor_names)
    lines = factor_line_names(list(factor_names))
    snap = _empty_snapshot(N, F, with_mcap)
    flags = {name: getattr(snap, name) for name in FLAG_LINES[1:]}
    by_source: dict[int, tuple[PanelSource, list[int], list[int]]] = {}
    row_of: dict[int, int | None] = {}  # the panel row of dtnum, per source
    for j, data in enumerate(datas):
        clock = data.lines.datetime
        if not len(clock) or clock[0] != dtnum:
            continue
        if _vector_readable(data):
            src = data.p.source
            row = row_of[id(src)] if id(src) in row_of else row_of.setdefault(id(src), src.row_at(dtnum))
            if row is not None and src.panel.listed[row, data.p.column]:
                entry = by_source.setdefault(id(src), (src, [], []))
                entry[1].append(j)
                entry[2].append(data.p.column)
                continue
        snap.present[j] = True
        _read_lines(data, j, lines, snap.close, flags, snap.industry, snap.mcap, snap.factors)
    for src, js, cs in by_source.values():
        _fill_from_source(snap, src, row_of[id(src)], js, cs, lines, lambda j: datas[j]._name)
    return snap


def history_snapshots(datas: Sequence, dtnum: float, factor_names: Sequence[str],
                      with_mcap: bool = False, last: int | None = None
                      ) -> tuple[list[tuple[pd.Timestamp, Snapshot]], list[str]]:
    """The month-end snapshots that :class:`PanelFeed` s hand over as history before ``dtnum``.

    A source built with ``first_bar`` does not stream its months before it as bars; a
    strategy that reaches ``first_bar`` (``dtnum`` is that month) reads them here instead,
    oldest first (the ``last`` of them when given). Nothing at or after ``dtnum`` is read.

    Returns ``(snapshots, extra_codes)``: each snapshot covers ``datas`` (other feeds absent)
    followed by ``extra_codes``, the stocks listed only in the history months (they have no
    feed, but belong to those months' cross-sections, which the signal preprocesses).
    Empty when no source starts its bars at ``dtnum`` (for instance when ``fromdate``
    dropped the first bars: the months in between are not history then, and handing the
    earlier ones over would leave a gap).
    """
    lines = factor_line_names(list(factor_names))
    N = len(datas)
    sources: dict[int, list] = {}
    for j, data in enumerate(datas):
        if _vector_readable(data):
            src = data.p.source
            if src.first_row > 0 and src.dtnums[src.first_row] == dtnum:
                entry = sources.setdefault(id(src), [src, [], []])
                entry[1].append(j)
                entry[2].append(data.p.column)
    extra_codes: list[str] = []
    for entry in sources.values():
        src = entry[0]
        extra = src.history_only_columns()
        entry[1].extend(range(N + len(extra_codes), N + len(extra_codes) + len(extra)))
        entry[2].extend(int(c) for c in extra)
        extra_codes.extend(str(c) for c in src.panel.codes[extra])
    dates = sorted({d for src, _, _ in sources.values() for d in src.panel.dates[:src.first_row]})
    if last is not None:
        dates = dates[max(0, len(dates) - last):] if last > 0 else []
    out = []
    for date in dates:
        snap = _empty_snapshot(N + len(extra_codes), len(lines), with_mcap)
        for src, js, cs in sources.values():
            row = int(src.panel.dates.searchsorted(date))
            if row < src.first_row and src.panel.dates[row] == date:
                listed = src.panel.listed[row, cs]
                if listed.any():
                    _fill_from_source(snap, src, row, np.asarray(js)[listed], np.asarray(cs)[listed],
                                      lines, lambda j: datas[j]._name if j < N else extra_codes[j - N])
        out.append((pd.Timestamp(date), snap))
    return out, extra_codes


def _read_lines(data, j, lines, close, flags, industry, mcap, factors):
    price = data.close[0]
    close[j] = price if price > 0 else np.nan  # 0: a bar without a known price
    for name, values in flags.items():
        line = getattr(data.lines, name, None)
        values[j] = bool(line[0]) if line is not None and line[0] == line[0] else False
    line = getattr(data.lines, "industry", None)
    if line is not None and line[0] == line[0]:
        industry[j] = int(line[0])
    if mcap is not None:
        line = getattr(data.lines, "mcap", None)
        mcap[j] = line[0] if line is not None else np.nan
    for k, name in enumerate(lines):
        line = getattr(data.lines, name, None)
        if line is None:
            raise PanelError(f"feed '{data._name}' has no factor line '{name}'")
        factors[j, k] = line[0]


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
