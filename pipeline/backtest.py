"""The backtest stage: one Backtrader run per selection × book, and the online/offline check."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from signals.predictions import PROBABILITY_COLUMNS

from .config import RunConfig
from .data import RunData


def run_backtests(config: RunConfig, data: RunData, signal, dates, log) -> dict:
    """One Backtrader run per selection × book over the decision months ``dates``.

    Returns ``{selection: {"baskets": frame, "books": {book: returns}, "turnover": {book: frame},
    "positions": {book: frame}, "transactions": {book: frame}, "predictions": in-backtest
    predictions}}``.
    """
    from strategies import AShareCommission
    from strategies.backtest import run_book

    from .memo import MemoSignal

    bt = config.backtest
    memo = MemoSignal(signal)  # every book of the same months asks the same questions
    out = {}
    for selection in bt.selections:
        block = {"books": {}, "turnover": {}}
        for book in bt.books:
            t0 = time.perf_counter()
            costs = AShareCommission(commission=bt.costs.commission, min_commission=bt.costs.min_commission,
                                     stamp_duty=bt.costs.stamp_duty, lot=bt.lot)
            result = run_book(data.panel, memo, start=dates[0], end=dates[-1] + pd.offsets.MonthEnd(1),
                              cash=bt.cash, commission=costs, selection=selection, book=book,
                              top_pct=bt.top_pct, gross=bt.gross, lot=bt.lot, execution=bt.execution)
            block["books"][book] = result.returns
            block["turnover"][book] = result.turnover
            positions, transactions = result.strategy.analyzers.holdings.get_analysis()
            block.setdefault("positions", {})[book], block.setdefault("transactions", {})[book] = positions, transactions
            block.setdefault("baskets", result.baskets)
            block.setdefault("predictions", result.predictions)
            log(f"backtest: {selection}/{book} {len(result.returns)} months, "
                f"cum {np.prod(1 + result.returns.fillna(0)) - 1:+.2%} ({time.perf_counter() - t0:.1f} s)")
        out[selection] = block
    return out


def online_offline_gap(online: pd.DataFrame, offline: pd.DataFrame) -> float:
    """Largest |probability difference| between in-backtest and offline predictions on the
    offline decision months (the backtest also decides at its last bar, which realises nothing)."""
    cols = list(PROBABILITY_COLUMNS)
    online = online[online.index.get_level_values("date").isin(offline.index.get_level_values("date"))]
    # no join(suffixes=...): pandas < 3.1 lacks it (requirements allow pandas 2.2)
    joined = online[cols].add_suffix("_online").join(offline[cols], how="outer")
    diff = joined[[f"{c}_online" for c in cols]].to_numpy() - joined[cols].to_numpy()
    if np.isnan(diff).any():
        return float("inf")  # a stock predicted on one side only
    return float(np.abs(diff).max()) if diff.size else 0.0
