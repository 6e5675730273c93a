"""The examples' functions, small: optstrategy over top_pct x book with a daily benchmark."""
import sys
from pathlib import Path

import numpy as np
from conftest import START

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from optimize_books import daily_benchmark, optimize  # noqa: E402


def test_optimize_books_runs_every_combination_with_standard_analyzers(panel, signal):
    table = optimize(panel, signal, start=START, end="2012-12", top_pcts=(0.2, 0.3), books=("high", "long_short"))
    assert list(table.index) == [(0.2, "high"), (0.2, "long_short"), (0.3, "high"), (0.3, "long_short")]
    assert list(table.columns) == ["sharpe", "total_return", "max_drawdown", "excess", "return_2012"]
    assert np.isfinite(table.to_numpy()).all()
    # one year: AnnualReturn's 2012 is the whole run's return
    np.testing.assert_allclose(table["return_2012"], table["total_return"], rtol=1e-9)
    assert table.loc[(0.3, "long_short"), "total_return"] != table.loc[(0.3, "high"), "total_return"]


def test_the_daily_benchmark_ticks_on_every_business_day_and_month_end(panel):
    feed = daily_benchmark(panel, START, "2012-12")
    days = feed.p.dataname.index
    assert days[0].strftime("%Y-%m-%d") == "2012-06-01" and days[-1].strftime("%Y-%m-%d") == "2012-12-31"
    assert set(panel.dates[(panel.dates >= "2012-06") & (panel.dates <= "2012-12-31")]) <= set(days)
    assert feed.p.dataname["close"].gt(0).all()
