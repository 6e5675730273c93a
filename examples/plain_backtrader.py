"""The plugin in a plain Backtrader script: your Cerebro, our feeds and strategy, standard analyzers.

Runs the long/short top-30% book over the seed's out-of-sample year (decisions at the
month-ends 2016-04 .. 2017-03, returns realised 2016-05 .. 2017-04) on the embedded synthetic
A-share market, next to Backtrader's own SharpeRatio, DrawDown, TimeReturn and PyFolio
analyzers and the plugin's BasketReturns and PredictionLog.

    python examples/plain_backtrader.py                   # small market and LSTM: ~30 s of CPU
    python examples/plain_backtrader.py --model model.pt --stocks 0   # a trained model, default market

By default a small market (200 stocks at the start, 2013-01 .. 2017-04) and a small LSTM
(``signals.quick.train_quick``, 60 steps): measured 28 s of CPU time (``time``: user), which
took 3 min 5 s of wall time on this project's shared 2-core machine at a load average of 16
(most of it importing torch and training). ``--stocks 0`` is the default market
(about 3,100 stock feeds): generating it takes seconds, the backtest about half a minute plus
the model's predictions (``benchmarks/feed_strategy.py --oos``).
"""
from __future__ import annotations

import argparse
import os
import sys

# On a busy small machine OpenBLAS's worker threads can stall numpy's BLAS calls for seconds
# (seen with torch's threads running beside them); one BLAS thread avoids it, as
# run_backtest.py does. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import backtrader as bt  # noqa: E402
import pandas as pd  # noqa: E402

import feeds  # noqa: E402
import signals  # noqa: E402
import strategies  # noqa: E402
from signals.quick import train_quick  # noqa: E402

START, END = "2016-04", "2017-04"  # first and last decision month-end (the last only closes the book)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="LSTMTercileStrategy in a plain Cerebro")
    parser.add_argument("--model", help="a SignalModel checkpoint (default: train a small one)")
    parser.add_argument("--steps", type=int, default=60, help="training steps of the small model")
    parser.add_argument("--stocks", type=int, default=200, help="stocks at the market's start (0: default market)")
    args = parser.parse_args(argv)

    size = dict(n_stocks=args.stocks, start="2013-01", end="2017-04") if args.stocks else {}
    panel = feeds.make_market(seed=0, **size).panel
    if args.model:
        signal = signals.SignalModel.load(args.model)
    else:
        signal = train_quick(panel, "2014-01", "2016-03", steps=args.steps)  # labels end before START
        print(f"trained {signal}")

    cerebro = bt.Cerebro(stdstats=False)  # thousands of feeds: no per-feed observers
    cerebro.broker.setcash(100_000_000.0)
    cerebro.broker.addcommissioninfo(strategies.AShareCommission())  # 0.03% (min 5), 0.1% duty
    cerebro.addstrategy(strategies.LSTMTercileStrategy, signal=signal,
                        selection="top_pct", top_pct=0.30, book="long_short")
    stocks = feeds.add_panel_feeds(cerebro, panel, start=START, end=END)  # window-1 history months

    cerebro.addanalyzer(bt.analyzers.TimeReturn, timeframe=bt.TimeFrame.Months, _name="monthly")
    cerebro.addanalyzer(bt.analyzers.SharpeRatio, timeframe=bt.TimeFrame.Months, riskfreerate=0.0,
                        annualize=True, _name="sharpe")
    cerebro.addanalyzer(bt.analyzers.DrawDown, _name="drawdown")
    cerebro.addanalyzer(bt.analyzers.PyFolio, _name="pyfolio")
    cerebro.addanalyzer(strategies.BasketReturns, _name="baskets")
    cerebro.addanalyzer(strategies.PredictionLog, _name="predictions")

    print(f"running {len(stocks)} stock feeds, decisions {START} .. {END} ...")
    strategy = cerebro.run()[0]

    # The history months before START are handed to the strategy, not streamed: Backtrader's
    # analyzers start at START, whose month is flat (the book is formed at its close).
    first = pd.Timestamp(START) + pd.offsets.MonthEnd(0)
    monthly = pd.Series(strategy.analyzers.monthly.get_analysis())
    monthly.index = pd.DatetimeIndex(monthly.index)
    book = monthly[monthly.index > first]
    print("\nlong/short book, monthly returns (TimeReturn):")
    print(book.round(4).to_string())
    print(f"cumulative {(1 + book).prod() - 1:+.2%}, monthly win rate {(book > 0).mean():.0%}")
    print(f"SharpeRatio (annualised, decision months): "
          f"{strategy.analyzers.sharpe.get_analysis()['sharperatio']:.2f}")
    print(f"DrawDown max: {strategy.analyzers.drawdown.get_analysis().max.drawdown:.2f}%")
    returns, positions, transactions, _ = strategy.analyzers.pyfolio.get_pf_items()
    print(f"PyFolio: {len(returns)} daily-indexed returns, {len(transactions)} transactions")
    print("\npaper returns of the baskets (BasketReturns):")
    print(strategy.analyzers.baskets.get_analysis().round(4).to_string())
    log = strategy.analyzers.predictions.get_analysis()
    print(f"\nout-of-sample accuracy {log['accuracy'].mean():.3f}, "
          f"mean rank IC {log['rank_ic'].mean():.3f} (PredictionLog)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
