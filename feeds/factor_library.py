"""The factor library: month-end style factors from adjusted daily bars (SPEC §4.4).

Every factor of month t is computed from bars on or before the month's last exchange
day (point-in-time); :data:`LIBRARY` lists each one with its style, look-back and
formula (the same table is in ``docs/real_data.md``). Notation:

* ``r_d`` — the adjusted daily return of a traded bar (:func:`feeds.daily_adjust.adjust`);
  days without a trade are missing, a resumption's return spans the suspension;
* ``m_d`` — the market's return over the same span (the index, see ``adjust``);
* ``P_d`` — the adjusted close (total-return index), carried over no-trade days;
  ``H_d`` the adjusted high; ``A_d`` the traded amount (CNY); ``V_d`` the volume in
  split-adjusted shares;
* ``C_t`` — the adjusted close at the end of month t;
* a window of ``k`` days is the last ``k`` exchange days up to the month end, and a
  statistic over it uses the stock's traded days there, needing at least ``k // 2``
  of them (else NaN).

Price-volume styles need only OHLCV. ``size`` needs ``mcap`` / ``float_mcap``;
turnover factors need ``turnover`` (or ``float_mcap``, with turnover ≈ amount /
float cap); fundamentals come from a separate frame joined by announcement date
(:func:`asof_fundamentals`). Factors whose inputs are missing are skipped and listed.

Computation is vectorised over the whole ``[days, stocks]`` grid with pandas rolling
windows, then sampled at the month-end rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .daily_adjust import AdjustedBars
from .daily_bars import DailyBarsError
from .daily_monthly import MonthlyBars
from .grid import ffill, lag
from .tables import numeric_column, read_table

DAYS_1M, DAYS_3M, DAYS_6M, DAYS_12M = 21, 63, 126, 252
AMIHUD_SCALE = 1e8  # |return| per 100 million CNY traded


def min_obs(days: int) -> int:
    """Traded days a window of ``days`` exchange days needs for a value."""
    return max(2, days // 2)


@dataclass(frozen=True)
class FactorSpec:
    """One factor of the library.

    Parameters
    ----------
    name : str
    style : str
    lookback : str
        The data the value at month t reads (in exchange days or months).
    formula : str
        Plain-text formula (notation in the module docstring).
    compute : callable
        ``compute(inputs) -> ndarray [T, N]``.
    needs : tuple of str
        Optional daily columns it needs (``mcap``, ``float_mcap``, ``turnover``).
    """

    name: str
    style: str
    lookback: str
    formula: str
    compute: Callable[["FactorInputs"], np.ndarray] = field(repr=False, compare=False)
    needs: tuple[str, ...] = ()


@dataclass
class FactorSet:
    """Computed factors: ``values`` [T, N, F] float32 in ``names`` order."""

    names: list[str]
    styles: dict[str, list[str]]
    values: np.ndarray
    skipped: dict[str, str]
    notes: list[str]


class FactorInputs:
    """Daily arrays shared by the factor formulas, built once and cached."""

    def __init__(self, adjusted: AdjustedBars, monthly: MonthlyBars):
        self.adjusted = adjusted
        self.monthly = monthly
        self.bars = adjusted.bars
        self.rows = monthly.rows
        self._cache: dict = {}

    # ------------------------------------------------------------- daily arrays
    @cached_property
    def ret(self) -> pd.DataFrame:
        return pd.DataFrame(self.adjusted.ret)

    @cached_property
    def close(self) -> np.ndarray:
        """Adjusted close carried over no-trade days."""
        return ffill(self.adjusted.adj_close)

    @cached_property
    def month_close(self) -> np.ndarray:
        return self.close[self.rows]

    def traded(self, values: np.ndarray) -> pd.DataFrame:
        """``values`` on traded bars, NaN elsewhere, as a frame for rolling windows."""
        return pd.DataFrame(np.where(self.bars.traded, values, np.nan))

    def window(self, frame: pd.DataFrame, days: int, how: str) -> np.ndarray:
        """A rolling statistic over ``days`` exchange days, sampled at the month-end rows."""
        rolled = getattr(frame.rolling(days, min_periods=min_obs(days)), how)()
        return rolled.to_numpy()[self.rows]

    def regression(self, days: int) -> tuple[np.ndarray, np.ndarray]:
        """(beta, residual std) of ``r_d = a + b m_d + e_d`` over ``days``, at the month ends."""
        if days not in self._cache:
            r = self.adjusted.ret
            m = self.adjusted.market_since_trade
            ok = np.isfinite(r) & np.isfinite(m)
            r, m = np.where(ok, r, np.nan), np.where(ok, m, np.nan)

            def total(x):
                return pd.DataFrame(x).rolling(days, min_periods=min_obs(days)).sum().to_numpy()[self.rows]
            n = pd.DataFrame(ok.astype(float)).rolling(days, min_periods=1).sum().to_numpy()[self.rows]
            sr, sm, srm, smm, srr = total(r), total(m), total(r * m), total(m * m), total(r * r)
            with np.errstate(all="ignore"):
                cov = srm - sr * sm / n
                var_m = smm - sm * sm / n
                var_r = srr - sr * sr / n
                beta = np.where(var_m > 1e-14, cov / var_m, np.nan)
                resid = np.maximum(var_r - beta * cov, 0.0)
                ivol = np.sqrt(resid / (n - 2))
            ivol = np.where(np.isfinite(beta) & (n > 2), ivol, np.nan)
            self._cache[days] = (beta, ivol)
        return self._cache[days]

    def field(self, name: str) -> np.ndarray:
        return self.bars.fields[name]

    @cached_property
    def turnover(self) -> np.ndarray:
        if self.bars.has("turnover"):
            return self.field("turnover")
        with np.errstate(all="ignore"):
            return np.where(self.field("float_mcap") > 0, self.field("amount") / self.field("float_mcap"), np.nan)


def _ratio_log(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.where((num > 0) & (den > 0), np.log(num / den), np.nan)


# ============================================================== factor formulas
def _momentum(months: int, skip: int = 0):
    def compute(x: FactorInputs) -> np.ndarray:
        c = x.month_close
        return lag(c, skip) / lag(c, months) - 1.0
    return compute


def _rev_5d(x: FactorInputs) -> np.ndarray:
    back = x.rows - 5
    earlier = np.where((back >= 0)[:, None], x.close[np.maximum(back, 0)], np.nan)
    return x.close[x.rows] / earlier - 1.0


def _rev_1m_abnormal(x: FactorInputs) -> np.ndarray:
    beta, _ = x.regression(DAYS_12M)
    return _momentum(1)(x) - beta * x.monthly.market.to_numpy()[:, None]


def _dvol(days: int):
    return lambda x: x.window(x.ret, days, "std")


def _max_ret_1m(x: FactorInputs) -> np.ndarray:
    return x.window(x.ret, DAYS_1M, "max")


def _beta_12m(x: FactorInputs) -> np.ndarray:
    return x.regression(DAYS_12M)[0]


def _ivol_3m(x: FactorInputs) -> np.ndarray:
    return x.regression(DAYS_3M)[1]


def _amihud_1m(x: FactorInputs) -> np.ndarray:
    amount = x.field("amount")
    with np.errstate(all="ignore"):
        illiq = np.where(amount > 0, np.abs(x.adjusted.ret) / amount * AMIHUD_SCALE, np.nan)
    return x.window(pd.DataFrame(illiq), DAYS_1M, "mean")


def _ln_amount_1m(x: FactorInputs) -> np.ndarray:
    mean = x.window(x.traded(x.field("amount")), DAYS_1M, "mean")
    with np.errstate(all="ignore"):
        return np.where(mean > 0, np.log(mean), np.nan)


def _volume_trend(x: FactorInputs) -> np.ndarray:
    volume = pd.DataFrame(x.adjusted.adjusted_volume())
    return _ratio_log(x.window(volume, DAYS_1M, "mean"), x.window(volume, DAYS_6M, "mean"))


def _turnover(days: int):
    return lambda x: x.window(x.traded(x.turnover), days, "mean")


def _high_52w(x: FactorInputs) -> np.ndarray:
    high = x.window(pd.DataFrame(x.adjusted.adjusted("high")), DAYS_12M, "max")
    return x.month_close / high - 1.0


def _ma_gap(days: int):
    def compute(x: FactorInputs) -> np.ndarray:
        mean = x.window(x.traded(x.adjusted.adj_close), days, "mean")
        return x.month_close / mean - 1.0
    return compute


def _rsi_14d(x: FactorInputs) -> np.ndarray:
    gain = x.window(x.ret.clip(lower=0.0), 14, "sum")
    loss = x.window((-x.ret).clip(lower=0.0), 14, "sum")
    with np.errstate(all="ignore"):
        return np.where(gain + loss > 0, 100.0 * gain / (gain + loss), np.nan)


def _ln_cap(name: str):
    def compute(x: FactorInputs) -> np.ndarray:
        cap = ffill(x.field(name))[x.rows]
        with np.errstate(all="ignore"):
            return np.where(cap > 0, np.log(cap), np.nan)
    return compute


LIBRARY: tuple[FactorSpec, ...] = (
    FactorSpec("mom_1m", "momentum", "1 month", "C_t / C_{t-1} - 1", _momentum(1)),
    FactorSpec("mom_3m", "momentum", "3 months", "C_t / C_{t-3} - 1", _momentum(3)),
    FactorSpec("mom_6m", "momentum", "6 months", "C_t / C_{t-6} - 1", _momentum(6)),
    FactorSpec("mom_12m", "momentum", "12 months", "C_t / C_{t-12} - 1", _momentum(12)),
    FactorSpec("mom_12_1", "momentum", "12 months, skipping the last",
               "C_{t-1} / C_{t-12} - 1", _momentum(12, skip=1)),
    FactorSpec("rev_5d", "reversal", "5 exchange days", "P_d / P_{d-5} - 1 at the month's last day d",
               _rev_5d),
    FactorSpec("rev_1m_abnormal", "reversal", "1 month (beta: 252 days)",
               "mom_1m - beta_12m * (market return of month t)", _rev_1m_abnormal),
    FactorSpec("dvol_1m", "volatility", "21 days", "std(r_d) (ddof 1)", _dvol(DAYS_1M)),
    FactorSpec("dvol_3m", "volatility", "63 days", "std(r_d) (ddof 1)", _dvol(DAYS_3M)),
    FactorSpec("max_ret_1m", "volatility", "21 days", "max(r_d)", _max_ret_1m),
    FactorSpec("ivol_3m", "volatility", "63 days",
               "std of the residuals of OLS r_d = a + b m_d + e_d (ddof 2)", _ivol_3m),
    FactorSpec("beta_12m", "volatility", "252 days", "cov(r_d, m_d) / var(m_d)", _beta_12m),
    FactorSpec("amihud_1m", "liquidity", "21 days", "mean(abs(r_d) / A_d) * 1e8", _amihud_1m),
    FactorSpec("ln_amount_1m", "liquidity", "21 days", "ln(mean(A_d))", _ln_amount_1m),
    FactorSpec("volume_trend", "liquidity", "126 days", "ln(mean_21(V_d) / mean_126(V_d))", _volume_trend),
    FactorSpec("turn_1m", "liquidity", "21 days", "mean(turnover_d)", _turnover(DAYS_1M), ("turnover",)),
    FactorSpec("turn_3m", "liquidity", "63 days", "mean(turnover_d)", _turnover(DAYS_3M), ("turnover",)),
    FactorSpec("turn_6m", "liquidity", "126 days", "mean(turnover_d)", _turnover(DAYS_6M), ("turnover",)),
    FactorSpec("high_52w", "technical", "252 days", "P_d / max(H_d over the window) - 1", _high_52w),
    FactorSpec("ma_gap_1m", "technical", "21 days", "P_d / mean(P over traded days) - 1", _ma_gap(DAYS_1M)),
    FactorSpec("ma_gap_3m", "technical", "63 days", "P_d / mean(P over traded days) - 1", _ma_gap(DAYS_3M)),
    FactorSpec("ma_gap_12m", "technical", "252 days", "P_d / mean(P over traded days) - 1", _ma_gap(DAYS_12M)),
    FactorSpec("rsi_14d", "technical", "14 days",
               "100 * sum(max(r_d, 0)) / sum(abs(r_d)) (Cutler's RSI on returns)", _rsi_14d),
    FactorSpec("ln_mcap", "size", "month-end", "ln(mcap on the last bar)", _ln_cap("mcap"), ("mcap",)),
    FactorSpec("ln_float_mcap", "size", "month-end", "ln(float_mcap on the last bar)", _ln_cap("float_mcap"),
               ("float_mcap",)),
)
"""Every price-volume factor, in panel order."""


def _available(spec: FactorSpec, adjusted: AdjustedBars) -> str | None:
    """Why ``spec`` cannot be computed from these bars, or None."""
    bars = adjusted.bars
    for need in spec.needs:
        if need == "turnover":
            if not (bars.has("turnover") or bars.has("float_mcap")):
                return "needs a 'turnover' or 'float_mcap' column"
        elif not bars.has(need):
            return f"needs a '{need}' column"
    return None


def compute_factors(adjusted: AdjustedBars, monthly: MonthlyBars, fundamentals=None,
                    fundamental_styles: Mapping[str, Sequence[str]] | None = None) -> FactorSet:
    """Compute every library factor the inputs allow, plus joined fundamentals.

    Parameters
    ----------
    adjusted : AdjustedBars
    monthly : MonthlyBars
    fundamentals : path or DataFrame, optional
        See :func:`load_fundamentals`.
    fundamental_styles : mapping, optional
        ``{style: [field, ...]}``; fields not named go to style ``fundamental``.

    Returns
    -------
    FactorSet
        Values are NaN where the stock is not listed; skipped factors with the reason.
    """
    inputs = FactorInputs(adjusted, monthly)
    names, columns, skipped, notes = [], [], {}, []
    styles: dict[str, list[str]] = {}
    for spec in LIBRARY:
        reason = _available(spec, adjusted)
        if reason:
            skipped[spec.name] = reason
            continue
        names.append(spec.name)
        columns.append(spec.compute(inputs))
        styles.setdefault(spec.style, []).append(spec.name)
    if "turn_1m" in names and not adjusted.bars.has("turnover"):
        notes.append("turnover estimated as amount / float_mcap")
    if fundamentals is not None:
        frame, fields = load_fundamentals(fundamentals)
        clash = [f for f in fields if f in names]
        if clash:
            raise DailyBarsError(f"fundamental field '{clash[0]}' has the name of a library factor; rename it")
        joined = asof_fundamentals(frame, fields, monthly.codes, monthly.last_day)
        for style, members in _fundamental_styles(fields, fundamental_styles).items():
            for f in members:
                names.append(f)
                columns.append(joined[f])
                styles.setdefault(style, []).append(f)
    T, N = monthly.T, len(monthly.codes)
    values = np.full((T, N, len(names)), np.nan, dtype=np.float32)
    for i, col in enumerate(columns):
        col = np.where(monthly.listed & np.isfinite(col), col, np.nan)
        values[:, :, i] = col
    return FactorSet(names=names, styles=styles, values=values, skipped=skipped, notes=notes)


# ================================================================ fundamentals
PERIOD_COLUMNS = ("report_date", "period", "end_date")


def load_fundamentals(source) -> tuple[pd.DataFrame, list[str]]:
    """Read and validate a fundamentals table.

    Parameters
    ----------
    source : str, Path or DataFrame
        CSV/Parquet (or frame) with ``code``, ``announce_date`` (the day the value became
        public), optionally a period column (``report_date``, ``period`` or
        ``end_date``), and numeric fields (every other column).

    Returns
    -------
    (frame, fields)
        Frame with parsed ``announce_date`` and float fields; the field names.

    Raises
    ------
    DailyBarsError
        Missing file or column, unparseable announcement date, non-numeric value, or two
        rows for one (code, announce_date) without a period column to order them.
    """
    if isinstance(source, pd.DataFrame):
        frame, name = source.copy(), "fundamentals"
    else:
        name = str(Path(source))
        frame = read_table(source, "fundamentals file", DailyBarsError, dtype={"code": str})
    for col in ("code", "announce_date"):
        if col not in frame.columns:
            raise DailyBarsError(f"missing column '{col}' in fundamentals ({name})")
    frame = frame.reset_index(drop=True)
    frame["code"] = frame["code"].astype(str).str.strip()
    dates = pd.to_datetime(frame["announce_date"], errors="coerce")
    if dates.isna().any():
        i = int(np.flatnonzero(dates.isna())[0])
        raise DailyBarsError(f"unparseable announce_date {frame['announce_date'].iloc[i]!r} in fundamentals, "
                             f"row {i} ({name})")
    frame["announce_date"] = dates.dt.normalize()
    period = next((c for c in PERIOD_COLUMNS if c in frame.columns), None)
    fields = [c for c in frame.columns if c not in ("code", "announce_date") + PERIOD_COLUMNS]
    if not fields:
        raise DailyBarsError(f"no field columns in fundamentals ({name})")
    for col in fields:
        place = f"in fundamentals column '{col}', row "
        values = numeric_column(frame[col], DailyBarsError,
                                lambda i, place=place: f"{place}{i} ({name})").astype(np.float64)
        if np.isinf(values.to_numpy()).any():
            i = int(np.flatnonzero(np.isinf(values.to_numpy()))[0])
            raise DailyBarsError(f"infinite value in fundamentals column '{col}', row {i} ({name})")
        frame[col] = values
    order = ["code", "announce_date"] + ([period] if period else [])
    if period is None:
        dup = frame.duplicated(["code", "announce_date"]).to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise DailyBarsError(f"two fundamentals rows for ({frame['code'].iloc[i]}, "
                                 f"{frame['announce_date'].iloc[i].date()}), row {i} ({name}); add a "
                                 f"'report_date' column to say which is newer")
    frame = frame.sort_values(order, kind="stable", ignore_index=True)
    return frame, fields


def asof_fundamentals(frame: pd.DataFrame, fields: Sequence[str], codes: pd.Index,
                      last_day: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """Point-in-time join: each month's latest value announced before its last exchange day.

    A value announced on day a is first used at the month-end whose last exchange day
    is after a (an announcement on the month's last exchange day itself, often after
    the close, waits a month). A later announcement of the same code replaces it (a
    missing value in it keeps the earlier one). Values never expire.

    Returns
    -------
    dict field → ndarray [T, N] (NaN before the first announcement)
    """
    T, N = len(last_day), len(codes)
    ci = codes.get_indexer(frame["code"])
    ti = pd.DatetimeIndex(last_day).searchsorted(pd.DatetimeIndex(frame["announce_date"]), side="right")
    use = (ci >= 0) & (ti < T)
    part = frame.loc[use, list(fields)].assign(_t=ti[use], _c=ci[use])
    latest = part.groupby(["_t", "_c"], sort=False).last()  # last non-missing per field, in file order
    t_idx = latest.index.get_level_values("_t").to_numpy()
    c_idx = latest.index.get_level_values("_c").to_numpy()
    out = {}
    for f in fields:
        grid = np.full((T, N), np.nan)
        grid[t_idx, c_idx] = latest[f].to_numpy(np.float64)
        out[f] = ffill(grid)
    return out


def _fundamental_styles(fields: Sequence[str], styles: Mapping[str, Sequence[str]] | None
                        ) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    named = set()
    for style, members in (styles or {}).items():
        for f in members:
            if f not in fields:
                raise DailyBarsError(f"fundamental style '{style}' names unknown field '{f}' "
                                     f"(fields: {', '.join(fields)})")
            named.add(f)
        out[str(style)] = [str(f) for f in members]
    rest = [f for f in fields if f not in named]
    if rest:
        out.setdefault("fundamental", []).extend(rest)
    return out


def library_table() -> str:
    """The library as a Markdown table (name, style, look-back, formula, needs)."""
    lines = ["| factor | style | look-back | formula | needs |", "|---|---|---|---|---|"]
    for s in LIBRARY:
        lines.append(f"| `{s.name}` | {s.style} | {s.lookback} | `{s.formula}` | "
                     f"{', '.join(s.needs) or 'OHLCV'} |")
    return "\n".join(lines)
