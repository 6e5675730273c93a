"""Preprocessing speed: the vectorized ``signals.preprocess`` vs a per-month pandas loop.

The baseline is what a statsmodels-style research script does: for every month-end,
winsorize / z-score the cross-section with pandas, then for every factor fit an OLS on
the industry dummies of the stocks where the factor is observed (``numpy.linalg.lstsq``
stands in for ``statsmodels.OLS``, which is not installed) and keep the residual. Both
run in this process on the same panel; the script checks that they agree and prints the
speed ratio (SPEC §8 goal: >= 20x on the default panel).

    python benchmarks/preprocess.py [--seed 0] [--n-stocks 1300] [--repeat 3]
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

# As under the main command (run_backtest.py): one OpenBLAS thread. With two, the baseline's
# lstsq calls were seen to stall for tens of seconds on our busy shared cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from feeds.synthetic import make_market
from signals.preprocess import PreprocessConfig, preprocess


def preprocess_loop(panel, config: PreprocessConfig) -> np.ndarray:
    """Reference: one month, then one factor at a time, with pandas and lstsq (median ± k·MAD only)."""
    T, N, F = panel.factors.shape
    out = np.full((T, N, F), config.fill_value, dtype=np.float32)
    for t in range(T):
        rows = np.flatnonzero(panel.listed[t])
        frame = pd.DataFrame(panel.factors[t, rows].astype(np.float64), columns=panel.factor_names)
        med = frame.median()
        mad = (frame - med).abs().median()
        width = (config.mad_k * mad).where(mad > 0, np.inf)
        frame = frame.clip(med - width, med + width, axis=1)
        frame = (frame - frame.mean()) / frame.std(ddof=0)
        industry = pd.Series(panel.industry[t, rows]).where(lambda s: s >= 0, -1)
        dummies = pd.get_dummies(industry).to_numpy(np.float64)
        for j, name in enumerate(panel.factor_names):
            y = frame[name].to_numpy()
            ok = np.isfinite(y)
            if ok.sum() < config.min_stocks:
                continue
            beta, *_ = np.linalg.lstsq(dummies[ok], y[ok], rcond=None)
            resid = y[ok] - dummies[ok] @ beta
            if config.restandardize:
                resid = (resid - resid.mean()) / resid.std()
            out[t, rows[ok], j] = resid
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-stocks", type=int, default=1300, help="stocks at the start (1300 = default panel)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the vectorized version (best kept)")
    args = parser.parse_args(argv)
    panel = make_market(args.seed, n_stocks=args.n_stocks).panel
    config = PreprocessConfig()
    print(f"panel: {panel}")

    fast_times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        fast = preprocess(panel.factors, panel.listed, panel.industry, panel.mcap, config)
        fast_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    slow = preprocess_loop(panel, config)
    slow_time = time.perf_counter() - start
    diff = float(np.max(np.abs(fast.astype(np.float64) - slow)))
    fast_time = min(fast_times)
    print(f"vectorized preprocess : {fast_time:8.3f} s  (best of {args.repeat})")
    print(f"per-month pandas loop : {slow_time:8.3f} s")
    print(f"max |difference|      : {diff:.2e}")
    print(f"speed-up              : {slow_time / fast_time:8.1f}x  (goal >= 20x)")


if __name__ == "__main__":
    main()
