"""The factor library: every formula against a plain per-stock reference on a hand-made
daily market, fundamentals joined by announcement date, and point-in-time safety."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feeds.daily import DailyBarsError, panel_from_daily
from feeds.factor_library import LIBRARY, asof_fundamentals, library_table, load_fundamentals

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "cn_daily_subset.csv.gz"
INDEX = "sh.000001"
N_DAYS = 420
BONUS_DAY = 250  # stock A pays a 10-for-10 bonus issue: its raw prices halve
SUSPENDED = range(200, 215)  # stock B: volume-0 bars (a long suspension)
MISSING = range(300, 304)  # stock B: no rows at all
LISTING = 100  # stock C lists on this day


def market(seed=0) -> pd.DataFrame:
    """Long daily bars of an index and three stocks with every feature the library handles."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2019-01-01", periods=N_DAYS)
    index_ret = rng.normal(0.0003, 0.012, N_DAYS)
    level = 3000 * np.cumprod(1 + index_ret)
    rows = [pd.DataFrame({"date": dates, "code": INDEX, "open": level, "high": level, "low": level,
                          "close": level, "volume": 1e10})]
    for code, beta in (("sh.600001", 1.2), ("sz.000002", 0.7), ("sh.600003", 1.0)):
        ret = np.clip(beta * index_ret + rng.normal(0, 0.018, N_DAYS), -0.09, 0.09)
        if code == "sh.600001":  # rallies after its bonus issue: new 52-week highs on the adjusted scale only
            ret[BONUS_DAY:] = np.clip(ret[BONUS_DAY:] + 0.006, -0.09, 0.09)
        close = 20 * np.cumprod(1 + ret)
        volume = rng.lognormal(15, 0.5, N_DAYS)
        frame = pd.DataFrame({"date": dates, "code": code, "close": close, "volume": volume})
        frame["open"] = close / (1 + ret) * (1 + rng.normal(0, 0.004, N_DAYS))
        frame["high"] = np.maximum(frame["open"], close) * (1 + np.abs(rng.normal(0, 0.01, N_DAYS)))
        frame["low"] = np.minimum(frame["open"], close) * (1 - np.abs(rng.normal(0, 0.01, N_DAYS)))
        frame["amount"] = volume * close * (1 + rng.normal(0, 0.002, N_DAYS))
        frame["turnover"] = volume / 1e8
        frame["mcap"] = close * 1e9
        frame["float_mcap"] = close * 4e8
        if code == "sh.600001":
            after = np.arange(N_DAYS) >= BONUS_DAY
            for col in ("open", "high", "low", "close"):
                frame.loc[after, col] /= 2.0
            frame.loc[after, "volume"] *= 2.0
        if code == "sz.000002":
            idle = list(SUSPENDED)
            carried = frame["close"].iloc[idle[0] - 1]
            frame.loc[idle, ["open", "high", "low", "close"]] = carried
            frame.loc[idle, ["volume", "amount", "turnover"]] = 0.0
            frame = frame.drop(index=list(MISSING))
        if code == "sh.600003":
            frame = frame.iloc[LISTING:]
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


# --------------------------------------------------------------- the reference
def reference(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every library factor, computed stock by stock with plain loops (month-end × code)."""
    cal = pd.DatetimeIndex(sorted(frame["date"].unique()))
    index = frame[frame["code"] == INDEX].set_index("date")["close"].reindex(cal).ffill()
    ends = [np.flatnonzero(cal.to_period("M") == p)[-1] for p in cal.to_period("M").unique()]
    month_ends = pd.DatetimeIndex([cal[e] for e in ends]) + pd.offsets.MonthEnd(0)
    out: dict[str, dict] = {s.name: {} for s in LIBRARY}
    for code, bars in frame[frame["code"] != INDEX].groupby("code"):
        bars = bars.set_index("date").reindex(cal)
        has = bars["close"].notna().to_numpy()
        traded = has & (bars["volume"].fillna(0).to_numpy() > 0)
        close = bars["close"].to_numpy()
        # adjusted returns: raw close-to-close; a move beyond ±10% (+ half a cent) is replaced
        # by the index's, except a rise after 10+ days without a trade
        ret = np.full(len(cal), np.nan)
        m_since = np.full(len(cal), np.nan)
        last_close, last_trade = np.nan, None
        for d in range(len(cal)):
            if not has[d]:
                continue
            if traded[d] and last_trade is not None:
                r = close[d] / last_close - 1
                m_since[d] = index.iloc[d] / index.iloc[last_trade] - 1
                beyond = abs(r) > 0.1 + 0.005 / last_close
                kept = r > 0 and d - last_trade - 1 >= 10
                ret[d] = m_since[d] if beyond and not kept else r
            last_close = close[d]
            if traded[d]:
                last_trade = d
        first = int(np.flatnonzero(has)[0])
        adj = np.full(len(cal), np.nan)
        adj[first:] = close[first] * np.cumprod(np.where(np.isfinite(ret[first:]), 1 + ret[first:], 1.0))
        scale = adj / close
        high = np.where(traded, bars["high"].to_numpy() * scale, np.nan)
        vol = np.where(traded, bars["volume"].to_numpy() / scale, np.nan)
        amount = np.where(traded, bars["amount"].to_numpy(), np.nan)
        turn = np.where(traded, bars["turnover"].to_numpy(), np.nan)
        p_traded = np.where(traded, adj, np.nan)

        def win(values, e, k):
            part = values[max(0, e - k + 1):e + 1]
            part = part[np.isfinite(part)]
            return part if len(part) >= max(2, k // 2) else None

        def regress(e, k):
            r, m = ret[max(0, e - k + 1):e + 1], m_since[max(0, e - k + 1):e + 1]
            ok = np.isfinite(r) & np.isfinite(m)
            if ok.sum() < max(2, k // 2):
                return np.nan, np.nan
            slope, icpt = np.polyfit(m[ok], r[ok], 1)
            resid = r[ok] - slope * m[ok] - icpt
            return slope, np.sqrt(np.sum(resid ** 2) / (ok.sum() - 2))

        def stat(values, e, k, fn):
            part = win(values, e, k)
            return np.nan if part is None else fn(part)

        for t, e in enumerate(ends):
            if e < first:
                continue
            p = adj[:e + 1][np.isfinite(adj[:e + 1])][-1]

            def month_close(back):
                return adj[ends[t - back]] if t - back >= 0 and ends[t - back] >= first else np.nan
            beta12 = regress(e, 252)[0]
            mkt_1m = index.iloc[e] / index.iloc[ends[t - 1]] - 1 if t else np.nan
            key = (month_ends[t], code)
            vals = {
                "mom_1m": p / month_close(1) - 1, "mom_3m": p / month_close(3) - 1,
                "mom_6m": p / month_close(6) - 1, "mom_12m": p / month_close(12) - 1,
                "mom_12_1": month_close(1) / month_close(12) - 1,
                "rev_5d": p / adj[e - 5] - 1 if e - 5 >= first else np.nan,
                "rev_1m_abnormal": p / month_close(1) - 1 - beta12 * mkt_1m,
                "dvol_1m": stat(ret, e, 21, lambda x: np.std(x, ddof=1)),
                "dvol_3m": stat(ret, e, 63, lambda x: np.std(x, ddof=1)),
                "max_ret_1m": stat(ret, e, 21, np.max),
                "ivol_3m": regress(e, 63)[1], "beta_12m": beta12,
                "amihud_1m": stat(np.abs(ret) / amount * 1e8, e, 21, np.mean),
                "ln_amount_1m": stat(amount, e, 21, lambda x: np.log(np.mean(x))),
                "volume_trend": (np.log(stat(vol, e, 21, np.mean) / stat(vol, e, 126, np.mean))),
                "turn_1m": stat(turn, e, 21, np.mean), "turn_3m": stat(turn, e, 63, np.mean),
                "turn_6m": stat(turn, e, 126, np.mean),
                "high_52w": p / stat(high, e, 252, np.max) - 1,
                "ma_gap_1m": p / stat(p_traded, e, 21, np.mean) - 1,
                "ma_gap_3m": p / stat(p_traded, e, 63, np.mean) - 1,
                "ma_gap_12m": p / stat(p_traded, e, 252, np.mean) - 1,
                "rsi_14d": stat(ret, e, 14, lambda x: 100 * x[x > 0].sum() / np.abs(x).sum()),
                "ln_mcap": np.log(bars["mcap"].iloc[:e + 1].dropna().iloc[-1]),
                "ln_float_mcap": np.log(bars["float_mcap"].iloc[:e + 1].dropna().iloc[-1]),
            }
            for name, value in vals.items():
                out[name][key] = value
    return {name: pd.Series(v).unstack() for name, v in out.items()}


@pytest.fixture(scope="module")
def built():
    frame = market()
    panel, report = panel_from_daily(frame)
    return frame, panel, report


def test_every_factor_matches_its_formula(built):
    frame, panel, report = built
    assert report.adjustment.n_neutralised == 1  # the bonus issue, neutralised
    assert not report.skipped and panel.factor_names == [s.name for s in LIBRARY]
    expected = reference(frame)
    assert set(expected) == set(panel.factor_names)
    for i, name in enumerate(panel.factor_names):
        want = expected[name].reindex(index=panel.dates, columns=panel.codes).to_numpy(float)
        got = panel.factors[:, :, i].astype(float)
        assert np.array_equal(np.isnan(got), np.isnan(want)), f"{name}: missing values differ"
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6, equal_nan=True, err_msg=name)
        assert np.isfinite(got).sum() >= 10, name


def test_styles_mcap_and_documentation(built):
    _, panel, report = built
    assert panel.styles == {s: [f.name for f in LIBRARY if f.style == s]
                            for s in ("momentum", "reversal", "volatility", "liquidity", "technical", "size")}
    assert panel.mcap is not None and np.isfinite(panel.mcap[panel.listed]).all()
    table = library_table()
    for spec in LIBRARY:
        assert f"`{spec.name}`" in table and spec.lookback and spec.formula


# --------------------------------------------------------------- point in time
def alter_after(frame: pd.DataFrame, cut: pd.Timestamp, seed=9) -> pd.DataFrame:
    """Every bar after ``cut`` gets other prices, volumes and amounts."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    later = (out["date"] > cut).to_numpy()
    k = int(later.sum())
    shock = rng.uniform(0.6, 1.5, k)
    for col in ("open", "high", "low", "close"):
        out.loc[later, col] = out.loc[later, col].to_numpy() * shock
    for col in ("volume", "amount", "turnover", "mcap", "float_mcap"):
        if col in out.columns:
            out[col] = out[col].astype(float)
            out.loc[later, col] = out.loc[later, col].to_numpy() * rng.uniform(0.1, 3.0, k)
    return out


def assert_same_until(a, b, t):
    for name in ("factors", "ret", "close", "listed", "suspended", "limit_up", "limit_down", "is_st", "mcap"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None:
            assert y is None
            continue
        assert np.array_equal(x[:t + 1], y[:t + 1], equal_nan=x.dtype.kind == "f"), name


def test_point_in_time_on_hand_made_market(built):
    frame, panel, _ = built
    fundamentals = pd.DataFrame({"code": ["sh.600001"] * 4, "announce_date": ["2019-03-05", "2019-08-20",
                                 "2019-10-30", "2020-02-03"], "bp": [0.5, 0.6, 0.7, 0.8]})
    t = 9  # 2019-10
    cut = pd.Timestamp("2019-10-31")
    base, _ = panel_from_daily(frame, fundamentals=fundamentals)
    later = fundamentals.assign(bp=np.where(pd.to_datetime(fundamentals["announce_date"]) >= cut, -9.0, 0.0)
                                + fundamentals["bp"])
    changed, report = panel_from_daily(alter_after(frame, cut), fundamentals=later)
    assert base.dates[t] == cut
    assert_same_until(base, changed, t)
    assert not np.array_equal(base.factors[t + 1:], changed.factors[t + 1:], equal_nan=True)  # it did change


def test_point_in_time_on_real_subset():
    frame = pd.read_csv(FIXTURE, dtype={"code": str}, parse_dates=["date"])
    cut = pd.Timestamp("2012-06-30")
    base, _ = panel_from_daily(frame)
    changed, _ = panel_from_daily(alter_after(frame, cut))
    t = base.dates.get_loc(cut)
    assert_same_until(base, changed, t)
    assert not np.array_equal(base.factors[t + 1:], changed.factors[t + 1:], equal_nan=True)


# ---------------------------------------------------------------- fundamentals
def test_fundamentals_are_joined_by_announcement_date(built):
    frame, _, _ = built
    fundamentals = pd.DataFrame({
        "code": ["sh.600001", "sh.600001", "sh.600001", "sh.600001", "sh.600001", "sz.999999"],
        "announce_date": ["2019-03-15", "2019-04-30", "2019-08-10", "2019-08-10", "2019-11-01", "2019-01-10"],
        "report_date": ["2018-12-31", "2019-03-31", "2019-06-30", "2019-03-31", "2019-09-30", "2018-12-31"],
        "bp": [0.5, 0.6, np.nan, 0.55, 0.9, 1.0],
        "ep": [0.05, 0.06, 0.1, 0.07, np.nan, 0.2],
    })
    panel, report = panel_from_daily(frame, fundamentals=fundamentals,
                                     fundamental_styles={"value": ["bp", "ep"]})
    assert panel.styles["value"] == ["bp", "ep"]
    j = panel.codes.get_loc("sh.600001")
    bp = panel.factors[:12, j, panel.factor_names.index("bp")]
    ep = panel.factors[:12, j, panel.factor_names.index("ep")]
    # 2019-04-30 is April's last exchange day: that announcement waits until May.
    # Two August rows: the newer period (06-30) wins where it has a value, the other fills bp.
    np.testing.assert_allclose(bp, [np.nan, np.nan, .5, .5, .6, .6, .6, .55, .55, .55, .9, .9], rtol=1e-6)
    np.testing.assert_allclose(ep, [np.nan, np.nan, .05, .05, .06, .06, .06, .1, .1, .1, .1, .1], rtol=1e-6)
    other = panel.factors[:, panel.codes.get_loc("sz.000002"), panel.factor_names.index("bp")]
    assert np.isnan(other).all()


def test_asof_join_uses_the_last_exchange_day():
    frame = pd.DataFrame({"code": ["a", "a"], "announce_date": pd.to_datetime(["2020-01-23", "2020-01-24"]),
                          "x": [1.0, 2.0]})
    last_day = pd.DatetimeIndex(["2020-01-23", "2020-02-28"])  # January's trading ends early
    out = asof_fundamentals(frame, ["x"], pd.Index(["a", "b"]), last_day)["x"]
    np.testing.assert_array_equal(out, [[np.nan, np.nan], [2.0, np.nan]])


@pytest.mark.parametrize("frame, styles, message", [
    (pd.DataFrame({"code": ["a"], "bp": [1.0]}), None, "missing column 'announce_date' in fundamentals"),
    (pd.DataFrame({"code": ["a"], "announce_date": ["someday"], "bp": [1.0]}), None,
     "unparseable announce_date 'someday' in fundamentals, row 0"),
    (pd.DataFrame({"code": ["a"], "announce_date": ["2020-01-02"], "bp": ["high"]}), None,
     "non-numeric value 'high' in fundamentals column 'bp', row 0"),
    (pd.DataFrame({"code": ["a", "a"], "announce_date": ["2020-01-02"] * 2, "bp": [1.0, 2.0]}), None,
     "two fundamentals rows for (a, 2020-01-02), row 1"),
    (pd.DataFrame({"code": ["a"], "announce_date": ["2020-01-02"], "bp": [1.0]}), {"value": ["ep"]},
     "fundamental style 'value' names unknown field 'ep'"),
    (pd.DataFrame({"code": ["a"], "announce_date": ["2020-01-02"], "mom_1m": [1.0]}), None,
     "fundamental field 'mom_1m' has the name of a library factor"),
])
def test_fundamentals_errors(built, frame, styles, message):
    with pytest.raises(DailyBarsError) as err:
        panel_from_daily(built[0], fundamentals=frame, fundamental_styles=styles)
    assert message in str(err.value)


def test_fundamentals_file(tmp_path):
    path = tmp_path / "fundamentals.csv"
    path.write_text("code,announce_date,bp\nsh.600001,2019-03-15,0.5\n")
    frame, fields = load_fundamentals(path)
    assert fields == ["bp"] and frame["announce_date"].iloc[0] == pd.Timestamp("2019-03-15")
    with pytest.raises(DailyBarsError, match="fundamentals file not found"):
        load_fundamentals(tmp_path / "absent.csv")


# ------------------------------------------------------------ skipped factors
def test_missing_inputs_are_skipped_and_reported(built):
    frame = built[0].drop(columns=["turnover", "mcap"])
    panel, report = panel_from_daily(frame)
    assert report.skipped == {"ln_mcap": "needs a 'mcap' column"}
    assert "turn_1m" in panel.factor_names  # from amount / float_mcap
    assert any("amount / float_mcap" in n for n in report.notes)
    short, report = panel_from_daily(frame, start="2019-01-01", end="2019-06-30")
    assert "mom_12m" not in short.factor_names and "no value in 2019-01..2019-06" in report.skipped["mom_12m"]
    assert short.T == 6
