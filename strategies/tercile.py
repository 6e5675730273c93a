"""``LSTMTercileStrategy``: the seed's monthly tercile baskets as a Backtrader strategy."""
from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass

import backtrader as bt
import numpy as np
import pandas as pd

from feeds.btfeed import PanelFeed, Snapshot, factor_line_name, gather_snapshot, history_snapshots
from feeds.panel import FLAG_COLUMNS, Panel, month_end
from signals.labels import CLASSES
from signals.predictions import prediction_frame

from .baskets import (BASKETS, BOOK_BASKETS, StrategyParamError, StrategyWarning, book_sides, book_weights,
                      check_choices, form_baskets, plan_rebalance)
from .commission import round_to_lot
from .lean import bar_month_end

EXECUTIONS = ("close", "next_open")


#: the mean share of the broker value that lot rounding may leave out of a book before it warns
#: (the default run's class high book, 100 million yuan over some 2,000 stocks, holds 2.6% of its
#: value in cash on average: its series/positions.parquet)
LOT_SHORTFALL = 0.05
#: the share of the broker value that may sit in held stocks without a bar (delisted) before a
#: run warns: the strategy cannot sell them, so they stay at their last close, earning 0%
STRANDED = 0.05


@dataclass
class MonthRecord:
    """What the strategy decided at one month-end (arrays over its N stock feeds).

    Attributes
    ----------
    date : Timestamp
        The month-end of the decision.
    probs : ndarray [N, 3]
        Class probabilities (NaN: no prediction).
    present : ndarray [N] bool
        Feeds with a bar at ``date``.
    tradable : ndarray [N] bool
        Present, not suspended, with a price (the universe baskets are formed from).
    baskets : dict of ndarray [N] bool
        ``high``, ``neutral``, ``low`` membership.
    prices : ndarray [N]
        Each stock's last known close at ``date`` (a delisted stock keeps its last one, as
        the broker values it).
    value : float
        Broker value at the decision (before its orders fill).
    cash : float
        Broker cash at the decision.
    rebalanced : bool
        Whether the book was traded at ``date`` (see the ``rebalance`` param).
    """

    date: pd.Timestamp
    probs: np.ndarray
    present: np.ndarray
    tradable: np.ndarray
    baskets: dict
    prices: np.ndarray
    value: float
    cash: float
    rebalanced: bool


class LSTMTercileStrategy(bt.Strategy):
    """Monthly high / neutral / low baskets from a ``SignalModel``, traded with A-share rules.

    At every month-end bar the strategy reads the snapshot its stock feeds stream (feeds
    without a bar at the strategy's date are not listed that month: not yet listed, or
    delisted and still presenting their last bar), keeps the last ``signal.window``
    snapshots, builds a :class:`~feeds.panel.Panel` of them and asks
    ``signal.predict(history)`` for class probabilities. It never sees a month that has
    not been streamed. It then forms the baskets from the tradable stocks (bar present,
    not suspended, priced), records them, and trades ``book``: sells first, then buys
    paid from the cash they free, in whole lots; suspended stocks are not traded,
    limit-up blocks buys and limit-down blocks sells. Late listings are handled in
    ``prenext`` by the same logic as ``next``.

    Stock feeds are the datas that carry a line for every ``signal.factor_names`` factor
    (:class:`feeds.PanelFeed`, or any feed with the same line names); other datas (a
    benchmark index, say) are left alone.

    Params:

      - ``signal`` (default: ``None``): the served model: ``window``, ``factor_names``
        and ``predict(history) -> [N, 3]`` probabilities (down, neutral, up) for the
        history's last month (a ``signals.SignalModel``)
      - ``selection`` (default: ``'class'``): ``'class'`` puts each stock in the basket of
        its most probable class; ``'top_pct'`` takes, for each class, the ``top_pct``
        share of stocks with the largest probability of that class
      - ``top_pct`` (default: ``0.30``): basket share for ``'top_pct'``
      - ``book`` (default: ``'high'``): what to hold: ``'high'``, ``'neutral'``,
        ``'low'`` (long-only baskets) or ``'long_short'`` (long ``high`` and short
        ``low``, each side at ``gross / 2``; a stock in both baskets, possible with
        ``'top_pct'``, is left out of both); only ``'long_short'`` sells short
      - ``weighting`` (default: ``'equal'``): equal weights within a basket
      - ``gross`` (default: ``1.0``): target gross exposure as a share of the broker value:
        at most 1 for a long-only book (the broker lends no cash), at most 2 for
        ``'long_short'`` (``gross / 2`` long, ``gross / 2`` short)
      - ``lot`` (default: ``100``): board lot; target positions are rounded toward zero
        to whole lots (``0``: fractional shares)
      - ``rebalance`` (default: ``1``): months between trades (``'monthly'`` = 1); the
        baskets are still formed and recorded every month
      - ``execution`` (default: ``'close'``): ``'close'`` fills at the decision month's
        close (``broker.set_coc(True)``; the broker books the fill on the next bar, so
        transactions carry the next month's date); ``'next_open'`` fills at the open of
        the stock's next bar (on a panel feed, whose open is the month-end close, that is
        the next month-end: a one-month execution lag)
      - ``start`` (default: ``None``): first month-end to decide at; earlier snapshots are
        warm-up. ``None``: the ``tradestart`` of the panel feeds (see
        :func:`feeds.add_panel_feeds`), else as soon as ``window`` months are streamed.
        A setting that gives no decision at all raises :class:`StrategyParamError` (panel
        feeds, at the start of the run), and so does broker slippage on panel feeds; another
        strategy on the broker, a first decision later than ``start``, a run without
        decision, a basket of the book left empty at some decisions, board lots leaving more
        than :data:`LOT_SHORTFALL` of the value out of the book and orders the broker
        rejected warn (:class:`StrategyWarning`)
      - ``last_decision`` (default: ``None``): last month-end to decide at; later month-ends
        (the one that realises the last decision's month) are valued and recorded without
        a prediction or a trade. ``None``: every month-end the feeds stream
      - ``industries`` (default: ``None``): industry names for the ``industry`` line of
        feeds other than :class:`feeds.PanelFeed` (which carry their own)

    Attributes after (and during) a run: ``records`` (a :class:`MonthRecord` per decision),
    ``codes`` (stock feed names), :meth:`predictions`, :meth:`basket_frame`,
    ``rejected_orders``, ``lot_shortfall`` (per rebalance, the share of the broker value
    that rounding to board lots left out of the book), ``stranded`` (per rebalance, the share
    of the broker value held in stocks without a bar that month: delisted, so never sold).
    """

    params = (
        ("signal", None),
        ("selection", "class"),
        ("top_pct", 0.30),
        ("book", "high"),
        ("weighting", "equal"),
        ("gross", 1.0),
        ("lot", 100),
        ("rebalance", 1),
        ("execution", "close"),
        ("start", None),
        ("last_decision", None),
        ("industries", None),
    )

    def __init__(self):
        p = self.p
        signal = p.signal
        if signal is None or not callable(getattr(signal, "predict", None)):
            raise StrategyParamError("LSTMTercileStrategy needs signal=<SignalModel> "
                                     "(an object with predict)")
        for attr in ("window", "factor_names"):
            if getattr(signal, attr, None) is None:
                raise StrategyParamError(f"signal has no '{attr}' attribute")
        check_choices(p.selection, p.book, p.top_pct, p.gross, p.weighting)
        if p.execution not in EXECUTIONS:
            raise StrategyParamError(f"execution must be one of {', '.join(EXECUTIONS)}, got {p.execution!r}")
        if p.lot is None or p.lot < 0:
            raise StrategyParamError(f"lot must be >= 0, got {p.lot}")
        self._rebalance_every = 1 if p.rebalance == "monthly" else p.rebalance
        if not isinstance(self._rebalance_every, int) or self._rebalance_every < 1:
            raise StrategyParamError(f"rebalance must be 'monthly' or a whole number of months >= 1, "
                                     f"got {p.rebalance!r}")
        self.window = int(signal.window)
        self.factor_names = list(signal.factor_names)
        self.stocks = self._stock_feeds()
        self.codes = pd.Index([d._name or f"data{i}" for i, d in enumerate(self.stocks)], dtype=object,
                              name="code")
        if self.codes.has_duplicates:
            duplicate = self.codes[self.codes.duplicated()][0]
            raise StrategyParamError(f"two stock feeds share the name '{duplicate}'")
        panel_feeds = [d for d in self.stocks if isinstance(d, PanelFeed)]
        self._industries = list(p.industries) if p.industries is not None else (
            panel_feeds[0].industries if panel_feeds else [])
        styles = panel_feeds[0].styles if panel_feeds else {}
        self._styles = {s: [f for f in m if f in self.factor_names] for s, m in styles.items()}
        self._styles = {s: m for s, m in self._styles.items() if m}
        self._with_mcap = all(hasattr(d.lines, "mcap") for d in self.stocks)
        if p.start is not None:
            self._first_decision = month_end([p.start])[0]
        else:
            starts = [d.tradestart for d in panel_feeds if d.tradestart is not None]
            self._first_decision = max(starts) if starts else None
        self._last_decision = None if p.last_decision is None else month_end([p.last_decision])[0]
        if None not in (self._first_decision, self._last_decision) and self._last_decision < self._first_decision:
            raise StrategyParamError(f"last_decision {self._last_decision.date()} is before the first decision "
                                     f"{self._first_decision.date()}: the strategy would make no decision")
        self._history: deque[tuple[pd.Timestamp, Snapshot]] = deque(maxlen=self.window + 1)
        # codes of the history panel: the stock feeds, then stocks listed only in the history
        # months the feeds hand over (no feed: they delisted before the first bar)
        self.history_codes = self.codes
        self._order = None  # permutation of history_codes into panel column order, if needed
        self._prices = np.full(len(self.stocks), np.nan)
        self._last_dtnum = None
        self.records: list[MonthRecord] = []
        self.rejected_orders = 0
        self.orders_sent = 0
        self.lot_shortfall = []  # per rebalance: exposure the board lots left out, share of value
        self.stranded = []  # per rebalance: (date, share of value held in stocks without a bar)
        self._seen_months: list[pd.Timestamp] = []
        self._warned_late = False

    def _stock_feeds(self) -> list:
        """The datas that carry every factor line of the signal (other datas, such as a
        benchmark carrying none of them, are left alone; one carrying only some is an error)."""
        lines = [factor_line_name(f) for f in self.factor_names]
        stocks, partial = [], []
        for data in self.datas:
            missing = [(f, line) for f, line in zip(self.factor_names, lines) if not hasattr(data.lines, line)]
            if not missing:
                stocks.append(data)
            elif len(missing) < len(lines):
                partial.append((data, missing))
        if partial:
            data, missing = partial[0]
            factor, line = missing[0]
            raise StrategyParamError(
                f"feed '{data._name}' lacks the line '{line}' of the signal's factor '{factor}' "
                f"({len(missing)} of the signal's {len(lines)} factor lines missing)")
        if not stocks:
            raise StrategyParamError(f"no data feed carries the signal's factor lines "
                                     f"(e.g. '{lines[0]}'); add feeds with feeds.add_panel_feeds()")
        return stocks

    def _start(self):
        # Backtrader's AnnualReturn reads the Broker observer, which Cerebro(stdstats=False)
        # (the setting for thousands of feeds) does not add: add that one observer here.
        if not hasattr(self.stats, "broker") and any(
                isinstance(a, bt.analyzers.AnnualReturn) for a in self.analyzers):
            self._addobserver(False, bt.observers.Broker)
        super()._start()

    def start(self):
        self.broker.set_coc(self.p.execution == "close")
        self._check_broker()
        self._check_streamed_months()

    def _check_broker(self):
        """Refuse broker slippage on panel feeds; warn when other strategies share the broker."""
        broker = self.broker.p
        slipped = bool(getattr(broker, "slip_perc", 0.0) or getattr(broker, "slip_fixed", 0.0))
        if slipped and any(isinstance(d, PanelFeed) for d in self.stocks):
            # Backtrader caps a slipped price at the bar's high and low; a month-end snapshot's
            # are its close, and a coc fill is capped by the NEXT bar's: wrong either way.
            raise StrategyParamError(
                "broker slippage (set_slippage_perc / set_slippage_fixed) cannot work on panel feeds: "
                "Backtrader caps a slipped price at the bar's high and low, which a month-end snapshot "
                "sets to its close, so with execution='close' a fill is capped by the next month's close "
                "and with 'next_open' the slippage is clipped to nothing; put trading costs in the "
                "commission instead (strategies.AShareCommission)")
        others = [s for s in getattr(self.env, "runningstrats", []) if s is not self]
        if others:
            warnings.warn(StrategyWarning(
                f"{len(others)} other strateg{'y' if len(others) == 1 else 'ies'} share this Cerebro's broker "
                f"({', '.join(sorted({type(s).__name__ for s in others}))}): LSTMTercileStrategy trades the "
                "whole broker value to its book, so strategies that trade sell each other's positions. Run "
                "one book per Cerebro (strategies.run_book) or several settings with cerebro.optstrategy"),
                stacklevel=2)

    def _check_streamed_months(self):
        """Fail before the run when the panel feeds cannot give one decision; warn when the
        first decision will come later than ``start``. (Feeds with filters, and other feeds,
        are checked as the run goes: see :meth:`stop`.)"""
        if not all(isinstance(d, PanelFeed) and not d._filters for d in self.stocks):
            return
        months = set()
        for src in {id(d.p.source): d.p.source for d in self.stocks}.values():
            dates = src.panel.dates
            feeds = [d for d in self.stocks if d.p.source is src]
            lo = min((pd.Timestamp(d.p.fromdate) if d.p.fromdate else dates[0]) for d in feeds)
            hi = max((pd.Timestamp(d.p.todate) if d.p.todate else dates[-1]) for d in feeds)
            bars = dates[src.first_row:]
            bars = bars[(bars >= lo) & (bars <= hi + pd.Timedelta(days=1) - pd.Timedelta(1))]
            months.update(bars)
            if len(bars) and bars[0] == dates[src.first_row]:
                months.update(dates[:src.first_row])  # history handed over at the first bar
        months = sorted(months)
        if not months:
            raise StrategyParamError("the stock feeds stream no month (check fromdate / todate)")
        span = f"{months[0].date()}..{months[-1].date()}"
        if self._first_decision is not None and self._first_decision > months[-1]:
            raise StrategyParamError(
                f"start {self._first_decision.date()} is after the last month the feeds stream "
                f"({months[-1].date()}): the strategy would make no decision")
        if len(months) < self.window:
            raise StrategyParamError(
                f"the feeds stream {len(months)} months ({span}) but the signal needs {self.window} "
                f"months of history (window={self.window}): the strategy would make no decision")
        first = months[self.window - 1]
        if self._first_decision is not None and first > self._first_decision:
            self._warn_late(first, len([m for m in months if m <= self._first_decision]))

    def _warn_late(self, first, available):
        self._warned_late = True
        warnings.warn(StrategyWarning(
            f"first decision at {pd.Timestamp(first).date()}, not at start "
            f"{self._first_decision.date()}: the feeds stream {available} month(s) up to "
            f"{self._first_decision.date()} and the signal needs window={self.window} (stream more "
            f"history, e.g. feeds.add_panel_feeds(..., window={self.window}) or window=None)"), stacklevel=2)

    def stop(self):
        if not self.records:
            warnings.warn(StrategyWarning(
                f"LSTMTercileStrategy made no decision: the stock feeds streamed {len(self._seen_months)} "
                f"month-end(s), the signal needs window={self.window}"
                + (f", first decision month {self._first_decision.date()}" if self._first_decision is not None
                   else "")), stacklevel=2)
        self._warn_empty_baskets()
        self._warn_lots()
        self._warn_stranded()
        if self.rejected_orders:
            hint = (" With execution='next_open' an order sized at one close fills at the next bar's "
                    "price; leave headroom for a month's price moves with gross < 1." if self.p.execution == "next_open" else "")
            warnings.warn(StrategyWarning(
                f"the broker rejected {self.rejected_orders} of {self.orders_sent} orders (Margin/Rejected: "
                f"not enough cash); the book holds less than its target.{hint}"), stacklevel=2)

    def _warn_empty_baskets(self):
        # With selection='class' a basket is the stocks whose most probable class it is: a model
        # that never predicts "neutral" leaves that book in cash, and its NAV looks like a result.
        decided = [r for r in self.records if (r.tradable & np.isfinite(r.probs).all(axis=1)).any()]
        sides = {"high": "the long side", "low": "the short side"} if self.p.book == "long_short" else {}
        why = " (no stock had it as its most probable class)" if self.p.selection == "class" else ""
        held = [book_sides(r.baskets, self.p.book) for r in decided]
        for name in BOOK_BASKETS[self.p.book]:
            empty = [r.date for r in decided if not r.baskets[name].any()]
            if empty:
                warnings.warn(StrategyWarning(
                    f"book '{self.p.book}': the '{name}' basket ({self.p.selection} selection) was empty at "
                    f"{len(empty)} of {len(decided)} decisions, first {empty[0].date()}: "
                    f"{sides.get(name, 'the book')} held cash then{why}"), stacklevel=2)
            # Long and short at once cancel: the stocks in both baskets are left out of the book.
            shared = [r.date for r, h in zip(decided, held) if r.baskets[name].any() and not h[name].any()]
            if shared:
                warnings.warn(StrategyWarning(
                    f"book '{self.p.book}': every stock of the '{name}' basket was in the other basket too at "
                    f"{len(shared)} of {len(decided)} decisions, first {shared[0].date()}: "
                    f"{sides[name]} held cash then (with top_pct={self.p.top_pct:g} the high and low baskets "
                    "overlap; above 0.5 they must)"), stacklevel=2)

    def _warn_lots(self):
        if self.lot_shortfall and (short := float(np.mean(self.lot_shortfall))) > LOT_SHORTFALL:
            warnings.warn(StrategyWarning(
                f"book '{self.p.book}': rounding to board lots of {self.p.lot} shares left on average {short:.0%} "
                f"of the broker value out of the book at its rebalances (target gross {self.p.gross:g}): a "
                "stock's target is small next to the price of a lot; more cash, smaller baskets (top_pct) or "
                "lot=0 (fractional shares) come closer to the target"), stacklevel=2)

    def _warn_stranded(self):
        if self.stranded and (worst := max(self.stranded, key=lambda item: item[1]))[1] > STRANDED:
            warnings.warn(StrategyWarning(
                f"book '{self.p.book}': up to {worst[1]:.0%} of the broker value ({worst[0].date()}) sat in held "
                "stocks without a bar (delisted, or missing from the data): the strategy cannot sell them, so they stay in the book at "
                "their last close, earning 0%"), stacklevel=2)

    # ---------------------------------------------------------------- clock
    def prenext(self):
        # Late listings keep the strategy in prenext until the last IPO: same logic.
        self._month_end()

    def nextstart(self):
        self._month_end()

    def next(self):
        self._month_end()

    def notify_order(self, order):
        if order.status == order.Submitted:
            self.orders_sent += 1
        if order.status in (order.Margin, order.Rejected):
            self.rejected_orders += 1

    # ------------------------------------------------------------ decisions
    def _month_end(self):
        dtnum = self.datetime[0]
        if dtnum == self._last_dtnum:
            return
        snap = gather_snapshot(self.stocks, dtnum, self.factor_names, self._with_mcap)
        if not snap.present.any():
            return  # another data ticked (e.g. a daily benchmark); not a snapshot date
        if not self._history:
            # Months before the feeds' first bar that they hand over as history (see
            # feeds.add_panel_feeds): Backtrader's clock and analyzers start at the first
            # decision, the signal still gets its full window.
            history, extra = history_snapshots(self.stocks, dtnum, self.factor_names, self._with_mcap,
                                               last=self.window)
            self.history_codes = self.codes.append(pd.Index(extra, dtype=object, name="code"))
            if extra:
                # The history panel lists its stocks in panel column order (the stock feeds'
                # order with the history-only stocks in their places), as predict_panel does.
                keys = [d.p.column if isinstance(d, PanelFeed) else j for j, d in enumerate(self.stocks)]
                sources = [d.p.source for d in self.stocks if isinstance(d, PanelFeed)]
                for code in extra:
                    keys.append(next(src.panel.codes.get_loc(code) for src in sources if code in src.panel.codes))
                self._order = np.argsort(np.asarray(keys), kind="stable")
            for item in history:
                self._history.append(item)
                self._seen_months.append(item[0])
        self._last_dtnum = dtnum
        date = bar_month_end(dtnum)
        self._seen_months.append(date)
        if snap.industry.max(initial=-1) >= len(self._industries):
            raise StrategyParamError(
                f"feed '{self.codes[int(np.argmax(snap.industry))]}' has industry code "
                f"{int(snap.industry.max())} but the strategy knows {len(self._industries)} "
                f"industry names; pass industries=[...]")
        known = snap.present & np.isfinite(snap.close)
        self._prices[known] = snap.close[known]
        self._history.append((date, snap.padded(len(self.history_codes) - len(self.codes))))
        warming_up = self._first_decision is not None and date < self._first_decision
        if len(self._history) < self.window or warming_up:
            return
        deciding = self._last_decision is None or date <= self._last_decision
        probs = self._predict() if deciding else np.full((len(self.stocks), len(CLASSES)), np.nan)
        tradable = snap.tradable()
        baskets = form_baskets(probs, tradable, self.p.selection, self.p.top_pct)
        if not self.records and self._first_decision is not None and date > self._first_decision \
                and not self._warned_late:
            self._warn_late(date, len([m for m in self._seen_months if m <= self._first_decision]))
        rebalance = deciding and len(self.records) % self._rebalance_every == 0
        self.records.append(MonthRecord(
            date=date, probs=probs, present=snap.present, tradable=tradable, baskets=baskets,
            prices=self._prices.copy(), value=self.broker.getvalue(), cash=self.broker.getcash(),
            rebalanced=rebalance))
        if rebalance:
            self._trade(snap, baskets)

    def _predict(self) -> np.ndarray:
        """The signal's probabilities [N, 3] for the stock feeds at the current month-end."""
        probs = np.asarray(self.p.signal.predict(self._history_panel()), dtype=np.float64)
        if probs.shape != (len(self.history_codes), len(CLASSES)):
            raise StrategyParamError(f"signal.predict returned shape {probs.shape}, "
                                     f"expected ({len(self.history_codes)}, {len(CLASSES)})")
        if self._order is not None:
            probs = probs[np.argsort(self._order, kind="stable")]
        return probs[:len(self.stocks)]  # stocks listed only in the history months come last

    def _history_panel(self) -> Panel:
        """The last ``window`` streamed snapshots as a Panel (codes = the stock feeds)."""
        items = list(self._history)
        dates = [d for d, _ in items[-self.window:]]
        snaps = [s for _, s in items]
        close = np.stack([s.close for s in snaps])
        prev = np.vstack([np.full((1, close.shape[1]), np.nan), close[:-1]])
        ret = close / prev - 1.0
        take = slice(len(snaps) - self.window, None)
        window = snaps[take]

        order = slice(None) if self._order is None else self._order

        def stack(field):
            return np.stack([getattr(s, field)[order] for s in window])
        return Panel(
            dates=pd.DatetimeIndex(dates), codes=self.history_codes[order], factors=stack("factors"),
            factor_names=self.factor_names, ret=ret[take][:, order], close=close[take][:, order],
            listed=stack("present"), industry=stack("industry"), industries=self._industries,
            styles=self._styles, mcap=stack("mcap") if self._with_mcap else None,
            **{flag: stack(flag) for flag in FLAG_COLUMNS})

    def _trade(self, snap: Snapshot, baskets: dict):
        broker, lot = self.broker, self.p.lot
        value = broker.getvalue()
        price = snap.close
        # broker.positions.get, not getposition: getposition creates an empty position for
        # every feed asked, which the broker then values on every bar.
        held = [broker.positions.get(d) for d in self.stocks]
        sizes = np.array([pos.size if pos is not None else 0.0 for pos in held], dtype=np.float64)
        current = np.where(sizes != 0, sizes * self._prices, 0.0)
        tradable = snap.tradable()
        target = book_weights(baskets, self.p.book, self.p.gross) * value
        self.stranded.append((self._seen_months[-1], float(np.abs(current[~snap.present]).sum() / value)))

        def fee(trades):
            out = np.zeros(len(trades))
            for j in np.flatnonzero(trades):
                info = broker.getcommissioninfo(self.stocks[j])
                out[j] = info.getcommission(trades[j] / price[j], price[j])
            return out
        new = plan_rebalance(current, target, tradable, tradable & ~snap.limit_up,
                             tradable & ~snap.limit_down, broker.getcash(), fee=fee,
                             slack=1e-12 * abs(value))
        moving = np.flatnonzero(tradable & (new != current))
        goal = sizes.copy()
        goal[moving] = round_to_lot(new[moving] / price[moving], lot)
        if value > 0:
            self.lot_shortfall.append(float(np.abs(new[moving] - goal[moving] * price[moving]).sum() / value))
        delta = goal - sizes
        for side in (delta < 0, delta > 0):  # sells first, then buys
            for j in np.flatnonzero(side):
                self.order_target_size(data=self.stocks[j], target=float(goal[j]))

    # -------------------------------------------------------------- records
    def predictions(self) -> pd.DataFrame:
        """In-backtest predictions, shaped like ``SignalModel.predict_panel``: ``(date, code)``
        -> ``p_down, p_neutral, p_up, pred`` (stocks with a prediction only)."""
        probs = np.stack([r.probs for r in self.records]) if self.records \
            else np.zeros((0, len(self.codes), len(CLASSES)))
        return prediction_frame([r.date for r in self.records], self.codes, probs)

    def basket_frame(self) -> pd.DataFrame:
        """Basket membership per decision: ``(date, code)`` -> bool ``high, neutral, low``
        (rows: the stocks eligible that month, i.e. tradable with a prediction)."""
        frames = []
        for r in self.records:
            eligible = r.tradable & np.isfinite(r.probs).all(axis=1)
            index = pd.MultiIndex.from_arrays(
                [pd.DatetimeIndex([r.date] * int(eligible.sum())), self.codes[eligible]],
                names=["date", "code"])
            frames.append(pd.DataFrame({b: r.baskets[b][eligible] for b in BASKETS}, index=index))
        return pd.concat(frames) if frames else pd.DataFrame(columns=list(BASKETS))
