"""Month-end cross-sections read from many stock feeds at once (:class:`Snapshot`).

:func:`gather_snapshot` reads the current bar of many feeds, which is how
:class:`strategies.LSTMTercileStrategy` assembles its month-end cross-section;
:func:`history_snapshots` hands over the months a :class:`~feeds.btfeed_source.PanelSource`
keeps as history before its first bar. Both read :class:`~feeds.btfeed_source.PanelFeed` s
in one vectorized gather from their source, and any other feed carrying the same lines
through its lines.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .btfeed_source import FLAG_LINES, PanelFeed, PanelSource, factor_line_names
from .panel import PanelError


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
