"""Daily bars → adjusted returns → monthly bars → a factor :class:`~feeds.panel.Panel` (SPEC §4.4).

The pipeline has four steps, each a public function:

1. :func:`load_daily_bars` reads a long CSV/Parquet file (or a folder of per-stock
   files), validates it (one :class:`DailyBarsError` line naming the column, row, date
   or code) and lays it on a dense ``[days, stocks]`` grid (:class:`DailyBars`). The
   exchange calendar is the union of the dates in the data. Index codes (the
   benchmarks) are kept apart from the stocks.
2. :func:`adjust` turns raw prices into total returns. With ``pre_close`` or
   ``adj_factor`` columns it uses them; without, it detects ex-rights days by the
   A-share price-limit rule and neutralises them (:class:`AdjustmentReport` counts
   them). The rule, in full, is in ``docs/real_data.md``; in short, a day's return
   ``close / previous close - 1`` is replaced by the market's return over the same
   span when it lies beyond the board's daily limit (``±10%`` main board, ``±5%`` ST,
   ``±20%`` STAR and ChiNext from 2020-08-24, ``±30%`` Beijing) plus the half-cent
   rounding of the limit price, unless the day has no limit (a listing's first day,
   the first five days of a registration-system listing) or it is a rise on the
   resumption after a suspension of ``long_suspension`` exchange days or more (reform
   resumptions and restored listings trade without a limit). A price change on a
   no-trade bar (volume 0: the exchange's ex-rights reference price during a
   suspension) is a corporate action too. The adjusted close is a backward-adjusted
   total-return index anchored at the stock's first close, so it never depends on a
   later bar.
3. :func:`to_monthly` aggregates to calendar months (:class:`MonthlyBars`): month-end
   close (the last exchange day of the month; a stock without a trade that day is
   ``suspended`` and carries its last close), monthly return, trading days, listing
   mask and the month-end limit-up / limit-down flags.
4. :func:`panel_from_daily` runs the three steps plus the factor library
   (:mod:`feeds.factor_library`) and returns the :class:`~feeds.panel.Panel` and an
   :class:`IngestReport` (counts, computed and skipped factors, the benchmarks'
   monthly returns).

Everything works on whole ``[days, stocks]`` arrays; there is no per-stock loop.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .industry import assign_industries, load_industry_map
from .panel import EXACT_CSV_FLOATS, Panel, PanelError, month_end

INDEX_CODES = ("sh.000001", "sh.000300")
"""Index codes of the shared real file: SSE Composite and CSI300 (benchmarks, not stocks)."""

REQUIRED_COLUMNS = ("date", "code", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
OPTIONAL_NUMERIC = ("amount", "pre_close", "adj_factor", "turnover", "mcap", "float_mcap")
LONG_SUSPENSION_DAYS = 10
"""A resumption after at least this many exchange days without a trade may trade without a limit."""

LIMIT_START = pd.Timestamp("1996-12-16")  # daily price limits exist from this day on
CHINEXT_REFORM = pd.Timestamp("2020-08-24")  # ChiNext: ±20% and registration listings
STAR_START = pd.Timestamp("2019-07-22")
MAIN_REGISTRATION = pd.Timestamp("2023-04-10")  # main boards: registration listings
REGISTRATION_FREE_DAYS = 5  # no limit on the first five trading days of such a listing
_ROUNDING_SLACK = 1e-6  # float slack on top of the half-cent rounding of limit prices


class DailyBarsError(PanelError):
    """Daily bars (or their fundamentals) are unusable; the message says what and where."""


# ============================================================================ loading
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
                       and _table_kind(p) is not None)
        if not files:
            raise DailyBarsError(f"no CSV or Parquet files in folder {path}")
        frames = []
        for file in files:
            frame = _read_table(file)
            if "code" not in frame.columns:
                frame["code"] = _stem(file)
            frames.append(_validate_frame(frame, str(file)))
        frame = pd.concat(frames, ignore_index=True)
        dup = frame.duplicated(["date", "code"])
        if dup.any():
            row = frame.loc[dup].iloc[0]
            raise DailyBarsError(f"duplicate (date, code) ({row['date'].date()}, {row['code']}) in two "
                                 f"files of folder {path}")
        return _build(frame, industry_map, index_codes, str(path))
    if not path.exists():
        raise DailyBarsError(f"daily bars file not found: {path}")
    frame = _validate_frame(_read_table(path), str(path))
    return _build(frame, industry_map, index_codes, str(path))


def bars_from_frame(frame: pd.DataFrame, industry_map=None, index_codes: Sequence[str] = INDEX_CODES,
                    source: str = "frame") -> DailyBars:
    """Validate an in-memory long frame of daily bars (same rules as :func:`load_daily_bars`)."""
    df = frame.reset_index() if isinstance(frame.index, pd.MultiIndex) else frame.copy()
    return _build(_validate_frame(df, source), industry_map, index_codes, source)


def _table_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if re.search(r"\.(csv|txt)(\.(gz|bz2|zip|xz|zst))?$", name):
        return "csv"
    return None


def _stem(path: Path) -> str:
    return re.sub(r"\.(csv|txt|parquet|pq)(\.(gz|bz2|zip|xz|zst))?$", "", path.name, flags=re.I)


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if _table_kind(path) == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={"code": str, "industry": str}, **EXACT_CSV_FLOATS)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise DailyBarsError(f"cannot read daily bars {path}: {exc}") from None


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
        values = df[col]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            converted = pd.to_numeric(values, errors="coerce")
            bad = (converted.isna() & values.notna()).to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DailyBarsError(f"non-numeric value {values.iloc[i]!r} in column '{col}', "
                                     f"{_where(df, i, source)}")
            values = converted
        df[col] = values.astype(np.float64)
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
    values = df[col]
    if pd.api.types.is_bool_dtype(values):
        return values.fillna(False).to_numpy(bool)
    text = values.astype("string").str.strip().str.lower()
    truth = {"1": True, "1.0": True, "true": True, "t": True, "yes": True, "y": True,
             "0": False, "0.0": False, "false": False, "f": False, "no": False, "n": False}
    mapped = text.map(truth)
    bad = (mapped.isna() & text.notna()).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DailyBarsError(f"non-boolean value {values.iloc[i]!r} in column '{col}', {_where(df, i, source)}")
    return mapped.fillna(False).to_numpy(bool)


def _build(df: pd.DataFrame, industry_map, index_codes: Sequence[str], source: str) -> DailyBars:
    """Lay a validated long frame on the dense [days, stocks] grid."""
    dates = pd.DatetimeIndex(np.sort(df["date"].unique()))
    index_codes = [str(c) for c in index_codes]
    is_index = df["code"].isin(index_codes).to_numpy()
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
        industry = _ffill_int(industry, has_bar)
        industry_source = "column"
    else:
        industry_source = "absent"

    idx = df.loc[is_index]
    present = [c for c in index_codes if c in set(idx["code"])]
    index_close = pd.DataFrame(np.nan, index=dates, columns=present)
    for code in present:
        rows = idx[idx["code"] == code]
        index_close.loc[pd.DatetimeIndex(rows["date"]), code] = rows["close"].to_numpy()
    return DailyBars(dates=dates, codes=codes, fields=fields, has_bar=has_bar, traded=traded,
                     is_st=is_st, industry=industry, industries=industries,
                     industry_source=industry_source, unmapped=unmapped, index_close=index_close,
                     amount_derived=amount_derived, source=source)


# ===================================================================== grid helpers
def _ffill(a: np.ndarray) -> np.ndarray:
    """Carry the last finite value down axis 0 (NaN before the first one)."""
    rows = np.arange(a.shape[0])[:, None]
    last = np.maximum.accumulate(np.where(np.isfinite(a), rows, -1), axis=0)
    out = a[np.maximum(last, 0), np.arange(a.shape[1])]
    return np.where(last >= 0, out, np.nan)


def _ffill_int(a: np.ndarray, present: np.ndarray) -> np.ndarray:
    rows = np.arange(a.shape[0])[:, None]
    last = np.maximum.accumulate(np.where(present, rows, -1), axis=0)
    out = a[np.maximum(last, 0), np.arange(a.shape[1])]
    return np.where(last >= 0, out, -1).astype(a.dtype)


def _shift(a: np.ndarray, fill=np.nan) -> np.ndarray:
    """Row d holds row d-1 (the first row gets ``fill``)."""
    out = np.empty_like(a)
    out[0] = fill
    out[1:] = a[:-1]
    return out


def _last_row(mask: np.ndarray) -> np.ndarray:
    """[D, N] row of the last True at or before each row (-1 before the first)."""
    rows = np.arange(mask.shape[0])[:, None]
    return np.maximum.accumulate(np.where(mask, rows, -1), axis=0)


def _first_row(mask: np.ndarray) -> np.ndarray:
    """[N] row of the first True of each column (-1 when none)."""
    first = np.argmax(mask, axis=0)
    return np.where(mask.any(axis=0), first, -1)


def _round_cent(x: np.ndarray) -> np.ndarray:
    """Round half up to 0.01 CNY, as the exchanges round limit prices."""
    return np.floor(x * 100.0 + 0.5 + 1e-7) / 100.0


# ====================================================================== price limits
def board_of(codes: Sequence[str]) -> np.ndarray:
    """Board of each code: ``'main'``, ``'chinext'`` (300/301), ``'star'`` (688/689) or ``'bse'``.

    Accepts ``sh.600000``, ``600000.SH``, ``SH600000`` and bare ``600000`` spellings; the
    Beijing exchange is recognised by a ``bj`` prefix/suffix or a 4/8/92 leading digit
    without an exchange prefix.
    """
    out = []
    for code in codes:
        text = str(code).lower()
        digits = re.search(r"(\d{6})", text)
        num = digits.group(1) if digits else ""
        if num.startswith(("688", "689")):
            out.append("star")
        elif num.startswith(("300", "301")) and "sh" not in re.sub(r"\d", "", text):
            out.append("chinext")
        elif "bj" in text or (num.startswith(("4", "8", "92")) and not re.search(r"s[hz]", text)):
            out.append("bse")
        else:
            out.append("main")
    return np.array(out, dtype=object)


def price_limit(codes: Sequence[str], dates: pd.DatetimeIndex, is_st: np.ndarray | None = None
                ) -> np.ndarray:
    """Daily price limit (fraction of the previous close) per day and code, NaN without a limit.

    ``±10%`` main boards and ChiNext before 2020-08-24; ``±5%`` for ST stocks on those;
    ``±20%`` STAR (from its opening on 2019-07-22) and ChiNext from 2020-08-24, ST
    included; ``±30%`` Beijing; no limit before 1996-12-16. Listing-day exemptions are
    applied separately (:func:`adjust`).
    """
    dates = pd.DatetimeIndex(dates)
    board = board_of(codes)
    D, N = len(dates), len(board)
    after_reform = (dates >= CHINEXT_REFORM)[:, None]
    limit = np.full((D, N), 0.10)
    limit = np.where((board == "star")[None, :], 0.20, limit)
    limit = np.where((board == "chinext")[None, :] & after_reform, 0.20, limit)
    limit = np.where((board == "bse")[None, :], 0.30, limit)
    if is_st is not None:
        five = (board == "main")[None, :] | ((board == "chinext")[None, :] & ~after_reform)
        limit = np.where(is_st & five, 0.05, limit)
    limit[dates < LIMIT_START] = np.nan
    return limit


def _registration_listing(codes: Sequence[str], listing_day: pd.DatetimeIndex) -> np.ndarray:
    """[N] whether a listing on ``listing_day`` is under the registration system (5 free days)."""
    board = board_of(codes)
    day = pd.DatetimeIndex(listing_day)
    return (((board == "star") & (day >= STAR_START)) | ((board == "chinext") & (day >= CHINEXT_REFORM))
            | ((board == "main") & (day >= MAIN_REGISTRATION)))


# ======================================================================== adjustment
@dataclass(eq=False)
class AdjustedBars:
    """Daily bars with total returns (output of :func:`adjust`).

    Attributes
    ----------
    bars : DailyBars
    ret : ndarray [D, N]
        Adjusted daily return of each traded bar (NaN on no-trade days and on a stock's
        first bar). A resumption's return spans the whole suspension.
    adj_close : ndarray [D, N]
        Backward-adjusted total-return index: the first close times the compounded
        adjusted returns; carried over no-trade days, NaN before the first bar.
    neutralised : ndarray [D, N] bool
        Days whose raw move was replaced (corporate actions found by the limit rule).
    limit : ndarray [D, N]
        The day's price limit (fraction), NaN on days without one: before 1996-12-16,
        a stock's first bar, the free days of a registration listing, and a rise kept
        on a long-suspension resumption.
    reference : ndarray [D, N]
        The previous close the limit applies to (``pre_close`` when given).
    market : Series [D]
        The market's daily return (the index ``market_code``, or the cross-sectional
        median of the stocks' raw returns when the data has no index).
    market_code : str
    market_since_trade : ndarray [D, N]
        The market's return from the stock's previous traded bar to this one (the
        span ``ret`` covers), NaN where ``ret`` is NaN: the regressor for beta.
    method : str
        ``'pre_close'``, ``'adj_factor'`` or ``'price_limit'``.
    """

    bars: DailyBars
    ret: np.ndarray
    adj_close: np.ndarray
    neutralised: np.ndarray
    limit: np.ndarray
    reference: np.ndarray
    market: pd.Series
    market_code: str
    market_since_trade: np.ndarray
    method: str

    def adjusted(self, name: str) -> np.ndarray:
        """``open``, ``high``, ``low`` or ``close`` on the total-return scale (NaN without a trade)."""
        scale = self.adj_close / self.bars.fields["close"]
        return np.where(self.bars.traded, self.bars.fields[name] * scale, np.nan)

    def adjusted_volume(self) -> np.ndarray:
        """Volume in the shares of the first bar (undoes bonus issues and splits), NaN without a trade."""
        scale = self.bars.fields["close"] / self.adj_close
        return np.where(self.bars.traded, self.bars.fields["volume"] * scale, np.nan)


@dataclass
class AdjustmentReport:
    """What :func:`adjust` did.

    Attributes
    ----------
    method : str
        ``'pre_close'`` / ``'adj_factor'`` (the data's own adjustment) or ``'price_limit'``.
    n_ex_rights_days : int
        Days whose raw price move was a corporate action: neutralised traded days plus
        price changes on no-trade bars (``price_limit``), or days where the data's
        ``pre_close`` / ``adj_factor`` differs from the previous close (otherwise).
    n_beyond_limit : int
        Traded days whose raw move lay beyond the limit (neutralised or kept).
    n_neutralised : int
        Traded days whose return was replaced by the market's.
    n_no_trade_adjustments : int
        Price changes on no-trade bars (ex-rights reference prices during a suspension).
    n_unlimited_rises_kept : int
        Rises beyond the ordinary limit on long-suspension resumptions, kept as genuine.
    long_suspension : int
    market_code : str
    events : DataFrame
        One row per detected day: ``date, code, raw_ret, ret, action`` with action
        ``neutralised``, ``no_trade_adjustment`` or ``kept_unlimited_rise``.
    """

    method: str
    n_ex_rights_days: int
    n_beyond_limit: int
    n_neutralised: int
    n_no_trade_adjustments: int
    n_unlimited_rises_kept: int
    long_suspension: int
    market_code: str
    events: pd.DataFrame

    def examples(self, n: int = 10) -> list[dict]:
        """The ``n`` largest raw moves among the detected days, as plain dicts."""
        if self.events.empty:
            return []
        top = self.events.reindex(self.events["raw_ret"].abs().sort_values(ascending=False).index[:n])
        return [{"date": f"{r.date:%Y-%m-%d}", "code": r.code, "raw_ret": round(float(r.raw_ret), 4),
                 "ret": round(float(r.ret), 4), "action": r.action} for r in top.itertuples()]

    def to_dict(self) -> dict:
        return {"method": self.method, "n_ex_rights_days": self.n_ex_rights_days,
                "n_beyond_limit": self.n_beyond_limit, "n_neutralised": self.n_neutralised,
                "n_no_trade_adjustments": self.n_no_trade_adjustments,
                "n_unlimited_rises_kept": self.n_unlimited_rises_kept,
                "long_suspension_days": self.long_suspension, "market": self.market_code,
                "examples": self.examples()}


def market_returns(bars: DailyBars, market: str | None = None, raw: np.ndarray | None = None
                   ) -> tuple[pd.Series, str]:
    """Daily market return on the exchange calendar.

    The index ``market`` (default: the first index code present); without any index, the
    cross-sectional median of the stocks' raw close-to-close returns on traded bars (the
    median shrugs off the ex-rights days themselves). Days without a value get 0.
    """
    if market is not None and market not in bars.index_close.columns:
        raise DailyBarsError(f"market index '{market}' is not in {bars.source} "
                             f"(index codes present: {list(bars.index_close.columns) or 'none'})")
    code = market or (bars.index_close.columns[0] if len(bars.index_close.columns) else None)
    if code is not None:
        level = _ffill(bars.index_close[[code]].to_numpy())[:, 0]
        ret = level / _shift(level) - 1.0
        return pd.Series(np.nan_to_num(ret), index=bars.dates, name=code), str(code)
    if raw is None:
        raw = _raw_returns(bars)
    median = pd.DataFrame(np.where(bars.traded, raw, np.nan), index=bars.dates).median(axis=1)
    return median.fillna(0.0).rename("median"), "median"


def _raw_returns(bars: DailyBars) -> np.ndarray:
    close = bars.fields["close"]
    return np.where(bars.has_bar, close / _shift(_ffill(close)) - 1.0, np.nan)


def adjust(bars: DailyBars, market: str | None = None, long_suspension: int = LONG_SUSPENSION_DAYS
           ) -> tuple[AdjustedBars, AdjustmentReport]:
    """Total returns from raw daily bars.

    Parameters
    ----------
    bars : DailyBars
    market : str, optional
        Index code used as the market (neutral return and beta); default the first
        index present, else the cross-sectional median return.
    long_suspension : int
        [10] a rise beyond the limit on the first trade after at least this many exchange
        days without one is kept (reform resumptions and restored listings have no limit).

    Returns
    -------
    (AdjustedBars, AdjustmentReport)

    Notes
    -----
    Method, in order of preference: ``pre_close`` (``close / pre_close - 1``; a missing
    ``pre_close`` falls back to the previous close), ``adj_factor`` (the ratio of
    ``close × adj_factor`` to the previous bar's), else the price-limit rule of the module
    docstring. A neutralised day's return is the market's return since the stock's
    previous trade. Only bars up to day d enter the return of day d.
    """
    D, N = bars.D, bars.N
    close, has_bar, traded = bars.fields["close"], bars.has_bar, bars.traded
    rows = np.arange(D)[:, None]
    prev_close = _shift(_ffill(close))
    raw = np.where(has_bar, close / prev_close - 1.0, np.nan)
    market_ret, market_code = market_returns(bars, market, raw)
    level = np.cumprod(1.0 + market_ret.to_numpy())
    prev_trade = _shift(_last_row(traded), -1)
    since = np.where(traded & (prev_trade >= 0), level[:, None] / level[np.maximum(prev_trade, 0)] - 1.0,
                     np.nan)

    # Days without a limit: a stock's first bar, the free days of a registration listing,
    # and a resumption after a long suspension (checked only for rises, see below).
    first = _first_row(has_bar)
    listing_real = first > 0  # a first bar on the calendar's first day is not a listing
    listing_day = bars.dates[np.maximum(first, 0)]
    registration = _registration_listing(bars.codes, listing_day) & listing_real
    trade_no = np.cumsum(traded, axis=0)
    free_listing = (rows == first[None, :]) | (registration[None, :] & (trade_no <= REGISTRATION_FREE_DAYS))
    resumption = traded & (prev_trade >= 0) & (rows - prev_trade - 1 >= long_suspension)
    limit = price_limit(bars.codes, bars.dates, bars.is_st)
    limit = np.where(free_listing, np.nan, limit)

    if bars.has("pre_close"):
        method = "pre_close"
        pre = bars.fields["pre_close"]
        reference = np.where(np.isfinite(pre), pre, prev_close)
        vendor = has_bar & np.isfinite(pre) & np.isfinite(prev_close) & (np.abs(pre / prev_close - 1) > 1e-6)
    elif bars.has("adj_factor"):
        method = "adj_factor"
        factor = _ffill(bars.fields["adj_factor"])  # a missing factor carries the previous one
        factor = np.where(np.isfinite(factor), factor, 1.0)
        prev_factor = _shift(factor)
        reference = prev_close * prev_factor / factor
        vendor = has_bar & np.isfinite(prev_factor) & (np.abs(factor / prev_factor - 1) > 1e-9)
    else:
        method, reference, vendor = "price_limit", prev_close, None

    events = []
    if vendor is not None:
        # a first bar's pre_close is the offer price: no secondary-market return before it
        ret = np.where(traded & (rows != first[None, :]), close / reference - 1.0, np.nan)
        neutralised = np.zeros((D, N), bool)
        kept = neutralised
        d, n = np.nonzero(vendor)
        events.append(pd.DataFrame({"date": bars.dates[d], "code": bars.codes[n].astype(str),
                                    "raw_ret": raw[d, n], "ret": ret[d, n], "action": method}))
        counts = dict(n_ex_rights_days=int(vendor.sum()), n_beyond_limit=0, n_neutralised=0,
                      n_no_trade_adjustments=0, n_unlimited_rises_kept=0)
    else:
        slack = 0.005 / prev_close + _ROUNDING_SLACK
        with np.errstate(invalid="ignore"):
            up = traded & (raw > limit + slack)
            down = traded & (raw < -(limit + slack))
        # Corporate actions only lower the price; a rise past the limit after a long
        # suspension is a reform resumption or a restored listing re-pricing freely.
        kept = up & resumption
        neutralised = (up & ~resumption) | down
        no_trade_change = has_bar & ~traded & np.isfinite(raw) & (np.abs(raw) > 1e-9)
        ret = np.where(traded, raw, np.nan)
        ret = np.where(neutralised, np.nan_to_num(since), ret)
        for mask, action in ((neutralised, "neutralised"), (no_trade_change, "no_trade_adjustment"),
                             (kept, "kept_unlimited_rise")):
            d, n = np.nonzero(mask)
            events.append(pd.DataFrame({"date": bars.dates[d], "code": bars.codes[n].astype(str),
                                        "raw_ret": raw[d, n],
                                        "ret": 0.0 if action == "no_trade_adjustment" else ret[d, n],
                                        "action": action}))
        counts = dict(n_ex_rights_days=int(neutralised.sum() + no_trade_change.sum()),
                      n_beyond_limit=int((up | down).sum()), n_neutralised=int(neutralised.sum()),
                      n_no_trade_adjustments=int(no_trade_change.sum()), n_unlimited_rises_kept=int(kept.sum()))

    ret = np.where(traded, ret, np.nan)
    growth = np.where(np.isfinite(ret), 1.0 + ret, 1.0)
    first_close = close[np.maximum(first, 0), np.arange(N)]
    adj_close = np.where(rows >= np.where(first < 0, D, first)[None, :],
                         first_close[None, :] * np.cumprod(growth, axis=0), np.nan)
    limit = np.where(kept, np.nan, limit)  # a free re-pricing cannot close "at the limit"
    events = pd.concat(events, ignore_index=True).sort_values(["date", "code"], ignore_index=True)
    adjusted = AdjustedBars(bars=bars, ret=ret, adj_close=adj_close, neutralised=neutralised, limit=limit,
                            reference=reference, market=market_ret, market_code=market_code,
                            market_since_trade=np.where(np.isfinite(ret), since, np.nan), method=method)
    report = AdjustmentReport(method=method, long_suspension=long_suspension, market_code=market_code,
                              events=events, **counts)
    return adjusted, report


# ==================================================================== monthly bars
@dataclass(eq=False)
class MonthlyBars:
    """Month-end aggregates of adjusted daily bars (output of :func:`to_monthly`).

    Attributes
    ----------
    dates : DatetimeIndex [T]
        Calendar month-ends (the panel's dates).
    last_day : DatetimeIndex [T]
        The month's last exchange day (the month-end close is taken there).
    rows : ndarray [T] int
        Positions of ``last_day`` in the daily calendar.
    codes : Index [N]
    close : ndarray [T, N]
        Adjusted close at the month-end (carried when suspended), NaN when not listed.
    ret : ndarray [T, N]
        ``close[t] / close[t-1] - 1``; NaN in the listing month and when not listed. A
        month suspended throughout returns 0; the move is realised on resumption.
    trading_days : ndarray [T, N] int32
        Traded bars in the month.
    listed : ndarray [T, N] bool
        From the month of the first bar to the month of the last bar.
    suspended : ndarray [T, N] bool
        Listed without a trade on the month's last exchange day.
    limit_up, limit_down : ndarray [T, N] bool
        The month-end close is at the daily up / down limit price.
    is_st : ndarray [T, N] bool
        ST status of the last bar on or before the month-end (False without the column).
    mcap : ndarray [T, N] or None
        Month-end market cap (last bar's), when the data has ``mcap``.
    industry : ndarray [T, N] int32
    industries : list of str
    benchmarks : DataFrame [T, K]
        Monthly returns of the index codes (the benchmarks), indexed by ``dates``.
    market : Series [T]
        Monthly return of the market series used for beta.
    """

    dates: pd.DatetimeIndex
    last_day: pd.DatetimeIndex
    rows: np.ndarray
    codes: pd.Index
    close: np.ndarray
    ret: np.ndarray
    trading_days: np.ndarray
    listed: np.ndarray
    suspended: np.ndarray
    limit_up: np.ndarray
    limit_down: np.ndarray
    is_st: np.ndarray
    mcap: np.ndarray | None
    industry: np.ndarray
    industries: list[str]
    benchmarks: pd.DataFrame
    market: pd.Series

    @property
    def T(self) -> int:
        return len(self.dates)


def month_end_rows(dates: pd.DatetimeIndex) -> np.ndarray:
    """Positions of the last date of each calendar month in a sorted daily calendar."""
    period = pd.DatetimeIndex(dates).year * 12 + pd.DatetimeIndex(dates).month
    period = np.asarray(period)
    return np.flatnonzero(np.r_[period[1:] != period[:-1], True])


def to_monthly(adjusted: AdjustedBars) -> MonthlyBars:
    """Aggregate adjusted daily bars to month-ends (see :class:`MonthlyBars`)."""
    bars = adjusted.bars
    D, N = bars.D, bars.N
    rows = month_end_rows(bars.dates)
    T = len(rows)
    month_of_row = np.searchsorted(rows, np.arange(D))  # month index of every day
    first, last = _first_row(bars.has_bar), _last_row(bars.has_bar)[-1]
    t = np.arange(T)[:, None]
    listed = (first >= 0)[None, :] & (t >= month_of_row[np.maximum(first, 0)][None, :]) \
        & (t <= month_of_row[np.maximum(last, 0)][None, :])
    close = np.where(listed, _ffill(adjusted.adj_close)[rows], np.nan)
    prev = _shift(close)
    ret = np.where(listed & np.isfinite(prev), close / prev - 1.0, np.nan)
    starts = np.r_[0, rows[:-1] + 1]
    trading_days = np.add.reduceat(bars.traded.astype(np.int32), starts, axis=0)
    traded_end = bars.traded[rows]
    suspended = listed & ~traded_end

    # Month-end limit flags: the close against the exchange's rounded limit prices.
    c, ref, lim = bars.fields["close"][rows], adjusted.reference[rows], adjusted.limit[rows]
    checkable = traded_end & np.isfinite(lim) & np.isfinite(ref) & ~adjusted.neutralised[rows]
    with np.errstate(invalid="ignore"):
        limit_up = checkable & (c >= _round_cent(ref * (1 + lim)) - _ROUNDING_SLACK)
        limit_down = checkable & (c <= _round_cent(ref * (1 - lim)) + _ROUNDING_SLACK)

    is_st = np.zeros((T, N), bool)
    if bars.is_st is not None:
        carried = _ffill(np.where(bars.has_bar, bars.is_st.astype(float), np.nan))[rows]
        is_st = listed & (np.nan_to_num(carried) > 0.5)
    mcap = np.where(listed, _ffill(bars.fields["mcap"])[rows], np.nan) if bars.has("mcap") else None
    industry = np.where(listed, bars.industry[rows], -1).astype(np.int32)

    dates = month_end(bars.dates[rows])
    bench = pd.DataFrame(_ffill(bars.index_close.to_numpy())[rows], index=dates,
                         columns=bars.index_close.columns)
    bench = bench / bench.shift(1) - 1.0
    level = np.cumprod(1.0 + adjusted.market.to_numpy())[rows]
    market = pd.Series(level / _shift(level) - 1.0, index=dates, name=adjusted.market_code)
    return MonthlyBars(dates=dates, last_day=bars.dates[rows], rows=rows, codes=bars.codes, close=close,
                       ret=ret, trading_days=trading_days, listed=listed, suspended=suspended,
                       limit_up=limit_up, limit_down=limit_down, is_st=is_st, mcap=mcap, industry=industry,
                       industries=list(bars.industries), benchmarks=bench, market=market)


# ===================================================================== entry point
@dataclass
class IngestReport:
    """What :func:`panel_from_daily` built, for logs, ``metrics.json`` and the CLI.

    Attributes
    ----------
    source : str
    adjustment : AdjustmentReport
    n_stocks, n_months : int
        Of the returned panel.
    first_month, last_month : str
    n_days : int
        Exchange days in the data.
    factors : list of str
        Computed factors, in panel order.
    styles : dict
        Style → factors (computed ones only).
    skipped : dict
        Factor → why it was not computed (missing input, or no value in the panel's span).
    industry : str
        ``"map <file>: K industries, M codes unmapped"``, ``"column: K industries"`` or
        ``"absent"`` (neutralization falls back to the whole market).
    benchmarks : DataFrame [T, K]
        Monthly returns of the index codes over the panel's months.
    benchmark_code : str or None
        The default benchmark (the first index code present).
    notes : list of str
        Plain-language caveats (derived amount, missing industry, survivorship, ...).
    timings : dict
        Seconds spent loading, adjusting, aggregating and computing factors.
    """

    source: str
    adjustment: AdjustmentReport
    n_stocks: int
    n_months: int
    first_month: str
    last_month: str
    n_days: int
    factors: list[str]
    styles: dict[str, list[str]]
    skipped: dict[str, str]
    industry: str
    benchmarks: pd.DataFrame
    benchmark_code: str | None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def benchmark(self, code: str | None = None) -> pd.Series:
        """Monthly returns of an index code (default :attr:`benchmark_code`), for tear sheets."""
        code = code or self.benchmark_code
        if code is None or code not in self.benchmarks.columns:
            raise DailyBarsError(f"benchmark '{code}' is not in {self.source} "
                                 f"(index codes present: {list(self.benchmarks.columns) or 'none'})")
        return self.benchmarks[code].rename(code)

    def to_dict(self) -> dict:
        """JSON-ready summary (the benchmark series left out)."""
        return {"source": self.source, "adjustment": self.adjustment.to_dict(), "n_stocks": self.n_stocks,
                "n_months": self.n_months, "first_month": self.first_month, "last_month": self.last_month,
                "n_days": self.n_days, "factors": list(self.factors), "styles": dict(self.styles),
                "skipped": dict(self.skipped), "industry": self.industry,
                "benchmarks": list(self.benchmarks.columns), "benchmark_code": self.benchmark_code,
                "notes": list(self.notes), "timings": {k: round(v, 3) for k, v in self.timings.items()}}

    def summary(self) -> str:
        """A few human-readable lines."""
        a = self.adjustment
        lines = [f"daily bars {self.source}: {self.n_stocks} stocks x {self.n_months} months "
                 f"({self.first_month}..{self.last_month}), {len(self.factors)} factors",
                 f"adjustment {a.method}: {a.n_ex_rights_days} ex-rights days"
                 + (f" ({a.n_neutralised} neutralised beyond the limit, {a.n_no_trade_adjustments} on "
                    f"no-trade bars; {a.n_unlimited_rises_kept} rises on long-suspension resumptions kept)"
                    if a.method == "price_limit" else " (handled by the data's own adjustment)"),
                 f"industry: {self.industry}"]
        if self.skipped:
            lines.append("skipped: " + "; ".join(f"{k} ({v})" for k, v in self.skipped.items()))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def panel_from_daily(source, industry_map=None, benchmark_codes: Sequence[str] = INDEX_CODES,
                     fundamentals=None, fundamental_styles: Mapping[str, Sequence[str]] | None = None,
                     market: str | None = None, start=None, end=None,
                     long_suspension: int = LONG_SUSPENSION_DAYS) -> tuple[Panel, IngestReport]:
    """Build the monthly factor panel from daily bars (SPEC §4.4).

    Parameters
    ----------
    source : str, Path, DataFrame or DailyBars
        A daily-bars file or folder (:func:`load_daily_bars`), a long frame, or loaded bars.
    industry_map : path, DataFrame or mapping, optional
        Code → industry (``code,industry`` CSV). Without it the panel has no industry.
    benchmark_codes : sequence of str
        Index codes: excluded from the universe; their monthly returns are the benchmarks
        and the first one present is the market for beta and neutral returns.
    fundamentals : path or DataFrame, optional
        ``code, announce_date, <field>...`` (see :func:`feeds.factor_library.load_fundamentals`),
        joined point-in-time by announcement date.
    fundamental_styles : mapping, optional
        ``{style: [field, ...]}``; default every field in style ``fundamental``.
    market : str, optional
        Index code to use as the market (default: the first of ``benchmark_codes`` present).
    start, end : date-like, optional
        Keep only the months from ``start`` to ``end`` (factors still use the history
        before ``start``).
    long_suspension : int
        See :func:`adjust`.

    Returns
    -------
    (Panel, IngestReport)

    Raises
    ------
    DailyBarsError
        Bad or missing input (the message names the file, column, row, date or code).
    """
    from .factor_library import compute_factors  # the library imports this module

    timings = {}
    clock = time.perf_counter()
    if isinstance(source, DailyBars):
        bars = source
    elif isinstance(source, pd.DataFrame):
        bars = bars_from_frame(source, industry_map=industry_map, index_codes=benchmark_codes)
    else:
        path = Path(source)
        if not path.exists():
            raise DailyBarsError(f"daily bars file not found: {path} (the shared real-data file lives in "
                                 f"../shared/data/ beside the project and is not part of a fresh clone)")
        bars = load_daily_bars(path, industry_map=industry_map, index_codes=benchmark_codes)
    timings["load"] = time.perf_counter() - clock

    clock = time.perf_counter()
    adjusted, adjustment = adjust(bars, market=market, long_suspension=long_suspension)
    timings["adjust"] = time.perf_counter() - clock
    clock = time.perf_counter()
    monthly = to_monthly(adjusted)
    timings["monthly"] = time.perf_counter() - clock
    clock = time.perf_counter()
    library = compute_factors(adjusted, monthly, fundamentals=fundamentals,
                              fundamental_styles=fundamental_styles)
    timings["factors"] = time.perf_counter() - clock

    lo = 0 if start is None else int(monthly.dates.searchsorted(month_end([start])[0], "left"))
    hi = monthly.T if end is None else int(monthly.dates.searchsorted(month_end([end])[0], "right"))
    span = slice(lo, hi)
    listed = monthly.listed[span]
    if hi <= lo or not listed.any():
        raise DailyBarsError(f"no listed stock-months between {start} and {end} in {bars.source} "
                             f"(data covers {monthly.dates[0]:%Y-%m}..{monthly.dates[-1]:%Y-%m})")
    values = library.values[span]
    observed = np.isfinite(values[listed]).any(axis=0)
    skipped = dict(library.skipped)
    for name, ok in zip(library.names, observed):
        if not ok:
            skipped[name] = f"no value in {monthly.dates[lo]:%Y-%m}..{monthly.dates[hi - 1]:%Y-%m}" \
                            f" (history shorter than its look-back)"
    keep = [i for i, ok in enumerate(observed) if ok]
    if not keep:
        raise DailyBarsError(f"no factor has a value in {bars.source} between {monthly.dates[lo]:%Y-%m} and "
                             f"{monthly.dates[hi - 1]:%Y-%m}; the history is too short")
    names = [library.names[i] for i in keep]
    styles = {s: [f for f in members if f in names] for s, members in library.styles.items()}
    styles = {s: m for s, m in styles.items() if m}
    panel = Panel(dates=monthly.dates[span], codes=monthly.codes, factors=values[:, :, keep],
                  factor_names=names, ret=monthly.ret[span], close=monthly.close[span], listed=listed,
                  industry=monthly.industry[span], industries=monthly.industries, styles=styles,
                  suspended=monthly.suspended[span], limit_up=monthly.limit_up[span],
                  limit_down=monthly.limit_down[span], is_st=monthly.is_st[span],
                  mcap=None if monthly.mcap is None else monthly.mcap[span])
    alive = panel.listed.any(axis=0)
    if not alive.all():  # stocks listed only outside [start, end]
        panel = panel.take(cols=np.flatnonzero(alive))

    if bars.industry_source == "absent":
        industry = "absent"
    elif bars.industry_source == "column":
        industry = f"column: {len(bars.industries)} industries"
    else:
        unmapped = [c for c in bars.unmapped if c in set(panel.codes)]
        industry = (f"{bars.industry_source}: {len(bars.industries)} industries, "
                    f"{len(unmapped)} codes unmapped")
    notes = list(library.notes)
    if industry == "absent":
        notes.append("no industry map: industry is unknown (-1) for every stock, so industry "
                     "neutralization falls back to whole-market demeaning")
    if bars.amount_derived:
        notes.append("no 'amount' column: traded amount estimated as close x volume")
    if bars.is_st is None:
        notes.append("no 'is_st' column: ST stocks get the board's ordinary limit (ex-rights days of ST "
                     "stocks between 5% and the ordinary limit go undetected; month-end ST limit flags missed)")
    if adjustment.method == "price_limit":
        notes.append("returns adjusted by the price-limit rule: corporate actions smaller than the daily "
                     "limit (most cash dividends, small bonus issues) are not detected")
    report = IngestReport(source=bars.source, adjustment=adjustment, n_stocks=panel.N, n_months=panel.T,
                          first_month=f"{panel.dates[0]:%Y-%m}", last_month=f"{panel.dates[-1]:%Y-%m}",
                          n_days=bars.D, factors=names, styles=styles, skipped=skipped, industry=industry,
                          benchmarks=monthly.benchmarks.iloc[span],
                          benchmark_code=str(bars.index_close.columns[0]) if len(bars.index_close.columns)
                          else None, notes=notes, timings=timings)
    return panel, report
