"""Feed + strategy: the numpy-backed PanelFeed against stock PandasData (SPEC §8).

Both runs trade the same ``LSTMTercileStrategy`` (book ``high``, class selection, 100-share
lots, A-share costs) on the same market slice with the same cheap deterministic signal
(``LinearSignal`` of ``tests/doubles.py``), so only the feed differs: ``feeds.add_panel_feeds``
against one ``bt.feeds.PandasData`` subclass per stock carrying the same extra lines
(``feeds.pandas_feeds``). Timed: building the feeds plus ``cerebro.run()``. The two runs
must end with the same broker value, which the script checks.

    python benchmarks/feed_strategy.py            # 3,000 stocks x 36 months x 48 factors
    python benchmarks/feed_strategy.py --quick    # 300 stocks

``--oos`` times instead one book over the seed's out-of-sample year (decisions 2016-04 ..
2017-04, returns 2016-05 .. 2017-04) on the default market with a real ``SignalModel``:
``--model PATH``, or a seed-architecture LSTM (400 x 2) fitted for ``--steps`` steps (the
serving cost does not depend on how long it trained). It reports the wall time of the
feeds + run and the share spent in ``signal.predict``.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys

# On a busy small machine OpenBLAS's worker threads can stall numpy's BLAS calls for seconds
# (seen with torch's threads running beside them); one BLAS thread avoids it, as
# run_backtest.py does. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the deterministic test signal (tests/doubles.py)

import backtrader as bt  # noqa: E402
import numpy as np  # noqa: E402
from doubles import LinearSignal  # noqa: E402

from feeds import add_panel_feeds, make_market, pandas_feeds  # noqa: E402
from strategies import AShareCommission, LSTMTercileStrategy  # noqa: E402


def market_slice(stocks: int, months: int, seed: int):
    """The last ``months`` months of the default market, first ``stocks`` stocks listed in them."""
    panel = make_market(seed).panel
    panel = panel.take(rows=slice(panel.T - months, panel.T))
    listed = np.flatnonzero(panel.listed.any(axis=0))[:stocks]
    return panel.take(cols=listed)


def run_once(panel, signal, use_pandas: bool) -> tuple[float, float, int]:
    """(wall seconds, final broker value, decisions) of one feed + strategy run."""
    gc.collect()
    start = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(1e9)
    cerebro.broker.addcommissioninfo(AShareCommission())
    cerebro.addstrategy(LSTMTercileStrategy, signal=signal, book="high", selection="class",
                        industries=panel.industries)
    if use_pandas:
        for feed in pandas_feeds(panel):
            cerebro.adddata(feed)
    else:
        add_panel_feeds(cerebro, panel)
    strategy = cerebro.run()[0]
    return time.perf_counter() - start, cerebro.broker.getvalue(), len(strategy.records)


class TimedSignal:
    """Wraps a signal and adds up the seconds spent in ``predict``."""

    def __init__(self, signal):
        self.signal, self.seconds, self.calls = signal, 0.0, 0
        self.window, self.factor_names = signal.window, signal.factor_names
        self.spec = getattr(signal, "spec", None)

    def predict(self, history):
        start = time.perf_counter()
        try:
            return self.signal.predict(history)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


def oos_book(model_path: str | None, steps: int, seed: int) -> int:
    """Wall time of one book (long/short, top 30%) over the OOS year with a real SignalModel."""
    import signals
    from strategies import run_book

    panel = make_market(seed).panel
    if model_path:
        signal = signals.SignalModel.load(model_path)
        origin = f"loaded from {model_path}"
    else:
        start = time.perf_counter()
        signal = signals.fit(panel, "2007-05", "2016-04", signals.SignalSpec(train=signals.TrainConfig(steps=steps)),
                             baseline=False, progress=False).signal
        origin = f"seed architecture, fitted {steps} steps in {time.perf_counter() - start:.1f} s"
    timed = TimedSignal(signal)
    result = run_book(panel, timed, start="2016-04", end="2017-04", book="long_short", selection="top_pct")
    print(f"signal: {signal} ({origin})")
    print(f"one book over the OOS year: {result.seconds:.2f} s wall for {len(result.strategy.codes)} "
          f"stock feeds x {len(result.strategy.records) + signal.window - 1} months "
          f"({timed.calls} predictions, {timed.seconds:.2f} s of it in signal.predict)")
    print(f"book cumulative return {(1 + result.returns).prod() - 1:+.2%} over {len(result.returns)} months")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 stocks instead of 3,000")
    parser.add_argument("--oos", action="store_true", help="time one book over the OOS year instead")
    parser.add_argument("--model", help="with --oos: a SignalModel checkpoint")
    parser.add_argument("--steps", type=int, default=5, help="with --oos and no --model: training steps")
    parser.add_argument("--stocks", type=int, default=None)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--window", type=int, default=24, help="signal window (months)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.oos:
        return oos_book(args.model, args.steps, args.seed)
    stocks = args.stocks or (300 if args.quick else 3000)
    panel = market_slice(stocks, args.months, args.seed)
    signal = LinearSignal(panel.factor_names, window=args.window, seed=args.seed)
    print(f"market: {panel.N} stocks x {panel.T} months x {panel.F} factors "
          f"({int(panel.listed.sum())} stock-months), signal window {args.window}")
    numpy_s, numpy_value, decisions = run_once(panel, signal, use_pandas=False)
    print(f"PanelFeed (numpy)   : {numpy_s:7.2f} s  ({decisions} decisions)", flush=True)
    pandas_s, pandas_value, _ = run_once(panel, signal, use_pandas=True)
    print(f"PandasData (stock)  : {pandas_s:7.2f} s")
    if not np.isclose(numpy_value, pandas_value, rtol=1e-12):
        print(f"error: the runs disagree (final value {numpy_value} vs {pandas_value})")
        return 1
    print(f"speed-up            : {pandas_s / numpy_s:7.2f}x  (goal >= 5x; same final value "
          f"{numpy_value:,.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
