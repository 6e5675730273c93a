"""The plugin inside ordinary Backtrader habits: optstrategy, Backtrader's own analyzers,
settings that would make the strategy do nothing, a basket left empty, feeds lacking a line,
long/short gross."""
import contextlib
import math
import re
import warnings

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
from conftest import START
from doubles import LinearSignal

from feeds import add_panel_feeds
from feeds.btfeed import pandas_feed_class, pandas_feeds
from feeds.synthetic import make_market
from signals.labels import CLASSES
from strategies import (AShareCommission, LSTMTercileStrategy, StrategyParamError, StrategyWarning, Turnover,
                        run_book)

END = "2013-09"


def month(dtnum):
    return pd.Timestamp(bt.num2date(dtnum)) + pd.offsets.MonthEnd(0)


@contextlib.contextmanager
def no_strategy_warning():
    """No StrategyWarning, but the one about held stocks that delisted, which the plugin tests'
    panel (a delisting hazard of 2% a month) raises by design."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", StrategyWarning)
        warnings.filterwarnings("ignore", message=r"book '\w+': up to \d+% of the broker value .* without a bar")
        yield


def cerebro_with(signal, **params):
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(1e7)
    cerebro.broker.addcommissioninfo(AShareCommission())
    cerebro.addstrategy(LSTMTercileStrategy, signal=signal, **params)
    return cerebro


# ------------------------------------------------------------------------ optstrategy
@pytest.mark.parametrize("maxcpus", [1, 2])
def test_optstrategy_before_add_panel_feeds_runs_every_combination(panel, signal, maxcpus):
    cerebro = bt.Cerebro(stdstats=False, maxcpus=maxcpus)
    cerebro.broker.setcash(1e7)
    books = ("high", "long_short") if maxcpus == 1 else ("long_short",)
    cerebro.optstrategy(LSTMTercileStrategy, signal=signal, selection="top_pct", top_pct=(0.2, 0.3), book=books)
    stocks = add_panel_feeds(cerebro, panel, start=START, end=END)  # finds the window in the optimizer
    assert stocks[0].p.source.panel.dates[0] == pd.Timestamp("2012-04-30")  # window 3: 2 history months
    cerebro.addanalyzer(bt.analyzers.Returns, _name="returns")
    results = cerebro.run()
    assert len(results) == 2 * len(books)
    runs = {(r[0].params.top_pct, r[0].params.book): r[0].analyzers.returns.get_analysis()["rtot"]
            for r in results}
    assert len(runs) == len(results)
    # each combination is the run a single addstrategy gives
    single = cerebro_with(signal, selection="top_pct", top_pct=0.3, book="long_short")
    single.broker.addcommissioninfo(bt.CommissionInfo())  # as the optimizer's broker: no commission set
    add_panel_feeds(single, panel, start=START, end=END)
    single.addanalyzer(bt.analyzers.Returns, _name="returns")
    assert runs[(0.3, "long_short")] == pytest.approx(single.run()[0].analyzers.returns.get_analysis()["rtot"],
                                                      rel=1e-12)


# ------------------------------------------------------------- Backtrader's analyzers
def standard_analyzers(cerebro):
    cerebro.addanalyzer(bt.analyzers.TimeReturn, timeframe=bt.TimeFrame.Months, _name="monthly")
    cerebro.addanalyzer(bt.analyzers.SharpeRatio, timeframe=bt.TimeFrame.Months, riskfreerate=0.0,
                        annualize=False, _name="sharpe")
    cerebro.addanalyzer(bt.analyzers.Returns, _name="returns")
    cerebro.addanalyzer(bt.analyzers.AnnualReturn, _name="annual")


def decision_month_returns(strategy, end_value):
    """Monthly book returns over the decision months, from the strategy's own records: the
    first decision month is flat (the book is formed at its close), then value to value."""
    values = [r.value for r in strategy.records] + [end_value]
    dates = [r.date for r in strategy.records]
    returns = [0.0] + [b / a - 1 for a, b in zip(values[:-2], values[1:-1])]
    return pd.Series(returns, index=pd.DatetimeIndex(dates))


@pytest.mark.parametrize("daily_index", [False, True], ids=["monthly", "daily-benchmark"])
def test_warm_up_months_do_not_dilute_backtraders_analyzers(panel, signal, daily_index):
    cerebro = cerebro_with(signal, book="long_short", selection="top_pct")
    if daily_index:  # a daily index added first (data0), from the first decision month as documented
        days = pd.bdate_range("2012-06-01", "2013-09-30")
        level = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, len(days))))
        frame = pd.DataFrame({"open": level, "high": level, "low": level, "close": level, "volume": 0.0},
                             index=days)
        cerebro.adddata(bt.feeds.PandasData(dataname=frame, name="index"))
    add_panel_feeds(cerebro, panel, start=START, end=END)
    standard_analyzers(cerebro)
    strategy = cerebro.run()[0]
    end_value = strategy.broker.getvalue()
    expected = decision_month_returns(strategy, end_value)
    assert expected.index[0] == pd.Timestamp("2012-06-30") and len(expected) == 16

    monthly = pd.Series(strategy.analyzers.monthly.get_analysis())
    monthly.index = pd.DatetimeIndex(monthly.index) + pd.offsets.MonthEnd(0)
    pd.testing.assert_index_equal(monthly.index, expected.index)  # no warm-up month
    np.testing.assert_allclose(monthly.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)

    sharpe = strategy.analyzers.sharpe.get_analysis()["sharperatio"]
    assert sharpe == pytest.approx(expected.mean() / expected.std(ddof=0), rel=1e-9)

    returns = strategy.analyzers.returns.get_analysis()
    assert returns["rtot"] == pytest.approx(math.log(end_value / 1e7), rel=1e-12)
    month_ends = pd.date_range("2012-06-30", "2013-09-30", freq="ME")
    bars = len(pd.bdate_range("2012-06-01", "2013-09-30").union(month_ends)) if daily_index else len(expected)
    assert len(strategy) == bars  # the run starts at the first decision month
    assert returns["ravg"] == pytest.approx(returns["rtot"] / bars, rel=1e-12)

    if daily_index:
        return  # AnnualReturn indexes the Broker observer by data0's bars: see docs/plugin.md
    annual = strategy.analyzers.annual.get_analysis()  # works under stdstats=False
    assert list(annual) == [2012, 2013]
    assert annual[2012] == pytest.approx((1 + expected[expected.index.year == 2012]).prod() - 1, rel=1e-9)
    assert annual[2013] == pytest.approx((1 + expected[expected.index.year == 2013]).prod() - 1, rel=1e-9)


# ------------------------------------------------------- settings that would do nothing
def test_a_window_longer_than_the_streamed_months_is_an_error(panel):
    cerebro = cerebro_with(LinearSignal(panel.factor_names, window=40))
    add_panel_feeds(cerebro, panel)
    with pytest.raises(StrategyParamError, match=r"stream 36 months .* needs 40 months .* no decision"):
        cerebro.run()


def test_start_after_the_data_is_an_error(panel, signal):
    cerebro = cerebro_with(signal, start="2016-01")
    add_panel_feeds(cerebro, panel)
    with pytest.raises(StrategyParamError, match=r"start 2016-01-31 is after the last month the feeds stream \(2014-12-31\)"):
        cerebro.run()


def test_a_shorter_window_than_the_signal_warns_with_the_actual_first_decision(panel, signal):
    cerebro = cerebro_with(signal)
    add_panel_feeds(cerebro, panel, start=START, window=2)
    with pytest.warns(StrategyWarning, match="first decision at 2012-07-31, not at start 2012-06-30"):
        strategy = cerebro.run()[0]
    assert strategy.records[0].date == pd.Timestamp("2012-07-31")


def test_no_decision_on_other_feeds_warns(panel):
    cerebro = cerebro_with(LinearSignal(panel.factor_names, window=30), industries=list(panel.industries))
    for feed in pandas_feeds(panel.slice("2014-01", None)):
        cerebro.adddata(feed)
    with pytest.warns(StrategyWarning, match="made no decision: the stock feeds streamed 12 month-end"):
        cerebro.run()


@pytest.mark.parametrize("book, gross", [("high", 100), ("high", 1.2), ("low", -0.5), ("long_short", 2.5),
                                         ("long_short", float("nan"))])
def test_impossible_gross_is_an_error(panel, signal, book, gross):
    cerebro = cerebro_with(signal, book=book, gross=gross)
    add_panel_feeds(cerebro, panel, start=START)
    with pytest.raises(StrategyParamError, match="gross must be"):
        cerebro.run()


def test_long_short_gross_two_is_possible(panel, signal):
    double = run_book(panel, signal, start=START, end="2012-08", book="long_short", gross=2.0)
    single = run_book(panel, signal, start=START, end="2012-08", book="long_short", gross=1.0)
    assert double.strategy.rejected_orders == 0
    assert double.turnover["turnover"].iloc[0] == pytest.approx(2 * single.turnover["turnover"].iloc[0], rel=0.01)


def test_rejected_orders_warn_with_counts(panel, signal):
    cerebro = cerebro_with(signal, execution="next_open")
    add_panel_feeds(cerebro, panel, start=START)
    with pytest.warns(StrategyWarning, match=r"rejected \d+ of \d+ orders .* gross < 1"):
        strategy = cerebro.run()[0]
    assert strategy.rejected_orders > 0
    cerebro = cerebro_with(signal, execution="next_open", gross=0.5)  # headroom: nothing rejected
    add_panel_feeds(cerebro, panel, start=START)
    with no_strategy_warning():
        assert cerebro.run()[0].rejected_orders == 0


class Never(LinearSignal):
    """A model that never makes class ``never`` the most probable one (the held-back real panel's
    LSTM never did for "neutral")."""

    def __init__(self, *args, never: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.never = never

    def predict(self, history):
        p = super().predict(history)
        p[:, self.never] = 0.0
        return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("never, book, basket, side", [
    ("neutral", "neutral", "neutral", "the book"),
    ("down", "long_short", "low", "the short side"),
])
def test_a_book_whose_basket_stays_empty_warns_with_the_count(panel, never, book, basket, side):
    signal = Never(panel.factor_names, window=3, never=CLASSES.index(never))
    cerebro = cerebro_with(signal, book=book)
    add_panel_feeds(cerebro, panel, start=START, end=END)
    with pytest.warns(StrategyWarning, match=rf"book '{book}': the '{basket}' basket \(class selection\) was empty "
                                             rf"at (\d+) of \1 decisions, first 2012-\d\d-\d\d: {side} held cash "
                                             r"then \(no stock had it as its most probable class\)"):
        strategy = cerebro.run()[0]
    assert strategy.records and not any(r.baskets[basket].any() for r in strategy.records)
    # the same model's high book: its basket is never empty, no warning
    cerebro = cerebro_with(signal, book="high")
    add_panel_feeds(cerebro, panel, start=START, end=END)
    with no_strategy_warning():
        cerebro.run()


def test_a_long_short_book_whose_baskets_coincide_warns_that_both_sides_held_cash(panel, signal):
    # top_pct=1: both baskets are the whole universe; long and short at once cancel, so the
    # book never invested, and before it said nothing (no basket is empty)
    cerebro = cerebro_with(signal, book="long_short", selection="top_pct", top_pct=1.0)
    add_panel_feeds(cerebro, panel, start=START, end=END)
    with pytest.warns(StrategyWarning) as caught:
        strategy = cerebro.run()[0]
    lines = [str(w.message) for w in caught if issubclass(w.category, StrategyWarning)]
    for basket, side in (("high", "the long side"), ("low", "the short side")):
        assert any(re.search(rf"the '{basket}' basket was in the other basket too at (\d+) of \1 decisions, "
                             rf"first 2012-\d\d-\d\d: {side} held cash then \(with top_pct=1 ", line)
                   for line in lines), lines
    assert strategy.broker.getvalue() == pytest.approx(1e7, rel=1e-9)  # never invested
    cerebro = cerebro_with(signal, book="long_short", selection="top_pct", top_pct=0.3)
    add_panel_feeds(cerebro, panel, start=START, end=END)
    with no_strategy_warning():
        cerebro.run()


def test_a_book_holding_stocks_that_delisted_warns_with_their_share(panel, signal):
    # they cannot be sold without bars: before, up to a fifth of the book sat at its last close
    # without a word (this panel delists 2% of its stocks a month)
    cerebro = cerebro_with(signal, book="high")
    add_panel_feeds(cerebro, panel, start=START, end=END)
    with pytest.warns(StrategyWarning, match=r"book 'high': up to (\d+)% of the broker value \(\d{4}-\d\d-\d\d\) "
                                             r"sat in held stocks without a bar \(delisted"):
        strategy = cerebro.run()[0]
    assert len(strategy.stranded) == len(strategy.records) and max(s for _, s in strategy.stranded) > 0.05
    listed_for_good = make_market(1, n_stocks=60, start="2012-01", end="2014-12", delist_hazard=0.0).panel
    cerebro = cerebro_with(LinearSignal(listed_for_good.factor_names, window=3, scale=3.0), book="high")
    add_panel_feeds(cerebro, listed_for_good, start=START, end=END)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StrategyWarning)
        assert max(s for _, s in cerebro.run()[0].stranded) == 0.0


@pytest.mark.parametrize("execution", ["close", "next_open"])
@pytest.mark.parametrize("slippage", ["set_slippage_perc", "set_slippage_fixed"])
def test_broker_slippage_on_panel_feeds_is_refused(panel, signal, execution, slippage):
    # before: slippage raised a close book's final value (fills capped by the next month's
    # close) and left a next_open book's unchanged (clipped to the bar, whose open is its close)
    cerebro = cerebro_with(signal, execution=execution)
    getattr(cerebro.broker, slippage)(0.01)
    add_panel_feeds(cerebro, panel, start=START, end=END)
    with pytest.raises(StrategyParamError, match=r"broker slippage .* cannot work on panel feeds: .* "
                                                 r"put trading costs in the commission"):
        cerebro.run()


@pytest.mark.filterwarnings("ignore:the broker rejected")  # the two books fight over the cash
def test_a_second_strategy_on_the_broker_warns(panel, signal):
    # before: a high and a low book in one Cerebro ended at the same value (each sold the
    # other's positions), with only a "rejected orders" warning pointing elsewhere
    cerebro = cerebro_with(signal, book="high")
    cerebro.addstrategy(LSTMTercileStrategy, signal=signal, book="low")
    add_panel_feeds(cerebro, panel, start=START, end=END)
    with pytest.warns(StrategyWarning, match=r"1 other strategy share this Cerebro's broker \(LSTMTercileStrategy\)"):
        cerebro.run()


def test_board_lots_that_leave_much_of_the_book_in_cash_warn(panel, signal):
    cerebro = cerebro_with(signal)
    cerebro.broker.setcash(2e4)  # some 1,000 yuan a stock: a lot (about 600 yuan) is a large part of it
    add_panel_feeds(cerebro, panel, start=START, end=END)
    with pytest.warns(StrategyWarning, match=r"book 'high': rounding to board lots of 100 shares left on average "
                                             r"\d+% of the broker value out of the book"):
        strategy = cerebro.run()[0]
    assert np.mean(strategy.lot_shortfall) > 0.05
    cerebro = cerebro_with(signal, lot=0)  # fractional shares: nothing left out
    add_panel_feeds(cerebro, panel, start=START, end=END)
    with no_strategy_warning():
        assert max(cerebro.run()[0].lot_shortfall) < 1e-9


# ------------------------------------------------------------------------- errors
def test_a_feed_missing_one_factor_line_names_it(panel, signal):
    names = [f for f in panel.factor_names if f != "mom_12_1"]
    cls = pandas_feed_class(names)
    good = pandas_feeds(panel)
    frame = good[0].p.dataname.drop(columns="mom_12_1")
    cerebro = cerebro_with(signal)
    cerebro.adddata(cls(dataname=frame, name="600000.SH"))
    with pytest.raises(StrategyParamError, match="feed '600000.SH' lacks the line 'mom_12_1' of the signal's "
                                                 "factor 'mom_12_1'"):
        cerebro.run()


# ------------------------------------------------------------------- long/short gross
class Undecided(LinearSignal):
    """p_up and p_down rise together (a model torn between the two): the top-30% high and
    low baskets share many stocks."""

    def predict(self, history):
        p = super().predict(history)
        both = (p[:, 0] + p[:, 2]) / 2
        tilt = 0.02 * (p[:, 2] - p[:, 0])
        return np.stack([both - tilt, p[:, 1], both + tilt], axis=1)


def test_long_short_holds_the_gross_it_is_asked_for(panel):
    signal = Undecided(panel.factor_names, window=3, scale=3.0)
    result = run_book(panel, signal, start=START, end="2012-09", book="long_short", selection="top_pct")
    first = result.strategy.records[0]
    high, low = first.baskets["high"], first.baskets["low"]
    assert 0.1 < (high & low).sum() / high.sum() < 0.9  # the two baskets do overlap
    # the first rebalance builds the book from cash: buys are the long side, sells the short;
    # each side is gross / 2 = 0.5 (less what the limit rules block: limit-up names cannot be bought)
    t, cols = panel.dates.get_loc(first.date), panel.codes.get_indexer(result.strategy.codes)
    long = high & ~low
    blocked = (long & panel.limit_up[t, cols]).sum() / long.sum() * 0.5
    traded = result.turnover.iloc[0]
    assert traded["buy"] / first.value == pytest.approx(0.5 - blocked, abs=0.002)
    assert traded["sell"] / first.value == pytest.approx(0.5, abs=0.002)
    assert traded["turnover"] == pytest.approx((1.0 - blocked) / 2, abs=0.002)
