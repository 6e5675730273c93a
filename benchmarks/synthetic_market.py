"""Measure the default synthetic market: generation time, peak memory and its calibration.

    python benchmarks/synthetic_market.py [--seed 0]

Prints the figures quoted in README.md and docs/synthetic_market.md. Peak memory is the
process's maximum resident set size (Linux ``ru_maxrss``), after importing numpy and pandas.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from feeds.synthetic import make_market  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    market = make_market(seed=args.seed)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    p = market.panel
    counts = pd.Series(p.listed.sum(axis=1), index=p.dates)
    ic = market.oracle_rank_ic()
    listed = p.listed
    print(f"panel: {p}")
    print(f"generation: {seconds:.2f} s; peak RSS {peak:.0f} MB (of which {base_rss:.0f} MB before generating)")
    print(f"listed stocks: {counts.iloc[0]} at {p.dates[0]:%Y-%m}, {counts['2016-01-31']} at 2016-01, "
          f"{counts['2016-12-31']} at 2016-12, {counts.iloc[-1]} at {p.dates[-1]:%Y-%m}; "
          f"{p.N} codes in all")
    print(f"oracle monthly rank IC: mean {ic.mean():.4f}, std {ic.std():.4f}, "
          f"share of months > 0 {np.mean(ic > 0):.2f}; "
          f"OOS 2016-05..2017-03: {ic['2016-05-31':'2017-03-31'].mean():.4f}")
    shares = market.variance_shares()
    print("variance shares of mu: " + ", ".join(f"{k} {v:.3f}" for k, v in shares.items())
          + f"; cross-sectional std of mu {np.nanmean(np.nanstd(market.oracle, axis=1)):.4f}")
    age = np.cumsum(listed, axis=0)
    print(f"missing factor cells: {np.isnan(p.factors[listed]).mean():.3f} of all listed cells, "
          f"{np.isnan(p.factors[listed & (age > 13)]).mean():.3f} of stocks listed > 13 months")
    print(f"flags (share of listed stock-months): suspended {p.suspended[listed].mean():.4f}, "
          f"limit-up {p.limit_up[listed].mean():.4f}, limit-down {p.limit_down[listed].mean():.4f}, "
          f"ST {p.is_st[listed].mean():.4f}")
    mkt = np.nanmean(p.ret, axis=1)
    xs = np.nanmean(np.nanstd(p.ret, axis=1))
    print(f"equal-weight market: monthly vol {np.std(mkt):.4f}; mean cross-sectional return std {xs:.4f}")


if __name__ == "__main__":
    main()
