"""Raw daily bars → total returns (step 2 of :mod:`feeds.daily`).

With ``pre_close`` or ``adj_factor`` columns :func:`adjust` uses them; without, it detects
ex-rights days by the A-share price-limit rule and neutralises them
(:class:`AdjustmentReport` counts them). The rule, in full, is in ``docs/real_data.md``;
in short, a day's return ``close / previous close - 1`` is replaced by the market's return
over the same span when it lies beyond the board's daily limit
(:func:`feeds.daily_limits.price_limit`) plus the half-cent rounding of the limit price,
unless the day has no limit (a listing's first day, the first five days of a
registration-system listing) or it is a rise on the resumption after a suspension of
``long_suspension`` exchange days or more (reform resumptions and restored listings trade
without a limit). A price change on a no-trade bar (volume 0: the exchange's ex-rights
reference price during a suspension) is a corporate action too. The adjusted close is a
backward-adjusted total-return index anchored at the stock's first close, so it never
depends on a later bar.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .daily_bars import DailyBars, DailyBarsError
from .daily_limits import REGISTRATION_FREE_DAYS, ROUNDING_SLACK, price_limit, registration_listing
from .grid import ffill, first_row, last_row, shift

LONG_SUSPENSION_DAYS = 10
"""A resumption after at least this many exchange days without a trade may trade without a limit."""


@dataclass(eq=False)
class AdjustedBars:
    """Daily bars with total returns (output of :func:`adjust`).

    Attributes
    ----------
    bars : DailyBars
    ret : ndarray [D, N]
        Adjusted daily return of each traded bar (NaN on no-trade days and on a stock's
        first bar). A resumption's return spans the whole suspension.
    adj_close : ndarray [D, N]
        Backward-adjusted total-return index: the first close times the compounded
        adjusted returns; carried over no-trade days, NaN before the first bar.
    neutralised : ndarray [D, N] bool
        Days whose raw move was replaced (corporate actions found by the limit rule).
    limit : ndarray [D, N]
        The day's price limit (fraction), NaN on days without one: before 1996-12-16,
        a stock's first bar, the free days of a registration listing, and a rise kept
        on a long-suspension resumption.
    reference : ndarray [D, N]
        The previous close the limit applies to (``pre_close`` when given).
    market : Series [D]
        The market's daily return (the index ``market_code``, or the cross-sectional
        median of the stocks' raw returns when the data has no index).
    market_code : str
    market_since_trade : ndarray [D, N]
        The market's return from the stock's previous traded bar to this one (the
        span ``ret`` covers), NaN where ``ret`` is NaN: the regressor for beta.
    method : str
        ``'pre_close'``, ``'adj_factor'`` or ``'price_limit'``.
    """

    bars: DailyBars
    ret: np.ndarray
    adj_close: np.ndarray
    neutralised: np.ndarray
    limit: np.ndarray
    reference: np.ndarray
    market: pd.Series
    market_code: str
    market_since_trade: np.ndarray
    method: str

    def adjusted(self, name: str) -> np.ndarray:
        """``open``, ``high``, ``low`` or ``close`` on the total-return scale (NaN without a trade)."""
        scale = self.adj_close / self.bars.fields["close"]
        return np.where(self.bars.traded, self.bars.fields[name] * scale, np.nan)

    def adjusted_volume(self) -> np.ndarray:
        """Volume in the shares of the first bar (undoes bonus issues and splits), NaN without a trade."""
        scale = self.bars.fields["close"] / self.adj_close
        return np.where(self.bars.traded, self.bars.fields["volume"] * scale, np.nan)


@dataclass
class AdjustmentReport:
    """What :func:`adjust` did.

    Attributes
    ----------
    method : str
        ``'pre_close'`` / ``'adj_factor'`` (the data's own adjustment) or ``'price_limit'``.
    n_ex_rights_days : int
        Days whose raw price move was a corporate action: neutralised traded days plus
        price changes on no-trade bars (``price_limit``), or days where the data's
        ``pre_close`` / ``adj_factor`` differs from the previous close (otherwise).
    n_beyond_limit : int
        Traded days whose raw move lay beyond the limit (neutralised or kept).
    n_neutralised : int
        Traded days whose return was replaced by the market's.
    n_no_trade_adjustments : int
        Price changes on no-trade bars (ex-rights reference prices during a suspension).
    n_unlimited_rises_kept : int
        Rises beyond the ordinary limit on long-suspension resumptions, kept as genuine.
    long_suspension : int
    market_code : str
    events : DataFrame
        One row per detected day: ``date, code, raw_ret, ret, action`` with action
        ``neutralised``, ``no_trade_adjustment`` or ``kept_unlimited_rise``.
    """

    method: str
    n_ex_rights_days: int
    n_beyond_limit: int
    n_neutralised: int
    n_no_trade_adjustments: int
    n_unlimited_rises_kept: int
    long_suspension: int
    market_code: str
    events: pd.DataFrame

    def examples(self, n: int = 10) -> list[dict]:
        """The ``n`` largest raw moves among the detected days, as plain dicts."""
        if self.events.empty:
            return []
        top = self.events.reindex(self.events["raw_ret"].abs().sort_values(ascending=False).index[:n])
        return [{"date": f"{r.date:%Y-%m-%d}", "code": r.code, "raw_ret": round(float(r.raw_ret), 4),
                 "ret": round(float(r.ret), 4), "action": r.action} for r in top.itertuples()]

    def to_dict(self) -> dict:
        return {"method": self.method, "n_ex_rights_days": self.n_ex_rights_days,
                "n_beyond_limit": self.n_beyond_limit, "n_neutralised": self.n_neutralised,
                "n_no_trade_adjustments": self.n_no_trade_adjustments,
                "n_unlimited_rises_kept": self.n_unlimited_rises_kept,
                "long_suspension_days": self.long_suspension, "market": self.market_code,
                "examples": self.examples()}


def market_returns(bars: DailyBars, market: str | None = None, raw: np.ndarray | None = None
                   ) -> tuple[pd.Series, str]:
    """Daily market return on the exchange calendar.

    The index ``market`` (default: the first index code present); without any index, the
    cross-sectional median of the stocks' raw close-to-close returns on traded bars (the
    median shrugs off the ex-rights days themselves). Days without a value get 0.
    """
    if market is not None and market not in bars.index_close.columns:
        raise DailyBarsError(f"market index '{market}' is not in {bars.source} "
                             f"(index codes present: {list(bars.index_close.columns) or 'none'})")
    code = market or (bars.index_close.columns[0] if len(bars.index_close.columns) else None)
    if code is not None:
        level = ffill(bars.index_close[[code]].to_numpy())[:, 0]
        ret = level / shift(level) - 1.0
        return pd.Series(np.nan_to_num(ret), index=bars.dates, name=code), str(code)
    if raw is None:
        raw = _raw_returns(bars)
    median = pd.DataFrame(np.where(bars.traded, raw, np.nan), index=bars.dates).median(axis=1)
    return median.fillna(0.0).rename("median"), "median"


def _raw_returns(bars: DailyBars) -> np.ndarray:
    close = bars.fields["close"]
    return np.where(bars.has_bar, close / shift(ffill(close)) - 1.0, np.nan)


def adjust(bars: DailyBars, market: str | None = None, long_suspension: int = LONG_SUSPENSION_DAYS
           ) -> tuple[AdjustedBars, AdjustmentReport]:
    """Total returns from raw daily bars.

    Parameters
    ----------
    bars : DailyBars
    market : str, optional
        Index code used as the market (neutral return and beta); default the first
        index present, else the cross-sectional median return.
    long_suspension : int
        [10] a rise beyond the limit on the first trade after at least this many exchange
        days without one is kept (reform resumptions and restored listings have no limit).

    Returns
    -------
    (AdjustedBars, AdjustmentReport)

    Notes
    -----
    Method, in order of preference: ``pre_close`` (``close / pre_close - 1``; a missing
    ``pre_close`` falls back to the previous close), ``adj_factor`` (the ratio of
    ``close × adj_factor`` to the previous bar's), else the price-limit rule of the module
    docstring. A neutralised day's return is the market's return since the stock's
    previous trade. Only bars up to day d enter the return of day d.
    """
    D, N = bars.D, bars.N
    close, has_bar, traded = bars.fields["close"], bars.has_bar, bars.traded
    rows = np.arange(D)[:, None]
    prev_close = shift(ffill(close))
    raw = np.where(has_bar, close / prev_close - 1.0, np.nan)
    market_ret, market_code = market_returns(bars, market, raw)
    level = np.cumprod(1.0 + market_ret.to_numpy())
    prev_trade = shift(last_row(traded), -1)
    since = np.where(traded & (prev_trade >= 0), level[:, None] / level[np.maximum(prev_trade, 0)] - 1.0,
                     np.nan)

    # Days without a limit: a stock's first bar, the free days of a registration listing,
    # and a resumption after a long suspension (checked only for rises, see below).
    first = first_row(has_bar)
    listing_real = first > 0  # a first bar on the calendar's first day is not a listing
    listing_day = bars.dates[np.maximum(first, 0)]
    registration = registration_listing(bars.codes, listing_day) & listing_real
    trade_no = np.cumsum(traded, axis=0)
    free_listing = (rows == first[None, :]) | (registration[None, :] & (trade_no <= REGISTRATION_FREE_DAYS))
    resumption = traded & (prev_trade >= 0) & (rows - prev_trade - 1 >= long_suspension)
    limit = price_limit(bars.codes, bars.dates, bars.is_st)
    limit = np.where(free_listing, np.nan, limit)

    if bars.has("pre_close"):
        method = "pre_close"
        pre = bars.fields["pre_close"]
        reference = np.where(np.isfinite(pre), pre, prev_close)
        vendor = has_bar & np.isfinite(pre) & np.isfinite(prev_close) & (np.abs(pre / prev_close - 1) > 1e-6)
    elif bars.has("adj_factor"):
        method = "adj_factor"
        factor = ffill(bars.fields["adj_factor"])  # a missing factor carries the previous one
        factor = np.where(np.isfinite(factor), factor, 1.0)
        prev_factor = shift(factor)
        reference = prev_close * prev_factor / factor
        vendor = has_bar & np.isfinite(prev_factor) & (np.abs(factor / prev_factor - 1) > 1e-9)
    else:
        method, reference, vendor = "price_limit", prev_close, None

    events = []
    if vendor is not None:
        # a first bar's pre_close is the offer price: no secondary-market return before it
        ret = np.where(traded & (rows != first[None, :]), close / reference - 1.0, np.nan)
        neutralised = np.zeros((D, N), bool)
        kept = neutralised
        d, n = np.nonzero(vendor)
        events.append(pd.DataFrame({"date": bars.dates[d], "code": bars.codes[n].astype(str),
                                    "raw_ret": raw[d, n], "ret": ret[d, n], "action": method}))
        counts = dict(n_ex_rights_days=int(vendor.sum()), n_beyond_limit=0, n_neutralised=0,
                      n_no_trade_adjustments=0, n_unlimited_rises_kept=0)
    else:
        slack = 0.005 / prev_close + ROUNDING_SLACK
        with np.errstate(invalid="ignore"):
            up = traded & (raw > limit + slack)
            down = traded & (raw < -(limit + slack))
        # Corporate actions only lower the price; a rise past the limit after a long
        # suspension is a reform resumption or a restored listing re-pricing freely.
        kept = up & resumption
        neutralised = (up & ~resumption) | down
        no_trade_change = has_bar & ~traded & np.isfinite(raw) & (np.abs(raw) > 1e-9)
        ret = np.where(traded, raw, np.nan)
        ret = np.where(neutralised, np.nan_to_num(since), ret)
        for mask, action in ((neutralised, "neutralised"), (no_trade_change, "no_trade_adjustment"),
                             (kept, "kept_unlimited_rise")):
            d, n = np.nonzero(mask)
            events.append(pd.DataFrame({"date": bars.dates[d], "code": bars.codes[n].astype(str),
                                        "raw_ret": raw[d, n],
                                        "ret": 0.0 if action == "no_trade_adjustment" else ret[d, n],
                                        "action": action}))
        counts = dict(n_ex_rights_days=int(neutralised.sum() + no_trade_change.sum()),
                      n_beyond_limit=int((up | down).sum()), n_neutralised=int(neutralised.sum()),
                      n_no_trade_adjustments=int(no_trade_change.sum()), n_unlimited_rises_kept=int(kept.sum()))

    ret = np.where(traded, ret, np.nan)
    growth = np.where(np.isfinite(ret), 1.0 + ret, 1.0)
    first_close = close[np.maximum(first, 0), np.arange(N)]
    adj_close = np.where(rows >= np.where(first < 0, D, first)[None, :],
                         first_close[None, :] * np.cumprod(growth, axis=0), np.nan)
    limit = np.where(kept, np.nan, limit)  # a free re-pricing cannot close "at the limit"
    events = pd.concat(events, ignore_index=True).sort_values(["date", "code"], ignore_index=True)
    adjusted = AdjustedBars(bars=bars, ret=ret, adj_close=adj_close, neutralised=neutralised, limit=limit,
                            reference=reference, market=market_ret, market_code=market_code,
                            market_since_trade=np.where(np.isfinite(ret), since, np.nan), method=method)
    report = AdjustmentReport(method=method, long_suspension=long_suspension, market_code=market_code,
                              events=events, **counts)
    return adjusted, report
