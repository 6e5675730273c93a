"""The Backtrader feed class of a panel: :class:`PanelSource` (the arrays all feeds of a panel
read) and :class:`PanelFeed` (one stock's month-end bars).

Use them through :mod:`feeds.btfeed` (:func:`~feeds.btfeed.add_panel_feeds`), which
describes the bars and lines; this module holds the classes and the line names.
"""
from __future__ import annotations

import array
import keyword
import unicodedata
from typing import Sequence

import backtrader as bt
import numpy as np

from .grid import carry
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
    return np.where(listed, carry(close, np.isfinite(close) & listed), np.nan)


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

    # A Cerebro re-run (BookRunner's next book, Backtrader's optimization) starts and preloads
    # every feed again. The bars of a feed never change, so they are read from the source, and
    # turned into line buffers, once: with thousands of feeds that was a large part of what each
    # book did before its first bar.
    _bars = None  # [lines, bars] float64, read-only
    _buffers = None  # the line buffers of the first preload

    def start(self):
        super().start()
        if self._bars is None:
            _, bars = self.p.source.bars(int(self.p.column), self.lines.getlinealiases())
            bars.flags.writeable = False
            self._bars = bars
        self._n_bars = self._bars.shape[1]
        self._bar_rows = None  # python rows for the bar-by-bar path, built on first use
        self._pos = -1

    def _fast_preload_ok(self) -> bool:
        # The bulk copy skips the per-bar checks of DataBase.load(); use it only when
        # they would not change anything.
        dates = self._bars[self.lines.getlinealiases().index("datetime")]
        return (not self._filters and not self._ffilters and self._tzinput is None
                and not self._barstack and not self._barstash
                and self.fromdate <= dates.min(initial=np.inf) and self.todate >= dates.max(initial=-np.inf)
                and all(len(line.array) == 0 for line in self.lines))

    def preload(self):
        """Fill every line buffer from the numpy bars at once (same lines as :meth:`_load`)."""
        if not self._fast_preload_ok():
            return super().preload()
        if self._buffers is None:
            self._buffers = tuple(array.array("d", np.ascontiguousarray(values).tobytes())
                                  for values in self._bars)
        for line, buf in zip(self.lines, self._buffers):
            line.array = buf[:]  # a copy: the run owns its buffers (it may extend them)
        self._pos = self._n_bars - 1
        self._last()
        self.home()

    def _load(self):
        self._pos += 1
        if self._pos >= self._n_bars:
            return False
        if self._bar_rows is None:
            self._bar_rows = self._bars.T.tolist()
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
