"""The month-end snapshot feed: what it streams, in every Backtrader run mode, and the helper."""
import dataclasses
import datetime

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
from conftest import FEW_LOTS
from doubles import LinearSignal

from feeds import PanelError, add_panel_feeds, make_market
from feeds.btfeed import (FLAG_LINES, PanelFeed, PanelSource, factor_line_name, factor_line_names,
                          gather_snapshot, history_snapshots, pandas_feeds, panel_feed_class,
                          tradable_close)
from strategies import LSTMTercileStrategy

# Backtrader's run modes, as its own tests run every strategy (exactbars=1 turns preload
# and runonce off; -1/-2 keep preload and turn runonce off).
MODES = [
    dict(preload=True, runonce=True),
    dict(preload=True, runonce=False),
    dict(preload=False, runonce=False),
    dict(exactbars=1),
    dict(exactbars=-1),
    dict(exactbars=-2),
    dict(exactbars=-1, preload=False),
]
FACTORS = ["bp", "mom_3m", "turn_1m"]


@pytest.fixture(scope="module")
def panel():
    # A high delisting hazard: IPOs and delistings both happen inside the two years.
    market = make_market(1, n_stocks=40, start="2012-01", end="2013-12", delist_hazard=0.02)
    p = market.panel
    assert (p.listed[:-1] & ~p.listed[1:]).any() and (~p.listed[:-1] & p.listed[1:]).any()
    return p


class Probe(bt.Strategy):
    """Records, at every strategy step, what each feed presents (read through its lines)."""

    params = (("factors", FACTORS),)

    def __init__(self):
        self.steps = []

    def prenext(self):
        self.next()

    def next(self):
        dtnum = self.datetime[0]
        lines = [factor_line_name(f) for f in self.p.factors]
        bars = {}
        for data in self.datas:
            if len(data) and data.datetime[0] == dtnum:
                bars[data._name] = dict(
                    close=data.close[0], open=data.open[0],
                    factors=[getattr(data.lines, line)[0] for line in lines],
                    flags=[data.lines.listed[0]] + [getattr(data.lines, f)[0] for f in FLAG_LINES[1:]],
                    industry=data.lines.industry[0])
        snap = gather_snapshot(self.datas, dtnum, self.p.factors)
        self.steps.append((pd.Timestamp(bt.num2date(dtnum)), bars, snap))


def probe(panel, feeds=None, mode=None, **add):
    cerebro = bt.Cerebro(stdstats=False, **(mode or {}))
    if feeds is None:
        add_panel_feeds(cerebro, panel, **add)
    else:
        for feed in feeds:
            cerebro.adddata(feed)
    cerebro.addstrategy(Probe)
    return cerebro.run()[0]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: ",".join(f"{k}={v}" for k, v in m.items()))
def test_every_month_streams_exactly_the_panel_in_every_mode(panel, mode):
    strategy = probe(panel, mode=mode)
    close = np.nan_to_num(tradable_close(panel), nan=0.0)  # no price yet: 0, never NaN
    fidx = [panel.factor_names.index(f) for f in FACTORS]
    codes = list(panel.codes)
    assert [d for d, _, _ in strategy.steps] == list(panel.dates)  # no stall, no skipped month
    for t, (_, bars, snap) in enumerate(strategy.steps):
        listed = [c for c in codes if panel.listed[t, codes.index(c)]]
        assert sorted(bars) == sorted(listed)  # late listings absent, delisted ones gone
        for code, bar in bars.items():
            i = codes.index(code)
            np.testing.assert_equal(bar["close"], close[t, i])
            np.testing.assert_equal(bar["open"], close[t, i])
            np.testing.assert_array_equal(np.float32(bar["factors"]), panel.factors[t, i, fidx])
            assert bar["flags"] == [1.0] + [float(getattr(panel, f)[t, i]) for f in FLAG_LINES[1:]]
            assert bar["industry"] == panel.industry[t, i]
        # The vectorized snapshot agrees with the lines.
        names = [d._name for d in strategy.datas]
        np.testing.assert_array_equal(snap.present, [name in bars for name in names])
        rows = [codes.index(name) for name in names]
        np.testing.assert_array_equal(snap.present, panel.listed[t, rows])
        expected = panel.factors[t][rows][:, fidx]
        np.testing.assert_array_equal(snap.factors[snap.present], expected[snap.present])
        np.testing.assert_array_equal(snap.suspended, panel.suspended[t, rows] & snap.present)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: ",".join(f"{k}={v}" for k, v in m.items()))
def test_a_rerun_streams_the_same_bars_read_from_the_source_once(panel, mode, monkeypatch):
    # Backtrader starts and preloads every feed again at each cerebro.run() (BookRunner's
    # books): the feeds keep the bars they read the first time.
    reads = []
    source_bars = PanelSource.bars
    monkeypatch.setattr(PanelSource, "bars", lambda self, column, lines: (
        reads.append(column), source_bars(self, column, lines))[1])
    cerebro = bt.Cerebro(stdstats=False, **mode)
    add_panel_feeds(cerebro, panel)
    cerebro.addstrategy(Probe)
    first, second = (cerebro.run()[0].steps for _ in range(2))
    assert sorted(reads) == sorted(int(d.p.column) for d in cerebro.datas)
    assert len(first) == len(panel.dates) == len(second)
    for (date_a, bars_a, _), (date_b, bars_b, _) in zip(first, second):
        assert date_a == date_b
        np.testing.assert_equal(bars_a, bars_b)


def test_stock_pandasdata_feeds_stream_the_same_snapshots(panel):
    fast = probe(panel, start="2012-06", window=3)
    slow = probe(panel, feeds=pandas_feeds(panel, start="2012-06", window=3))
    # PandasData streams the 2 history months as bars; the panel feeds hand them over instead
    # (and have no feed for a stock listed only in them)
    assert [d for d, _, _ in slow.steps][:2] == [pd.Timestamp("2012-04-30"), pd.Timestamp("2012-05-31")]
    assert [d for d, _, _ in fast.steps] == [d for d, _, _ in slow.steps][2:]
    common = [[d._name for d in slow.datas].index(d._name) for d in fast.datas]
    for (_, _, a), (_, _, b) in zip(fast.steps, slow.steps[2:]):
        b = type(b)(**{k: None if v is None else v[common] for k, v in vars(b).items()})
        for field in ("present", "close", "suspended", "limit_up", "limit_down", "is_st", "industry",
                      "factors"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_start_streams_the_window_as_warm_up_and_tells_the_strategy(panel):
    cerebro = bt.Cerebro()
    feeds = add_panel_feeds(cerebro, panel, start="2013-01-15", end="2013-06", window=4)
    source = feeds[0].p.source
    assert source.panel.dates[0] == pd.Timestamp("2012-10-31")  # 3 warm-up months
    assert source.panel.dates[-1] == pd.Timestamp("2013-06-30")
    assert feeds[0].tradestart == pd.Timestamp("2013-01-31")
    assert [f._name for f in feeds] == [c for c in source.panel.codes if source.panel.listed[3:, list(
        source.panel.codes).index(c)].any()]  # stocks with a bar from 2013-01 on
    assert all(isinstance(f, PanelFeed) and f.code == f._name for f in feeds)


def test_window_defaults_to_the_signal_of_an_added_strategy(panel):
    cerebro = bt.Cerebro()
    cerebro.addstrategy(LSTMTercileStrategy, signal=LinearSignal(panel.factor_names, window=6))
    feeds = add_panel_feeds(cerebro, panel, start="2013-01")
    assert feeds[0].p.source.panel.dates[0] == pd.Timestamp("2012-08-31")
    # Without a window anywhere, every earlier month is streamed.
    feeds = add_panel_feeds(bt.Cerebro(), panel, start="2013-01")
    assert feeds[0].p.source.panel.dates[0] == panel.dates[0]


def test_feed_params_pass_through_and_use_the_bar_by_bar_path(panel):
    strategy = probe(panel, fromdate=datetime.datetime(2013, 3, 1))
    assert strategy.steps[0][0] == pd.Timestamp("2013-03-31")
    assert len(strategy.steps) == 10


class HalveAndSkipMay:
    """A Backtrader filter: halves every close, drops the May bars."""

    def __init__(self, data):
        pass

    def __call__(self, data):
        if data.datetime.date(0).month == 5:
            data.backwards()
            return True
        data.close[0] *= 0.5
        return False


def assert_snapshots_follow_the_lines(strategy, fidx=None):
    for _, bars, snap in strategy.steps:
        names = [d._name for d in strategy.datas]
        assert sorted(bars) == sorted(n for n, p in zip(names, snap.present) if p)
        for j, name in enumerate(names):
            if name in bars:
                bar = bars[name]
                np.testing.assert_equal(snap.close[j], bar["close"] if bar["close"] > 0 else np.nan)
                np.testing.assert_array_equal(snap.factors[j], np.float32(bar["factors"]))
                assert [snap.suspended[j], snap.limit_up[j]] == [bool(f) for f in bar["flags"][1:3]]


@pytest.mark.parametrize("mode", [dict(), dict(preload=False), dict(exactbars=1)], ids=str)
def test_fromdate_and_filters_read_the_bar_the_feed_delivered(panel, mode):
    # fromdate drops the first bars: the snapshot must still be the bar now presented (it was
    # the panel row as many months earlier). A filter may change values and drop bars.
    strategy = probe(panel, mode=mode, fromdate=datetime.datetime(2012, 9, 1))
    assert strategy.steps[0][0] == pd.Timestamp("2012-09-30")
    assert_snapshots_follow_the_lines(strategy)
    t = panel.dates.get_loc(pd.Timestamp("2013-12-31"))
    _, bars, snap = strategy.steps[-1]
    j = [d._name for d in strategy.datas].index(panel.codes[panel.listed[t].argmax()])
    assert snap.factors[j, 0] == panel.factors[t, panel.listed[t].argmax(), panel.factor_names.index("bp")]
    strategy = probe(panel, mode=mode, filters=[HalveAndSkipMay])
    assert pd.Timestamp("2012-05-31") not in [d for d, _, _ in strategy.steps]
    assert_snapshots_follow_the_lines(strategy)
    _, bars, snap = strategy.steps[-1]
    i = int(panel.listed[-1].argmax())
    j = [d._name for d in strategy.datas].index(panel.codes[i])
    assert snap.close[j] == pytest.approx(0.5 * tradable_close(panel)[-1, i], rel=1e-15)


def test_history_months_are_handed_over_not_streamed(panel):
    strategy = probe(panel, start="2012-06", window=4)
    assert strategy.steps[0][0] == pd.Timestamp("2012-06-30")  # the clock starts at start
    feeds = strategy.datas
    first = strategy.steps[0][2]
    history, extra = history_snapshots(feeds, bt.date2num(datetime.datetime(2012, 6, 30)), FACTORS, last=3)
    rows = [list(panel.codes).index(c) for c in [d._name for d in feeds] + extra]
    assert [d for d, _ in history] == list(pd.DatetimeIndex(["2012-03-31", "2012-04-30", "2012-05-31"]))
    fidx = [panel.factor_names.index(f) for f in FACTORS]
    for date, snap in history:
        t = panel.dates.get_loc(date)
        np.testing.assert_array_equal(snap.present, panel.listed[t, rows])
        np.testing.assert_array_equal(snap.factors[snap.present], panel.factors[t][rows][:, fidx][snap.present])
    assert first.present.sum() == panel.listed[5, rows].sum()
    # nothing is handed over at any later bar, nor when fromdate moved the first bar
    assert history_snapshots(feeds, bt.date2num(datetime.datetime(2012, 7, 31)), FACTORS) == ([], [])


@pytest.mark.filterwarnings(FEW_LOTS)
def test_a_stock_listed_only_in_the_history_has_no_feed_but_stays_in_the_history(panel):
    last = panel.T - 1 - np.argmax(panel.listed[::-1], axis=0)  # last listed row of each stock
    delisted = np.flatnonzero((last >= 3) & (last < panel.T - 2) & panel.listed.any(axis=0))
    i = int(delisted[0])
    start = panel.dates[last[i] + 1]
    signal = LinearSignal(panel.factor_names, window=3)  # z-scores each month's cross-section
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.addstrategy(LSTMTercileStrategy, signal=signal)
    stocks = add_panel_feeds(cerebro, panel, start=start)
    cerebro.addanalyzer(bt.analyzers.PyFolio, _name="pyfolio")  # values every data each bar
    strategy = cerebro.run()[0]
    code = panel.codes[i]
    assert code not in [f._name for f in stocks] and code in list(strategy.history_codes)
    online = strategy.predictions()
    offline = signal.predict_panel(panel, online.index.get_level_values("date").unique())
    columns = ["p_down", "p_neutral", "p_up"]
    assert online.index.equals(offline.index) and (online["pred"] == offline["pred"]).all()
    np.testing.assert_allclose(online[columns].to_numpy(), offline[columns].to_numpy(), rtol=0, atol=1e-12)
    # without the history-only stock, its months' cross-sections would differ
    without = signal.predict_panel(panel.take(cols=np.delete(np.arange(panel.N), i)), [start])
    assert (without.loc[start, "p_up"] - offline.loc[start, "p_up"]).abs().max() > 1e-6
    returns, *_ = strategy.analyzers.pyfolio.get_pf_items()
    assert np.isfinite(returns.to_numpy()).all()


def test_factor_line_names_are_identifiers_and_clashes_are_refused():
    assert factor_line_name("ep") == "ep"
    assert factor_line_name("1m-ret") == "f_1m_ret"
    assert factor_line_name("close") == "f_close"
    assert factor_line_name("class") == "f_class"
    with pytest.raises(PanelError, match="'a-b' and 'a_b' both map to the feed line 'a_b'"):
        factor_line_names(["a-b", "a_b"])


def test_non_ascii_factor_names_get_distinct_identifier_lines():
    names = ["市盈率", "市净率", "市盈率(TTM)", "ＲＯＥ", "1月动量", "Größe"]
    lines = factor_line_names(names)
    assert lines == ("市盈率", "市净率", "市盈率_TTM_", "ROE", "f_1月动量", "Größe")
    assert len(set(lines)) == len(lines) and all(line.isidentifier() for line in lines)
    # NFKC-equal names are the same Python identifier: refused, not silently merged
    with pytest.raises(PanelError, match="both map to the feed line 'ROE'"):
        factor_line_names(["ROE", "ＲＯＥ"])


@pytest.mark.filterwarnings(FEW_LOTS)
def test_non_ascii_factor_names_work_end_to_end(panel):
    chinese = ["市盈率", "市净率", "换手率"] + [f"因子{k}" for k in range(panel.F - 3)]
    renamed = dataclasses.replace(panel, factor_names=chinese,
                                  styles={"估值": ["市盈率", "市净率"], "流动性": ["换手率"]})
    signal = LinearSignal(chinese, window=3)
    for make in ("panel", "pandas"):
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.addstrategy(LSTMTercileStrategy, signal=signal, industries=list(renamed.industries))
        if make == "panel":
            stocks = add_panel_feeds(cerebro, renamed, start="2012-06")
        else:
            stocks = pandas_feeds(renamed, start="2012-06", window=3)
            for feed in stocks:
                cerebro.adddata(feed)
        assert stocks[0].lines.市盈率 is not stocks[0].lines.市净率
        strategy = cerebro.run()[0]
        online = strategy.predictions()
        offline = signal.predict_panel(renamed, online.index.get_level_values("date").unique())
        pd.testing.assert_frame_equal(online, offline, check_exact=True)
        assert len(strategy.records) == 19


def test_feed_classes_are_created_once_per_factor_set(panel):
    cls = panel_feed_class(panel.factor_names, has_mcap=True)
    assert cls is panel_feed_class(list(panel.factor_names), has_mcap=True)
    assert cls is not panel_feed_class(panel.factor_names, has_mcap=False)
    aliases = cls.lines.getlinealiases()
    assert {"close", "suspended", "industry", "mcap", "mom_3m"} <= set(aliases)
    assert len(aliases) == 7 + len(FLAG_LINES) + 1 + 1 + panel.F


def test_bad_input_is_one_clear_error(panel):
    with pytest.raises(PanelError, match="needs a Panel"):
        add_panel_feeds(bt.Cerebro(), panel.to_frame())
    with pytest.raises(PanelError, match="no months between"):
        add_panel_feeds(bt.Cerebro(), panel, start="2013-06", end="2013-01")
    with pytest.raises(PanelError, match="use feeds.add_panel_feeds"):
        panel_feed_class(panel.factor_names, True)()
    source = PanelSource(panel)
    with pytest.raises(PanelError, match="outside the panel's"):
        panel_feed_class(panel.factor_names, True)(source=source, column=panel.N)
    with pytest.raises(PanelError, match="does not match its source"):
        panel_feed_class(panel.factor_names[:3], True)(source=source, column=0)


class TouchEveryPosition(bt.Strategy):
    """A common user pattern: look at the position of every data on every bar."""

    def __init__(self):
        self.values = []

    def prenext(self):
        self.next()

    def next(self):
        for data in self.datas:
            self.getposition(data)  # creates an empty position the broker then values
        self.values.append(self.broker.getvalue())


def test_listing_months_without_a_price_never_make_the_broker_value_nan(panel):
    # a panel file may have a stock's listing month without a close: blank those of the IPOs
    first = np.argmax(panel.listed, axis=0)
    late = np.flatnonzero(first > 0)
    close = panel.close.copy()
    close[first[late], late] = np.nan
    panel = dataclasses.replace(panel, close=close)
    assert (panel.listed & ~np.isfinite(panel.close)).any()
    cerebro = bt.Cerebro(stdstats=False)
    add_panel_feeds(cerebro, panel)
    cerebro.addstrategy(TouchEveryPosition)
    cerebro.addanalyzer(bt.analyzers.PyFolio, _name="pyfolio")
    strategy = cerebro.run()[0]
    assert np.isfinite(strategy.values).all()
    returns, *_ = strategy.analyzers.pyfolio.get_pf_items()
    assert np.isfinite(returns.to_numpy()).all()


class LastBar(bt.Strategy):
    def __init__(self):
        self.bars = []

    def next(self):
        data = self.datas[0]
        self.bars.append((data.datetime[0], data.close[0], data.open[0], data.bp[0], len(data)))


@pytest.mark.parametrize("how", ["resampledata", "replaydata"])
def test_resampling_and_replay_behave_as_with_stock_pandasdata(panel, how):
    # These paths move the lines bar by bar with tick values; the feed must match the stock one.
    runs = []
    for feed in (panel_feed_class(panel.factor_names, True)(source=PanelSource(panel), column=0),
                 pandas_feeds(panel)[0]):
        cerebro = bt.Cerebro(stdstats=False)
        getattr(cerebro, how)(feed, timeframe=bt.TimeFrame.Years)
        cerebro.addstrategy(LastBar)
        runs.append(cerebro.run()[0].bars)
    assert len(runs[0]) >= 2
    np.testing.assert_array_equal(np.array(runs[0]), np.array(runs[1]))
