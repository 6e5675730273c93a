"""Adjusted daily bars → calendar months (step 3 of :mod:`feeds.daily`).

:func:`to_monthly` takes the month-end close (the last exchange day of the month; a stock
without a trade that day is ``suspended`` and carries its last close), the monthly return,
trading days, the listing mask and the month-end limit-up / limit-down flags
(:class:`MonthlyBars`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .daily_adjust import AdjustedBars
from .daily_limits import at_limits
from .grid import ffill, first_row, last_row, shift
from .panel import month_end


@dataclass(eq=False)
class MonthlyBars:
    """Month-end aggregates of adjusted daily bars (output of :func:`to_monthly`).

    Attributes
    ----------
    dates : DatetimeIndex [T]
        Calendar month-ends (the panel's dates).
    last_day : DatetimeIndex [T]
        The month's last exchange day (the month-end close is taken there).
    rows : ndarray [T] int
        Positions of ``last_day`` in the daily calendar.
    codes : Index [N]
    close : ndarray [T, N]
        Adjusted close at the month-end (carried when suspended), NaN when not listed.
    ret : ndarray [T, N]
        ``close[t] / close[t-1] - 1``; NaN in the listing month and when not listed. A
        month suspended throughout returns 0; the move is realised on resumption.
    trading_days : ndarray [T, N] int32
        Traded bars in the month.
    listed : ndarray [T, N] bool
        From the month of the first bar to the month of the last bar.
    suspended : ndarray [T, N] bool
        Listed without a trade on the month's last exchange day.
    limit_up, limit_down : ndarray [T, N] bool
        The month-end close is at the daily up / down limit price.
    is_st : ndarray [T, N] bool
        ST status of the last bar on or before the month-end (False without the column).
    mcap : ndarray [T, N] or None
        Month-end market cap (last bar's), when the data has ``mcap``.
    industry : ndarray [T, N] int32
    industries : list of str
    benchmarks : DataFrame [T, K]
        Monthly returns of the index codes (the benchmarks), indexed by ``dates``.
    market : Series [T]
        Monthly return of the market series used for beta.
    """

    dates: pd.DatetimeIndex
    last_day: pd.DatetimeIndex
    rows: np.ndarray
    codes: pd.Index
    close: np.ndarray
    ret: np.ndarray
    trading_days: np.ndarray
    listed: np.ndarray
    suspended: np.ndarray
    limit_up: np.ndarray
    limit_down: np.ndarray
    is_st: np.ndarray
    mcap: np.ndarray | None
    industry: np.ndarray
    industries: list[str]
    benchmarks: pd.DataFrame
    market: pd.Series

    @property
    def T(self) -> int:
        return len(self.dates)


def month_end_rows(dates: pd.DatetimeIndex) -> np.ndarray:
    """Positions of the last date of each calendar month in a sorted daily calendar."""
    period = pd.DatetimeIndex(dates).year * 12 + pd.DatetimeIndex(dates).month
    period = np.asarray(period)
    return np.flatnonzero(np.r_[period[1:] != period[:-1], True])


def to_monthly(adjusted: AdjustedBars) -> MonthlyBars:
    """Aggregate adjusted daily bars to month-ends (see :class:`MonthlyBars`)."""
    bars = adjusted.bars
    D, N = bars.D, bars.N
    rows = month_end_rows(bars.dates)
    T = len(rows)
    month_of_row = np.searchsorted(rows, np.arange(D))  # month index of every day
    first, last = first_row(bars.has_bar), last_row(bars.has_bar)[-1]
    t = np.arange(T)[:, None]
    listed = (first >= 0)[None, :] & (t >= month_of_row[np.maximum(first, 0)][None, :]) \
        & (t <= month_of_row[np.maximum(last, 0)][None, :])
    close = np.where(listed, ffill(adjusted.adj_close)[rows], np.nan)
    prev = shift(close)
    ret = np.where(listed & np.isfinite(prev), close / prev - 1.0, np.nan)
    starts = np.r_[0, rows[:-1] + 1]
    trading_days = np.add.reduceat(bars.traded.astype(np.int32), starts, axis=0)
    traded_end = bars.traded[rows]
    suspended = listed & ~traded_end

    # Month-end limit flags: the close against the exchange's rounded limit prices.
    c, ref, lim = bars.fields["close"][rows], adjusted.reference[rows], adjusted.limit[rows]
    checkable = traded_end & np.isfinite(lim) & np.isfinite(ref) & ~adjusted.neutralised[rows]
    up, down = at_limits(c, ref, lim)
    limit_up, limit_down = checkable & up, checkable & down

    is_st = np.zeros((T, N), bool)
    if bars.is_st is not None:
        carried = ffill(np.where(bars.has_bar, bars.is_st.astype(float), np.nan))[rows]
        is_st = listed & (np.nan_to_num(carried) > 0.5)
    mcap = np.where(listed, ffill(bars.fields["mcap"])[rows], np.nan) if bars.has("mcap") else None
    industry = np.where(listed, bars.industry[rows], -1).astype(np.int32)

    dates = month_end(bars.dates[rows])
    bench = pd.DataFrame(ffill(bars.index_close.to_numpy())[rows], index=dates,
                         columns=bars.index_close.columns)
    bench = bench / bench.shift(1) - 1.0
    level = np.cumprod(1.0 + adjusted.market.to_numpy())[rows]
    market = pd.Series(level / shift(level) - 1.0, index=dates, name=adjusted.market_code)
    return MonthlyBars(dates=dates, last_day=bars.dates[rows], rows=rows, codes=bars.codes, close=close,
                       ret=ret, trading_days=trading_days, listed=listed, suspended=suspended,
                       limit_up=limit_up, limit_down=limit_down, is_st=is_st, mcap=mcap, industry=industry,
                       industries=list(bars.industries), benchmarks=bench, market=market)
