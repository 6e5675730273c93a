"""BasketReturns, Turnover and PredictionLog against independent computations."""
from dataclasses import replace

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
from conftest import FEW_LOTS, START

from feeds import add_panel_feeds, make_market
from feeds.btfeed import tradable_close
from signals.evaluate import information_coefficients, monthly_accuracy
from signals.labels import LabelConfig, classify
from strategies import (AShareCommission, BasketReturns, LSTMTercileStrategy, PredictionLog, Turnover,
                        run_book)


@pytest.fixture(scope="module")
def run(panel, signal):
    return run_book(panel, signal, start=START, book="long_short", selection="top_pct")


def last_close(panel):
    """Each stock's last known close: carried over delistings, as the broker values it."""
    return pd.DataFrame(tradable_close(panel)).ffill().to_numpy()


def test_basket_returns_are_equal_weight_close_to_close_means(panel, run):
    frame = run.baskets
    assert list(frame.columns) == ["high", "neutral", "low", "universe"]
    price = last_close(panel)
    codes = list(panel.codes)
    records = run.strategy.records
    assert list(frame.index) == [r.date for r in records[1:]]  # indexed by the realised month
    cols = [codes.index(c) for c in run.strategy.codes]
    for before, after in zip(records[:-1], records[1:]):
        t = panel.dates.get_loc(before.date)
        ret = price[t + 1, cols] / price[t, cols] - 1
        tradable = panel.listed[t, cols] & ~panel.suspended[t, cols] & np.isfinite(panel.close[t, cols])
        assert frame.loc[after.date, "universe"] == pytest.approx(ret[tradable].mean(), rel=1e-12)
        for name in ("high", "neutral", "low"):
            assert frame.loc[after.date, name] == pytest.approx(ret[before.baskets[name]].mean(), rel=1e-12)


def test_a_frictionless_book_earns_its_baskets_paper_return(signal):
    # No suspensions, limit moves or delistings: the broker's high book IS the paper basket.
    panel = make_market(0, n_stocks=60, start="2012-01", end="2014-12").panel
    flat = np.zeros(panel.listed.shape, bool)
    panel = replace(panel, suspended=flat, limit_up=flat, limit_down=flat)
    assert not (panel.listed[:-1] & ~panel.listed[1:]).any()
    free = AShareCommission(commission=0.0, min_commission=0.0, stamp_duty=0.0, lot=0)
    for book in ("high", "low"):
        result = run_book(panel, signal, start=START, book=book, lot=0, commission=free)
        np.testing.assert_allclose(result.returns.to_numpy(), result.baskets[book].to_numpy(),
                                   rtol=0, atol=1e-12)


def test_turnover_matches_the_transactions(panel, signal):
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(1e8)
    commission = AShareCommission()
    cerebro.broker.addcommissioninfo(commission)
    cerebro.addstrategy(LSTMTercileStrategy, signal=signal, book="high")
    add_panel_feeds(cerebro, panel, start=START)
    cerebro.addanalyzer(Turnover, _name="turnover")
    cerebro.addanalyzer(bt.analyzers.Transactions, _name="transactions")
    strategy = cerebro.run()[0]
    turnover = strategy.analyzers.turnover.get_analysis()
    trades = [row for rows in strategy.analyzers.transactions.get_analysis().values() for row in rows]
    buys = sum(size * price for size, price, *_ in trades if size > 0)
    sells = sum(-size * price for size, price, *_ in trades if size < 0)
    fees = sum(commission.getcommission(size, price) for size, price, *_ in trades)
    assert turnover["buy"].sum() == pytest.approx(buys, rel=1e-12)
    assert turnover["sell"].sum() == pytest.approx(sells, rel=1e-12)
    assert turnover["commission"].sum() == pytest.approx(fees, rel=1e-12)
    # Built from cash: the first rebalance buys the book (less what limit-up or lots block),
    # a one-way turnover of just under 0.5.
    first = turnover.iloc[0]
    assert first["sell"] == 0 and 0.4 < first["turnover"] <= 0.5
    assert first["turnover"] == pytest.approx(first["buy"] / (2 * strategy.records[0].value))
    assert ((turnover["turnover"] > 0) & (turnover["turnover"] <= 1)).all()
    # The last decision's orders never fill (the run ends), so it is not listed.
    assert turnover.index[-1] < strategy.records[-1].date


@pytest.mark.filterwarnings(FEW_LOTS)
@pytest.mark.parametrize("labels", [None, LabelConfig(kind="tercile")])
def test_prediction_log_scores_each_month_as_the_offline_evaluation_does(panel, signal, labels):
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.addstrategy(LSTMTercileStrategy, signal=signal)
    add_panel_feeds(cerebro, panel, start=START)
    cerebro.addanalyzer(PredictionLog, labels=labels, _name="log")
    strategy = cerebro.run()[0]
    log = strategy.analyzers.log.get_analysis()
    assert list(log.index) == [r.date for r in strategy.records[:-1]]
    predictions = strategy.predictions()
    accuracy = monthly_accuracy(predictions, panel, labels)
    ics = information_coefficients(predictions, panel)
    months = log.index
    if labels is not None:
        # Tercile classes rank the whole month's cross-section. A panel without a close in a
        # listing month has a first return that was never streamed as a price move: compare
        # the months without such a stock (the synthetic market prices listing months).
        first_return = np.isfinite(panel.ret[1:]) & ~np.isfinite(panel.close[:-1])
        clean = panel.dates[:-1][~first_return.any(axis=1)]
        months = months[months.isin(clean)]
        assert 0 < len(months) <= len(log)
    pd.testing.assert_frame_equal(log.loc[months, ["accuracy", "no_skill", "n"]], accuracy.loc[months],
                                  check_dtype=False)
    pd.testing.assert_frame_equal(log.loc[months, ["ic", "rank_ic"]], ics.loc[months, ["ic", "rank_ic"]],
                                  rtol=1e-9)
    # and by hand, for one month: accuracy against the realised class of the next close
    date, row = next(log.iterrows())
    t = panel.dates.get_loc(date)
    month = predictions.loc[date]
    cols = panel.codes.get_indexer(month.index)
    ret = panel.close[t + 1, cols] / panel.close[t, cols] - 1
    scored = np.isfinite(ret)
    realised = classify(panel.ret[t + 1][None, :], labels or LabelConfig())[0, cols][scored]
    predicted = month[["p_down", "p_neutral", "p_up"]].to_numpy().argmax(axis=1)[scored]
    assert row["n"] == scored.sum() and row["accuracy"] == pytest.approx(np.mean(predicted == realised))


def test_run_book_returns_are_the_brokers(panel, signal, run):
    strategy = run.strategy
    values = [r.value for r in strategy.records]
    np.testing.assert_allclose(run.returns.to_numpy(), np.array(values[1:]) / np.array(values[:-1]) - 1)
    assert run.returns.index.equals(run.baskets.index)
    assert run.returns.name == "long_short" and run.seconds > 0
    assert run.predictions.index.names == ["date", "code"]


def test_the_analyzers_refuse_other_strategies(panel):
    for analyzer in (BasketReturns, Turnover, PredictionLog):
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.addstrategy(bt.Strategy)
        add_panel_feeds(cerebro, panel.slice(None, "2012-03"))
        cerebro.addanalyzer(analyzer)
        with pytest.raises(TypeError, match=f"{analyzer.__name__} needs LSTMTercileStrategy"):
            cerebro.run()
