"""The backtest stage in worker processes: the same results as one process, errors and
interrupts surface in the parent, predictions served from the predict stage; and the cheaper
per-book plumbing (one Cerebro for many books, lean analyzers and broker) changes nothing."""
import os
import signal as signal_module
import sys
import time

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
from conftest import EMPTY_BASKETS, START

from feeds import add_panel_feeds
import pipeline.backtest as backtest_module
from pipeline.backtest import run_backtests
from pipeline.forked import workers_for
from pipeline.config import build_config
from pipeline.data import RunData
from pipeline.memo import MemoSignal
from signals.predictions import PROBABILITY_COLUMNS
from strategies import AShareCommission, LSTMTercileStrategy, StrategyParamError, run_book
from strategies.analyzers import BasketReturns, Turnover
from strategies.backtest import BookRunner
from strategies.lean import LeanBroker
from strategies.positions import Holdings

END = "2013-12"  # last decision month of these tests (18 decisions from START)


def config(**backtest):
    return build_config({"backtest": {"selections": ["class", "top_pct"], **backtest}})


def decision_months(panel):
    return panel.dates[(panel.dates >= pd.Timestamp(START) + pd.offsets.MonthEnd(0))
                       & (panel.dates <= pd.Timestamp(END) + pd.offsets.MonthEnd(0))]


def backtests(panel, signal, offline=None, **backtest):
    lines = []
    out = run_backtests(config(**backtest), RunData(panel, None, None, {}), signal, decision_months(panel),
                        lambda message, level="INFO": lines.append(message), offline=offline)
    return out, lines


def assert_same_backtests(a, b):
    assert list(a) == list(b)
    for selection in a:
        assert list(a[selection]) == list(b[selection])
        for name, value in a[selection].items():
            if isinstance(value, dict):
                assert list(value) == list(b[selection][name])
                for book in value:
                    assert_identical(value[book], b[selection][name][book])
            else:
                assert_identical(value, b[selection][name])


def assert_identical(x, y):
    if isinstance(x, pd.Series):
        pd.testing.assert_series_equal(x, y, check_exact=True)
    else:
        pd.testing.assert_frame_equal(x, y, check_exact=True)


@pytest.fixture(scope="module")
def serial(panel, signal):
    return backtests(panel, signal, workers=1)


def test_workers_give_the_serial_results(panel, signal, serial):
    parallel, lines = backtests(panel, signal, workers=2)
    assert_same_backtests(serial[0], parallel)
    # one progress line per book, as it finishes
    assert sorted(line.split()[1] for line in lines if " months, cum " in line) == sorted(
        f"{s}/{b}" for s in ("class", "top_pct") for b in ("high", "neutral", "low", "long_short"))
    assert "backtest: 8 books in 2 worker processes" in lines


def test_the_books_are_those_of_run_book(panel, signal, serial):
    # One Cerebro re-run for every book (BookRunner) against a fresh one per book.
    block = serial[0]["top_pct"]
    end = decision_months(panel)[-1] + pd.offsets.MonthEnd(1)
    for book in ("high", "long_short"):
        alone = run_book(panel, signal, start=START, end=end, selection="top_pct", book=book,
                         commission=AShareCommission())
        assert_identical(block["books"][book], alone.returns)
        assert_identical(block["turnover"][book], alone.turnover)
        positions, transactions = alone.strategy.analyzers.holdings.get_analysis()
        assert_identical(block["positions"][book], positions)
        assert_identical(block["transactions"][book], transactions)
    assert_identical(block["baskets"], alone.baskets)


def test_books_are_served_from_the_offline_predictions(panel, signal, serial):
    months = decision_months(panel)
    assert "backtest: predicted 19 of the 19 decision months" in " ".join(serial[1])
    offline = signal.predict_panel(panel, months)
    served, lines = backtests(panel, signal, offline=offline, workers=1)
    assert_same_backtests(serial[0], served)  # LinearSignal: predict_panel is predict, month by month
    assert not any("predicted" in line for line in lines)
    # the books decide on the decision months only: the month after is valued, not predicted
    pd.testing.assert_frame_equal(served["class"]["predictions"], offline)


@pytest.mark.filterwarnings(EMPTY_BASKETS)  # empty by design, below
def test_the_largest_books_go_to_the_workers_first(panel, signal, monkeypatch):
    # Every stock predicted 'up': the class high and long/short books hold every stock, the
    # class low and neutral ones none; top_pct's three baskets are one size (its high and
    # low baskets are then the same stocks, which a long/short book leaves out).
    months = decision_months(panel)
    offline = signal.predict_panel(panel, months)
    offline[list(PROBABILITY_COLUMNS)] = np.array([0.2, 0.3, 0.5], dtype=offline["p_up"].dtype)
    handed = []

    def imap(function, state, items, workers, order=None):
        handed.extend(f"{items[i].selection}/{items[i].book}" for i in order)
        return real_imap(function, state, items, workers, order)
    real_imap = backtest_module.forked.imap
    monkeypatch.setattr(backtest_module.forked, "imap", imap)
    backtests(panel, signal, offline=offline, workers=2)
    assert handed[:2] == ["class/long_short", "class/high"]  # a tie: long/short first
    assert handed[2:5] == ["top_pct/high", "top_pct/neutral", "top_pct/low"]
    assert set(handed[5:]) == {"class/neutral", "class/low", "top_pct/long_short"}


def test_last_decision_changes_nothing_but_the_last_bars_predictions(panel, signal):
    end = decision_months(panel)[-1] + pd.offsets.MonthEnd(1)
    runs = [run_book(panel, signal, start=START, end=end, book="long_short", last_decision=last)
            for last in (None, END)]
    for name in ("returns", "baskets", "turnover", "prediction_log"):
        assert_identical(getattr(runs[0], name), getattr(runs[1], name))
    for a, b in zip(*(run.strategy.analyzers.holdings.get_analysis() for run in runs)):
        assert_identical(a, b)
    last = runs[1].strategy.records[-1]
    assert np.isnan(last.probs).all() and not last.rebalanced and last.date == end
    assert runs[1].strategy.records[-2].rebalanced
    assert runs[0].predictions.index.get_level_values("date").max() == end
    assert runs[1].predictions.index.get_level_values("date").max() == pd.Timestamp(END) + pd.offsets.MonthEnd(0)
    with pytest.raises(StrategyParamError, match="last_decision 2012-05-31 is before the first decision"):
        run_book(panel, signal, start=START, end=end, last_decision="2012-05")


class CountingSignal:
    """A signal that counts its ``predict`` calls (and delegates everything else)."""

    def __init__(self, signal):
        self.inner, self.calls = signal, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def predict(self, history):
        self.calls += 1
        return self.inner.predict(history)


def test_memo_checks_the_inputs_before_serving_offline_predictions(panel, signal):
    months = decision_months(panel)
    offline = signal.predict_panel(panel, months)
    counting = CountingSignal(signal)
    memo = MemoSignal(counting)
    memo.add_offline(panel, offline)
    t = panel.dates.get_loc(months[3])
    window = panel.take(rows=slice(t - signal.window + 1, t + 1))
    np.testing.assert_array_equal(memo.predict(window), signal.predict(window))
    assert (memo.offline_hits, counting.calls) == (1, 0)
    # a different factor value of a listed stock: not the offline inputs, so predicted
    factors = window.factors.copy()
    i = np.flatnonzero(window.listed[-1])[0]
    factors[-1, i, 0] += 1.0
    altered = window.take(rows=slice(None))
    altered.factors = factors
    np.testing.assert_array_equal(memo.predict(altered), signal.predict(altered))
    assert (memo.offline_hits, counting.calls) == (1, 1)
    # a stock of the cross-sections left out: not the offline inputs either
    fewer = window.take(cols=np.delete(np.arange(window.N), i))
    memo.predict(fewer)
    assert counting.calls == 2


def test_a_workers_user_error_is_the_same_one_line(panel, signal):
    with pytest.raises(StrategyParamError) as serial_error:
        backtests(panel, signal, workers=1, gross=1.5)
    with pytest.raises(StrategyParamError) as parallel_error:
        backtests(panel, signal, workers=2, gross=1.5)
    assert str(parallel_error.value) == str(serial_error.value)
    assert parallel_error.value.__cause__ is None and parallel_error.value.__suppress_context__


def test_a_workers_bug_keeps_its_type_and_traceback(panel, signal, monkeypatch):
    def broken(runner, task):
        raise KeyError(f"no such thing in {task.book}")
    monkeypatch.setattr(backtest_module, "_book", broken)
    with pytest.raises(KeyError, match="no such thing in high") as error:
        backtests(panel, signal, workers=2)
    assert "in broken" in str(error.value.__cause__)  # the worker's traceback, as text


def test_workers_get_a_cpu_copy_of_a_model_on_cuda(monkeypatch):
    class Model:
        device = "cuda"

        def to(self, device):
            self.device = device
            return self

    class FakeTorch:  # CUDA initialised in this process
        class cuda:
            is_initialized = staticmethod(lambda: True)
    model = Model()
    monkeypatch.setitem(sys.modules, "torch", FakeTorch)
    copy = backtest_module._cpu_copy(model)
    assert copy is not model and copy.device == "cpu" and model.device == "cuda"
    FakeTorch.cuda.is_initialized = staticmethod(lambda: False)
    assert backtest_module._cpu_copy(model) is None


def children():
    """Process ids of this process's children."""
    pids = []
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                pids.append(int(stat))
    return pids


def test_ctrl_c_leaves_no_worker(panel, signal, monkeypatch, tmp_path):
    parent = os.getpid()
    pressed = tmp_path / "pressed"

    def interrupted(runner, task):  # a book that Ctrl-C interrupts in a worker: one press, as a user's
        try:
            os.close(os.open(pressed, os.O_CREAT | os.O_EXCL))
            os.kill(parent, signal_module.SIGINT)
        except FileExistsError:
            pass
        time.sleep(60)
    monkeypatch.setattr(backtest_module, "_book", interrupted)
    before = set(children())
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        backtests(panel, signal, workers=2)
    assert set(children()) <= before
    assert time.perf_counter() - started < 30


def test_ctrl_c_between_two_books_leaves_no_worker(panel, signal):
    # Ctrl-C while this process handles a finished book (outside the pool's wait): the workers
    # end at once, not whenever the suspended generator happens to be collected.
    def log(message, level="INFO"):
        if "months, cum" in message:
            raise KeyboardInterrupt

    before = set(children())
    with pytest.raises(KeyboardInterrupt) as caught:
        run_backtests(config(workers=2), RunData(panel, None, None, {}), signal, decision_months(panel), log)
    assert set(children()) <= before  # checked while the traceback (and its frames) still live
    del caught


def test_workers_setting():
    cores = len(os.sched_getaffinity(0))
    assert workers_for(0, 8) == min(cores, 8) and workers_for(None, 8) == min(cores, 8)
    assert workers_for(1, 8) == 1 and workers_for(16, 8) == 8 and workers_for(3, 2) == 2
    with pytest.raises(Exception, match=r"workers must be >= 0 .*\(backtest.workers"):
        config(workers=-1)


def test_lean_analyzers_and_broker_change_nothing(panel, signal):
    # The plugin's analyzers skip Backtrader's per-line data aliases and the broker its
    # quadratic OCO scan: the same fills as a stock BackBroker with stock analyzers beside.
    values = {}
    for kind, broker in (("stock", bt.brokers.BackBroker), ("lean", LeanBroker)):
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.broker = broker()
        cerebro.broker.setcash(1e7)
        cerebro.broker.addcommissioninfo(AShareCommission())
        cerebro.addstrategy(LSTMTercileStrategy, signal=signal, book="long_short", selection="top_pct")
        add_panel_feeds(cerebro, panel, start=START)
        for cls, name in ((BasketReturns, "baskets"), (Turnover, "turnover"), (Holdings, "holdings")):
            cerebro.addanalyzer(cls, _name=name)
        cerebro.addanalyzer(bt.analyzers.TimeReturn, timeframe=bt.TimeFrame.Months, _name="monthly")
        strategy = cerebro.run()[0]
        assert not hasattr(strategy.analyzers.turnover, "data0_close")
        assert strategy.analyzers.turnover.datas is strategy.datas
        values[kind] = (cerebro.broker.getvalue(), strategy.analyzers.monthly.get_analysis(),
                          strategy.analyzers.holdings.get_analysis()[1])
    stock, lean = values["stock"], values["lean"]
    assert stock[0] == lean[0] and stock[1] == lean[1]
    assert_identical(stock[2], lean[2])


def test_a_runner_runs_books_one_after_another(panel, signal):
    runner = BookRunner(panel, signal, start=START, end=END)
    first = runner.run(book="high")
    runner.run(book="low", selection="top_pct")
    again = runner.run(book="high")
    assert_identical(first.returns, again.returns)
    assert len(again.strategy.records) == len(first.strategy.records) > 0
