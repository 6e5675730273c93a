"""Shared fixtures of the Backtrader plugin tests (test_strategy.py, test_analyzers.py);
a test module may define its own ``panel`` (test_btfeed.py does)."""
import signal as signal_module

import pytest

from feeds import make_market
from doubles import LinearSignal

@pytest.fixture(scope="session", autouse=True)
def python_sigint():
    """The Ctrl-C tests need Python's SIGINT handler; a suite launched in the background (``cmd &``
    without job control, ``nohup``) starts with SIGINT ignored."""
    previous = signal_module.getsignal(signal_module.SIGINT)
    if previous is signal_module.SIG_IGN:
        signal_module.signal(signal_module.SIGINT, signal_module.default_int_handler)
    yield
    signal_module.signal(signal_module.SIGINT, previous)


START = "2012-06"  # first decision month of the plugin tests' backtests
#: a filterwarnings mark for runs whose baskets are empty by design (doctored predictions, a model
#: of a few steps): the strategy's StrategyWarning that says so
EMPTY_BASKETS = r"ignore:book '\w+'. the '\w+' basket:UserWarning"
#: ... and for runs with too little cash for their baskets' board lots (a few thousand yuan a stock)
FEW_LOTS = r"ignore:book '\w+'. rounding to board lots:UserWarning"


@pytest.fixture(scope="module")
def panel():
    # IPOs, delistings (high hazard), suspensions and limit moves all occur in 3 years.
    return make_market(1, n_stocks=60, start="2012-01", end="2014-12", delist_hazard=0.02).panel


@pytest.fixture(scope="module")
def signal(panel):
    return LinearSignal(panel.factor_names, window=3, scale=3.0)
