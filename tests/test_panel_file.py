"""The user's own panel file (SPEC §4.2) through ``feeds.panel.load_panel``: every §4.1
problem gives one PanelError naming the column, row or date, in CSV and in Parquet;
normalisation of dates; a save/load round trip."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feeds.daily import panel_from_daily
from feeds.panel import DataWarning, PanelError, load_panel, save_panel
from feeds.synthetic import make_market

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "cn_daily_subset.csv.gz"
FORMATS = ["csv", "parquet"]


def user_frame(months=6) -> pd.DataFrame:
    """Two stocks, mid-month dates (the file format allows any day of the month)."""
    dates = pd.date_range("2020-01-01", periods=months, freq="MS") + pd.Timedelta(days=14)
    rows = [dict(date=d.strftime("%Y-%m-%d"), code=code, ret=0.01 * i - 0.02 * k, bp=1.0 + i, mom=-0.5 * i + k,
                 industry="Banks" if code == "000001" else "Steel", suspended=(i == 2 and k == 1))
            for k, code in enumerate(["000001", "600000"]) for i, d in enumerate(dates)]
    return pd.DataFrame(rows)


def write(tmp_path, frame, fmt) -> Path:
    path = tmp_path / f"panel.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def load_error(tmp_path, frame, fmt, **kwargs) -> str:
    path = write(tmp_path, frame, fmt)
    with pytest.raises(PanelError) as err:
        load_panel(path, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_good_file_is_normalised_to_month_ends(tmp_path, fmt):
    frame = user_frame().sample(frac=1.0, random_state=0)  # rows in any order
    panel = load_panel(write(tmp_path, frame, fmt), styles={"value": ["bp"], "momentum": ["mom"]})
    assert list(panel.dates) == list(pd.date_range("2020-01-31", periods=6, freq="ME"))
    assert list(panel.codes) == ["000001", "600000"]  # leading zeros kept
    assert panel.factor_names == ["bp", "mom"]  # every other numeric column, in file order
    assert panel.industries == ["Banks", "Steel"] and panel.industry[0].tolist() == [0, 1]
    assert panel.suspended.sum() == 1 and panel.suspended[2, 1]
    np.testing.assert_allclose(panel.ret[:, 1], 0.01 * np.arange(6) - 0.02)
    assert panel.style_of == {"bp": "value", "mom": "momentum"}
    assert panel.validate(window=5) is panel


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mutate, kwargs, expected", [
    (lambda f: f.drop(columns="code"), {}, "missing column 'code'"),
    (lambda f: f.drop(columns="date"), {}, "missing column 'date'"),
    (lambda f: f.drop(columns="ret"), {}, "missing column: need 'ret' or 'close'"),
    (lambda f: f, {"factors": ["bp", "ep"]}, "missing factor column 'ep'"),
    (lambda f: f.drop(columns="industry"), {"require_industry": True},
     "missing column 'industry', required by industry neutralization"),
    # two rows of one stock in the same month: a duplicate once dates are month-ends
    (lambda f: pd.concat([f, f.iloc[[1]].assign(date="2020-02-03")], ignore_index=True), {},
     "duplicate (date, code) (2020-02-29, 000001) after normalising dates to month-ends, row 12"),
    (lambda f: f.assign(bp=f["bp"].astype(object).where(f.index != 7, "high")), {},
     "non-numeric value 'high' in column 'bp', row 7"),
    (lambda f: f.assign(ret=f["ret"].astype(object).where(f.index != 3, "x")), {},
     "non-numeric value 'x' in column 'ret', row 3"),
    (lambda f: f.assign(mom=f["mom"].where(f.index != 8, np.inf)), {},
     "infinite value in 'mom' at 2020-03-31, code 600000"),
    (lambda f: f.assign(ep=np.nan), {"factors": ["bp", "ep"]}, "factor 'ep' is entirely NaN"),
    (lambda f: f, {"styles": {"value": ["bp", "book"]}}, "style 'value' names unknown factor 'book'"),
    (lambda f: f, {"styles": {"value": ["bp"], "other": ["bp"]}}, "factor 'bp' is in both style 'value' and 'other'"),
    (lambda f: f.drop(columns=["bp", "mom"]), {}, "no factor columns"),
    (lambda f: f.assign(suspended=f["suspended"].astype(str).where(f.index != 6, "maybe")), {},
     "non-boolean value 'maybe' in column 'suspended', row 6"),
    # one stock under two codes: a spreadsheet read some rows' "000001" as the number 1
    (lambda f: f.assign(code=f["code"].where(f.index != 4, "1")), {},
     "codes '000001' and '1' differ only by case, blanks or leading zeros"),
    (lambda f: f.assign(code=f["code"].where(f.index != 4, " 000001")), {},
     "codes ' 000001' and '000001' differ only by case, blanks or leading zeros"),
    # a month absent from the file: its neighbours' rows would sit next to each other
    (lambda f: f[~f["date"].str.startswith("2020-03")], {}, "no rows for 2020-03: a panel needs every month"),
    (lambda f: f[~f["date"].str[:7].isin(["2020-03", "2020-04"])], {}, "no rows for 2020-03..2020-04"),
])
def test_every_panel_problem_is_one_clear_error(tmp_path, fmt, mutate, kwargs, expected):
    frame = mutate(user_frame())
    if fmt == "parquet":  # parquet columns hold one type: mixed ones travel as text
        frame = frame.astype({c: str for c in frame.columns if frame[c].dtype == object})
    message = load_error(tmp_path, frame, fmt, **kwargs)
    assert expected in message
    assert f"panel.{fmt}" in message or "factor '" in message or "style '" in message or "infinite" in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_too_few_months_for_the_window(tmp_path, fmt):
    panel = load_panel(write(tmp_path, user_frame(months=12), fmt))
    with pytest.raises(PanelError, match="panel has 12 months; window 24 needs at least 25"):
        panel.validate(window=24)
    panel.validate(window=11)


def test_unknown_style_name(tmp_path):
    panel = load_panel(write(tmp_path, user_frame(), "csv"), styles={"value": ["bp"]})
    with pytest.raises(PanelError, match=r"unknown style 'quality' \(known: value\)"):
        panel.check_styles(["value", "quality"])


def test_missing_and_unreadable_file(tmp_path):
    with pytest.raises(PanelError, match="panel file not found"):
        load_panel(tmp_path / "absent.csv")
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(PanelError, match="cannot read panel file"):
        load_panel(bad)
    with pytest.raises(PanelError, match=r"panel file not found: .* \(a folder, not a file\)"):
        load_panel(tmp_path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_code_is_named(tmp_path, fmt):
    frame = user_frame()
    frame["code"] = frame["code"].astype(object).where(frame.index != 5, None)
    assert "missing code in row 5" in load_error(tmp_path, frame, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_date_is_named(tmp_path, fmt):
    frame = user_frame()
    frame["date"] = frame["date"].astype(object).where(frame.index != 5, None)
    assert "missing date in row 5" in load_error(tmp_path, frame, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_unparseable_date_is_one_line_naming_the_row(tmp_path, fmt):
    frame = user_frame()
    frame["date"] = frame["date"].where(frame.index != 4, "2020-13-45")
    message = load_error(tmp_path, frame, fmt)
    assert "column 'date' has an unparseable value" in message
    assert "'2020-13-45'" in message and "row 4" in message


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("yes, no", [("Y", "N"), ("是", "否"), ("true", "False"), (1, 0)])
def test_flags_spelled_as_text_are_read_as_they_say(tmp_path, fmt, yes, no):
    frame = user_frame()  # astype(bool) took any text, "N" included, for True
    frame["suspended"] = np.where(frame["suspended"], yes, no)
    frame["listed"] = yes
    panel = load_panel(write(tmp_path, frame, fmt))
    assert panel.suspended.sum() == 1 and panel.suspended[2, 1] and panel.listed.all()


def test_text_columns_are_not_factors(tmp_path):
    frame = user_frame().assign(name="Ping An Bank")
    panel = load_panel(write(tmp_path, frame, "csv"))
    assert panel.factor_names == ["bp", "mom"]


@pytest.mark.parametrize("suffix", ["csv", "csv.gz", "parquet"])
def test_save_load_round_trip_synthetic(tmp_path, suffix):
    panel = make_market(3, n_stocks=60, start="2012-01", end="2013-12").panel
    path = save_panel(panel, tmp_path / f"panel.{suffix}")
    back = load_panel(path, factors=panel.factor_names, styles=panel.styles)
    assert back.dates.equals(panel.dates) and back.factor_names == panel.factor_names
    cols = panel.codes.get_indexer(back.codes)
    assert (cols >= 0).all() and set(back.codes) == set(panel.codes[panel.listed.any(axis=0)])
    for name in ("factors", "ret", "close", "listed", "suspended", "limit_up", "limit_down", "is_st", "mcap"):
        np.testing.assert_array_equal(getattr(back, name), getattr(panel, name)[:, cols], err_msg=name)
    # industries round-trip by name (the file only holds those of listed stocks)
    assert set(back.industries) <= set(panel.industries)
    np.testing.assert_array_equal(np.array(back.industries)[back.industry[back.listed]],
                                  np.array(panel.industries)[panel.industry[:, cols][back.listed]])
    assert back.styles == panel.styles


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_save_load_round_trip_of_a_daily_bars_panel(tmp_path, suffix):
    panel, report = panel_from_daily(FIXTURE, start="2015-01-01")
    back = load_panel(save_panel(panel, tmp_path / f"real.{suffix}"), styles=report.styles)
    assert back.factor_names == panel.factor_names and back.codes.equals(panel.codes)
    for name in ("factors", "ret", "close", "listed", "suspended", "limit_up", "limit_down"):
        np.testing.assert_array_equal(getattr(back, name), getattr(panel, name), err_msg=name)
    assert not back.has_industry


def _with_close(months=30, seed=0) -> pd.DataFrame:
    """A file with both ret and close, 8 stocks: ret is the return of the month ending at date."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2018-01-31", periods=months, freq="ME")
    ret = rng.normal(0.0, 0.1, (months, 8))
    close = 10.0 * np.cumprod(1.0 + ret, axis=0)
    return pd.DataFrame([dict(date=d.strftime("%Y-%m-%d"), code=f"{i:06d}", ret=ret[t, i], close=close[t, i],
                              bp=rng.normal()) for t, d in enumerate(dates) for i in range(8)])


def test_forward_returns_beside_close_are_refused(tmp_path, recwarn):
    frame = _with_close()
    load_panel(write(tmp_path, frame, "csv"))  # ret of its own month: accepted, no warning
    assert not [w for w in recwarn if "disagree" in str(w.message)]
    # the common factor-table layout: next month's return on this month's row
    frame["ret"] = frame.groupby("code")["ret"].shift(-1)
    message = load_error(tmp_path, frame, "csv")
    assert message.startswith("'ret' is next month's return: in 100% of stock-months")
    assert "panel.csv" in message


def test_ret_disagreeing_with_close_is_a_warning(tmp_path):
    frame = _with_close()
    frame["close"] = frame["close"].round(1) * np.where(frame.index % 3 == 0, 1.0, 0.5)  # not the ret's prices
    with pytest.warns(DataWarning, match=r"'ret' and 'close' disagree in \d+% of stock-months"):
        panel = load_panel(write(tmp_path, frame, "csv"))
    np.testing.assert_allclose(panel.ret[1:], frame.pivot(index="date", columns="code", values="ret").to_numpy()[1:])
