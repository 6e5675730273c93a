"""Analyzers of :class:`~strategies.tercile.LSTMTercileStrategy` runs.

They read the strategy's :class:`~strategies.tercile.MonthRecord` s as the run goes (one
per decision month-end), so they only work on that strategy (or a subclass).

* :class:`BasketReturns`: equal-weight paper returns of every basket and of the tradable
  universe, so one run yields all baskets whatever ``book`` it trades.
* :class:`Turnover`: traded value per rebalance and the book's one-way turnover.
* :class:`PredictionLog`: monthly accuracy against the realised class, IC and rank IC
  (scored by ``signals.evaluate``, as the reports score the predictions frame).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from feeds.panel import Panel
from signals.evaluate import information_coefficients, monthly_accuracy
from signals.labels import LabelConfig
from signals.predictions import prediction_frame

from .baskets import BASKETS
from .lean import LeanAnalyzer, bar_month_end


class _RecordAnalyzer(LeanAnalyzer):
    """Base: calls :meth:`on_month` once for each new decision record of the strategy."""

    def start(self):
        if not hasattr(self.strategy, "records"):
            raise TypeError(f"{type(self).__name__} needs LSTMTercileStrategy "
                            f"(got {type(self.strategy).__name__})")
        self._seen = 0

    def next(self):
        records = self.strategy.records
        while self._seen < len(records):
            previous = records[self._seen - 1] if self._seen else None
            self.on_month(previous, records[self._seen])
            self._seen += 1

    def on_month(self, previous, current):
        raise NotImplementedError


def _realised(previous, current) -> np.ndarray:
    """Return of each stock from ``previous`` to ``current`` on last known closes."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return current.prices / previous.prices - 1.0


class BasketReturns(_RecordAnalyzer):
    """Equal-weight paper returns of the high / neutral / low baskets and the universe.

    The baskets formed at month-end ``t`` (and the universe of stocks tradable at ``t``)
    earn the equal-weight mean of their close-to-close returns from ``t`` to ``t+1``; a
    stock that delists in between counts at its last close, as the broker values it.
    These are paper returns: no trading rules, costs or lots (the book's own NAV is the
    broker's).

    Params: none.

    ``get_analysis()`` returns a DataFrame indexed by the month-end at which the return is
    realised (``t+1``), columns ``high, neutral, low, universe`` (NaN for an empty basket).
    """

    def start(self):
        super().start()
        self.rows: dict[pd.Timestamp, dict[str, float]] = {}

    def on_month(self, previous, current):
        if previous is None:
            return
        ret = _realised(previous, current)
        row = {}
        for name, members in list(previous.baskets.items()) + [("universe", previous.tradable)]:
            row[name] = float(np.mean(ret[members])) if members.any() else np.nan
        self.rows[current.date] = row

    def get_analysis(self) -> pd.DataFrame:
        frame = pd.DataFrame.from_dict(self.rows, orient="index",
                                       columns=list(BASKETS) + ["universe"], dtype=np.float64)
        return frame.rename_axis("date")


class Turnover(_RecordAnalyzer):
    """Traded value of each rebalance and the book's one-way turnover.

    The orders a rebalance at month-end ``t`` sends are attributed to ``t`` (with close
    execution the broker books them on the next bar). One-way turnover is
    ``(buy + sell) / (2 * value)``, ``value`` being the broker value at the decision:
    0.5 for building a fully invested book from cash, 1.0 for replacing it entirely.

    Params: none.

    ``get_analysis()`` returns a DataFrame indexed by decision month-end, columns ``buy``,
    ``sell`` (executed value, commissions excluded), ``commission``, ``turnover``; a
    rebalance whose orders never executed (the last month of a run) is not listed.
    """

    def start(self):
        super().start()
        self.traded: dict[pd.Timestamp, dict[str, float]] = {}
        self.values: dict[pd.Timestamp, float] = {}

    def on_month(self, previous, current):
        self.values[current.date] = current.value

    def notify_order(self, order):
        if order.status != order.Completed:
            return
        date = bar_month_end(order.created.dt)
        row = self.traded.setdefault(date, {"buy": 0.0, "sell": 0.0, "commission": 0.0})
        row["buy" if order.isbuy() else "sell"] += abs(order.executed.size * order.executed.price)
        row["commission"] += order.executed.comm

    def get_analysis(self) -> pd.DataFrame:
        frame = pd.DataFrame.from_dict(self.traded, orient="index",
                                       columns=["buy", "sell", "commission"], dtype=np.float64)
        frame = frame.sort_index()
        value = frame.index.map(self.values).to_numpy(np.float64)
        frame["turnover"] = (frame["buy"] + frame["sell"]) / (2.0 * value)
        return frame.rename_axis("date")


class PredictionLog(_RecordAnalyzer):
    """Monthly out-of-sample quality of the strategy's predictions, as the run streams.

    The predictions made at month-end ``t`` are scored against the close-to-close returns
    realised by ``t+1`` (stocks with a bar at both; a stock that delists in between has no
    outcome) with the project's evaluation functions (``signals.evaluate``), so the figures
    are the ones the reports compute offline from the predictions frame:

    * ``accuracy``: share of stocks whose predicted class (argmax) is the realised class
      (``signals.labels`` with ``labels``), ``no_skill``: share of the month's most frequent
      realised class, ``n``: stocks scored;
    * ``ic`` / ``rank_ic``: Pearson / Spearman correlation of ``p_up - p_down`` with the
      realised return (NaN for a month with fewer than 10 stocks).

    Params:

      - ``labels`` (default: ``None``): the ``signals.LabelConfig`` of the realised
        classes; ``None`` takes the signal's ``spec.labels`` (the labels it was trained
        on; a ``SignalModel`` has one) and falls back to ``LabelConfig()`` (the seed's
        fixed +/-3%)

    ``get_analysis()`` returns a DataFrame indexed by the prediction month-end ``t``:
    ``n``, ``accuracy``, ``no_skill``, ``ic``, ``rank_ic``.
    """

    params = (("labels", None),)
    COLUMNS = ["n", "accuracy", "no_skill", "ic", "rank_ic"]

    def start(self):
        super().start()
        labels = self.p.labels if self.p.labels is not None else getattr(
            getattr(self.strategy.p.signal, "spec", None), "labels", None)
        self.labels = labels if isinstance(labels, LabelConfig) else LabelConfig()
        self.rows: dict[pd.Timestamp, dict[str, float]] = {}

    def on_month(self, previous, current):
        if previous is None:
            return
        outcome = np.where(current.present, _realised(previous, current), np.nan)
        codes = self.strategy.codes
        # The two streamed months as a panel, so that signals.evaluate scores them.
        months = Panel(dates=[previous.date, current.date], codes=codes,
                       factors=np.zeros((2, len(codes), 1), np.float32), factor_names=["unused"],
                       ret=np.vstack([np.full(len(codes), np.nan), outcome]),
                       close=np.vstack([previous.prices, current.prices]),
                       listed=np.vstack([previous.present, current.present]))
        predictions = prediction_frame([previous.date], codes, previous.probs[None])
        accuracy = monthly_accuracy(predictions, months, self.labels)
        ics = information_coefficients(predictions, months)
        if accuracy.empty:
            return
        row = {"n": int(accuracy["n"].iloc[0]), "accuracy": float(accuracy["accuracy"].iloc[0]),
               "no_skill": float(accuracy["no_skill"].iloc[0]), "ic": np.nan, "rank_ic": np.nan}
        if not ics.empty:
            row.update(ic=float(ics["ic"].iloc[0]), rank_ic=float(ics["rank_ic"].iloc[0]))
        self.rows[previous.date] = row

    def get_analysis(self) -> pd.DataFrame:
        frame = pd.DataFrame.from_dict(self.rows, orient="index", columns=self.COLUMNS)
        return frame.astype({"n": "int64"} if len(frame) else {}).rename_axis("date")
