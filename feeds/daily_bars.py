"""Daily bars: read, validate and lay them on a dense ``[days, stocks]`` grid (step 1 of
:mod:`feeds.daily`).

:func:`load_daily_bars` reads a long CSV/Parquet file (or a folder of per-stock files),
:func:`bars_from_frame` an in-memory frame; both validate every row (one
:class:`DailyBarsError` line naming the column, row, date or code) and return
:class:`DailyBars`. The exchange calendar is the union of the dates in the data; index
codes (the benchmarks) are kept apart from the stocks.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .daily_limits import exchange_key
from .grid import carry
from .industry import assign_industries, load_industry_map
from .panel import DataWarning, PanelError
from .tables import boolean_column, numeric_column, read_table, table_kind, table_stem

INDEX_CODES = ("sh.000001", "sh.000300")
"""Index codes of the shared real file: SSE Composite and CSI300 (benchmarks, not stocks)."""

REQUIRED_COLUMNS = ("date", "code", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
OPTIONAL_NUMERIC = ("amount", "pre_close", "adj_factor", "turnover", "mcap", "float_mcap")


class DailyBarsError(PanelError):
    """Daily bars (or their fundamentals) are unusable; the message says what and where."""



@dataclass(eq=False)
class DailyBars:
    """Validated daily bars on a dense ``[D days, N stocks]`` grid.

    Attributes
    ----------
    dates : DatetimeIndex [D]
        The exchange calendar: every date present in the data (stocks and indices).
    codes : Index [N]
        Stock codes (index codes excluded), sorted.
    fields : dict of str → ndarray [D, N] float64
        ``open, high, low, close, volume, amount`` and whichever of ``pre_close,
        adj_factor, turnover, mcap, float_mcap`` the data has; NaN where there is no bar.
    has_bar : ndarray [D, N] bool
        A row exists for the stock that day.
    traded : ndarray [D, N] bool
        A bar with volume > 0. A bar with volume 0 or missing is a no-trade bar (the
        stock is suspended that day; its close is the reference price).
    is_st : ndarray [D, N] bool or None
        Special treatment status from an ``is_st`` column.
    industry : ndarray [D, N] int32
        Index into ``industries``; -1 unknown (everywhere when there is no industry).
    industries : list of str
    industry_source : str
        ``"map <source>"``, ``"column"`` or ``"absent"``.
    unmapped : list of str
        Stock codes the industry map does not name.
    index_close : DataFrame [D, K]
        Closes of the index codes present (the benchmarks), NaN without a bar.
    amount_derived : bool
        ``amount`` was absent and was estimated as ``close × volume``.
    source : str
        Where the bars came from (for messages).
    """

    dates: pd.DatetimeIndex
    codes: pd.Index
    fields: dict[str, np.ndarray]
    has_bar: np.ndarray
    traded: np.ndarray
    is_st: np.ndarray | None
    industry: np.ndarray
    industries: list[str]
    industry_source: str
    unmapped: list[str]
    index_close: pd.DataFrame
    amount_derived: bool
    source: str

    @property
    def D(self) -> int:
        return len(self.dates)

    @property
    def N(self) -> int:
        return len(self.codes)

    def has(self, name: str) -> bool:
        """Whether the optional column ``name`` was given."""
        return name in self.fields

    def __repr__(self) -> str:
        return (f"DailyBars({self.D} days {self.dates[0]:%Y-%m-%d}..{self.dates[-1]:%Y-%m-%d}, "
                f"{self.N} stocks, {int(self.has_bar.sum())} bars, indices {list(self.index_close)})")


def load_daily_bars(path_or_folder, industry_map=None, index_codes: Sequence[str] = INDEX_CODES
                    ) -> DailyBars:
    """Read and validate daily bars.

    Parameters
    ----------
    path_or_folder : str or Path
        A long CSV (optionally compressed) or Parquet file with one row per (date, code),
        or a folder of such files, one per stock (a file without a ``code`` column takes
        its code from the file name, e.g. ``sh.600000.csv``).
    industry_map : str, Path, DataFrame or mapping, optional
        Code → industry map (:func:`feeds.industry.load_industry_map`); it replaces an
        ``industry`` column of the bars.
    index_codes : sequence of str
        Codes that are market indices: kept apart as benchmarks, never stocks.

    Returns
    -------
    DailyBars

    Raises
    ------
    DailyBarsError
        Missing file or column, unparseable date, duplicate (date, code), non-numeric or
        non-positive price, negative volume, high below low, ...: one line with the
        row, date and code.
    """
    path = Path(path_or_folder)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                       and table_kind(p) is not None)
        if not files:
            raise DailyBarsError(f"no CSV or Parquet files in folder {path}")
        frames = []
        for file in files:
            frame = _read_table(file)
            if "code" not in frame.columns:
                frame["code"] = table_stem(file)
            frames.append(_validate_frame(frame, str(file)))
        frame = pd.concat(frames, ignore_index=True)
        dup = frame.duplicated(["date", "code"])
        if dup.any():
            row = frame.loc[dup].iloc[0]
            raise DailyBarsError(f"duplicate (date, code) ({row['date'].date()}, {row['code']}) in two "
                                 f"files of folder {path}")
        return _build(frame, industry_map, index_codes, str(path))
    frame = _validate_frame(_read_table(path), str(path))
    return _build(frame, industry_map, index_codes, str(path))


def bars_from_frame(frame: pd.DataFrame, industry_map=None, index_codes: Sequence[str] = INDEX_CODES,
                    source: str = "frame") -> DailyBars:
    """Validate an in-memory long frame of daily bars (same rules as :func:`load_daily_bars`)."""
    df = frame.reset_index() if isinstance(frame.index, pd.MultiIndex) else frame.copy()
    return _build(_validate_frame(df, source), industry_map, index_codes, source)


def _read_table(path: Path) -> pd.DataFrame:
    return read_table(path, "daily bars file", DailyBarsError, dtype={"code": str, "industry": str})


def _where(df: pd.DataFrame, i: int, source: str) -> str:
    date = df["date"].iloc[i]
    date = date.date() if isinstance(date, pd.Timestamp) else date
    return f"row {i} ({date}, {df['code'].iloc[i]}) of {source}"


def _validate_frame(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check columns and values; return a frame with parsed dates, str codes and float columns."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DailyBarsError(f"missing column '{missing[0]}' in {source}; daily bars need "
                             f"{', '.join(REQUIRED_COLUMNS)}")
    if df.empty:
        raise DailyBarsError(f"no rows in {source}")
    df = df.reset_index(drop=True)
    blank = df["code"].isna().to_numpy()
    if blank.any():
        raise DailyBarsError(f"missing code in row {int(np.flatnonzero(blank)[0])} of {source}")
    df["code"] = df["code"].astype(str).str.strip()
    raw_dates = df["date"]
    if raw_dates.isna().any():
        raise DailyBarsError(f"missing date in row {int(np.flatnonzero(raw_dates.isna())[0])} of {source}")
    dates = _parse_dates(raw_dates)
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna())[0])
        raise DailyBarsError(f"unparseable date {raw_dates.iloc[i]!r} in row {i} "
                             f"(code {df['code'].iloc[i]}) of {source}")
    df["date"] = dates
    numeric = list(REQUIRED_COLUMNS[2:]) + [c for c in OPTIONAL_NUMERIC if c in df.columns]
    for col in numeric:
        place = f"in column '{col}', "
        df[col] = numeric_column(df[col], DailyBarsError,
                                 lambda i, place=place: place + _where(df, i, source)).astype(np.float64)
    for col in PRICE_COLUMNS + tuple(c for c in ("pre_close", "adj_factor") if c in df.columns):
        v = df[col].to_numpy()
        bad = (v <= 0) | np.isinf(v)
        if col in PRICE_COLUMNS:  # pre_close / adj_factor may be missing (index rows, first bars)
            bad |= np.isnan(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = "missing" if np.isnan(v[i]) else ("infinite" if np.isinf(v[i]) else "non-positive")
            raise DailyBarsError(f"{what} price {float(v[i])!r} in column '{col}', {_where(df, i, source)}")
    for col in ("volume",) + tuple(c for c in ("amount", "turnover", "mcap", "float_mcap") if c in df.columns):
        v = df[col].to_numpy()
        bad = (v < 0) | np.isinf(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DailyBarsError(f"{'negative' if v[i] < 0 else 'infinite'} value {float(v[i])!r} in column "
                                 f"'{col}', {_where(df, i, source)}")
    bad = (df["high"].to_numpy() < df["low"].to_numpy() - 1e-9)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DailyBarsError(f"high {float(df['high'].iloc[i])!r} below low {float(df['low'].iloc[i])!r}, "
                             f"{_where(df, i, source)}")
    if "is_st" in df.columns:
        df["is_st"] = _parse_bool(df, "is_st", source)
    if "industry" in df.columns:
        df["industry"] = df["industry"].astype("string").str.strip().replace("", pd.NA)
    dup = df.duplicated(["date", "code"]).to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((df["date"] == df["date"].iloc[i]).to_numpy()
                                   & (df["code"] == df["code"].iloc[i]).to_numpy())[0])
        raise DailyBarsError(f"duplicate (date, code) ({df['date'].iloc[i].date()}, {df['code'].iloc[i]}) "
                             f"in rows {first} and {i} of {source}")
    return df


def _parse_dates(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        dates = pd.Series(pd.DatetimeIndex(values), index=values.index)
    else:
        as_text = values.astype(str)
        dates = pd.to_datetime(as_text, errors="coerce")
        if dates.isna().any():  # files with several date spellings
            dates = pd.to_datetime(as_text, errors="coerce", format="mixed")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    return dates.dt.normalize().astype("datetime64[ns]")


def _parse_bool(df: pd.DataFrame, col: str, source: str) -> np.ndarray:
    return boolean_column(df[col], DailyBarsError, lambda i: f"in column '{col}', {_where(df, i, source)}")


#: a day with bars of fewer than this share of the codes that trade around it (the median over
#: STRAY_SPAN days, when that is at least STRAY_MIN codes: a small file cannot tell) is not a
#: market day: one stray weekend row would otherwise become its month's last day and leave every
#: other stock "suspended" at that month-end
STRAY_SHARE, STRAY_SPAN, STRAY_MIN = 0.5, 21, 20


def _calendar(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """The rows of market days: those of days with bars of few codes are left out, with a warning."""
    counts = df.groupby("date").size()
    usual = counts.rolling(STRAY_SPAN, center=True, min_periods=1).median()
    stray = (counts < STRAY_SHARE * usual) & (usual >= STRAY_MIN)
    if not stray.any():
        return df
    days = counts.index[stray.to_numpy()]
    drop = df["date"].isin(days).to_numpy()
    warnings.warn(DataWarning(
        f"{int(drop.sum())} row(s) on {len(days)} day(s) when few codes have bars (first {days[0].date()}: "
        f"{int(counts[days[0]])} against about {int(usual[days[0]])}) left out as not market days: such a row "
        f"would become its month's last day ({source})"), stacklevel=4)
    return df.loc[~drop]


def _check_index_gaps(index_close: pd.DataFrame, source: str) -> None:
    """Warn of market days inside an index's span without its bar: its close is carried over
    them, so their moves land on its next bar (a benchmark month of 0%, then a jump)."""
    for code in index_close.columns:
        close = index_close[code]
        span = close.loc[close.first_valid_index():close.last_valid_index()]
        gaps = np.flatnonzero(span.isna().to_numpy())
        if len(gaps):
            breaks = np.flatnonzero(np.diff(gaps) != 1)  # the first gap ends where the days stop following
            first_gap = span.index[[gaps[0], gaps[breaks[0]] if len(breaks) else gaps[-1]]]
            warnings.warn(DataWarning(
                f"index {code} has no bar on {len(gaps)} market day(s) inside its span (first gap "
                f"{first_gap[0].date()}..{first_gap[1].date()}): its close is carried over them, so their moves land on "
                f"its next bar, in its monthly (benchmark) returns and the market-relative factors ({source})"),
                stacklevel=5)


def _build(df: pd.DataFrame, industry_map, index_codes: Sequence[str], source: str) -> DailyBars:
    """Lay a validated long frame on the dense [days, stocks] grid."""
    df = _calendar(df, source)
    dates = pd.DatetimeIndex(np.sort(df["date"].unique()))
    index_codes = [str(c) for c in index_codes]
    # an index may be spelled the file's way (000300.SH for sh.000300): it is kept under the
    # given spelling, so that data.benchmark names it whatever the file's source
    given = {exchange_key(c): c for c in index_codes}
    canonical = {code: given[exchange_key(code)] for code in df["code"].unique() if exchange_key(code) in given}
    is_index = df["code"].isin(list(canonical)).to_numpy()
    stocks = df.loc[~is_index]
    if stocks.empty:
        raise DailyBarsError(f"no stock rows in {source} (only index codes {sorted(set(df['code']))})")
    codes = pd.Index(np.sort(stocks["code"].unique()).astype(str), dtype=object, name="code")
    D, N = len(dates), len(codes)
    di = dates.get_indexer(stocks["date"])
    ci = codes.get_indexer(stocks["code"])

    def dense(values, fill=np.nan, dtype=np.float64):
        out = np.full((D, N), fill, dtype=dtype)
        out[di, ci] = values
        return out

    names = list(REQUIRED_COLUMNS[2:]) + [c for c in OPTIONAL_NUMERIC if c in stocks.columns]
    fields = {name: dense(stocks[name].to_numpy(np.float64)) for name in names}
    has_bar = dense(True, False, bool)
    traded = has_bar & (np.nan_to_num(fields["volume"]) > 0)
    amount_derived = "amount" not in fields
    if amount_derived:  # CNY traded ≈ close × shares; the only estimate OHLCV allows
        fields["amount"] = fields["close"] * fields["volume"]
    is_st = dense(stocks["is_st"].to_numpy(bool), False, bool) if "is_st" in stocks.columns else None

    industry = np.full((D, N), -1, dtype=np.int32)
    industries: list[str] = []
    unmapped: list[str] = []
    if industry_map is not None:
        mapping = load_industry_map(industry_map)
        per_code, industries, unmapped = assign_industries(codes, mapping)
        industry[:] = per_code
        industry_source = f"map {industry_map if isinstance(industry_map, (str, Path)) else 'given'}"
    elif "industry" in stocks.columns and stocks["industry"].notna().any():
        labels = stocks["industry"]
        industries = sorted(labels.dropna().unique().tolist())
        industry = dense(pd.Index(industries).get_indexer(labels.fillna("\0")), -1, np.int32)
        industry = carry(industry, has_bar, -1)
        industry_source = "column"
    else:
        industry_source = "absent"

    idx = df.loc[is_index].assign(code=lambda f: f["code"].map(canonical))
    present = [c for c in index_codes if c in set(idx["code"])]
    index_close = pd.DataFrame(np.nan, index=dates, columns=present)
    for code in present:
        rows = idx[idx["code"] == code]
        index_close.loc[pd.DatetimeIndex(rows["date"]), code] = rows["close"].to_numpy()
    _check_index_gaps(index_close, source)
    return DailyBars(dates=dates, codes=codes, fields=fields, has_bar=has_bar, traded=traded,
                     is_st=is_st, industry=industry, industries=industries,
                     industry_source=industry_source, unmapped=unmapped, index_close=index_close,
                     amount_derived=amount_derived, source=source)
