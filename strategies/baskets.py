"""Baskets, books and the rebalancing rule: the decisions shared by the Backtrader strategy,
its analyzers and the vectorized reference (:mod:`strategies.reference`).

Everything here is plain numpy over one month-end cross-section of ``N`` stocks, so the
strategy (in currency) and the reference (in fractions of NAV) call the same code.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from feeds.errors import UserError
from signals.labels import CLASSES

BASKETS = ("high", "neutral", "low")
#: basket -> index of the class it collects (CLASSES = down, neutral, up)
BASKET_CLASS = {"high": CLASSES.index("up"), "neutral": CLASSES.index("neutral"),
                "low": CLASSES.index("down")}
SELECTIONS = ("class", "top_pct")
BOOKS = ("high", "neutral", "low", "long_short")
#: the baskets each book holds
BOOK_BASKETS = {"high": ("high",), "neutral": ("neutral",), "low": ("low",), "long_short": ("high", "low")}
WEIGHTINGS = ("equal",)


class StrategyParamError(UserError):
    """A strategy, book or selection setting is not usable."""


class StrategyWarning(UserWarning):
    """A run that goes ahead but does less than asked: decisions starting later than
    ``start``, no decision at all, a basket the book holds left empty (cash) at some
    decisions, board lots leaving much of the book in cash, orders the broker rejected, or
    other strategies trading the same broker."""


#: the largest ``gross`` of each book: the broker lends no cash, so a long-only book can
#: invest its value once; a long/short book's short sales pay for its long side, so each
#: side can reach the book's value.
MAX_GROSS = {"high": 1.0, "neutral": 1.0, "low": 1.0, "long_short": 2.0}


def check_choices(selection: str, book: str, top_pct: float, gross: float,
                  weighting: str = "equal") -> None:
    """Raise :class:`StrategyParamError` for a setting outside the supported ones."""
    if selection not in SELECTIONS:
        raise StrategyParamError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    if book not in BOOKS:
        raise StrategyParamError(f"book must be one of {', '.join(BOOKS)}, got {book!r}")
    if weighting not in WEIGHTINGS:
        raise StrategyParamError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    if not 0.0 < float(top_pct) <= 1.0:
        raise StrategyParamError(f"top_pct must lie in (0, 1], got {top_pct}")
    if not float(gross) > 0.0:
        raise StrategyParamError(f"gross must be positive, got {gross}")
    if float(gross) > MAX_GROSS[book]:
        raise StrategyParamError(
            f"gross must be at most {MAX_GROSS[book]:g} for book '{book}' (gross exposure as a share "
            f"of the broker value; the broker lends no cash), got {gross}")


def form_baskets(probs: np.ndarray, eligible: np.ndarray, selection: str = "class",
                 top_pct: float = 0.30) -> dict[str, np.ndarray]:
    """The high / neutral / low baskets of one month as boolean masks over the N stocks.

    Parameters
    ----------
    probs : ndarray [N, 3]
        Class probabilities (CLASSES order); rows with a NaN never enter a basket.
    eligible : ndarray [N] bool
        Stocks that may enter a basket (tradable at the month-end).
    selection : {'class', 'top_pct'}
        'class': each stock goes to the basket of its most probable class (ties go to the
        lower class index). 'top_pct': for each class, the ``round(top_pct * n)`` stocks
        with the largest probability of that class, out of the ``n`` eligible ones (ties
        keep the feed / column order); a stock can then sit in two baskets.
    top_pct : float
        Share of the eligible stocks per basket for 'top_pct'.
    """
    probs = np.asarray(probs, dtype=np.float64)
    ok = np.asarray(eligible, bool) & np.isfinite(probs).all(axis=1)
    out = {name: np.zeros(len(ok), bool) for name in BASKETS}
    if not ok.any():
        return out
    idx = np.flatnonzero(ok)
    if selection == "class":
        pred = np.argmax(probs[idx], axis=1)
        for name, c in BASKET_CLASS.items():
            out[name][idx[pred == c]] = True
    elif selection == "top_pct":
        k = int(np.floor(top_pct * len(idx) + 0.5))
        for name, c in BASKET_CLASS.items():
            order = np.argsort(-probs[idx, c], kind="stable")
            out[name][idx[order[:k]]] = True
    else:
        raise StrategyParamError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    return out


def book_weights(baskets: dict[str, np.ndarray], book: str, gross: float = 1.0) -> np.ndarray:
    """Target weights (fractions of NAV, signed) of ``book``, equal weight within a basket.

    ``high`` / ``neutral`` / ``low``: ``gross / n`` on each of the basket's ``n`` stocks.
    ``long_short``: ``+gross / 2`` spread equally over the ``high`` stocks and ``-gross / 2``
    over the ``low`` stocks, leaving out the stocks in both (possible with ``top_pct``
    selection: long and short at once they would cancel and shrink both sides), so the
    long side is ``gross / 2``, the short side ``gross / 2`` and the gross exposure
    ``gross``. An empty basket (or side) gets nothing (that part of the book holds cash).
    """
    w = np.zeros(len(next(iter(baskets.values()))))
    for side, members in book_sides(baskets, book).items():
        if members.any():
            share = gross if book != "long_short" else gross / 2.0 if side == "high" else -gross / 2.0
            w[members] += share / members.sum()
    return w


def book_sides(baskets: dict[str, np.ndarray], book: str) -> dict[str, np.ndarray]:
    """The stocks each side of ``book`` holds: ``{basket: members}``.

    A one-basket book holds its basket (``low`` held long). ``long_short`` holds ``high`` long and
    ``low`` short, each without the stocks in both (see :func:`book_weights`).
    """
    if book in ("high", "neutral", "low"):
        return {book: baskets[book]}
    if book == "long_short":
        both = baskets["high"] & baskets["low"]
        return {"high": baskets["high"] & ~both, "low": baskets["low"] & ~both}
    raise StrategyParamError(f"book must be one of {', '.join(BOOKS)}, got {book!r}")


def plan_rebalance(current: np.ndarray, target: np.ndarray, tradable: np.ndarray,
                   can_buy: np.ndarray, can_sell: np.ndarray, cash: float,
                   fee: Callable[[np.ndarray], np.ndarray] | None = None,
                   slack: float = 0.0) -> np.ndarray:
    """New position values after a rebalance under the A-share trading rules.

    All amounts share one unit (currency, or fractions of NAV); positions are signed
    (short < 0).

    1. A stock that cannot trade (``~tradable``: no bar, suspended or no price) keeps its
       position; every other stock moves to ``target`` (0 outside the book).
    2. A buy (new > current, including covering a short) is dropped where ``~can_buy``
       (limit-up); a sell (including a short sale) where ``~can_sell`` (limit-down).
    3. Sells come first and the buys must be paid from the cash they free: when the buys
       and their fees exceed ``cash`` + sell proceeds - sell fees - ``slack``, every buy
       is scaled down by one factor (a position held but not sellable, for instance, leaves
       less cash for the rest of the book).

    Parameters
    ----------
    current, target : ndarray [N]
    tradable, can_buy, can_sell : ndarray [N] bool
    cash : float
        Cash before trading.
    fee : callable, optional
        ``fee(trades) -> fees`` for signed trade values (buy > 0); must not decrease when a
        trade shrinks toward zero. Default: no costs.
    slack : float
        Cash kept back from the buys (absorbs rounding in the broker's own arithmetic).
    """
    current = np.asarray(current, dtype=np.float64)
    new = np.where(tradable, np.asarray(target, dtype=np.float64), current)
    blocked = ((new > current) & ~np.asarray(can_buy, bool)) | ((new < current) & ~np.asarray(can_sell, bool))
    new = np.where(blocked, current, new)
    buys = np.clip(new - current, 0.0, None)
    sells = np.clip(current - new, 0.0, None)
    fee = fee or (lambda trades: np.zeros_like(trades))
    budget = cash + sells.sum() - fee(-sells).sum() - slack
    buy_fees = fee(buys).sum()
    need = buys.sum() + buy_fees
    if need > budget and buys.any():
        # Fees at the unscaled sizes bound the fees at the scaled ones, so this fits.
        scale = max(0.0, (budget - buy_fees) / buys.sum())
        new = np.where(buys > 0, current + buys * scale, new)
    return new
