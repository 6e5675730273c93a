"""Daily-bar ingestion: loading errors, adjustment (price-limit rule, pre_close, adj_factor),
monthly aggregation, the real subset and (when present) the shared real file."""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feeds.daily import (DailyBars, DailyBarsError, adjust, bars_from_frame, board_of, load_daily_bars,
                         panel_from_daily, price_limit, to_monthly)
from feeds.daily_limits import exchange_key
from feeds.industry import IndustryMapError, load_industry_map
from feeds.panel import DataWarning, Panel, PanelError

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "cn_daily_subset.csv.gz"
SHARED = ROOT.parent / "shared" / "data" / "cn_csi300_daily_2005_2021.csv.gz"
INDEX = "sh.000001"


def bars_frame(closes: dict, dates, volume: dict | None = None, index_returns=None, **extra) -> pd.DataFrame:
    """Long daily frame from close paths (NaN = no row); volume 0 marks a no-trade bar.

    ``index_returns`` adds the index ``sh.000001`` on every date; ``extra`` holds more
    per-code columns ({column: {code: values}}).
    """
    dates = pd.DatetimeIndex(dates)
    if index_returns is not None:
        closes = {INDEX: 1000.0 * np.cumprod(1 + np.asarray(index_returns)), **closes}
    parts = []
    for code, path in closes.items():
        path = np.asarray(path, float)
        vol = np.full(len(dates), 1e6) if volume is None or code not in volume else np.asarray(volume[code], float)
        part = pd.DataFrame({"date": dates, "code": code, "open": path, "high": path, "low": path,
                             "close": path, "volume": vol})
        for col, per_code in extra.items():
            part[col] = per_code[code] if code in per_code else np.nan
        parts.append(part[np.isfinite(path)])
    return pd.concat(parts, ignore_index=True)


def column(adjusted_or_bars, code, values):
    bars = adjusted_or_bars if isinstance(adjusted_or_bars, DailyBars) else adjusted_or_bars.bars
    return values[:, bars.codes.get_loc(code)]


# ------------------------------------------------------------------- loading
def write_bars(tmp_path, frame, name="bars.csv"):
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.fixture
def small_frame():
    dates = pd.bdate_range("2021-01-04", periods=30)
    rng = np.random.default_rng(0)
    return bars_frame({"sh.600001": 10 * np.cumprod(1 + rng.normal(0, 0.01, 30)),
                       "sz.000002": 20 * np.cumprod(1 + rng.normal(0, 0.01, 30))},
                      dates, index_returns=rng.normal(0, 0.01, 30))


@pytest.mark.parametrize("mutate, message", [
    (lambda f: f.drop(columns="volume"), "missing column 'volume'"),
    (lambda f: f.assign(date=f["date"].astype(str).where(f.index != 5, "2021-13-45")),
     "unparseable date '2021-13-45' in row 5"),
    (lambda f: pd.concat([f, f.iloc[[7]]], ignore_index=True), "duplicate (date, code)"),
    (lambda f: f.assign(close=f["close"].where(f.index != 40, 0.0)),
     "non-positive price 0.0 in column 'close', row 40 (2021-01-18, sh.600001)"),
    (lambda f: f.assign(low=f["low"].where(f.index != 41, -1.0)), "non-positive price -1.0 in column 'low', row 41"),
    (lambda f: f.assign(close=f["close"].where(f.index != 42, np.nan)), "missing price nan in column 'close', row 42"),
    (lambda f: f.assign(open=f["open"].astype(object).where(f.index != 3, "abc")),
     "non-numeric value 'abc' in column 'open', row 3"),
    (lambda f: f.assign(volume=f["volume"].where(f.index != 8, -5.0)), "negative value -5.0 in column 'volume', row 8"),
    (lambda f: f.assign(high=f["high"].where(f.index != 9, 1.0)), "high 1.0 below low"),
    (lambda f: f.assign(is_st=np.where(f.index == 2, "maybe", "0")),
     "non-boolean value 'maybe' in column 'is_st', row 2"),
    (lambda f: f[f["code"] == INDEX], "no stock rows"),
])
@pytest.mark.parametrize("fmt", ["bars.csv", "bars.parquet"])
def test_load_errors_name_the_problem(tmp_path, small_frame, mutate, message, fmt):
    frame = mutate(small_frame.copy())
    if fmt.endswith(".parquet"):
        frame = frame.astype({c: str for c in frame.columns if frame[c].dtype == object})
    path = write_bars(tmp_path, frame, fmt)
    with pytest.raises(DailyBarsError) as err:
        load_daily_bars(path)
    assert message in str(err.value), str(err.value)
    assert isinstance(err.value, PanelError)  # the CLI catches one family


def test_duplicate_names_both_rows(tmp_path, small_frame):
    frame = pd.concat([small_frame, small_frame.iloc[[7]]], ignore_index=True)
    with pytest.raises(DailyBarsError, match=r"duplicate \(date, code\) \(2021-01-13, sh.000001\) in rows 7 and 90"):
        load_daily_bars(write_bars(tmp_path, frame))


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(DailyBarsError, match="daily bars file not found"):
        load_daily_bars(tmp_path / "nope.csv")
    with pytest.raises(DailyBarsError, match="no CSV or Parquet files in folder"):
        load_daily_bars(tmp_path)
    with pytest.raises(DailyBarsError, match="not part of a fresh clone"):
        panel_from_daily(tmp_path / "absent.csv.gz")


def test_folder_of_per_stock_files_equals_long_file(tmp_path, small_frame):
    folder = tmp_path / "bars"
    folder.mkdir()
    for code, part in small_frame.groupby("code"):
        part = part.drop(columns="code") if code != INDEX else part  # code from the file name
        part.to_csv(folder / f"{code}.csv", index=False)
    (folder / "notes.md").write_text("ignored")
    from_folder = load_daily_bars(folder)
    from_file = load_daily_bars(write_bars(tmp_path, small_frame, "bars.parquet"))
    assert list(from_folder.codes) == list(from_file.codes) == ["sh.600001", "sz.000002"]
    for name in ("open", "high", "low", "close", "volume", "amount"):
        np.testing.assert_array_equal(from_folder.fields[name], from_file.fields[name])
    pd.testing.assert_frame_equal(from_folder.index_close, from_file.index_close)
    assert from_file.amount_derived


def test_no_trade_bars_and_missing_volume(small_frame):
    frame = small_frame.copy()
    frame.loc[(frame["code"] == "sh.600001") & (frame.index % 30 == 10), "volume"] = 0.0
    frame.loc[(frame["code"] == "sz.000002") & (frame.index % 30 == 11), "volume"] = np.nan
    bars = bars_from_frame(frame)
    assert bars.has_bar.all()
    assert not column(bars, "sh.600001", bars.traded)[10] and not column(bars, "sz.000002", bars.traded)[11]
    assert bars.traded.sum() == bars.has_bar.sum() - 2


# ---------------------------------------------------------------- price limits
def test_board_of_spellings():
    assert list(board_of(["sh.600000", "600000.SH", "SZ300750", "sz.301001", "sh.688981", "688001",
                          "bj.830799", "430047", "sz.000001"])) == \
        ["main", "main", "chinext", "chinext", "star", "star", "bse", "bse", "main"]


def test_price_limit_board_date_and_st():
    dates = pd.DatetimeIndex(["1996-01-02", "2019-07-22", "2020-08-21", "2020-08-24"])
    codes = ["sh.600000", "sz.300001", "sh.688001", "bj.830001"]
    st = np.zeros((4, 4), bool)
    st[:, :2] = True
    plain, with_st = price_limit(codes, dates), price_limit(codes, dates, st)
    assert np.isnan(plain[0]).all()  # before 1996-12-16
    np.testing.assert_allclose(plain[1:], [[0.1, 0.1, 0.2, 0.3], [0.1, 0.1, 0.2, 0.3], [0.1, 0.2, 0.2, 0.3]])
    np.testing.assert_allclose(with_st[1:, :2], [[0.05, 0.05], [0.05, 0.05], [0.05, 0.2]])


# ------------------------------------------------------------------ adjustment
@pytest.fixture
def bonus_market():
    """A stock with a 10-for-10 bonus issue on day 60 (raw close halves) and its true returns."""
    n, k = 120, 60
    rng = np.random.default_rng(1)
    market = rng.normal(0.0, 0.01, n)
    true = np.clip(market + rng.normal(0.0, 0.015, n), -0.08, 0.08)
    true[0] = 0.0
    total = 10.0 * np.cumprod(1 + true)
    raw = np.round(np.where(np.arange(n) >= k, total / 2.0, total), 2)
    true = raw / np.r_[np.nan, raw[:-1]] - 1  # the rounded path's returns
    true[k] = (raw[k] * 2.0) / raw[k - 1] - 1
    dates = pd.bdate_range("2015-01-05", periods=n)
    return dict(n=n, k=k, market=market, true=true, raw=raw, dates=dates)


def test_bonus_share_day_is_detected_and_neutralised(bonus_market):
    b = bonus_market
    frame = bars_frame({"sh.600001": b["raw"]}, b["dates"], index_returns=b["market"])
    adjusted, report = adjust(bars_from_frame(frame))
    assert report.method == "price_limit"
    assert report.n_ex_rights_days == report.n_neutralised == 1
    event = report.events.iloc[0]
    assert (event["date"], event["code"], event["action"]) == (b["dates"][b["k"]], "sh.600001", "neutralised")
    assert event["raw_ret"] == pytest.approx(-0.5, abs=0.05)
    ret = column(adjusted, "sh.600001", adjusted.ret)
    assert np.isnan(ret[0])
    assert ret[b["k"]] == pytest.approx(b["market"][b["k"]], abs=1e-12)  # the market's return that day
    ordinary = np.arange(b["n"]) != b["k"]
    ordinary[0] = False
    np.testing.assert_allclose(ret[ordinary], b["true"][ordinary], atol=1e-12)
    adj_close = column(adjusted, "sh.600001", adjusted.adj_close)
    assert adj_close[0] == b["raw"][0]  # anchored at the first close (backward-adjusted)
    assert adj_close[-1] / adj_close[b["k"]] == pytest.approx(b["raw"][-1] / b["raw"][b["k"]], rel=1e-12)
    assert adj_close[b["k"] - 1] / adj_close[0] == pytest.approx(b["raw"][b["k"] - 1] / b["raw"][0], rel=1e-12)
    assert report.examples(1)[0]["code"] == "sh.600001"


@pytest.mark.parametrize("how", ["pre_close", "adj_factor"])
def test_data_adjustment_is_used_when_given(bonus_market, how):
    b = bonus_market
    prev = np.r_[np.nan, b["raw"][:-1]]
    if how == "pre_close":
        values = prev.copy()
        values[b["k"]] = prev[b["k"]] / 2.0  # the exchange's ex-rights reference price
        values[0] = 5.0  # an offer price: the listing day has no secondary-market return
    else:
        values = np.where(np.arange(b["n"]) >= b["k"], 2.0, 1.0)
    frame = bars_frame({"sh.600001": b["raw"]}, b["dates"], index_returns=b["market"],
                       **{how: {"sh.600001": values}})
    adjusted, report = adjust(bars_from_frame(frame))
    assert report.method == how and report.n_ex_rights_days == 1 and report.n_neutralised == 0
    ret = column(adjusted, "sh.600001", adjusted.ret)
    np.testing.assert_allclose(ret[1:], b["true"][1:], atol=1e-12)  # exact, no market substitute
    assert np.isnan(ret[0])


def scenario(closes, start="2015-01-05", n=None, volume=None, **extra):
    """Adjust a hand-made market where the index returns 0.1% every day."""
    n = n or max(len(v) for v in closes.values())
    dates = pd.bdate_range(start, periods=n)
    closes = {c: np.r_[v, [np.nan] * (n - len(v))] for c, v in closes.items()}
    frame = bars_frame(closes, dates, volume=volume, index_returns=np.full(n, 0.001), **extra)
    return adjust(bars_from_frame(frame))


def test_price_change_on_a_no_trade_bar_is_a_corporate_action():
    close = np.r_[np.full(20, 10.0), np.full(5, 10.0), np.full(6, 5.0), 5.25, 5.3]  # halves while suspended
    volume = np.r_[np.full(20, 1e6), np.zeros(11), 1e6, 1e6]
    adjusted, report = scenario({"sh.600001": close}, volume={"sh.600001": volume})
    assert report.n_no_trade_adjustments == 1 and report.n_neutralised == 0
    assert report.events.iloc[0]["action"] == "no_trade_adjustment"
    ret = column(adjusted, "sh.600001", adjusted.ret)
    assert np.isnan(ret[20:31]).all()  # no trade, no return
    assert ret[31] == pytest.approx(0.05)  # measured from the reference price
    adj = column(adjusted, "sh.600001", adjusted.adj_close)
    np.testing.assert_allclose(adj[19:31], 10.0)


def test_long_suspension_rise_is_kept_fall_is_neutralised():
    idle = np.full(15, np.nan)  # 15 exchange days without a row
    rise = np.r_[np.full(10, 10.0), idle, 18.0, 18.5]
    fall = np.r_[np.full(10, 10.0), idle, 6.0, 6.1]
    short_rise = np.r_[np.full(10, 10.0), np.full(3, np.nan), 18.0, 18.5]
    adjusted, report = scenario({"sh.600001": rise, "sh.600002": fall, "sh.600003": short_rise})
    actions = report.events.set_index("code")["action"].to_dict()
    assert actions == {"sh.600001": "kept_unlimited_rise", "sh.600002": "neutralised",
                       "sh.600003": "neutralised"}
    assert column(adjusted, "sh.600001", adjusted.ret)[25] == pytest.approx(0.8)
    # a neutralised resumption earns the market's return over the whole suspension
    assert column(adjusted, "sh.600002", adjusted.ret)[25] == pytest.approx(1.001 ** 16 - 1)
    assert report.n_unlimited_rises_kept == 1 and report.n_beyond_limit == 3


def test_rounding_tolerance_of_the_limit_price():
    # limit-up of a 1.05 close is round(1.155) = 1.16 (+10.48%): ordinary; 1.17 is not
    adjusted, report = scenario({"sh.600001": [1.05, 1.16], "sh.600002": [1.05, 1.17],
                                 "sh.600003": [1.05, 0.94], "sh.600004": [1.05, 0.93]})
    assert sorted(report.events["code"]) == ["sh.600002", "sh.600004"]


@pytest.mark.parametrize("code, start, move, flagged", [
    ("sz.300001", "2020-08-20", 0.15, True),    # ChiNext, old ±10% regime
    ("sz.300001", "2020-08-21", 0.15, False),   # second day is 2020-08-24: ±20%
    ("sh.688001", "2020-03-02", 0.15, False),   # STAR ±20%
    ("sh.688001", "2020-03-02", -0.25, True),
    ("sh.600001", "2020-03-02", 0.12, True),    # main board ±10%
    ("sh.600001", "1996-03-04", 0.30, False),   # no limits before 1996-12-16
])
def test_limit_rule_is_board_and_date_aware(code, start, move, flagged):
    _, report = scenario({code: np.round([10.0, 10.0 * (1 + move)], 2)}, start=start)
    assert (report.n_neutralised == 1) is flagged


def test_st_limit_used_when_given():
    close = {"sh.600001": [10.0, 9.3], "sh.600002": [10.0, 9.3]}
    st = {"is_st": {"sh.600001": [True, True], "sh.600002": [False, False]}}
    _, report = scenario(close, **st)
    assert list(report.events["code"]) == ["sh.600001"]  # -7% is beyond ST's ±5% only


def test_first_listing_days_are_exempt():
    lead = [np.nan] * 5  # listed on the sixth exchange day (the index defines the calendar)
    pop = [10.0, 15.0, 22.0, 30.0, 28.0, 27.0, 40.0]  # day 2..5 of a listing move >20%; day 7 too
    _, report = scenario({"sz.300001": lead + pop, "sh.600001": lead + pop}, start="2021-01-04")
    chinext = report.events[report.events["code"] == "sz.300001"]
    main = report.events[report.events["code"] == "sh.600001"]
    assert list(chinext["date"]) == [pd.Timestamp("2021-01-19")]  # only its 7th trading day
    assert len(main) == 4  # a main-board listing before 2023 has limits from day 2


def test_market_falls_back_to_median_without_index(bonus_market):
    b = bonus_market
    rng = np.random.default_rng(2)
    closes = {"sh.600001": b["raw"]}
    for i in range(2, 7):
        closes[f"sh.60000{i}"] = np.round(10 * np.cumprod(1 + rng.normal(0, 0.01, b["n"])), 2)
    adjusted, report = adjust(bars_from_frame(bars_frame(closes, b["dates"])))
    assert report.market_code == "median" and report.n_neutralised == 1
    k = b["k"]
    raw = np.array([closes[c][k] / closes[c][k - 1] - 1 for c in closes])
    assert column(adjusted, "sh.600001", adjusted.ret)[k] == pytest.approx(np.median(raw))


def test_unknown_market_index_is_an_error(small_frame):
    with pytest.raises(DailyBarsError, match="market index 'sh.000300' is not in"):
        adjust(bars_from_frame(small_frame), market="sh.000300")


# ------------------------------------------------------------------ aggregation
def test_monthly_aggregation():
    dates = pd.bdate_range("2021-01-01", "2021-04-30")
    n = len(dates)
    months = dates.month.to_numpy()
    rng = np.random.default_rng(3)
    base = np.round(10 * np.cumprod(1 + rng.normal(0, 0.01, n)), 2)
    last = {m: int(np.flatnonzero(months == m)[-1]) for m in (1, 2, 3, 4)}
    a = base.copy()
    a[last[2]] = np.nan  # no bar on February's last day: suspended at the month end
    b = np.where(dates >= "2021-02-10", base, np.nan)  # lists in February
    step = base / np.r_[base[0], base[:-1]] - 1
    step[[last[1], last[3]]] = [-0.1, 0.1]  # closes January at the down-limit, March at the up-limit
    c = np.empty(n)
    c[0] = 10.0
    for i in range(1, n):
        c[i] = round(c[i - 1] * (1 + step[i]) + 1e-9, 2)
    d = base.copy()  # no trade in March (volume-0 bars at the carried close)
    d[months == 3] = d[last[2]]
    d[months == 4] = d[last[2]] * base[months == 4] / base[last[3]]
    d_vol = np.where(months == 3, 0.0, 1e6)
    e = np.where(dates <= "2021-03-10", base, np.nan)  # last bar in March
    frame = bars_frame({"sh.600001": a, "sh.600002": b, "sh.600003": c, "sh.600004": d, "sh.600005": e},
                       dates, volume={"sh.600004": d_vol}, index_returns=np.full(n, 0.001))
    adjusted, report = adjust(bars_from_frame(frame))
    assert report.n_ex_rights_days == 0
    monthly = to_monthly(adjusted)
    assert list(monthly.dates) == list(pd.to_datetime(["2021-01-31", "2021-02-28", "2021-03-31", "2021-04-30"]))
    assert list(monthly.last_day) == [dates[last[m]] for m in (1, 2, 3, 4)]
    col = {code: monthly.codes.get_loc(code) for code in monthly.codes}

    # month-end close and return (a: suspended on Feb's last day, close carried)
    ia = col["sh.600001"]
    assert np.isfinite(monthly.close[1, ia])
    assert monthly.close[1, ia] / monthly.close[0, ia] == pytest.approx(a[last[2] - 1] / a[last[1]])
    assert monthly.ret[2, ia] == pytest.approx(a[last[3]] / a[last[2] - 1] - 1)  # realised on resumption
    assert monthly.suspended[:, ia].tolist() == [False, True, False, False]
    assert np.isnan(monthly.ret[0, ia])  # no previous month-end close
    assert monthly.trading_days[:, ia].tolist() == [int((months == m).sum()) - (m == 2) for m in (1, 2, 3, 4)]
    # b lists in February: listed from then, first return in March
    ib = col["sh.600002"]
    assert monthly.listed[:, ib].tolist() == [False, True, True, True]
    assert np.isnan(monthly.ret[:2, ib]).all() and np.isfinite(monthly.ret[2:, ib]).all()
    # c: limit flags of the month-end close
    ic = col["sh.600003"]
    assert monthly.limit_up[:, ic].tolist() == [False, False, True, False]
    assert monthly.limit_down[:, ic].tolist() == [True, False, False, False]
    assert not monthly.limit_up[:, [ia, ib]].any()
    # d: a month without any trade returns 0 and is suspended
    idd = col["sh.600004"]
    assert monthly.ret[2, idd] == 0.0 and monthly.suspended[2, idd] and monthly.trading_days[2, idd] == 0
    assert monthly.ret[3, idd] == pytest.approx(d[last[4]] / d[last[2]] - 1)
    # e: listed until the month of its last bar, suspended at that month's end
    ie = col["sh.600005"]
    assert monthly.listed[:, ie].tolist() == [True, True, True, False]
    assert monthly.suspended[2, ie] and np.isnan(monthly.ret[3, ie]) and np.isnan(monthly.close[3, ie])
    # the benchmark's monthly returns
    level = 1000 * 1.001 ** np.arange(1, n + 1)
    expected = [level[last[m]] / level[last[m - 1]] - 1 for m in (2, 3, 4)]
    np.testing.assert_allclose(monthly.benchmarks[INDEX].to_numpy()[1:], expected)
    np.testing.assert_allclose(monthly.market.to_numpy()[1:], expected)


# ----------------------------------------------------------- the real subset
@pytest.fixture(scope="module")
def subset():
    return panel_from_daily(FIXTURE)


def test_real_subset_known_ex_rights_day(subset):
    panel, report = subset
    events = report.adjustment.events.set_index(["date", "code"])
    row = events.loc[(pd.Timestamp("2009-06-09"), "sh.600000")]
    assert row["action"] == "neutralised" and row["raw_ret"] == pytest.approx(21.32 / 30.59 - 1)
    assert events.loc[(pd.Timestamp("2015-12-04"), "sh.600763"), "action"] == "no_trade_adjustment"
    assert events.loc[(pd.Timestamp("2010-02-12"), "sz.000776"), "action"] == "kept_unlimited_rise"
    a = report.adjustment
    assert a.n_ex_rights_days == a.n_neutralised + a.n_no_trade_adjustments >= 15
    # June 2009 of sh.600000: the raw moves with the ex-rights day replaced by the market's return
    raw = pd.read_csv(FIXTURE, dtype={"code": str}, parse_dates=["date"]).pivot(index="date", columns="code",
                                                                               values="close")
    bank, market = raw["sh.600000"], raw["sh.000001"]
    may, before, ex, june = (pd.Timestamp(d) for d in ("2009-05-27", "2009-06-08", "2009-06-09", "2009-06-30"))
    expected = bank[before] / bank[may] * market[ex] / market[before] * bank[june] / bank[ex] - 1
    j, t = panel.codes.get_loc("sh.600000"), panel.dates.get_loc(pd.Timestamp("2009-06-30"))
    assert panel.dates[t - 1] == pd.Timestamp("2009-05-31") and bank.loc["2009-05-28":"2009-05-31"].empty
    assert panel.ret[t, j] == pytest.approx(expected, rel=1e-12)


def test_real_subset_panel_and_report(subset):
    panel, report = subset
    assert isinstance(panel, Panel)
    assert list(panel.codes) == ["sh.600000", "sh.600763", "sh.688008", "sz.000776", "sz.300059"]
    assert (panel.T, panel.dates[0], panel.dates[-1]) == (201, pd.Timestamp("2005-01-31"), pd.Timestamp("2021-09-30"))
    assert report.industry == "absent" and not panel.has_industry
    assert any("whole-market" in n for n in report.notes)
    assert {"ln_mcap", "turn_1m"} <= set(report.skipped)
    assert report.styles.keys() == {"momentum", "reversal", "volatility", "liquidity", "technical"}
    star = panel.codes.get_loc("sh.688008")
    assert panel.listed[:, star].sum() == 27  # 2019-07 .. 2021-09
    bench = report.benchmark("sh.000300")
    assert bench.index.equals(panel.dates) and np.isnan(bench.iloc[0]) and bench.iloc[1:].notna().all()
    assert report.benchmark().name == "sh.000001"
    with pytest.raises(DailyBarsError, match="benchmark 'sz.399001' is not in"):
        report.benchmark("sz.399001")
    d = report.to_dict()
    assert d["adjustment"]["n_ex_rights_days"] == report.adjustment.n_ex_rights_days
    assert d["n_stocks"] == 5 and "timings" in d


def test_slice_keeps_the_history_before_start(subset):
    full, _ = subset
    part, report = panel_from_daily(FIXTURE, start="2016-05-01", end="2017-04-30")
    assert (part.T, part.dates[0]) == (12, pd.Timestamp("2016-05-31"))
    assert report.benchmarks.index.equals(part.dates)
    t0 = full.dates.get_loc(pd.Timestamp("2016-05-31"))
    cols = full.codes.get_indexer(part.codes)
    np.testing.assert_array_equal(part.factors, full.factors[t0:t0 + 12][:, cols])
    assert "sh.688008" not in set(part.codes)  # listed only after the span


def test_industry_map_and_industry_column(tmp_path):
    path = tmp_path / "industry.csv"
    path.write_text("code,industry\nsh.600000,Banks\nsz.300059,Brokers\nsz.000776,Brokers\nsh.999999,Other\n")
    panel, report = panel_from_daily(FIXTURE, industry_map=path)
    assert panel.industries == ["Banks", "Brokers"]
    assert panel.industry[-1].tolist() == [0, -1, -1, 1, 1]
    assert report.industry.endswith("2 industries, 2 codes unmapped")
    assert not any("whole-market" in n for n in report.notes)

    dates = pd.bdate_range("2021-01-04", periods=60)
    frame = bars_frame({"sh.600001": np.linspace(10, 11, 60)}, dates, index_returns=np.zeros(60),
                       industry={"sh.600001": np.where(dates < "2021-02-15", "Steel", "Autos")})
    adjusted, _ = adjust(bars_from_frame(frame))
    monthly = to_monthly(adjusted)
    assert [monthly.industries[i] for i in monthly.industry[:, 0]] == ["Steel", "Autos", "Autos"]


@pytest.mark.parametrize("text, message", [
    ("code,sector\nsh.600000,Banks\n", "missing column 'industry'"),
    ("code,industry\nsh.600000,Banks\nsh.600000,Steel\n", "code sh.600000 is mapped to two industries"),
    ("code,industry\nsh.600000,\n", "empty 'industry' in industry map, row 0"),
])
def test_industry_map_errors(tmp_path, text, message):
    path = tmp_path / "industry.csv"
    path.write_text(text)
    with pytest.raises(IndustryMapError, match=message):
        load_industry_map(path)
    with pytest.raises(IndustryMapError, match="industry map not found"):
        load_industry_map(tmp_path / "absent.csv")


# ------------------------------------------------------ the shared real file
@pytest.mark.skipif(not SHARED.exists(), reason=f"shared real file absent: {SHARED}")
def test_shared_real_file():
    panel, report = panel_from_daily(SHARED, start="2005-01-01", end="2021-09-30")
    a = report.adjustment
    assert a.method == "price_limit" and a.market_code == "sh.000001"
    assert 800 <= a.n_ex_rights_days <= 950  # the data README: about 900 moves beyond the limit
    assert a.n_unlimited_rises_kept < 30
    assert (panel.N, panel.T) == (301, 201)
    # a 10-for-10 bonus issue left in would be a -50% month; the few left are real crashes
    assert np.sum(panel.ret[panel.listed & np.isfinite(panel.ret)] < -0.5) <= 10
    assert set(report.benchmarks.columns) == {"sh.000001", "sh.000300"}
    assert len(report.factors) == 20


def test_index_codes_are_recognised_in_the_files_spelling():
    # Wind / Tushare spell the indices 000300.SH; matched on sh.000300 alone they became two
    # "stocks" of the universe and the run had no benchmark
    frame = pd.read_csv(FIXTURE, dtype={"code": str})
    wind = frame["code"].str.replace(r"^(s[hz])\.(\d{6})$", lambda m: f"{m[2]}.{m[1].upper()}", regex=True)
    panel, report = panel_from_daily(frame.assign(code=wind))
    assert "000300.SH" not in panel.codes and "000001.SH" not in panel.codes and panel.N == 5
    assert list(report.benchmarks.columns) == ["sh.000001", "sh.000300"]
    base, base_report = panel_from_daily(frame)
    pd.testing.assert_series_equal(report.benchmark("sh.000300"), base_report.benchmark("sh.000300"))
    # a stock of the same digits on the other exchange stays a stock (Ping An Bank is 000001.SZ)
    assert exchange_key("000001.SZ") != exchange_key("sh.000001") == exchange_key("000001.SH")


def test_a_stray_row_on_a_day_off_is_left_out_with_a_warning():
    # one row on a Saturday month-end: kept, it became February's last day, and every other
    # stock was "suspended" at that month-end
    dates = pd.bdate_range("2015-01-05", "2015-03-31")
    rng = np.random.default_rng(1)
    closes = {f"sh.6000{i:02d}": 10 * np.cumprod(1 + rng.normal(0, 0.01, len(dates))) for i in range(24)}
    frame = bars_frame(closes, dates)
    stray = frame[(frame["code"] == "sh.600000") & (frame["date"] == "2015-02-27")].assign(date=pd.Timestamp("2015-02-28"))
    with pytest.warns(DataWarning, match=r"1 row\(s\) on 1 day\(s\) when few codes have bars \(first 2015-02-28: 1 "
                                         r"against about 24\) left out as not market days"):
        bars = bars_from_frame(pd.concat([frame, stray], ignore_index=True))
    assert pd.Timestamp("2015-02-28") not in bars.dates
    pd.testing.assert_index_equal(bars.dates, bars_from_frame(frame).dates)


def test_an_index_with_missing_days_inside_its_span_is_a_warning_naming_the_gap():
    # its close was carried over the gap without a word: benchmark months of 0%, then the jump
    frame = pd.read_csv(FIXTURE, dtype={"code": str})
    gap = (frame["code"] == "sh.000300") & frame["date"].between("2016-06-01", "2016-08-31")
    assert gap.any()
    with pytest.warns(DataWarning, match=r"index sh.000300 has no bar on \d+ market day\(s\) inside its span "
                                         r"\(first gap 2016-06-01\.\.2016-08-31\): its close is carried over them"):
        _, report = panel_from_daily(frame[~gap])
    assert (report.benchmark("sh.000300").loc["2016-06":"2016-08"] == 0).all()  # what the warning is about
    with warnings.catch_warnings():  # the whole file: no gap, no warning
        warnings.simplefilter("error", DataWarning)
        panel_from_daily(frame)
