"""Optimize the strategy with Backtrader's own tools: optstrategy over top_pct x book, a daily
benchmark, and SharpeRatio, Returns, AnnualReturn, DrawDown and TimeReturn.

A small synthetic market (120 stocks at the start, 2013-01 .. 2017-04), a small LSTM trained on
2014-01 .. 2016-03 (``signals.quick.train_quick``), decisions at the month-ends 2016-04 ..
2017-04. The daily benchmark is the market's equal-weight universe: its monthly return spread
evenly over the month's business days (a stand-in for the index a user would load).

    python examples/optimize_books.py                 # ~27 s of CPU time, most of it training
    python examples/optimize_books.py --model model.pt --stocks 0   # a trained model, default market

Measured (``/usr/bin/time``): 26.6 s of CPU time for the training and the four backtests, which
took 2 min 18 s of wall time on this project's shared 2-core machine at a load average of about
15. ``--stocks 0`` uses the default market (about 3,000 stocks); with thousands of feeds keep
``--maxcpus 1`` (Backtrader pickles the whole Cerebro to each worker process).
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see examples/plain_backtrader.py

from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backtrader as bt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import feeds  # noqa: E402
import strategies  # noqa: E402
from feeds.btfeed import tradable_close  # noqa: E402

START, END = "2016-04", "2017-04"


def daily_benchmark(panel, start, end) -> bt.feeds.PandasData:
    """The equal-weight universe as a daily index from ``start``'s month to ``end``.

    Its days are the business days plus every calendar month-end, so that it ticks on every
    bar of the run (Backtrader's AnnualReturn indexes the run by data0's bars).
    """
    close = tradable_close(panel)
    with np.errstate(invalid="ignore", divide="ignore"):
        monthly = np.nanmean(np.where(panel.listed[1:] & panel.listed[:-1], close[1:] / close[:-1] - 1, np.nan),
                             axis=1)
    returns = pd.Series(np.nan_to_num(monthly), index=panel.dates[1:])
    first = pd.Timestamp(start) - pd.offsets.MonthBegin(1) if pd.Timestamp(start).day != 1 else pd.Timestamp(start)
    last = pd.Timestamp(end) + pd.offsets.MonthEnd(0)
    days = pd.bdate_range(first, last).union(pd.date_range(first, last, freq="ME"))
    month = days + pd.offsets.MonthEnd(0)
    per_day = pd.Series(days, index=days).groupby(month).transform("size")
    growth = (1 + returns.reindex(month).fillna(0).to_numpy()) ** (1.0 / per_day.to_numpy())
    level = 1000.0 * np.cumprod(growth)
    frame = pd.DataFrame({"open": level, "high": level, "low": level, "close": level, "volume": 0.0}, index=days)
    return bt.feeds.PandasData(dataname=frame, name="benchmark")


def optimize(panel, signal, start=START, end=END, top_pcts=(0.2, 0.3), books=("high", "long_short"),
             cash=100_000_000.0, maxcpus=1) -> pd.DataFrame:
    """One backtest per ``top_pct`` x ``book`` through ``cerebro.optstrategy``; a row each.

    Columns: ``sharpe`` (monthly, annualised, SharpeRatio), ``total_return`` (Returns,
    compounded), ``max_drawdown`` (DrawDown, %), ``excess`` (book minus benchmark over the
    run, from two TimeReturns), and one ``return_<year>`` column per year (AnnualReturn).
    """
    cerebro = bt.Cerebro(stdstats=False, maxcpus=maxcpus, optreturn=True)
    cerebro.broker.setcash(cash)
    cerebro.broker.addcommissioninfo(strategies.AShareCommission())
    cerebro.optstrategy(strategies.LSTMTercileStrategy, signal=signal, selection="top_pct",
                        top_pct=tuple(top_pcts), book=tuple(books))
    benchmark = daily_benchmark(panel, start, end)
    cerebro.adddata(benchmark)  # data0: ticks on every bar
    feeds.add_panel_feeds(cerebro, panel, start=start, end=end)  # window from the optimized signal
    cerebro.addanalyzer(bt.analyzers.SharpeRatio, timeframe=bt.TimeFrame.Months, riskfreerate=0.0,
                        annualize=True, _name="sharpe")
    cerebro.addanalyzer(bt.analyzers.Returns, _name="returns")
    cerebro.addanalyzer(bt.analyzers.AnnualReturn, _name="annual")
    cerebro.addanalyzer(bt.analyzers.DrawDown, _name="drawdown")
    cerebro.addanalyzer(bt.analyzers.TimeReturn, timeframe=bt.TimeFrame.Months, _name="monthly")
    cerebro.addanalyzer(bt.analyzers.TimeReturn, timeframe=bt.TimeFrame.Months, data=benchmark,
                        _name="benchmark")
    rows = []
    for (result,) in cerebro.run():
        a = result.analyzers
        book = pd.Series(a.monthly.get_analysis())
        bench = pd.Series(a.benchmark.get_analysis())
        row = {"top_pct": result.params.top_pct, "book": result.params.book,
               "sharpe": a.sharpe.get_analysis()["sharperatio"],
               "total_return": float(np.expm1(a.returns.get_analysis()["rtot"])),
               "max_drawdown": a.drawdown.get_analysis()["max"]["drawdown"],
               "excess": float((1 + book).prod() - (1 + bench).prod())}
        row.update({f"return_{year}": value for year, value in a.annual.get_analysis().items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index(["top_pct", "book"]).sort_index()


def main(argv=None) -> int:
    from signals import SignalModel
    from signals.quick import train_quick

    parser = argparse.ArgumentParser(description="optstrategy over top_pct x book with Backtrader's analyzers")
    parser.add_argument("--model", help="a SignalModel checkpoint (default: train a small one)")
    parser.add_argument("--stocks", type=int, default=120, help="stocks at the market's start (0: default market)")
    parser.add_argument("--steps", type=int, default=60, help="training steps of the small model")
    parser.add_argument("--maxcpus", type=int, default=1, help="Backtrader's optimization processes")
    args = parser.parse_args(argv)

    size = dict(n_stocks=args.stocks, start="2013-01", end="2017-04") if args.stocks else {}
    panel = feeds.make_market(seed=0, **size).panel
    signal = SignalModel.load(args.model) if args.model else train_quick(panel, "2014-01", "2016-03",
                                                                         steps=args.steps)
    table = optimize(panel, signal, maxcpus=args.maxcpus)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.round(4).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
