"""Shared fixtures of the Backtrader plugin tests (test_strategy.py, test_analyzers.py)."""
import pytest

from feeds import make_market
from strategies import LinearSignal

START = "2012-06"  # first decision month of the plugin tests' backtests


@pytest.fixture(scope="module")
def plugin_panel():
    # IPOs, delistings (high hazard), suspensions and limit moves all occur in 3 years.
    return make_market(1, n_stocks=60, start="2012-01", end="2014-12", delist_hazard=0.02).panel


@pytest.fixture(scope="module")
def plugin_signal(plugin_panel):
    return LinearSignal(plugin_panel.factor_names, window=3, scale=3.0)
