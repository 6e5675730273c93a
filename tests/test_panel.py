"""The Panel: construction, validation (one test per SPEC §4.1 problem), conversion and files."""
import numpy as np
import pandas as pd
import pytest

from feeds.panel import Panel, PanelError, load_panel, month_end, save_panel


def long_frame(months=4, codes=("A", "B", "C")):
    rows = []
    for t, date in enumerate(pd.date_range("2020-01-31", periods=months, freq="ME")):
        for i, code in enumerate(codes):
            rows.append({"date": date - pd.Timedelta(days=3 * i), "code": code, "ret": 0.01 * (t + i),
                         "industry": "bank" if i < 2 else "tech", "f1": float(t * 10 + i), "f2": float(i - t),
                         "is_st": i == 2 and t == 1})
    return pd.DataFrame(rows)


def make_panel(**changes):
    T, N, F = 3, 2, 2
    kwargs = dict(dates=pd.date_range("2020-01-31", periods=T, freq="ME"), codes=["A", "B"],
                  factors=np.arange(T * N * F, dtype=np.float32).reshape(T, N, F), factor_names=["f1", "f2"],
                  ret=np.zeros((T, N)), close=np.ones((T, N)), listed=np.ones((T, N), bool),
                  styles={"value": ["f1"]})
    kwargs.update(changes)
    return Panel(**kwargs)


def test_from_frame_builds_dense_arrays_and_normalises_dates():
    panel = Panel.from_frame(long_frame(), styles={"value": ["f1"], "quality": ["f2"]})
    assert panel.T == 4 and panel.N == 3 and panel.factor_names == ["f1", "f2"]
    assert list(panel.dates) == list(pd.date_range("2020-01-31", periods=4, freq="ME"))
    assert panel.factors[2, 1, 0] == 21.0 and panel.factors.dtype == np.float32
    assert panel.industries == ["bank", "tech"] and panel.industry[0].tolist() == [0, 0, 1]
    assert panel.is_st[1, 2] and panel.is_st.sum() == 1
    assert panel.style_of == {"f1": "value", "f2": "quality"}
    # close is rebuilt from ret as a total-return index
    np.testing.assert_allclose(panel.close[:, 0], np.cumprod(1 + panel.ret[:, 0]))


def test_close_only_gives_returns_and_ret_wins_when_both():
    frame = long_frame().drop(columns="ret")
    frame["close"] = 10.0 * (1 + frame.index.to_numpy() / 100)
    panel = Panel.from_frame(frame)
    np.testing.assert_allclose(panel.ret[1:, 0], panel.close[1:, 0] / panel.close[:-1, 0] - 1)
    assert np.isnan(panel.ret[0]).all()
    both = long_frame()
    both["close"] = 5.0
    np.testing.assert_allclose(Panel.from_frame(both).ret, Panel.from_frame(long_frame()).ret)


def test_frame_round_trip_keeps_every_field():
    panel = Panel.from_frame(long_frame(), styles={"value": ["f1"]})
    again = Panel.from_frame(panel.to_frame(), styles=panel.styles)
    for name in ("factors", "ret", "close", "listed", "industry", "is_st", "suspended"):
        np.testing.assert_array_equal(getattr(again, name), getattr(panel, name))
    assert again.factor_names == panel.factor_names and again.industries == panel.industries


def test_to_frame_has_date_code_multiindex_and_only_listed_rows():
    frame = long_frame()
    frame = frame[~((frame.code == "C") & (frame.date > "2020-02-15"))]  # C delists
    out = Panel.from_frame(frame).to_frame()
    assert out.index.names == ["date", "code"] and len(out) == len(frame)


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet"])
def test_panel_file_round_trip(tmp_path, fmt):
    panel = Panel.from_frame(long_frame())
    path = save_panel(panel, tmp_path / f"panel.{fmt}")
    loaded = load_panel(path)
    np.testing.assert_array_equal(loaded.factors, panel.factors)
    np.testing.assert_allclose(loaded.ret, panel.ret)
    assert list(loaded.codes) == list(panel.codes) and loaded.dates.equals(panel.dates)


def test_slice_take_and_select():
    panel = Panel.from_frame(long_frame(months=6))
    part = panel.slice("2020-02-10", "2020-04-01")
    assert [d.month for d in part.dates] == [2, 3, 4]
    np.testing.assert_array_equal(part.factors, panel.factors[1:4])
    assert panel.take(cols=[2]).codes.tolist() == ["C"]
    assert panel.select_factors(["f2"]).factor_names == ["f2"]
    with pytest.raises(PanelError, match="no months between"):
        panel.slice("2030-01-01", "2030-12-31")
    with pytest.raises(PanelError, match="unknown factor 'nope'"):
        panel.select_factors(["nope"])


def test_month_end_normalises_any_day():
    assert month_end(["2016-02-03", "2016-12-31"]).strftime("%Y-%m-%d").tolist() == ["2016-02-29", "2016-12-31"]


# --- one test per validation problem of SPEC §4.1 -------------------------------------------
def test_missing_column():
    with pytest.raises(PanelError, match="need 'ret' or 'close'"):
        Panel.from_frame(long_frame().drop(columns="ret"))
    with pytest.raises(PanelError, match="missing column 'code'"):
        Panel.from_frame(long_frame().drop(columns="code"))
    with pytest.raises(PanelError, match="missing column 'industry'"):
        Panel.from_frame(long_frame().drop(columns="industry"), require_industry=True)
    with pytest.raises(PanelError, match="missing factor column 'f9'"):
        Panel.from_frame(long_frame(), factors=["f1", "f9"])


def test_duplicate_date_code_after_normalisation():
    frame = long_frame()
    extra = frame.iloc[[0]].assign(date=pd.Timestamp("2020-01-02"))
    with pytest.raises(PanelError, match=r"duplicate \(date, code\) \(2020-01-31, A\)"):
        Panel.from_frame(pd.concat([frame, extra]))


def test_unsorted_or_non_month_end_dates():
    with pytest.raises(PanelError, match="not a month-end"):
        make_panel(dates=pd.DatetimeIndex(["2020-01-15", "2020-02-29", "2020-03-31"]))
    with pytest.raises(PanelError, match="not strictly increasing at 2020-01-31"):
        make_panel(dates=pd.DatetimeIndex(["2020-02-29", "2020-01-31", "2020-03-31"]))


def test_non_numeric_factor():
    frame = long_frame()
    frame["f2"] = frame["f2"].astype(object)
    frame.loc[5, "f2"] = "n/a!"
    with pytest.raises(PanelError, match=r"non-numeric value 'n/a!' in column 'f2', row 5"):
        Panel.from_frame(frame)


def test_infinite_value():
    frame = long_frame()
    frame.loc[4, "f1"] = np.inf
    with pytest.raises(PanelError, match=r"infinite value in 'f1' at 2020-02-29, code B"):
        Panel.from_frame(frame)


def test_factor_entirely_nan():
    frame = long_frame()
    frame["f2"] = np.nan
    with pytest.raises(PanelError, match="factor 'f2' is entirely NaN"):
        Panel.from_frame(frame, factors=["f1", "f2"])


def test_fewer_than_window_plus_one_months():
    panel = Panel.from_frame(long_frame(months=4))
    panel.validate(window=3)
    with pytest.raises(PanelError, match="panel has 4 months; window 24 needs at least 25"):
        panel.validate(window=24)


def test_unknown_style_and_style_naming_unknown_factor():
    with pytest.raises(PanelError, match="style 'value' names unknown factor 'bp'"):
        Panel.from_frame(long_frame(), styles={"value": ["bp"]})
    with pytest.raises(PanelError, match="factor 'f1' is in both style 'a' and 'b'"):
        Panel.from_frame(long_frame(), styles={"a": ["f1"], "b": ["f1"]})
    panel = Panel.from_frame(long_frame(), styles={"value": ["f1"]})
    with pytest.raises(PanelError, match="unknown style 'momentum'"):
        panel.check_styles(["value", "momentum"])


def test_shape_mismatch_is_named():
    with pytest.raises(PanelError, match=r"'ret' has shape \(2, 2\), expected \(3, 2\)"):
        make_panel(ret=np.zeros((2, 2)))


def test_missing_file_and_unreadable_file(tmp_path):
    with pytest.raises(PanelError, match="panel file not found"):
        load_panel(tmp_path / "absent.csv")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(PanelError, match="cannot read panel file"):
        load_panel(bad)
