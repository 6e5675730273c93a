"""``Holdings``: month-end positions and executed transactions of a Backtrader book.

An analyzer that works with any strategy (it reads the broker, not the strategy's
records), so a plain Backtrader script can add it next to its own analyzers::

    cerebro.addanalyzer(Holdings, _name="holdings")
    positions, transactions = strategy.analyzers.holdings.get_analysis()

``run_book`` adds it to every run (``BookRun.strategy.analyzers.holdings``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .lean import LeanAnalyzer, bar_month_end

POSITION_COLUMNS = ["date", "code", "shares", "price", "value", "weight"]
TRANSACTION_COLUMNS = ["date", "decision_date", "code", "shares", "price", "value", "commission"]


class Holdings(LeanAnalyzer):
    """Positions at every month-end bar and every executed order.

    Positions are read after the broker has processed the bar (the fills of the previous
    decision are in, the orders of this bar's decision are not): at month-end ``t`` they
    are what the book held over the month ending at ``t``, valued at ``t``'s close, the
    convention of the book's monthly returns. One row per stock held plus a ``cash`` row
    (``shares`` = cash, ``price`` = 1). ``weight`` = value / broker value.

    Transactions: one row per completed order; ``date`` is the month-end of the bar on
    which the broker booked the fill (with close execution the month after the decision,
    see SPEC §9), ``decision_date`` the month-end the order was sent; ``shares`` is signed
    (negative = sell), ``value`` = shares x price, ``commission`` the fee charged.

    Params: none.

    ``get_analysis()`` returns ``(positions, transactions)``, two long DataFrames with
    the columns of :data:`POSITION_COLUMNS` and :data:`TRANSACTION_COLUMNS`.
    """

    def start(self):
        self._positions: list[tuple] = []
        self._transactions: list[tuple] = []
        self._last = None

    def next(self):
        dtnum = self.strategy.datetime[0]
        if dtnum == self._last:
            return
        self._last = dtnum
        date = bar_month_end(dtnum)
        broker = self.strategy.broker
        total = broker.getvalue()
        for data, position in broker.positions.items():
            if position.size:
                price = float(data.close[0])
                value = position.size * price
                self._positions.append((date, data._name, float(position.size), price, value,
                                        value / total if total else np.nan))
        cash = broker.getcash()
        if (self._positions and self._positions[-1][0] == date) or cash != broker.startingcash:
            self._positions.append((date, "cash", cash, 1.0, cash, cash / total if total else np.nan))

    def notify_order(self, order):
        if order.status != order.Completed:
            return
        size, price = float(order.executed.size), float(order.executed.price)
        self._transactions.append((bar_month_end(order.executed.dt), bar_month_end(order.created.dt),
                                   order.data._name,
                                   size, price, size * price, float(order.executed.comm)))

    def get_analysis(self):
        positions = pd.DataFrame(self._positions, columns=POSITION_COLUMNS)
        transactions = pd.DataFrame(self._transactions, columns=TRANSACTION_COLUMNS)
        for frame in (positions, transactions):
            for col in ("date", "decision_date"):
                if col in frame:
                    frame[col] = pd.to_datetime(frame[col])
            frame["code"] = frame["code"].astype(str)
        return positions, transactions
