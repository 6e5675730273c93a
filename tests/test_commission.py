"""AShareCommission, in the manner of backtrader's own tests/test_comminfo.py, plus a broker run."""
import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from strategies import AShareCommission, round_to_lot

PRICE = 10.0


def check_stock_basics(comm):
    # The stock-like accounting backtrader's test_comminfo checks for every scheme.
    size, newprice = 1000, 10.5
    assert comm.getoperationcost(size, PRICE) == size * PRICE
    assert comm.getoperationcost(-size, PRICE) == size * PRICE
    assert comm.getvaluesize(size, PRICE) == size * PRICE
    assert comm.getvaluesize(-size, PRICE) == -size * PRICE
    assert comm.profitandloss(size, PRICE, newprice) == pytest.approx(size * (newprice - PRICE))
    assert comm.profitandloss(-size, PRICE, newprice) == pytest.approx(-size * (newprice - PRICE))
    assert comm.cashadjust(size, PRICE, newprice) == 0.0


def test_stock_accounting_is_backtraders():
    check_stock_basics(AShareCommission())
    check_stock_basics(AShareCommission(commission=0.0, min_commission=0.0, stamp_duty=0.0, lot=0))


def test_buy_pays_commission_with_minimum_and_no_stamp_duty():
    comm = AShareCommission()  # 0.03%, min 5 CNY, stamp duty 0.1%
    assert comm.getcommission(10_000, PRICE) == pytest.approx(100_000 * 0.0003)  # 30 CNY
    assert comm.getcommission(1_000, PRICE) == pytest.approx(5.0)  # 3 CNY -> the minimum
    assert comm.getcommission(0, PRICE) == 0.0


def test_sell_pays_stamp_duty_and_the_fee_is_never_negative():
    comm = AShareCommission()
    # Backtrader passes a negative size for sells: abs() for the commission, duty on top.
    assert comm.getcommission(-10_000, PRICE) == pytest.approx(30.0 + 100.0)
    assert comm.getcommission(-1_000, PRICE) == pytest.approx(5.0 + 10.0)
    for size in (-5_000, -100, 100, 5_000):
        assert comm.getcommission(size, PRICE) > 0
    assert comm.confirmexec(-10_000, PRICE) == comm.getcommission(-10_000, PRICE)


def test_rates_are_params():
    comm = AShareCommission(commission=0.001, min_commission=0.0, stamp_duty=0.002)
    assert comm.getcommission(1_000, PRICE) == pytest.approx(10.0)
    assert comm.getcommission(-1_000, PRICE) == pytest.approx(10.0 + 20.0)
    free = AShareCommission(commission=0.0, min_commission=0.0, stamp_duty=0.0)
    assert free.getcommission(-1_000, PRICE) == 0.0 and free.getcommission(1_000, PRICE) == 0.0


def test_getsize_rounds_down_to_lots_or_returns_fractional_shares():
    assert AShareCommission().getsize(PRICE, 25_999.0) == 2_500
    assert AShareCommission().getsize(PRICE, 999.0) == 0
    assert AShareCommission(lot=0).getsize(PRICE, 25_999.0) == pytest.approx(2_599.9)
    assert AShareCommission(lot=10).getsize(PRICE, 25_999.0) == 2_590


def test_round_to_lot_goes_toward_zero_and_ignores_float_noise():
    assert round_to_lot(299.99999999999, 100) == 300.0
    assert round_to_lot(-250.0, 100) == -200.0
    assert round_to_lot(150.7, 0) == 150.7
    np.testing.assert_array_equal(round_to_lot(np.array([99.0, 100.0, -199.0]), 100), [0.0, 100.0, -100.0])
    with pytest.raises(ValueError, match="lot must be >= 0"):
        round_to_lot(100.0, -1)


@pytest.mark.parametrize("name", ["commission", "min_commission", "stamp_duty", "lot"])
def test_negative_settings_are_refused(name):
    with pytest.raises(ValueError, match=f"AShareCommission {name} must be >= 0"):
        AShareCommission(**{name: -1})


class BuyThenSell(bt.Strategy):
    params = (("size", 1_000),)

    def __init__(self):
        self.fills = []

    def notify_order(self, order):
        if order.status == order.Completed:
            self.fills.append((order.isbuy(), order.executed.size, order.executed.price, order.executed.comm))

    def next(self):
        if len(self) == 1:
            self.buy(size=self.p.size)
        elif len(self) == 3:
            self.sell(size=self.p.size)


def test_the_broker_charges_both_sides_and_stamp_duty_on_the_sell():
    dates = pd.date_range("2020-01-31", periods=5, freq="ME")
    prices = pd.DataFrame({"open": [10.0, 10.0, 12.0, 12.0, 12.0]}, index=dates)
    prices["high"] = prices["low"] = prices["close"] = prices["open"]
    prices["volume"] = 1e6
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=prices))
    cerebro.broker.setcash(100_000.0)
    cerebro.broker.addcommissioninfo(AShareCommission())
    cerebro.addstrategy(BuyThenSell)
    strategy = cerebro.run()[0]
    (bought, size_b, price_b, comm_b), (sold, size_s, price_s, comm_s) = strategy.fills
    assert bought and not sold and size_b == 1_000 and size_s == -1_000
    assert comm_b == pytest.approx(5.0)  # 3 CNY commission -> 5 CNY minimum
    assert comm_s == pytest.approx(5.0 + 0.001 * 12_000)
    expected = 100_000.0 - 1_000 * price_b - comm_b + 1_000 * price_s - comm_s
    assert cerebro.broker.getcash() == pytest.approx(expected)
    assert cerebro.broker.getvalue() == pytest.approx(expected)
