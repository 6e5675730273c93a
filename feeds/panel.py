"""The monthly stock panel: the one in-memory unit every other part consumes.

A :class:`Panel` holds dense arrays over ``T`` month-end dates and ``N`` instruments:

========== ============ ===================================================
field      shape/dtype  meaning
========== ============ ===================================================
factors    [T, N, F] f4 raw factor values, NaN where missing
ret        [T, N] f8    return of the month ending at ``dates[t]`` (NaN when
                        not listed or unknown)
close      [T, N] f8    total-return index (month-end close, adjusted)
industry   [T, N] i4    index into ``industries``, -1 when unknown
listed     [T, N] bool  the stock is listed at the month-end
suspended  [T, N] bool  no trade at the month-end close
limit_up   [T, N] bool  closed at the daily up-limit (cannot be bought)
limit_down [T, N] bool  closed at the daily down-limit (cannot be sold)
is_st      [T, N] bool  special-treatment stock (±5% limits)
mcap       [T, N] f8    market capitalisation, or ``None``
========== ============ ===================================================

It converts to and from the ecosystem's long frame with a ``(date, code)``
MultiIndex (:meth:`Panel.from_frame`, :meth:`Panel.to_frame`), and reads and
writes the panel file of SPEC §4.2 (:func:`load_panel`, :func:`save_panel`).

Every validation problem raises :class:`PanelError` with one line that names
the column, date or code at fault.

At load time (:func:`load_panel`, and the main command for every source)
:meth:`Panel.check_values` also refuses values no market produces: a return of
-100% or less, a non-positive close or market cap, and magnitudes beyond
:data:`ABSURD` (|factor|, close, mcap) or :data:`ABSURD_RETURN` (ret) — the marks of
a unit mix-up (percent, fen) or a sentinel such as 1e300. Rare but possible values
(a month above +1,000%) are a :class:`DataWarning` with their count.
"""
from __future__ import annotations

import builtins
import warnings

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import UserError
from .tables import boolean_column, numeric_column, read_table, table_kind

FLAG_COLUMNS = ("suspended", "limit_up", "limit_down", "is_st")
#: Beyond this magnitude a factor, close or market cap is a unit or sentinel mistake, not data:
#: the largest A-share market cap is ~2.5e12 yuan, and float32 squares (z-scores) overflow at 1.8e19.
ABSURD = 1e15
#: A monthly return beyond +10,000% is a unit mistake; one beyond +1,000% is possible (relistings)
#: but rare enough to be worth a warning.
ABSURD_RETURN, ODD_RETURN = 100.0, 10.0
RESERVED_COLUMNS = ("date", "code", "ret", "close", "industry", "mcap", "listed") + FLAG_COLUMNS


class PanelError(UserError):
    """A panel, panel file or frame is not usable; the message says what and where."""


class DataWarning(UserWarning):
    """Data that is legitimately possible but odd enough to check (with counts)."""


def month_end(dates) -> pd.DatetimeIndex:
    """Normalise any dates to the end of their calendar month (midnight, no time zone)."""
    idx = pd.DatetimeIndex(pd.to_datetime(dates))
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    return (idx + pd.offsets.MonthEnd(0)).normalize()


def month_span(dates: pd.DatetimeIndex, start=None, end=None) -> builtins.slice:
    """Positions of the month-ends ``dates`` from ``start`` to ``end`` (any date inside a month
    selects it; ``None`` is open); an empty slice when there is none."""
    lo = 0 if start is None else int(dates.searchsorted(month_end([start])[0], "left"))
    hi = len(dates) if end is None else int(dates.searchsorted(month_end([end])[0], "right"))
    return builtins.slice(lo, hi)


@dataclass(eq=False)
class Panel:
    """Dense monthly panel of instruments × factors (see the module docstring).

    Construct it directly from arrays (it validates itself), from a long frame with
    :meth:`from_frame`, or from a file with :func:`load_panel`.
    """

    dates: pd.DatetimeIndex
    codes: pd.Index
    factors: np.ndarray
    factor_names: list[str]
    ret: np.ndarray
    close: np.ndarray
    listed: np.ndarray
    industry: np.ndarray | None = None
    industries: list[str] = field(default_factory=list)
    styles: dict[str, list[str]] = field(default_factory=dict)
    suspended: np.ndarray | None = None
    limit_up: np.ndarray | None = None
    limit_down: np.ndarray | None = None
    is_st: np.ndarray | None = None
    mcap: np.ndarray | None = None

    def __post_init__(self):
        self.dates = pd.DatetimeIndex(self.dates)
        self.codes = pd.Index([str(c) for c in self.codes], dtype=object, name="code")
        self.factor_names = [str(f) for f in self.factor_names]
        self.factors = np.asarray(self.factors, dtype=np.float32)
        self.ret = np.asarray(self.ret, dtype=np.float64)
        self.close = np.asarray(self.close, dtype=np.float64)
        self.listed = np.asarray(self.listed, dtype=bool)
        shape = (len(self.dates), len(self.codes))
        for name in FLAG_COLUMNS:
            value = getattr(self, name)
            setattr(self, name, np.zeros(shape, bool) if value is None else np.asarray(value, bool))
        if self.industry is None:
            self.industry = np.full(shape, -1, dtype=np.int32)
        else:
            self.industry = np.asarray(self.industry, dtype=np.int32)
            if self.industry.ndim == 1:  # one industry per instrument
                self.industry = np.broadcast_to(self.industry, shape).copy()
        if self.mcap is not None:
            self.mcap = np.asarray(self.mcap, dtype=np.float64)
        self.styles = {str(k): [str(f) for f in v] for k, v in (self.styles or {}).items()}
        self.industries = [str(s) for s in self.industries]
        self.validate()

    # ------------------------------------------------------------------ shape
    @property
    def T(self) -> int:
        return len(self.dates)

    @property
    def N(self) -> int:
        return len(self.codes)

    @property
    def F(self) -> int:
        return len(self.factor_names)

    @property
    def style_of(self) -> dict[str, str]:
        """Factor name → style name (factors outside every style map to ``"other"``)."""
        out = {f: "other" for f in self.factor_names}
        for style, members in self.styles.items():
            for f in members:
                out[f] = style
        return out

    @property
    def has_industry(self) -> bool:
        return bool((self.industry[self.listed] >= 0).any()) if self.listed.any() else False

    def tradable(self) -> np.ndarray:
        """[T, N] mask of stocks listed and not suspended at the month-end close."""
        return self.listed & ~self.suspended

    # ------------------------------------------------------------- validation
    def validate(self, window: int | None = None) -> "Panel":
        """Check shapes, dates, values and styles; with ``window``, also the history length.

        Raises
        ------
        PanelError
            One line naming the first problem found.
        """
        T, N = len(self.dates), len(self.codes)
        if T == 0 or N == 0:
            raise PanelError(f"panel is empty ({T} dates, {N} codes)")
        if self.factors.ndim != 3 or self.factors.shape[:2] != (T, N):
            raise PanelError(f"factors have shape {self.factors.shape}, expected ({T}, {N}, F)")
        if self.factors.shape[2] != len(self.factor_names):
            raise PanelError(
                f"{self.factors.shape[2]} factor columns but {len(self.factor_names)} factor names")
        dup = pd.Index(self.factor_names)[pd.Index(self.factor_names).duplicated()]
        if len(dup):
            raise PanelError(f"duplicate factor name '{dup[0]}'")
        dup = self.codes[self.codes.duplicated()]
        if len(dup):
            raise PanelError(f"duplicate code '{dup[0]}'")
        arrays = {"ret": self.ret, "close": self.close, "listed": self.listed,
                  "industry": self.industry, **{f: getattr(self, f) for f in FLAG_COLUMNS}}
        if self.mcap is not None:
            arrays["mcap"] = self.mcap
        for name, arr in arrays.items():
            if arr.shape != (T, N):
                raise PanelError(f"'{name}' has shape {arr.shape}, expected ({T}, {N})")
        normalised = month_end(self.dates)
        if not normalised.equals(self.dates):
            bad = self.dates[normalised != self.dates][0]
            raise PanelError(f"date {bad.date()} is not a month-end (normalise with month_end())")
        if not self.dates.is_monotonic_increasing or self.dates.has_duplicates:
            pos = int(np.flatnonzero(np.diff(self.dates.asi8) <= 0)[0]) + 1
            raise PanelError(f"dates are not strictly increasing at {self.dates[pos].date()}")
        # A missing month would make a 24-row window span 25 months and label a decision with
        # the return of the month after next: wrong numbers, no error. So months are consecutive.
        months = self.dates.to_period("M").asi8
        if (gap := np.flatnonzero(np.diff(months) != 1)).size:
            lost = pd.period_range(self.dates[gap[0]].to_period("M") + 1, self.dates[gap[0] + 1].to_period("M") - 1)
            span = f"{lost[0]}" if len(lost) == 1 else f"{lost[0]}..{lost[-1]}"
            raise PanelError(f"no rows for {span}: a panel needs every month from its first to its last "
                             "(a window of rows would span more months than it says)")
        for name, arr in (("factor", self.factors), ("ret", self.ret), ("close", self.close),
                          ("mcap", self.mcap)):
            if arr is None:
                continue
            inf = np.isinf(arr)
            if inf.any():
                where = np.argwhere(inf)[0]
                col = self.factor_names[where[2]] if name == "factor" else name
                raise PanelError(f"infinite value in '{col}' at {self.dates[where[0]].date()}, "
                                 f"code {self.codes[where[1]]}")
        if self.listed.any():
            observed = np.isfinite(self.factors[self.listed]).any(axis=0)
            if not observed.all():
                raise PanelError(f"factor '{self.factor_names[int(np.argmin(observed))]}' is entirely NaN")
        if (self.industry >= len(self.industries)).any() or (self.industry < -1).any():
            raise PanelError(f"industry codes must lie in -1..{len(self.industries) - 1}")
        seen: dict[str, str] = {}
        for style, members in self.styles.items():
            if not style:
                raise PanelError("a style has an empty name")
            for f in members:
                if f not in self.factor_names:
                    raise PanelError(f"style '{style}' names unknown factor '{f}'")
                if f in seen:
                    raise PanelError(f"factor '{f}' is in both style '{seen[f]}' and '{style}'")
                seen[f] = style
        if window is not None and T < window + 1:
            raise PanelError(f"panel has {T} months; window {window} needs at least {window + 1}")
        return self

    def check_values(self, source: str = "") -> "Panel":
        """Load-time sanity of the values (see the module docstring); returns ``self``.

        Raises
        ------
        PanelError
            A return at or below -100%, a non-positive close or market cap, or an absurd
            magnitude; the line names the first cell, and the count of such cells.
        """
        suffix = f" ({source})" if source else ""

        def first(mask, values, what, why):
            t, i = np.argwhere(mask)[0][:2]
            value = values[(t, i)] if values.ndim == 2 else values[t, i][mask[t, i]][0]
            raise PanelError(f"{what} {value:.6g} at {self.dates[t].date()}, code {self.codes[i]} "
                             f"({int(mask.sum())} stock-month(s)): {why}{suffix}")

        with np.errstate(invalid="ignore"):
            # prices first: a return derived from a bad price is not the root cause
            if (bad := self.close <= 0).any():
                first(bad, self.close, "'close' is", "prices must be positive")
            if (bad := np.abs(self.close) > ABSURD).any():
                first(bad, self.close, "'close' is", f"beyond {ABSURD:.0e}, an absurd price")
            ret = np.where(self.listed, self.ret, np.nan)
            if (bad := ret <= -1.0).any():
                first(bad, ret, "'ret' is", "a stock cannot lose 100% or more in a month (returns in percent?)")
            if (bad := np.abs(ret) > ABSURD_RETURN).any():
                first(bad, ret, "'ret' is", f"a monthly return beyond ±{ABSURD_RETURN:.0f} (×100%) is not data")
            if self.mcap is not None:
                if (bad := self.mcap <= 0).any():
                    first(bad, self.mcap, "'mcap' is", "market caps must be positive")
                if (bad := np.abs(self.mcap) > ABSURD).any():
                    first(bad, self.mcap, "'mcap' is", f"beyond {ABSURD:.0e}, an absurd market cap")
            absurd = np.abs(self.factors) > ABSURD
            if absurd.any():
                t, i, f = np.argwhere(absurd)[0]
                raise PanelError(f"factor '{self.factor_names[f]}' is {self.factors[t, i, f]:.6g} at "
                                 f"{self.dates[t].date()}, code {self.codes[i]} ({int(absurd.sum())} value(s) "
                                 f"beyond ±{ABSURD:.0e}): a unit or sentinel mistake, not data{suffix}")
            odd = ret > ODD_RETURN
        if odd.any():
            t, i = np.argwhere(odd)[0]
            warnings.warn(DataWarning(
                f"{int(odd.sum())} stock-month(s) with a return above +{ODD_RETURN:.0%}, first {ret[t, i]:.4g} "
                f"at {self.dates[t].date()}, code {self.codes[i]}; check they are real{suffix}"), stacklevel=2)
        return self

    def check_styles(self, names: Iterable[str]) -> None:
        """Raise :class:`PanelError` for a style name this panel does not define."""
        for name in names:
            if name not in self.styles:
                raise PanelError(f"unknown style '{name}' (known: {', '.join(self.styles) or 'none'})")

    # ---------------------------------------------------------------- slicing
    def slice(self, start=None, end=None) -> "Panel":
        """The months with ``start <= date <= end`` (any date inside a month selects it)."""
        return self.take(self.rows_between(start, end))

    def rows_between(self, start=None, end=None) -> builtins.slice:
        """Row positions of the months :meth:`slice` keeps; :class:`PanelError` when there is none."""
        rows = month_span(self.dates, start, end)
        if rows.stop <= rows.start:
            raise PanelError(f"no months between {start} and {end} "
                             f"(panel covers {self.dates[0].date()}..{self.dates[-1].date()})")
        return rows

    def take(self, rows=None, cols=None) -> "Panel":
        """A sub-panel by positional date rows and instrument columns (``None`` keeps all)."""
        everything = builtins.slice(None)
        rows = everything if rows is None else rows
        cols = everything if cols is None else cols

        def cut(a):
            return None if a is None else a[rows][:, cols]
        return replace(
            self, dates=self.dates[rows], codes=self.codes[cols], factors=self.factors[rows][:, cols],
            ret=cut(self.ret), close=cut(self.close), listed=cut(self.listed),
            industry=cut(self.industry), suspended=cut(self.suspended), limit_up=cut(self.limit_up),
            limit_down=cut(self.limit_down), is_st=cut(self.is_st), mcap=cut(self.mcap))

    def select_factors(self, names: Sequence[str]) -> "Panel":
        """A panel with only ``names``, in that order; styles are restricted to them."""
        missing = [n for n in names if n not in self.factor_names]
        if missing:
            raise PanelError(f"unknown factor '{missing[0]}'")
        idx = [self.factor_names.index(n) for n in names]
        styles = {s: [f for f in m if f in names] for s, m in self.styles.items()}
        return replace(self, factors=self.factors[:, :, idx], factor_names=list(names),
                       styles={s: m for s, m in styles.items() if m})

    # ------------------------------------------------------------ conversion
    def to_frame(self, listed_only: bool = True) -> pd.DataFrame:
        """Long frame indexed by ``(date, code)``: ret, close, industry, flags, mcap, factors."""
        T, N = self.T, self.N
        index = pd.MultiIndex.from_product([self.dates, self.codes], names=["date", "code"])
        data = {"ret": self.ret.ravel(), "close": self.close.ravel()}
        names = np.array(self.industries + [None], dtype=object)
        data["industry"] = names[np.where(self.industry < 0, len(self.industries), self.industry).ravel()]
        for flag in FLAG_COLUMNS:
            data[flag] = getattr(self, flag).ravel()
        if self.mcap is not None:
            data["mcap"] = self.mcap.ravel()
        frame = pd.DataFrame(data, index=index)
        factors = pd.DataFrame(self.factors.reshape(T * N, self.F), index=index, columns=self.factor_names)
        frame = pd.concat([frame, factors], axis=1)
        return frame[self.listed.ravel()] if listed_only else frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, factors: Sequence[str] | None = None,
                   styles: Mapping[str, Sequence[str]] | None = None,
                   require_industry: bool = False, source: str = "frame") -> "Panel":
        """Build a panel from a long frame (SPEC §4.2 columns).

        Parameters
        ----------
        frame : DataFrame
            Either ``date``/``code`` columns or a ``(date, code)`` MultiIndex; ``ret`` and/or
            ``close``; optional ``industry``, ``mcap``, ``is_st``, ``suspended``,
            ``limit_up``, ``limit_down``, ``listed``; factor columns.
        factors : list of str, optional
            Factor columns, in order. Default: every other numeric column.
        styles : mapping, optional
            ``{style: [factor, ...]}``.
        require_industry : bool
            Raise when there is no ``industry`` column (industry neutralization needs one).
        source : str
            Name used in error messages (e.g. the file path).
        """
        df = frame.reset_index() if isinstance(frame.index, pd.MultiIndex) else frame.copy()
        for col in ("date", "code"):
            if col not in df.columns:
                raise PanelError(f"missing column '{col}' ({source})")
        if "ret" not in df.columns and "close" not in df.columns:
            raise PanelError(f"missing column: need 'ret' or 'close' ({source})")
        if require_industry and "industry" not in df.columns:
            raise PanelError(f"missing column 'industry', required by industry neutralization ({source})")
        for col in ("date", "code"):
            blank = df[col].isna() | (df[col].astype(str).str.strip() == "")
            if blank.any():
                raise PanelError(f"missing {col} in row {int(np.flatnonzero(blank)[0])} ({source})")
        parsed = pd.to_datetime(df["date"], errors="coerce", format="mixed") \
            if not pd.api.types.is_datetime64_any_dtype(df["date"]) else df["date"]
        if parsed.isna().any():
            i = int(np.flatnonzero(parsed.isna())[0])
            raise PanelError(f"column 'date' has an unparseable value {df['date'].iloc[i]!r} in row {i} ({source})")
        df["date"] = month_end(parsed)
        df["code"] = df["code"].astype(str)
        dup = df.duplicated(["date", "code"])
        if dup.any():
            row = df.loc[dup].iloc[0]
            raise PanelError(f"duplicate (date, code) ({row['date'].date()}, {row['code']}) after "
                             f"normalising dates to month-ends, row {int(np.flatnonzero(dup)[0])} ({source})")
        if factors is None:  # every other column with numbers in it (a name column is not a factor)
            empty = [c for c in df.columns if c not in RESERVED_COLUMNS and df[c].isna().all()]
            if empty:  # a factor column with no value at all: say so rather than drop it
                raise PanelError(f"factor column '{empty[0]}' is entirely NaN (list the factors to use in "
                                 f"data.factors to leave it out) ({source})")
            factors = [c for c in df.columns if c not in RESERVED_COLUMNS
                       and pd.to_numeric(df[c], errors="coerce").notna().any()]
        else:
            factors = list(factors)
            for f in factors:
                if f not in df.columns:
                    raise PanelError(f"missing factor column '{f}' ({source})")
        if not factors:
            raise PanelError(f"no factor columns ({source})")
        numeric_cols = [c for c in ("ret", "close", "mcap") if c in df.columns] + factors
        for col in numeric_cols:
            place = f"in column '{col}', row "
            df[col] = numeric_column(df[col], PanelError, lambda i, place=place: f"{place}{i} ({source})")
        for col in [c for c in ("listed", *FLAG_COLUMNS) if c in df.columns]:  # "N" is not True
            place = f"in column '{col}', row "
            df[col] = boolean_column(df[col], PanelError, lambda i, place=place: f"{place}{i} ({source})",
                                     blank=col == "listed")  # a row of the file is a listed stock-month
        for col in factors:  # before the float32 cast turns 1e300 into inf with an overflow warning
            with np.errstate(invalid="ignore"):
                values = df[col].to_numpy(np.float64, na_value=np.nan)
                absurd = np.isfinite(values) & (np.abs(values) > ABSURD)  # inf: named by validate()
            if absurd.any():
                i = int(np.flatnonzero(absurd)[0])
                raise PanelError(f"factor '{col}' is {df[col].iloc[i]:.6g} in row {i} ({int(absurd.sum())} value(s) "
                                 f"beyond ±{ABSURD:.0e}): a unit or sentinel mistake, not data ({source})")
        if "close" in df.columns and (bad := df["close"] <= 0).any():  # before returns are derived from it
            i = int(np.flatnonzero(bad)[0])
            raise PanelError(f"'close' is {df['close'].iloc[i]:.6g} in row {i} ({int(bad.sum())} row(s)): "
                             f"prices must be positive ({source})")
        df = df.sort_values(["date", "code"], kind="stable")
        dates = pd.DatetimeIndex(df["date"].unique())
        codes = pd.Index(sorted(df["code"].unique()), dtype=object)
        _check_codes_are_distinct(codes, source)
        ti = dates.get_indexer(df["date"])
        ni = codes.get_indexer(df["code"])
        T, N = len(dates), len(codes)

        def dense(values, fill, dtype):
            out = np.full((T, N), fill, dtype=dtype)
            out[ti, ni] = values
            return out

        fac = np.full((T, N, len(factors)), np.nan, dtype=np.float32)
        fac[ti, ni] = df[factors].to_numpy(dtype=np.float32, na_value=np.nan)
        listed = dense(df["listed"].to_numpy(bool) if "listed" in df.columns else True, False, bool)
        ret = dense(df["ret"].to_numpy(np.float64, na_value=np.nan), np.nan, np.float64) if "ret" in df else None
        close = dense(df["close"].to_numpy(np.float64, na_value=np.nan), np.nan, np.float64) if "close" in df else None
        both = ret is not None and close is not None
        ret, close = _complete_ret_close(ret, close)  # with both given, it keeps them as they are
        ret, close = np.where(listed, ret, np.nan), np.where(listed, close, np.nan)
        if both:
            _check_ret_is_of_its_month(ret, close, source)
        industry, industries = None, []
        if "industry" in df.columns:
            labels = df["industry"].astype("string")
            industries = sorted(labels.dropna().unique().tolist())
            industry = dense(pd.Index(industries).get_indexer(labels.fillna("\0")), -1, np.int32)
        flags = {}
        for flag in FLAG_COLUMNS:
            if flag in df.columns:
                flags[flag] = dense(df[flag].to_numpy(bool), False, bool)
        mcap = dense(df["mcap"].to_numpy(np.float64, na_value=np.nan), np.nan, np.float64) if "mcap" in df else None
        try:
            return cls(dates=dates, codes=codes, factors=fac, factor_names=factors, ret=ret, close=close,
                       listed=listed, industry=industry, industries=industries,
                       styles={k: list(v) for k, v in (styles or {}).items()}, mcap=mcap, **flags)
        except PanelError as exc:  # validate() knows the column, date or code; add the file
            raise PanelError(f"{exc} ({source})") from None

    def __repr__(self) -> str:
        span = f"{self.dates[0]:%Y-%m}..{self.dates[-1]:%Y-%m}" if self.T else "empty"
        return (f"Panel({self.T} months {span}, {self.N} codes, {self.F} factors, "
                f"{len(self.styles)} styles, {int(self.listed.sum())} listed stock-months)")


def _check_codes_are_distinct(codes: pd.Index, source: str) -> None:
    """Refuse two codes that differ only by case, blanks or leading zeros: one stock split in two
    (a spreadsheet that read "000123" as the number 123 for some rows), each half with a gap."""
    key = pd.Series(codes, dtype="string").str.strip().str.upper()
    digits = key.str.fullmatch(r"\d+").fillna(False)
    key = key.where(~digits, key.str.lstrip("0").replace("", "0"))
    twins = key.duplicated(keep=False).to_numpy()
    if twins.any():
        first = key[twins].iloc[0]
        pair = [codes[i] for i in np.flatnonzero(twins & (key == first).to_numpy())]
        raise PanelError(f"codes {' and '.join(repr(c) for c in pair)} differ only by case, blanks or leading "
                         f"zeros: one stock under two codes? (a code column read as numbers loses its "
                         f"leading zeros; keep codes as text) ({source})")


#: |ret − close_t / close_{t−1} + 1| within which a file's ret "agrees" with its close: prices
#: rounded to 0.01 yuan move a 2-yuan stock's implied return by up to 0.25%.
RET_CLOSE_TOLERANCE = 0.005


def _check_ret_is_of_its_month(ret, close, source):
    """Refuse forward returns, warn when a file's ``ret`` and ``close`` disagree.

    A factor table often stores next month's return beside the factors. Read as the return of
    the month ending at ``date``, it would shift every label and every backtest return by a
    month, silently. With both columns in the file the two readings can be told apart.
    """
    implied = close[1:] / close[:-1] - 1.0
    with np.errstate(invalid="ignore"):
        now = np.abs(ret[1:] - implied)
        ahead = np.abs(ret[:-1] - implied)  # ret at t against close t+1 over close t
    comparable = np.isfinite(now).sum()
    if comparable < 20:
        return
    agree_now = (now < RET_CLOSE_TOLERANCE).sum() / comparable
    agree_ahead = (ahead < RET_CLOSE_TOLERANCE).sum() / max(np.isfinite(ahead).sum(), 1)
    if agree_ahead > 0.5 and agree_ahead > agree_now:
        raise PanelError(
            f"'ret' is next month's return: in {agree_ahead:.0%} of stock-months it equals the following "
            f"month's close over this month's, in {agree_now:.0%} this month's over the last. A panel "
            f"file's ret is the return of the month ending at 'date'; shift forward returns one month "
            f"later (or drop 'ret' and keep 'close') ({source})")
    if agree_now < 0.5:
        warnings.warn(DataWarning(
            f"'ret' and 'close' disagree in {1 - agree_now:.0%} of stock-months (|ret - close/previous "
            f"close + 1| > {RET_CLOSE_TOLERANCE}); ret is used. Is close unadjusted for dividends and "
            f"splits, or ret of another month? ({source})"), stacklevel=4)


def _complete_ret_close(ret, close):
    """Fill whichever of ret/close is missing from the other; ``ret`` wins when both exist."""
    if ret is None:
        prev = np.vstack([np.full((1, close.shape[1]), np.nan), close[:-1]])
        ret = close / prev - 1.0
    # A total-return index rebuilt from ret keeps close consistent with it (ret wins).
    growth = np.where(np.isfinite(ret), 1.0 + ret, 1.0)
    rebuilt = np.cumprod(growth, axis=0)
    if close is None:
        close = np.where(np.isfinite(ret) | _first_seen(ret), rebuilt, np.nan)
    else:
        close = np.where(np.isfinite(close), close, np.nan)
    return ret, close


def _first_seen(ret):
    seen = np.isfinite(ret)
    return np.cumsum(seen, axis=0) > 0


# --------------------------------------------------------------------- files
def load_panel(path, factors: Sequence[str] | None = None,
               styles: Mapping[str, Sequence[str]] | None = None,
               require_industry: bool = False) -> Panel:
    """Read a panel file (SPEC §4.2): CSV (optionally compressed) or Parquet, one row per stock-month."""
    path = Path(path)
    frame = read_table(path, "panel file", PanelError, dtype={"code": str})
    return Panel.from_frame(frame, factors=factors, styles=styles, require_industry=require_industry,
                            source=str(path)).check_values(str(path))


def save_panel(panel: Panel, path) -> Path:
    """Write ``panel`` as a long panel file; the format follows the suffix (.csv[.gz] or .parquet)."""
    path = Path(path)
    frame = panel.to_frame().reset_index()
    if table_kind(path) == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
        frame.to_csv(path, index=False)
    return path
