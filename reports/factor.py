"""Factor analysis of the signal (alphalens-style), computed on the run's factor file.

Every function takes the factor table exactly as ``series/factor.parquet`` holds it
(:func:`reports.series.factor_frame`: index ``(date, asset)``, ``score``, forward returns
``fwd_<k>m``, ``industry``), so ``pd.read_parquet("series/factor.parquet")`` goes straight
in. alphalens-reloaded 0.5.1 works with this project's pandas (3.1) but needs statsmodels
and IPython, which the project does not otherwise use; these few functions compute what its
factor tear sheet shows, the same way (``tests/test_outputs_series.py`` compares them with
alphalens when it is installed):

* :func:`factor_ic`: per date, the correlation (Spearman = rank IC, or Pearson) of the
  score with each forward return (alphalens ``factor_information_coefficient``);
* :func:`ic_summary`: mean, std, IR, t statistic and p-value of the IC per horizon (the t
  statistic with Newey–West standard errors over the overlap of the longer horizons, where
  alphalens uses a plain t test);
* :func:`quantile_returns`: mean forward return per score quantile (alphalens
  ``mean_return_by_quantile``), raw or demeaned by the date's mean;
* :func:`rank_autocorrelation`: correlation of the score ranks between consecutive
  dates (alphalens ``factor_rank_autocorrelation``);
* :func:`ic_by_industry`: mean rank IC within each industry (alphalens
  ``mean_information_coefficient(by_group=True)``).

A month with fewer than :data:`MIN_STOCKS` stocks (``feeds.crosssection``, the evaluation's
threshold; an industry-month with fewer than :data:`MIN_GROUP`) has no IC, as in ``signals.evaluate``.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter
from scipy import stats

from feeds.crosssection import MIN_STOCKS

from .figures import _date_axis
from .inputs import ReportError, date_code_index, require_columns

MIN_GROUP = 5
_FORWARD = re.compile(r"fwd_(\d+)m")


def forward_columns(factor: pd.DataFrame) -> list[str]:
    """The forward-return columns (``fwd_<k>m``) of a factor table, shortest horizon first."""
    found = [c for c in factor.columns if _FORWARD.fullmatch(str(c))]
    return sorted(found, key=lambda c: int(_FORWARD.fullmatch(c).group(1)))


def _check(factor) -> pd.DataFrame:
    date_code_index(factor, "factor")
    require_columns(factor, ("score",), "factor")
    if not forward_columns(factor):
        raise ReportError("factor: no forward-return column (fwd_1m, fwd_3m, ...)")
    return factor


def _ranks(factor: pd.DataFrame, columns) -> pd.DataFrame:
    return factor[columns].groupby(level=0).rank()


def factor_ic(factor: pd.DataFrame, method: str = "spearman", min_stocks: int = MIN_STOCKS) -> pd.DataFrame:
    """Per date and horizon: correlation of ``score`` with the forward return.

    ``method="spearman"`` is the rank IC, ``"pearson"`` the IC. Only stock-dates with both
    values count; a date with fewer than ``min_stocks`` of them is NaN for that horizon.
    """
    _check(factor)
    out = {}
    for col in forward_columns(factor):
        pair = factor[["score", col]].dropna()
        if method == "spearman":
            pair = pair.groupby(level=0).rank()
        elif method != "pearson":
            raise ReportError(f"factor_ic: method must be 'spearman' or 'pearson', got {method!r}")
        if pair.empty:  # no outcome yet at this horizon (e.g. a one-month test and fwd_3m)
            out[col] = pd.Series(np.nan, index=pd.DatetimeIndex([]), dtype=np.float64)
            continue
        grouped = pair.groupby(level=0)
        out[col] = grouped.apply(lambda g: g["score"].corr(g[col]) if len(g) >= min_stocks else np.nan)
    frame = pd.DataFrame(out)
    frame.index = pd.DatetimeIndex(frame.index, name="date")
    return frame.reindex(pd.DatetimeIndex(factor.index.get_level_values(0).unique().sort_values(), name="date"))


def ic_summary(ic: pd.DataFrame) -> pd.DataFrame:
    """Per horizon: ``mean, std, ir`` (mean / std, monthly), ``se`` (standard error of the mean),
    ``t_stat`` (mean / se), ``p_value`` (two-sided, t distribution with n − 1 degrees of freedom),
    ``lags``, ``skew``, ``n`` (dates with an IC).

    Monthly ICs against a k-month forward return (column ``fwd_<k>m``) share k − 1 months of
    return with their neighbours, so they are autocorrelated and a plain t test misstates t
    (overstates it when, as usual, neighbours agree).
    ``se`` is Newey–West's with ``lags = k − 1`` (Bartlett weights): at 1 month it is the plain
    ``std / √n``.
    """
    rows = {}
    for col, values in ic.items():
        v = values.dropna().to_numpy(np.float64)
        n = len(v)
        match = _FORWARD.fullmatch(str(col))
        lags = min(int(match.group(1)) - 1 if match else 0, max(n - 1, 0))
        mean = float(v.mean()) if n else np.nan
        std = float(v.std(ddof=1)) if n > 1 else np.nan
        se = std / np.sqrt(n) * np.sqrt(_long_run_factor(v, lags)) if n > 1 else np.nan
        t = mean / se if n > 1 and se > 0 else np.nan
        p = float(2 * stats.t.sf(abs(t), n - 1)) if np.isfinite(t) else np.nan
        rows[col] = {"mean": mean, "std": std, "ir": mean / std if n > 1 and std > 0 else np.nan, "se": se,
                     "t_stat": t, "p_value": p, "lags": lags, "skew": float(stats.skew(v)) if n > 2 else np.nan,
                     "n": n}
    return pd.DataFrame(rows).T.astype({"n": int, "lags": int}) if rows else pd.DataFrame()


def _long_run_factor(v: np.ndarray, lags: int) -> float:
    """Newey–West's long-run variance of ``v`` over its variance: 1 + 2 Σ (1 − l/(lags+1)) ρ_l
    (autocovariances over n, so the factor is never negative)."""
    centred = v - v.mean()
    gamma0 = float(centred @ centred)
    if lags == 0 or gamma0 == 0:
        return 1.0
    return 1.0 + 2.0 * sum((1 - lag / (lags + 1)) * float(centred[lag:] @ centred[:-lag]) / gamma0
                           for lag in range(1, lags + 1))


def quantiles(factor: pd.DataFrame, n: int = 5) -> pd.Series:
    """Score quantile (1 = lowest) of each stock-date, equal counts per date (ties by order)."""
    _check(factor)
    score = factor["score"]

    def one(g):
        g = g.dropna()
        if len(g) < n:
            return pd.Series(np.nan, index=g.index)
        return pd.Series(pd.qcut(g.rank(method="first"), n, labels=False) + 1, index=g.index)

    out = score.groupby(level=0, group_keys=False).apply(one)
    return out.reindex(factor.index).rename("quantile")


def quantile_returns(factor: pd.DataFrame, n: int = 5, demeaned: bool = False) -> pd.DataFrame:
    """Mean forward return per score quantile (rows 1..n) and horizon (columns).

    The mean is taken per date first and then over dates (every month weighs the same);
    ``demeaned`` subtracts each date's mean forward return first (alphalens' default).
    """
    q = quantiles(factor, n)
    out = {}
    for col in forward_columns(factor):
        values = factor[col]
        if demeaned:
            values = values - values.groupby(level=0).transform("mean")
        frame = pd.DataFrame({"q": q, "r": values}).dropna()
        per_date = frame.groupby([frame.index.get_level_values(0), "q"])["r"].mean()
        out[col] = per_date.groupby(level="q").mean()
    table = pd.DataFrame(out)
    table.index = table.index.astype(int).rename("quantile")
    return table


def rank_autocorrelation(factor: pd.DataFrame, lag: int = 1) -> pd.Series:
    """Correlation between each date's score ranks and those ``lag`` dates earlier (NaN for the
    first ``lag`` dates): ranks over each date's whole cross-section, correlated over the stocks
    present at both, as alphalens' ``factor_rank_autocorrelation`` does."""
    _check(factor)
    wide = factor["score"].unstack(level=1)
    ranks = wide.rank(axis=1)
    out = pd.Series(np.nan, index=pd.DatetimeIndex(wide.index, name="date"), name=f"lag {lag}")
    for k in range(lag, len(wide)):
        now, before = ranks.iloc[k], ranks.iloc[k - lag]
        both = now.notna() & before.notna()
        if both.sum() >= MIN_STOCKS:
            out.iloc[k] = float(np.corrcoef(now[both], before[both])[0, 1])
    return out


def ic_by_industry(factor: pd.DataFrame, column: str | None = None, min_group: int = MIN_GROUP) -> pd.DataFrame:
    """Mean rank IC of ``score`` with ``column`` (default the shortest horizon) within each industry.

    Returns a frame indexed by industry: ``mean`` (mean over dates of the within-industry
    rank IC), ``n_dates`` (dates with at least ``min_group`` stocks), ``n_stocks`` (mean
    stocks per date), sorted by ``mean``.
    """
    _check(factor)
    require_columns(factor, ("industry",), "factor")
    column = column or forward_columns(factor)[0]
    frame = factor[["score", column, "industry"]].dropna()
    if frame.empty:
        return pd.DataFrame(columns=["mean", "n_dates", "n_stocks"])
    keys = [frame.index.get_level_values(0), frame["industry"]]
    ranked = frame[["score", column]].groupby(keys).rank()
    size = frame.groupby(keys)["score"].transform("size")
    ranked = ranked[size.to_numpy() >= min_group]
    if ranked.empty:  # no industry ever has min_group stocks (a tiny market)
        return pd.DataFrame(columns=["mean", "n_dates", "n_stocks"])
    keys = [ranked.index.get_level_values(0), frame.loc[ranked.index, "industry"]]
    ic = ranked.groupby(keys).apply(lambda g: g["score"].corr(g[column]))
    counts = ranked.groupby(keys).size()
    table = pd.DataFrame({"ic": ic, "n": counts}).dropna()
    out = table.groupby(level=1).agg(mean=("ic", "mean"), n_dates=("ic", "size"), n_stocks=("n", "mean"))
    out.index.name = "industry"
    return out.sort_values("mean")


def factor_summary(factor: pd.DataFrame, n: int = 5) -> dict:
    """The factor section's numbers (``metrics.json`` -> ``factor``).

    Returns
    -------
    dict
        ``rank_ic`` and ``ic``: per horizon ``fwd_<k>m`` the :func:`ic_summary` row
        (``mean, std, ir, se, t_stat, p_value, lags, skew, n``); ``quantile_returns``: per horizon the
        mean forward return of each score quantile ``"1".."n"`` (not demeaned) and
        ``top_minus_bottom``; ``rank_autocorrelation_mean`` (1 month); ``quantiles`` (n).
    """
    _check(factor)
    out = {"quantiles": n}
    for key, method in (("rank_ic", "spearman"), ("ic", "pearson")):
        table = ic_summary(factor_ic(factor, method))
        out[key] = {col: {k: (int(v) if k in ("n", "lags") else float(v)) for k, v in row.items()}
                    for col, row in table.iterrows()}
    q = quantile_returns(factor, n)
    out["quantile_returns"] = {col: {**{str(k): float(v) for k, v in q[col].items()},
                                     "top_minus_bottom": float(q[col].iloc[-1] - q[col].iloc[0]) if len(q) else np.nan}
                               for col in q.columns}
    out["rank_autocorrelation_mean"] = float(rank_autocorrelation(factor).mean())
    return out


# ============================================================================ figures
def _figure(size=(8.0, 4.0)):
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.subplots()
    ax.grid(True, alpha=0.3)
    return fig, ax


def _horizon(column: str) -> str:
    m = _FORWARD.fullmatch(column)
    return f"{m.group(1)} month{'s' if m.group(1) != '1' else ''}" if m else column


def quantile_returns_figure(factor: pd.DataFrame, n: int = 5) -> Figure:
    """Mean forward return per score quantile, demeaned by the month's mean, one bar group per horizon."""
    table = quantile_returns(factor, n, demeaned=True)
    fig, ax = _figure()
    width = 0.8 / max(1, len(table.columns))
    colors = ["#1f77b4", "#6baed6", "#c6dbef"]
    for k, col in enumerate(table.columns):
        ax.bar(np.arange(len(table)) + (k - (len(table.columns) - 1) / 2) * width, table[col], width=width,
               color=colors[k % len(colors)], label=_horizon(col))
    ax.axhline(0, color="#444", lw=0.8)
    ax.set_xticks(np.arange(len(table)))
    ax.set_xticklabels([f"Q{q}" + (" (low)" if q == 1 else " (high)" if q == table.index.max() else "")
                        for q in table.index])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set(title="Mean forward return by score quantile (minus the month's mean)", xlabel="score quantile",
           ylabel="mean return over the horizon")
    ax.legend(title="horizon", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def ic_histogram_figure(factor: pd.DataFrame) -> Figure:
    """Histogram of the monthly rank IC (1-month horizon) with its mean, t statistic and p-value."""
    ic = factor_ic(factor)
    col = ic.columns[0]
    values = ic[col].dropna()
    summary = ic_summary(ic[[col]]).loc[col]
    fig, ax = _figure()
    if values.empty:
        ax.text(0.5, 0.5, "no month with a rank IC", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.hist(values, bins=min(20, max(5, len(values) // 2)), color="#1f77b4", alpha=0.8)
        ax.axvline(summary["mean"], color="#d62728", lw=1.5, ls="--", label=f"mean {summary['mean']:.3f}")
        ax.axvline(0, color="#444", lw=0.8)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set(title=f"Monthly rank IC ({_horizon(col)}): t = {summary['t_stat']:.2f}, p = {summary['p_value']:.3g}, "
                 f"{int(summary['n'])} months", xlabel="rank IC", ylabel="months")
    return fig


def ic_decay_figure(factor: pd.DataFrame) -> Figure:
    """Mean rank IC (with a 95% interval) by forward-return horizon."""
    summary = ic_summary(factor_ic(factor))
    fig, ax = _figure()
    x = np.arange(len(summary))
    half = 1.96 * summary["se"]  # Newey–West: the longer horizons' months overlap
    ax.bar(x, summary["mean"], color="#1f77b4", width=0.6)
    ax.errorbar(x, summary["mean"], yerr=half, fmt="none", ecolor="#444", capsize=4)
    ax.axhline(0, color="#444", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{_horizon(c)}\nmean {row['mean']:.3f}, {int(row['n'])} months"
                        for c, row in summary.iterrows()])
    ax.set(title="IC decay: mean rank IC by horizon (95% interval)", xlabel="forward-return horizon",
           ylabel="mean rank IC")
    return fig


def rank_autocorrelation_figure(factor: pd.DataFrame) -> Figure:
    """Month-to-month rank autocorrelation of the score (how much the ranking turns over)."""
    auto = rank_autocorrelation(factor).dropna()
    fig, ax = _figure()
    if auto.empty:
        ax.text(0.5, 0.5, "fewer than two months", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.plot(auto.index, auto, marker="o", color="#1f77b4")
        ax.axhline(auto.mean(), color="#d62728", ls="--", lw=1, label=f"mean {auto.mean():.2f}")
        ax.set_ylim(min(0.0, auto.min() - 0.05), 1.0)
        ax.legend(fontsize=8, loc="lower left")
        _date_axis(ax, auto.index)
    ax.set(title="Score rank autocorrelation (1 month)", xlabel="decision month-end", ylabel="Spearman correlation")
    return fig


def ic_by_industry_figure(factor: pd.DataFrame) -> Figure:
    """Mean within-industry rank IC (1-month horizon), one bar per industry."""
    table = ic_by_industry(factor) if factor["industry"].notna().any() else pd.DataFrame()
    fig, ax = _figure((8.0, max(3.0, 0.22 * len(table) + 1.2)))
    if table.empty:
        ax.text(0.5, 0.5, "no industry with enough stocks", ha="center", va="center", transform=ax.transAxes)
    else:
        y = np.arange(len(table))
        ax.barh(y, table["mean"], color=np.where(table["mean"] > 0, "#1f77b4", "#ff7f0e"))
        ax.set_yticks(y)
        ax.set_yticklabels(table.index, fontsize=8)
        ax.axvline(0, color="#444", lw=0.8)
        ax.grid(False, axis="y")
    ax.set(title="Mean rank IC within each industry (1 month)", xlabel="mean rank IC")
    return fig


def factor_figures(factor: pd.DataFrame) -> dict[str, Figure]:
    """Every figure of the factor section, by name (``factor_*``)."""
    _check(factor)
    out = {"factor_quantile_returns": quantile_returns_figure(factor),
           "factor_ic_histogram": ic_histogram_figure(factor),
           "factor_ic_decay": ic_decay_figure(factor),
           "factor_rank_autocorrelation": rank_autocorrelation_figure(factor)}
    if "industry" in factor:
        out["factor_ic_by_industry"] = ic_by_industry_figure(factor)
    return out
