"""LSTMTercileStrategy: NAV against the vectorized reference, online = offline predictions,
trading rules, run modes, and the shared basket / rebalancing functions."""
from dataclasses import replace

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
from conftest import EMPTY_BASKETS, START
from doubles import LinearSignal

from feeds import add_panel_feeds
from strategies import (BOOKS, SELECTIONS, AShareCommission, LSTMTercileStrategy, StrategyParamError, StrategyWarning,
                        book_returns, book_sides, book_weights, form_baskets, plan_rebalance)


class Recording(LSTMTercileStrategy):
    """The strategy, plus every order it sends and every fill."""

    def __init__(self):
        super().__init__()
        self.sent, self.fills = [], []

    def notify_order(self, order):
        super().notify_order(order)
        if order.status == order.Submitted:
            self.sent.append((order.ref, month(order.created.dt), order.data._name, order.isbuy()))
        if order.status == order.Completed:
            self.fills.append(dict(code=order.data._name, buy=order.isbuy(), created=month(order.created.dt),
                                   booked=month(self.datetime[0]), size=order.executed.size,
                                   price=order.executed.price))


def month(dtnum):
    return pd.Timestamp(bt.num2date(dtnum)) + pd.offsets.MonthEnd(0)


def backtest(panel, signal, frictionless=False, mode=None, **params):
    cerebro = bt.Cerebro(stdstats=False, **(mode or {}))
    cerebro.broker.setcash(1e7)
    if frictionless:
        params["lot"] = 0
        cerebro.broker.addcommissioninfo(AShareCommission(commission=0.0, min_commission=0.0,
                                                          stamp_duty=0.0, lot=0))
    else:
        cerebro.broker.addcommissioninfo(AShareCommission())
    cerebro.addstrategy(Recording, signal=signal, **params)
    add_panel_feeds(cerebro, panel, start=START)
    cerebro.addanalyzer(bt.analyzers.TimeReturn, timeframe=bt.TimeFrame.Months, _name="monthly")
    return cerebro.run()[0]


def broker_returns(strategy):
    returns = pd.Series(strategy.analyzers.monthly.get_analysis())
    returns.index = pd.DatetimeIndex(returns.index)
    return returns


@pytest.mark.parametrize("selection", SELECTIONS)
@pytest.mark.parametrize("book", BOOKS)


def test_nav_equals_the_vectorized_reference(panel, signal, book, selection):
    strategy = backtest(panel, signal, frictionless=True, book=book, selection=selection)
    reference = book_returns(panel, strategy.predictions(), selection=selection, book=book)
    assert len(reference) == len(strategy.records) - 1 == 30
    ours = broker_returns(strategy).reindex(reference.index)
    nav, nav_reference = (1 + ours).cumprod(), (1 + reference).cumprod()
    np.testing.assert_allclose(nav.to_numpy(), nav_reference.to_numpy(), rtol=0, atol=1e-9)
    assert strategy.rejected_orders == 0
    assert (nav - 1).abs().max() > 0.05  # the book did trade


def test_the_trading_rules_bind_in_the_test_market(panel, signal):
    # The equality above would be vacuous if no rule ever bound: without the flags the
    # reference NAV is visibly different.
    strategy = backtest(panel, signal, frictionless=True, book="long_short")
    predictions = strategy.predictions()
    flat = np.zeros(panel.listed.shape, bool)
    unflagged = replace(panel, suspended=flat, limit_up=flat, limit_down=flat)
    with_rules = (1 + book_returns(panel, predictions, book="long_short")).cumprod()
    without = (1 + book_returns(unflagged, predictions, book="long_short")).cumprod()
    assert (with_rules - without).abs().max() > 1e-3


def test_reference_covers_positions_stuck_in_delisted_stocks(panel, signal):
    strategy = backtest(panel, signal, frictionless=True, book="low")
    last_date = panel.dates[-1]
    stuck = [d._name for d in strategy.stocks
             if strategy.broker.positions.get(d) and strategy.broker.positions[d].size
             and month(d.datetime[0]) < last_date]
    assert stuck, "the market should leave the book holding a delisted stock"


@pytest.mark.parametrize("mode", [dict(preload=True, runonce=False), dict(preload=False, runonce=False),
                                  dict(exactbars=1), dict(exactbars=-1), dict(exactbars=-2)],
                         ids=lambda m: ",".join(f"{k}={v}" for k, v in m.items()))
def test_every_run_mode_gives_the_same_run(panel, signal, mode):
    params = dict(book="long_short", selection="top_pct")
    base = backtest(panel, signal, **params)
    other = backtest(panel, signal, mode=mode, **params)
    assert [r.value for r in other.records] == [r.value for r in base.records]
    assert other.fills == base.fills
    pd.testing.assert_frame_equal(other.predictions(), base.predictions())


def test_online_predictions_equal_predict_panel(panel, signal):
    strategy = backtest(panel, signal)
    online = strategy.predictions()
    offline = signal.predict_panel(panel, online.index.get_level_values("date").unique())
    pd.testing.assert_frame_equal(online, offline, check_exact=True)
    assert online.index.get_level_values("date")[0] == pd.Timestamp(START) + pd.offsets.MonthEnd(0)


# a 3-step model rarely makes "up" the most probable class: its high book is cash some months
@pytest.mark.filterwarnings(EMPTY_BASKETS)
def test_online_predictions_equal_predict_panel_of_a_trained_signal_model(panel):
    signals = pytest.importorskip("signals", reason="signals package not importable")
    if not hasattr(signals, "fit"):
        pytest.skip("signals.fit is not available yet")
    spec = signals.SignalSpec(window=signals.WindowConfig(window=4), model=signals.ModelConfig(hidden=8, layers=1),
                              train=signals.TrainConfig(steps=3, batch_size=200, eval_every=3, eval_samples=0,
                                                        progress=False))
    result = signals.fit(panel, "2012-05", "2013-12", spec, baseline=False, progress=False)
    model = result.signal
    strategy = backtest(panel, model)
    online = strategy.predictions()
    dates = online.index.get_level_values("date").unique()
    columns = ["p_down", "p_neutral", "p_up"]
    # Bit for bit on the same codes (the stocks that have a feed, i.e. a bar in the run, and those
    # listed only in the history months before START, which the feeds hand over) ...
    feeds_only = panel.take(cols=np.sort(panel.codes.get_indexer(strategy.history_codes)))
    offline = model.predict_panel(feeds_only, dates)
    assert online.index.equals(offline.index) and len(online) > 500
    np.testing.assert_array_equal(online[columns].to_numpy(np.float32), offline[columns].to_numpy(np.float32))
    assert (online["pred"].astype(str) == offline["pred"].astype(str)).all()
    # ... and to float32 rounding on the whole panel: its extra never-listed columns change
    # the order of the model's float32 sums, not the result.
    offline = model.predict_panel(panel, dates)
    assert online.index.equals(offline.index)
    np.testing.assert_allclose(online[columns].to_numpy(), offline[columns].to_numpy(), rtol=0, atol=1e-6)


def test_orders_follow_the_a_share_rules(panel, signal):
    strategy = backtest(panel, signal, book="long_short", selection="top_pct")
    codes = list(panel.codes)
    assert strategy.fills and strategy.rejected_orders == 0
    for fill in strategy.fills:
        t, i = panel.dates.get_loc(fill["created"]), codes.index(fill["code"])
        assert panel.listed[t, i] and not panel.suspended[t, i]
        assert not (fill["buy"] and panel.limit_up[t, i]), fill
        assert not (not fill["buy"] and panel.limit_down[t, i]), fill
        assert fill["size"] % 100 == 0
        # close execution: the signal month's close, booked on the next bar (SPEC §9)
        assert fill["price"] == pytest.approx(panel.close[t, i], rel=1e-14)
        assert fill["booked"] == panel.dates[t + 1]
    sent = pd.DataFrame(strategy.sent, columns=["ref", "month", "code", "buy"])
    for _, orders in sent.groupby("month"):
        if orders["buy"].any() and (~orders["buy"]).any():
            assert orders.loc[~orders["buy"], "ref"].max() < orders.loc[orders["buy"], "ref"].min()
    sizes = [strategy.broker.positions[d].size for d in strategy.stocks if d in strategy.broker.positions]
    assert min(sizes) < 0 < max(sizes)  # long_short sells short


@pytest.mark.parametrize("book", ["high", "neutral", "low"])
def test_long_only_books_never_sell_short(panel, signal, book):
    strategy = backtest(panel, signal, book=book, selection="top_pct")
    position = {}
    for fill in strategy.fills:  # in execution order
        position[fill["code"]] = position.get(fill["code"], 0) + fill["size"]
        assert position[fill["code"]] >= 0


def test_next_open_fills_at_the_next_bar(panel, signal):
    # sized at one close and filled at the next bar's price, a fully invested book runs short of
    # cash for some buys: the run says so instead of holding less than its target in silence
    with pytest.warns(StrategyWarning, match=r"rejected \d+ of \d+ orders.*next_open"):
        strategy = backtest(panel, signal, execution="next_open")
    assert strategy.fills and not strategy.broker.p.coc
    codes = list(panel.codes)
    for fill in strategy.fills:
        t, i = panel.dates.get_loc(fill["booked"]), codes.index(fill["code"])
        assert fill["booked"] > fill["created"]
        # a panel feed opens at its month-end close
        assert fill["price"] == pytest.approx(panel.close[t, i], rel=1e-14)


def test_rebalance_and_gross(panel, signal):
    strategy = backtest(panel, signal, frictionless=True, rebalance=3, gross=0.5)
    decisions = [r.date for r in strategy.records]
    assert len(decisions) == 31
    assert {f["created"] for f in strategy.fills} <= set(decisions[::3])
    assert [r.rebalanced for r in strategy.records] == [k % 3 == 0 for k in range(31)]
    for record in strategy.records[1:3]:  # half invested between the first two rebalances
        assert 0.4 < 1 - record.cash / record.value < 0.6


def test_basket_records(panel, signal):
    strategy = backtest(panel, signal, selection="class")
    baskets = strategy.basket_frame()
    predictions = strategy.predictions()
    assert set(baskets.columns) == {"high", "neutral", "low"}
    assert (baskets.sum(axis=1) == 1).all()  # class selection: exactly one basket each
    joined = baskets.join(predictions["pred"], how="left")
    assert (joined.loc[joined["high"], "pred"] == "up").all()
    assert (joined.loc[joined["low"], "pred"] == "down").all()


def test_predictions_do_not_see_the_future(panel, signal):
    cut = 20
    altered = replace(panel, factors=panel.factors.copy(), close=panel.close.copy(),
                      suspended=panel.suspended.copy())
    rng = np.random.default_rng(0)
    altered.factors[cut + 1:] = rng.normal(size=altered.factors[cut + 1:].shape)
    altered.close[cut + 1:] *= 1.5
    altered.suspended[cut + 1:] = rng.random(altered.suspended[cut + 1:].shape) < 0.3
    a = backtest(panel, signal)
    b = backtest(altered, signal)
    until = panel.dates[cut]
    pa, pb = a.predictions(), b.predictions()
    pd.testing.assert_frame_equal(pa.loc[:until], pb.loc[:until])
    assert not pa.loc[until + pd.Timedelta(days=1):].equals(pb.loc[until + pd.Timedelta(days=1):])
    ba, bb = a.basket_frame(), b.basket_frame()
    pd.testing.assert_frame_equal(ba.loc[:until], bb.loc[:until])


@pytest.mark.parametrize("params, message", [
    (dict(book="short"), "book must be one of high, neutral, low, long_short"),
    (dict(selection="top"), "selection must be one of class, top_pct"),
    (dict(top_pct=1.5), "top_pct must lie in"),
    (dict(gross=0), "gross must be positive"),
    (dict(lot=-100), "lot must be >= 0"),
    (dict(rebalance=0), "rebalance must be 'monthly' or a whole number"),
    (dict(execution="vwap"), "execution must be one of close, next_open"),
    (dict(signal=None), "needs signal="),
])
def test_bad_params_are_one_clear_error(panel, signal, params, message):
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.addstrategy(LSTMTercileStrategy, **{"signal": signal, **params})
    add_panel_feeds(cerebro, panel.slice(None, "2012-04"))
    with pytest.raises(StrategyParamError, match=message):
        cerebro.run()


def test_a_strategy_without_stock_feeds_says_so(panel):
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.addstrategy(LSTMTercileStrategy, signal=LinearSignal(["no_such_factor"]))
    add_panel_feeds(cerebro, panel.slice(None, "2012-04"))
    with pytest.raises(StrategyParamError, match="no data feed carries the signal's factor lines"):
        cerebro.run()


# ----------------------------------------------------------- shared decision functions
def test_form_baskets_by_class_and_by_top_pct():
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7],
                      [np.nan, np.nan, np.nan], [0.3, 0.3, 0.4]])
    eligible = np.array([True, True, True, False, True, True])
    by_class = form_baskets(probs, eligible, "class")
    assert by_class["high"].tolist() == [False, True, False, False, False, True]
    assert by_class["neutral"].tolist() == [False, False, True, False, False, False]
    assert by_class["low"].tolist() == [True, False, False, False, False, False]
    top = form_baskets(probs, eligible, "top_pct", top_pct=0.5)  # 4 eligible -> 2 each
    assert top["high"].tolist() == [False, True, False, False, False, True]
    assert top["low"].tolist() == [True, False, False, False, False, True]
    assert top["neutral"].sum() == 2 and top["neutral"][2]


def test_book_weights():
    baskets = {"high": np.array([1, 1, 0, 0], bool), "neutral": np.array([0, 0, 1, 0], bool),
               "low": np.array([0, 0, 0, 1], bool)}
    np.testing.assert_allclose(book_weights(baskets, "high", 1.0), [0.5, 0.5, 0, 0])
    np.testing.assert_allclose(book_weights(baskets, "long_short", 1.0), [0.25, 0.25, 0, -0.5])
    np.testing.assert_allclose(book_weights(baskets, "neutral", 0.8), [0, 0, 0.8, 0])
    np.testing.assert_allclose(book_weights(baskets, "low", 1.0), [0, 0, 0, 1.0])  # a low book is held long
    shared = {**baskets, "low": np.array([0, 1, 0, 1], bool)}  # stock 1 in both: left out of each side
    np.testing.assert_allclose(book_weights(shared, "long_short", 1.0), [0.5, 0, 0, -0.5])
    assert {k: v.tolist() for k, v in book_sides(shared, "long_short").items()} == {
        "high": [True, False, False, False], "low": [False, False, False, True]}
    same = {**baskets, "low": baskets["high"]}
    np.testing.assert_allclose(book_weights(same, "long_short", 1.0), [0, 0, 0, 0])
    with pytest.raises(StrategyParamError, match="book must be one of"):
        book_weights(baskets, "short")


def test_plan_rebalance_applies_each_rule():
    current = np.array([0.3, 0.3, 0.2, 0.0, 0.0])
    target = np.array([0.0, 0.0, 0.5, 0.5, 0.5])
    everything = np.ones(5, bool)
    # stock 0 cannot trade (suspended), stock 1 is limit-down (cannot sell), 4 is limit-up
    new = plan_rebalance(current, target, tradable=np.array([False, 1, 1, 1, 1], bool),
                         can_buy=np.array([1, 1, 1, 1, 0], bool), can_sell=np.array([1, 0, 1, 1, 1], bool),
                         cash=0.2)
    assert new[0] == 0.3 and new[1] == 0.3 and new[4] == 0.0
    # buys (0.3 + 0.5) exceed the 0.2 cash: both scaled by the same factor 0.25
    np.testing.assert_allclose(new[2:4], [0.2 + 0.3 * 0.25, 0.5 * 0.25])
    np.testing.assert_allclose(new.sum(), 1.0)
    # fees come out of the budget too
    fee = lambda trades: 0.01 * np.abs(trades)  # noqa: E731
    new = plan_rebalance(current, np.array([0, 0, 0.5, 0.5, 0]), everything, everything, everything,
                         cash=0.2, fee=fee)
    spent = (new - current).clip(0).sum() + fee((new - current).clip(0)).sum()
    proceeds = (current - new).clip(0).sum() - fee(-(current - new).clip(0)).sum()
    # within budget; the fee bound (fees at the unscaled sizes) leaves at most their difference
    assert 0.2 + proceeds - 0.001 < spent <= 0.2 + proceeds
