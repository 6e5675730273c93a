"""Daily bars → adjusted returns → monthly bars → a factor :class:`~feeds.panel.Panel` (SPEC §4.4).

The pipeline has four steps, each a public function:

1. :func:`load_daily_bars` reads a long CSV/Parquet file (or a folder of per-stock
   files), validates it (one :class:`DailyBarsError` line naming the column, row, date
   or code) and lays it on a dense ``[days, stocks]`` grid (:class:`DailyBars`). The
   exchange calendar is the union of the dates in the data. Index codes (the
   benchmarks) are kept apart from the stocks.
2. :func:`adjust` turns raw prices into total returns. With ``pre_close`` or
   ``adj_factor`` columns it uses them; without, it detects ex-rights days by the
   A-share price-limit rule and neutralises them (:class:`AdjustmentReport` counts
   them). The rule, in full, is in ``docs/real_data.md``; in short, a day's return
   ``close / previous close - 1`` is replaced by the market's return over the same
   span when it lies beyond the board's daily limit (``±10%`` main board, ``±5%`` ST,
   ``±20%`` STAR and ChiNext from 2020-08-24, ``±30%`` Beijing) plus the half-cent
   rounding of the limit price, unless the day has no limit (a listing's first day,
   the first five days of a registration-system listing) or it is a rise on the
   resumption after a suspension of ``long_suspension`` exchange days or more (reform
   resumptions and restored listings trade without a limit). A price change on a
   no-trade bar (volume 0: the exchange's ex-rights reference price during a
   suspension) is a corporate action too. The adjusted close is a backward-adjusted
   total-return index anchored at the stock's first close, so it never depends on a
   later bar.
3. :func:`to_monthly` aggregates to calendar months (:class:`MonthlyBars`): month-end
   close (the last exchange day of the month; a stock without a trade that day is
   ``suspended`` and carries its last close), monthly return, trading days, listing
   mask and the month-end limit-up / limit-down flags.
4. :func:`panel_from_daily` runs the three steps plus the factor library
   (:mod:`feeds.factor_library`) and returns the :class:`~feeds.panel.Panel` and an
   :class:`IngestReport` (counts, computed and skipped factors, the benchmarks'
   monthly returns).

Everything works on whole ``[days, stocks]`` arrays; there is no per-stock loop.

Each step lives in its own module, and this one re-exports their public names:
:mod:`feeds.daily_bars` (reading and validation), :mod:`feeds.daily_limits` (boards and
price limits), :mod:`feeds.daily_adjust` (adjustment), :mod:`feeds.daily_monthly`
(monthly aggregation); this module assembles the panel and its :class:`IngestReport`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .daily_adjust import LONG_SUSPENSION_DAYS, AdjustedBars, AdjustmentReport, adjust, market_returns
from .daily_bars import (INDEX_CODES, OPTIONAL_NUMERIC, PRICE_COLUMNS, REQUIRED_COLUMNS, DailyBars,
                         DailyBarsError, bars_from_frame, load_daily_bars)
from .daily_limits import board_of, price_limit
from .daily_monthly import MonthlyBars, month_end_rows, to_monthly
from .factor_library import compute_factors
from .panel import Panel, month_span

__all__ = ["INDEX_CODES", "REQUIRED_COLUMNS", "PRICE_COLUMNS", "OPTIONAL_NUMERIC", "LONG_SUSPENSION_DAYS",
           "DailyBars", "DailyBarsError", "load_daily_bars", "bars_from_frame", "board_of", "price_limit",
           "AdjustedBars", "AdjustmentReport", "adjust", "market_returns", "MonthlyBars", "month_end_rows",
           "to_monthly", "IngestReport", "panel_from_daily"]


@dataclass
class IngestReport:
    """What :func:`panel_from_daily` built, for logs, ``metrics.json`` and the CLI.

    Attributes
    ----------
    source : str
    adjustment : AdjustmentReport
    n_stocks, n_months : int
        Of the returned panel.
    first_month, last_month : str
    n_days : int
        Exchange days in the data.
    last_day : str
        The last of them (``YYYY-MM-DD``): a day well before its month's end makes the last
        month a partial one.
    factors : list of str
        Computed factors, in panel order.
    styles : dict
        Style → factors (computed ones only).
    skipped : dict
        Factor → why it was not computed (missing input, or no value in the panel's span).
    industry : str
        ``"map <file>: K industries, M codes unmapped"``, ``"column: K industries"`` or
        ``"absent"`` (neutralization falls back to the whole market).
    benchmarks : DataFrame [T, K]
        Monthly returns of the index codes over the panel's months.
    benchmark_code : str or None
        The default benchmark (the first index code present).
    notes : list of str
        Plain-language caveats (derived amount, missing industry, survivorship, ...).
    timings : dict
        Seconds spent loading, adjusting, aggregating and computing factors.
    """

    source: str
    adjustment: AdjustmentReport
    n_stocks: int
    n_months: int
    first_month: str
    last_month: str
    n_days: int
    last_day: str
    factors: list[str]
    styles: dict[str, list[str]]
    skipped: dict[str, str]
    industry: str
    benchmarks: pd.DataFrame
    benchmark_code: str | None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def benchmark(self, code: str | None = None) -> pd.Series:
        """Monthly returns of an index code (default :attr:`benchmark_code`), for tear sheets."""
        code = code or self.benchmark_code
        if code is None or code not in self.benchmarks.columns:
            raise DailyBarsError(f"benchmark '{code}' is not in {self.source} "
                                 f"(index codes present: {list(self.benchmarks.columns) or 'none'})")
        return self.benchmarks[code].rename(code)

    def to_dict(self) -> dict:
        """JSON-ready summary (the benchmark series left out)."""
        return {"source": self.source, "adjustment": self.adjustment.to_dict(), "n_stocks": self.n_stocks,
                "n_months": self.n_months, "first_month": self.first_month, "last_month": self.last_month,
                "n_days": self.n_days, "last_day": self.last_day, "factors": list(self.factors),
                "styles": dict(self.styles),
                "skipped": dict(self.skipped), "industry": self.industry,
                "benchmarks": list(self.benchmarks.columns), "benchmark_code": self.benchmark_code,
                "notes": list(self.notes), "timings": {k: round(v, 3) for k, v in self.timings.items()}}

    def summary(self) -> str:
        """A few human-readable lines."""
        a = self.adjustment
        lines = [f"daily bars {self.source}: {self.n_stocks} stocks x {self.n_months} months "
                 f"({self.first_month}..{self.last_month}), {len(self.factors)} factors",
                 f"adjustment {a.method}: {a.n_ex_rights_days} ex-rights days"
                 + (f" ({a.n_neutralised} neutralised beyond the limit, {a.n_no_trade_adjustments} on "
                    f"no-trade bars; {a.n_unlimited_rises_kept} rises on long-suspension resumptions kept)"
                    if a.method == "price_limit" else " (handled by the data's own adjustment)"),
                 f"industry: {self.industry}"]
        if self.skipped:
            lines.append("skipped: " + "; ".join(f"{k} ({v})" for k, v in self.skipped.items()))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def panel_from_daily(source, industry_map=None, benchmark_codes: Sequence[str] = INDEX_CODES,
                     fundamentals=None, fundamental_styles: Mapping[str, Sequence[str]] | None = None,
                     market: str | None = None, start=None, end=None,
                     long_suspension: int = LONG_SUSPENSION_DAYS) -> tuple[Panel, IngestReport]:
    """Build the monthly factor panel from daily bars (SPEC §4.4).

    Parameters
    ----------
    source : str, Path, DataFrame or DailyBars
        A daily-bars file or folder (:func:`load_daily_bars`), a long frame, or loaded bars.
    industry_map : path, DataFrame or mapping, optional
        Code → industry (``code,industry`` CSV). Without it the panel has no industry.
    benchmark_codes : sequence of str
        Index codes: excluded from the universe; their monthly returns are the benchmarks
        and the first one present is the market for beta and neutral returns.
    fundamentals : path or DataFrame, optional
        ``code, announce_date, <field>...`` (see :func:`feeds.factor_library.load_fundamentals`),
        joined point-in-time by announcement date.
    fundamental_styles : mapping, optional
        ``{style: [field, ...]}``; default every field in style ``fundamental``.
    market : str, optional
        Index code to use as the market (default: the first of ``benchmark_codes`` present).
    start, end : date-like, optional
        Keep only the months from ``start`` to ``end`` (factors still use the history
        before ``start``).
    long_suspension : int
        See :func:`adjust`.

    Returns
    -------
    (Panel, IngestReport)

    Raises
    ------
    DailyBarsError
        Bad or missing input (the message names the file, column, row, date or code).
    """
    timings = {}
    clock = time.perf_counter()
    if isinstance(source, DailyBars):
        bars = source
    elif isinstance(source, pd.DataFrame):
        bars = bars_from_frame(source, industry_map=industry_map, index_codes=benchmark_codes)
    else:
        path = Path(source)
        if not path.exists():
            raise DailyBarsError(f"daily bars file not found: {path} (the shared real-data file lives in "
                                 f"../shared/data/ beside the project and is not part of a fresh clone)")
        bars = load_daily_bars(path, industry_map=industry_map, index_codes=benchmark_codes)
    timings["load"] = time.perf_counter() - clock

    clock = time.perf_counter()
    adjusted, adjustment = adjust(bars, market=market, long_suspension=long_suspension)
    timings["adjust"] = time.perf_counter() - clock
    clock = time.perf_counter()
    monthly = to_monthly(adjusted)
    timings["monthly"] = time.perf_counter() - clock
    clock = time.perf_counter()
    library = compute_factors(adjusted, monthly, fundamentals=fundamentals,
                              fundamental_styles=fundamental_styles)
    timings["factors"] = time.perf_counter() - clock

    span = month_span(monthly.dates, start, end)
    lo, hi = span.start, span.stop
    listed = monthly.listed[span]
    if hi <= lo or not listed.any():
        raise DailyBarsError(f"no listed stock-months between {start} and {end} in {bars.source} "
                             f"(data covers {monthly.dates[0]:%Y-%m}..{monthly.dates[-1]:%Y-%m})")
    values = library.values[span]
    observed = np.isfinite(values[listed]).any(axis=0)
    skipped = dict(library.skipped)
    for name, ok in zip(library.names, observed):
        if not ok:
            skipped[name] = f"no value in {monthly.dates[lo]:%Y-%m}..{monthly.dates[hi - 1]:%Y-%m}" \
                            f" (history shorter than its look-back)"
    keep = [i for i, ok in enumerate(observed) if ok]
    if not keep:
        raise DailyBarsError(f"no factor has a value in {bars.source} between {monthly.dates[lo]:%Y-%m} and "
                             f"{monthly.dates[hi - 1]:%Y-%m}; the history is too short")
    names = [library.names[i] for i in keep]
    styles = {s: [f for f in members if f in names] for s, members in library.styles.items()}
    styles = {s: m for s, m in styles.items() if m}
    panel = Panel(dates=monthly.dates[span], codes=monthly.codes, factors=values[:, :, keep],
                  factor_names=names, ret=monthly.ret[span], close=monthly.close[span], listed=listed,
                  industry=monthly.industry[span], industries=monthly.industries, styles=styles,
                  suspended=monthly.suspended[span], limit_up=monthly.limit_up[span],
                  limit_down=monthly.limit_down[span], is_st=monthly.is_st[span],
                  mcap=None if monthly.mcap is None else monthly.mcap[span])
    alive = panel.listed.any(axis=0)
    if not alive.all():  # stocks listed only outside [start, end]
        panel = panel.take(cols=np.flatnonzero(alive))

    if bars.industry_source == "absent":
        industry = "absent"
    elif bars.industry_source == "column":
        industry = f"column: {len(bars.industries)} industries"
    else:
        unmapped = [c for c in bars.unmapped if c in set(panel.codes)]
        industry = (f"{bars.industry_source}: {len(bars.industries)} industries, "
                    f"{len(unmapped)} codes unmapped")
    notes = list(library.notes)
    if industry == "absent":
        notes.append("no industry map: industry is unknown (-1) for every stock, so industry "
                     "neutralization falls back to whole-market demeaning")
    if bars.amount_derived:
        notes.append("no 'amount' column: traded amount estimated as close x volume")
    if bars.is_st is None:
        notes.append("no 'is_st' column: ST stocks get the board's ordinary limit (ex-rights days of ST "
                     "stocks between 5% and the ordinary limit go undetected; month-end ST limit flags missed)")
    if adjustment.method == "price_limit":
        notes.append("returns adjusted by the price-limit rule: corporate actions smaller than the daily "
                     "limit (most cash dividends, small bonus issues) are not detected")
    report = IngestReport(source=bars.source, adjustment=adjustment, n_stocks=panel.N, n_months=panel.T,
                          first_month=f"{panel.dates[0]:%Y-%m}", last_month=f"{panel.dates[-1]:%Y-%m}",
                          n_days=bars.D, last_day=f"{bars.dates[-1]:%Y-%m-%d}", factors=names, styles=styles,
                          skipped=skipped, industry=industry,
                          benchmarks=monthly.benchmarks.iloc[span],
                          benchmark_code=str(bars.index_close.columns[0]) if len(bars.index_close.columns)
                          else None, notes=notes, timings=timings)
    return panel, report
