"""The backtest stage of the main command, in one process and in worker processes.

Runs :func:`pipeline.backtest.run_backtests` on the default setting (``configs/oos_2016.yaml``:
the default synthetic market, both selections x the four books, decisions 2016-04 .. 2017-04)
twice in this process on the same inputs, first with ``backtest.workers: 1`` (every book one
after another here) then with ``--workers`` (default 2) forked workers; checks that every
book's NAV, turnover, positions, transactions, baskets and in-backtest predictions are
identical, and prints both wall times, their ratio, the CPU and the load average.

The books are served as in the pipeline: from the predict stage's offline predictions
(computed before the timing), so the stage predicts only the month after the last decision
month itself. The signal is the deterministic ``LinearSignal`` of ``tests/doubles.py``
(window 24): with the predictions served, the model changes only that one month's cost;
``--model PATH`` serves a ``SignalModel`` checkpoint instead (e.g. a run's ``model.pt``).

    python benchmarks/backtests.py [--workers 2] [--model runs/oos_2016/model.pt]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

# As run_backtest.py: one OpenBLAS thread (its threads stall beside torch's on small machines).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the deterministic test signal (tests/doubles.py)

import pandas as pd  # noqa: E402

from benchmarks.under_load import cpu_model  # noqa: E402


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the workers)."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                resource.getrusage(resource.RUSAGE_CHILDREN)))


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def differences(a: dict, b: dict) -> list[str]:
    """Where two results of ``run_backtests`` differ (nothing: identical, exactly)."""
    out = []
    for selection in a:
        for name, value in a[selection].items():
            pairs = value.items() if isinstance(value, dict) else [("", value)]
            for book, x in pairs:
                y = b[selection][name][book] if book else b[selection][name]
                try:
                    (pd.testing.assert_series_equal if isinstance(x, pd.Series)
                     else pd.testing.assert_frame_equal)(x, y, check_exact=True)
                except AssertionError:
                    out.append(f"{selection}/{name}/{book}".rstrip("/"))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the parallel run")
    parser.add_argument("--model", help="a SignalModel checkpoint to serve (default: LinearSignal)")
    parser.add_argument("--config", default=str(ROOT / "configs" / "oos_2016.yaml"))
    args = parser.parse_args(argv)

    from doubles import LinearSignal

    from pipeline.backtest import run_backtests
    from pipeline.config import load_config
    from pipeline.data import load_data
    from pipeline.predict import decision_dates
    from pipeline.run import run  # noqa: F401  (registers the signal's config sections)

    print(f"cpu: {cpu_model()}; {len(os.sched_getaffinity(0))} available; {load()}")
    config = load_config(args.config)
    t0 = time.perf_counter()
    if args.model:
        import signals
        signal = signals.SignalModel.load(args.model)
    data = load_data(config, signal.window if args.model else 24, ROOT)
    if not args.model:
        signal = LinearSignal(data.panel.factor_names, window=24)
    dates = decision_dates(config, data.panel)
    offline = signal.predict_panel(data.panel, dates)  # the predict stage
    print(f"inputs: {data.panel}; {len(dates)} decision months; signal {type(signal).__name__}; "
          f"{time.perf_counter() - t0:.1f} s")

    results, seconds = {}, {}
    for workers in (1, args.workers):
        config.backtest.workers = workers
        started, cpu = time.perf_counter(), cpu_seconds()

        def log(message, level="INFO"):
            print(f"  {time.perf_counter() - started:6.1f} s  {message}", flush=True)
        results[workers] = run_backtests(config, data, signal, dates, log, offline=offline)
        seconds[workers] = time.perf_counter() - started
        books = sum(len(block["books"]) for block in results[workers].values())
        print(f"workers={workers}: {books} books in {seconds[workers]:6.1f} s wall, "
              f"{cpu_seconds() - cpu:6.1f} s CPU ({load()})", flush=True)
    differ = differences(results[1], results[args.workers])
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(f"speed-up: {seconds[1] / seconds[args.workers]:.2f}x with {args.workers} workers "
          f"(goal >= 1.7x on 2 cores); results {'identical' if not differ else 'DIFFER: ' + ', '.join(differ)}; "
          f"peak RSS of one process {peak / 1024:.0f} MB")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
