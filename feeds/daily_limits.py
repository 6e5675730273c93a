"""A-share boards and daily price limits (the rule is in ``docs/real_data.md``).

``±10%`` main boards and ChiNext before 2020-08-24, ``±5%`` for ST stocks on those,
``±20%`` STAR and ChiNext from 2020-08-24, ``±30%`` Beijing, no limit before 1996-12-16;
limit prices are rounded half up to the cent. :func:`feeds.daily_adjust.adjust` uses them
to find ex-rights days, :func:`feeds.daily_monthly.to_monthly` for the month-end
limit-up / limit-down flags.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

LIMIT_START = pd.Timestamp("1996-12-16")  # daily price limits exist from this day on
CHINEXT_REFORM = pd.Timestamp("2020-08-24")  # ChiNext: ±20% and registration listings
STAR_START = pd.Timestamp("2019-07-22")
MAIN_REGISTRATION = pd.Timestamp("2023-04-10")  # main boards: registration listings
REGISTRATION_FREE_DAYS = 5  # no limit on the first five trading days of such a listing
ROUNDING_SLACK = 1e-6  # float slack on top of the half-cent rounding of limit prices


def _exchange_and_digits(code) -> tuple[str, str]:
    """``('sh', '600000')`` for ``sh.600000``, ``600000.SH``, ``SH600000`` or ``sh600000``; the
    exchange is ``''`` for a bare ``600000``, the digits ``''`` without six of them."""
    text = str(code).strip().lower()
    digits = re.search(r"\d{6}", text)
    exchange = re.search(r"sh|sz|bj", re.sub(r"\d", "", text))
    return (exchange.group(0) if exchange else ""), (digits.group(0) if digits else "")


def board_of(codes: Sequence[str]) -> np.ndarray:
    """Board of each code: ``'main'``, ``'chinext'`` (300/301), ``'star'`` (688/689) or ``'bse'``.

    Accepts ``sh.600000``, ``600000.SH``, ``SH600000`` and bare ``600000`` spellings; the
    Beijing exchange is recognised by a ``bj`` prefix/suffix or a 4/8/92 leading digit
    without an exchange prefix.
    """
    out = []
    for code in codes:
        exchange, num = _exchange_and_digits(code)
        if num.startswith(("688", "689")):
            out.append("star")
        elif num.startswith(("300", "301")) and exchange != "sh":
            out.append("chinext")
        elif exchange == "bj" or (num.startswith(("4", "8", "92")) and not exchange):
            out.append("bse")
        else:
            out.append("main")
    return np.array(out, dtype=object)


def exchange_key(code) -> str:
    """``sh000300`` for ``sh.000300``, ``000300.SH``, ``SH000300`` or ``sh000300``: one spelling
    per listing (a bare ``000300`` stays ``000300``: without its exchange, 000001 is both the
    SSE Composite and Ping An Bank)."""
    exchange, digits = _exchange_and_digits(code)
    return exchange + digits if digits else str(code).strip().lower()


def price_limit(codes: Sequence[str], dates: pd.DatetimeIndex, is_st: np.ndarray | None = None
                ) -> np.ndarray:
    """Daily price limit (fraction of the previous close) per day and code, NaN without a limit.

    ``±10%`` main boards and ChiNext before 2020-08-24; ``±5%`` for ST stocks on those;
    ``±20%`` STAR (from its opening on 2019-07-22) and ChiNext from 2020-08-24, ST
    included; ``±30%`` Beijing; no limit before 1996-12-16. Listing-day exemptions are
    applied separately (:func:`feeds.daily_adjust.adjust`).
    """
    dates = pd.DatetimeIndex(dates)
    board = board_of(codes)
    D, N = len(dates), len(board)
    after_reform = (dates >= CHINEXT_REFORM)[:, None]
    limit = np.full((D, N), 0.10)
    limit = np.where((board == "star")[None, :], 0.20, limit)
    limit = np.where((board == "chinext")[None, :] & after_reform, 0.20, limit)
    limit = np.where((board == "bse")[None, :], 0.30, limit)
    if is_st is not None:
        five = (board == "main")[None, :] | ((board == "chinext")[None, :] & ~after_reform)
        limit = np.where(is_st & five, 0.05, limit)
    limit[dates < LIMIT_START] = np.nan
    return limit


def registration_listing(codes: Sequence[str], listing_day: pd.DatetimeIndex) -> np.ndarray:
    """[N] whether a listing on ``listing_day`` is under the registration system (5 free days)."""
    board = board_of(codes)
    day = pd.DatetimeIndex(listing_day)
    return (((board == "star") & (day >= STAR_START)) | ((board == "chinext") & (day >= CHINEXT_REFORM))
            | ((board == "main") & (day >= MAIN_REGISTRATION)))


def round_cent(x: np.ndarray) -> np.ndarray:
    """Round half up to 0.01 CNY, as the exchanges round limit prices."""
    return np.floor(x * 100.0 + 0.5 + 1e-7) / 100.0


def at_limits(close: np.ndarray, reference: np.ndarray, limit: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Whether ``close`` is at the rounded up / down limit price of ``reference`` (element-wise)."""
    with np.errstate(invalid="ignore"):
        up = close >= round_cent(reference * (1 + limit)) - ROUNDING_SLACK
        down = close <= round_cent(reference * (1 - limit)) + ROUNDING_SLACK
    return up, down
