"""The study's figures (SPEC §2), one function per figure, each returning a matplotlib Figure.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot), so they
render with the Agg canvas, never open a window and never pile up in pyplot's
registry. :func:`figure_png` renders one to PNG bytes; :func:`save_figures` writes a
dict of them to ``figures/<name>.png``.

Inputs are the run's results as documented in ``docs/reports.md``:

* training ``history``: one row per evaluation step, columns ``step, epoch,
  train_loss, train_acc, val_loss, val_acc`` plus input-layer statistics per tensor
  prefix (``w_in`` for weights, ``b_in`` for biases), in any of these forms:
  percentile columns ``<prefix>_p01 ... <prefix>_p99`` (what ``signals.train``
  records; ``_qNN`` is read the same way), drawn as a fan chart; or
  ``<prefix>_hist``: one array of bin counts per row, with fixed bin edges in
  ``history.attrs["<prefix>_hist_edges"]`` or a ``<prefix>_hist_edges`` column, drawn
  as a heatmap over steps next to the first and last histogram; or
  ``<prefix>_mean`` / ``<prefix>_std`` alone, a mean ± std band. The raw input-layer
  arrays (``TrainResult.snapshots``: ``{"step", "weight", "bias"}`` per evaluation)
  can be passed instead; they are binned on fixed edges into the heatmap form.
* monthly prediction statistics: :func:`reports.metrics.monthly_prediction_stats`.
* basket returns: ``BasketReturns.get_analysis()`` (``high, neutral, low, universe``).
* factor contribution: a Series factor -> sum of |input weights|, with the style map.
"""
from __future__ import annotations

import io
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from .inputs import BASKETS, ReportError, monthly_returns, require_columns
from .metrics import long_short, long_short_excess, nav

COLORS = {"high": "#1f77b4", "neutral": "#8c8c8c", "low": "#ff7f0e", "universe": "#222222",
          "model": "#1f77b4", "baseline": "#9e9e9e", "oracle": "#2ca02c", "train": "#1f77b4",
          "validation": "#d62728", "positive": "#1f77b4", "negative": "#ff7f0e"}
PANEL = (8.0, 4.0)  # half a report row
WIDE = (16.0, 4.4)  # a whole report row, drawn at the same scale as two PANELs side by side
STUDY_VALIDATION_BAND = (0.85, 0.90)
_QUANTILE = re.compile(r"_[pq](\d+)")
SNAPSHOT_KEYS = {"w_in": "weight", "b_in": "bias"}  # history prefix -> key of signals' TrainResult.snapshots
HIST_BINS = 40


# ============================================================================ helpers
def _figure(size=PANEL, ncols: int = 1, **kw) -> tuple[Figure, list]:
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False, **kw)[0]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, list(axes)


def _no_data(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no data: {what}", ha="center", va="center", transform=ax.transAxes, color="#777")


def _month_ticks(ax, dates: pd.DatetimeIndex, max_labels: int = 14) -> None:
    """Label categorical positions 0..n-1 with 'YYYY-MM', thinned to at most ``max_labels``."""
    step = max(1, int(np.ceil(len(dates) / max_labels)))
    positions = np.arange(0, len(dates), step)
    ax.set_xticks(positions)
    ax.set_xticklabels([f"{dates[i]:%Y-%m}" for i in positions], rotation=45, ha="right")


def _steps(history: pd.DataFrame) -> tuple[np.ndarray, str]:
    if "step" in history:
        return history["step"].to_numpy(dtype=float), "optimizer step"
    return np.arange(len(history), dtype=float), "evaluation"


def _history(history, columns, name="history") -> pd.DataFrame:
    require_columns(history, columns, name)
    if history.empty:
        raise ReportError(f"{name}: no rows")
    return history


def _legend_outside(fig: Figure, ax, ncols: int = 3, **kw) -> None:
    """The axes' legend below the plot (outside the data area), if it has entries."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(ncols, len(handles)), fontsize=8,
                   frameon=False, **kw)


def _date_axis(ax, dates, max_labels: int = 12) -> None:
    """Month-end dates on a datetime x axis as 'YYYY-MM', at most ``max_labels`` of them, rotated."""
    from matplotlib.dates import DateFormatter, MonthLocator

    dates = pd.DatetimeIndex(dates)
    months = max(1, (dates.max().year - dates.min().year) * 12 + dates.max().month - dates.min().month + 1) \
        if len(dates) else 1
    ax.xaxis.set_major_locator(MonthLocator(interval=max(1, int(np.ceil(months / max_labels))), bymonthday=-1))
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m"))
    ax.tick_params(axis="x", labelrotation=45)


def _plot_series(ax, x, y, **kw) -> None:
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y)
    ax.plot(np.asarray(x)[ok], y[ok], **kw)


# ============================================================================ training
def training_loss_figure(history: pd.DataFrame) -> Figure:
    """Training (and validation) cross-entropy loss over the evaluation steps."""
    history = _history(history, ["train_loss"])
    x, xlabel = _steps(history)
    fig, (ax,) = _figure()
    _plot_series(ax, x, history["train_loss"], color=COLORS["train"], label="train")
    if "val_loss" in history:
        _plot_series(ax, x, history["val_loss"], color=COLORS["validation"], label="validation")
        best = history["val_loss"].astype(float)
        if best.notna().any():
            i = int(np.nanargmin(best.to_numpy()))
            ax.axvline(x[i], color="#999", ls=":", lw=1, label=f"best validation loss ({best.iloc[i]:.3f})")
    ax.set(title="Training loss", xlabel=xlabel, ylabel="cross-entropy")
    _legend_outside(fig, ax)
    return fig


def training_accuracy_figure(history: pd.DataFrame, study_band=STUDY_VALIDATION_BAND) -> Figure:
    """Train and validation accuracy over the evaluation steps, with the study's reported band."""
    history = _history(history, ["train_acc"])
    x, xlabel = _steps(history)
    fig, (ax,) = _figure()
    _plot_series(ax, x, history["train_acc"], color=COLORS["train"], label="train")
    title = "Training accuracy"
    if "val_acc" in history and history["val_acc"].notna().any():
        _plot_series(ax, x, history["val_acc"], color=COLORS["validation"], label="validation")
        title += f" (last validation: {history['val_acc'].dropna().iloc[-1]:.1%})"
    if study_band is not None:
        band = f"study's validation accuracy ({study_band[0]:.0%}-{study_band[1]:.0%})"
        top = np.nanmax(history[[c for c in ("train_acc", "val_acc") if c in history]].to_numpy(dtype=float))
        if np.isfinite(top) and top >= study_band[0] - 0.15:  # near the data: draw the band itself
            ax.axhspan(*study_band, color=COLORS["validation"], alpha=0.08, label=band)
        else:  # far above the data: a band would squeeze the curves into a sliver; say where it is
            ax.annotate(f"{band}: above this scale", xy=(0.5, 1.0), xycoords="axes fraction", xytext=(0, -4),
                        textcoords="offset points", ha="center", va="top", fontsize=8, color=COLORS["validation"],
                        arrowprops=None)
            bottom, upper = ax.get_ylim()
            ax.set_ylim(bottom, upper + 0.15 * (upper - bottom))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(title=title, xlabel=xlabel, ylabel="accuracy")
    _legend_outside(fig, ax)
    return fig


def input_distribution_figure(history: pd.DataFrame | None, prefix: str = "w_in", title: str | None = None,
                              snapshots: list | None = None) -> Figure:
    """How the distribution of an input-layer tensor evolves during training.

    Parameters
    ----------
    history : pd.DataFrame or None
        Training history with ``<prefix>_hist`` (bin counts per row, drawn as a heatmap
        over steps plus the first and last histogram), or percentile columns
        ``<prefix>_pNN`` / ``<prefix>_qNN`` (a fan chart), or ``<prefix>_mean`` and
        ``<prefix>_std``. Ignored when ``snapshots`` are given.
    prefix : str
        ``"w_in"`` (input-layer weights) or ``"b_in"`` (biases), or any other prefix.
    title : str, optional
        Figure title (default from the prefix).
    snapshots : list of dict, optional
        ``TrainResult.snapshots``: ``{"step": int, "weight": array, "bias": array}``
        per evaluation; binned by :func:`snapshot_histograms` into the heatmap form.

    Raises
    ------
    ReportError
        ``history`` holds none of the forms for ``prefix``.
    """
    title = title or {"w_in": "Input-layer weights", "b_in": "Input-layer biases"}.get(prefix, prefix)
    if snapshots is not None:
        history = snapshot_histograms(snapshots, SNAPSHOT_KEYS.get(prefix, prefix), prefix)
    if not isinstance(history, pd.DataFrame):
        raise ReportError(f"history: expected a pandas DataFrame, got {type(history).__name__}")
    if f"{prefix}_hist" in history:
        return _histogram_evolution(history, prefix, title)
    quantiles = sorted((int(m.group(1)), c) for c in history.columns
                       if str(c).startswith(prefix) and (m := _QUANTILE.fullmatch(str(c)[len(prefix):])))
    if quantiles:
        return _quantile_fan(history, prefix, quantiles, title)
    if {f"{prefix}_mean", f"{prefix}_std"} <= set(history.columns):
        return _mean_std_band(history, prefix, title)
    raise ReportError(f"history: no input-layer statistics for '{prefix}' (expected a '{prefix}_hist' column, "
                      f"quantile columns '{prefix}_q05'..'{prefix}_q95', or '{prefix}_mean' and '{prefix}_std')")


def snapshot_histograms(snapshots: list, key: str, prefix: str, bins: int = HIST_BINS) -> pd.DataFrame:
    """Bin input-layer snapshots on one set of edges (spanning every snapshot) into a history frame.

    Returns
    -------
    pd.DataFrame
        Columns ``step`` and ``<prefix>_hist`` (counts per row), with the edges in
        ``attrs["<prefix>_hist_edges"]``.
    """
    if not snapshots:
        raise ReportError("snapshots: no input-layer snapshots to draw")
    try:
        steps = [int(s["step"]) for s in snapshots]
        arrays = [np.asarray(s[key], dtype=float).ravel() for s in snapshots]
    except (KeyError, TypeError, ValueError):
        raise ReportError(f"snapshots: each entry must be a dict with 'step' and '{key}' arrays") from None
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays])
    if finite.size == 0:
        raise ReportError(f"snapshots: no finite '{key}' values")
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    frame = pd.DataFrame({"step": steps, f"{prefix}_hist": [np.histogram(a, bins=edges)[0] for a in arrays]})
    frame.attrs[f"{prefix}_hist_edges"] = edges.tolist()
    return frame


def _quantile_fan(history, prefix, quantiles, title) -> Figure:
    x, xlabel = _steps(history)
    fig, (ax,) = _figure(WIDE)
    # symmetric pairs (q05, q95), (q25, q75)... shaded from the outside in
    pairs = [(quantiles[i], quantiles[-1 - i]) for i in range(len(quantiles) // 2)]
    for depth, ((lo_q, lo_c), (hi_q, hi_c)) in enumerate(pairs):
        ax.fill_between(x, history[lo_c].astype(float), history[hi_c].astype(float), color=COLORS["model"],
                        alpha=0.15 + 0.15 * depth, lw=0, label=f"{lo_q}-{hi_q}th percentile")
    if len(quantiles) % 2:
        q, c = quantiles[len(quantiles) // 2]
        _plot_series(ax, x, history[c], color=COLORS["model"], lw=1.5, label=f"{q}th percentile")
    if f"{prefix}_mean" in history:
        _plot_series(ax, x, history[f"{prefix}_mean"], color="#222", lw=1, ls="--", label="mean")
    ax.set(title=f"{title}: distribution over training", xlabel=xlabel, ylabel="value")
    ax.legend(loc="best", fontsize=8)
    return fig


def _mean_std_band(history, prefix, title) -> Figure:
    x, xlabel = _steps(history)
    mean, std = history[f"{prefix}_mean"].astype(float), history[f"{prefix}_std"].astype(float)
    fig, (ax,) = _figure(WIDE)
    ax.fill_between(x, mean - 2 * std, mean + 2 * std, color=COLORS["model"], alpha=0.15, lw=0, label="mean ± 2 std")
    ax.fill_between(x, mean - std, mean + std, color=COLORS["model"], alpha=0.3, lw=0, label="mean ± 1 std")
    _plot_series(ax, x, mean, color=COLORS["model"], label="mean")
    ax.set(title=f"{title}: distribution over training", xlabel=xlabel, ylabel="value")
    ax.legend(loc="best", fontsize=8)
    return fig


def _histogram_evolution(history, prefix, title) -> Figure:
    column = f"{prefix}_hist"
    rows = [np.asarray(v, dtype=float) if v is not None and np.ndim(v) == 1 else None for v in history[column]]
    keep = [i for i, r in enumerate(rows) if r is not None and len(r) > 0]
    if not keep:
        raise ReportError(f"history: column '{column}' holds no histogram counts")
    n_bins = len(rows[keep[0]])
    if any(len(rows[i]) != n_bins for i in keep):
        raise ReportError(f"history: the histograms in '{column}' have different numbers of bins")
    edges = history.attrs.get(f"{column}_edges")
    if edges is None and f"{column}_edges" in history:
        edges = next((e for e in history[f"{column}_edges"] if e is not None and np.ndim(e) == 1), None)
    edges = np.arange(n_bins + 1, dtype=float) if edges is None else np.asarray(edges, dtype=float)
    if len(edges) != n_bins + 1:
        raise ReportError(f"history: {len(edges)} bin edges for '{column}' do not fit {n_bins} bins")
    counts = np.vstack([rows[i] for i in keep])
    with np.errstate(invalid="ignore", divide="ignore"):
        share = counts / counts.sum(axis=1, keepdims=True)
    x, xlabel = _steps(history)
    x = x[keep]

    fig, (heat, last) = _figure(WIDE, ncols=2, width_ratios=[2.2, 1])
    heat.grid(False)
    # step edges for pcolormesh: midpoints between evaluations
    if len(x) > 1:
        mid = (x[1:] + x[:-1]) / 2
        x_edges = np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
    else:
        x_edges = np.array([x[0] - 0.5, x[0] + 0.5])
    mesh = heat.pcolormesh(x_edges, edges, np.log10(share.T + 1e-4), cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=heat, label="log10 share of values in bin")
    heat.set(title=f"{title}: histogram over training", xlabel=xlabel, ylabel="value")
    width = np.diff(edges)
    last.bar(edges[:-1], share[0], width=width, align="edge", color=COLORS["baseline"], alpha=0.6,
             label=f"first ({xlabel} {x[0]:g})")
    last.bar(edges[:-1], share[-1], width=width, align="edge", color=COLORS["model"], alpha=0.6,
             label=f"last ({xlabel} {x[-1]:g})")
    last.yaxis.set_major_formatter(PercentFormatter(1.0))
    last.set(title="first vs last evaluation", xlabel="value", ylabel="share")
    _legend_outside(fig, last)
    return fig


# ============================================================================ predictions
def oos_accuracy_figure(monthly: pd.DataFrame, baseline: pd.DataFrame | None = None) -> Figure:
    """Monthly out-of-sample accuracy with its no-skill line (and the baseline's accuracy).

    ``monthly`` (and ``baseline``) come from :func:`reports.metrics.monthly_prediction_stats`;
    the x axis is the decision month-end (the prediction of the following month).
    """
    require_columns(monthly, ("accuracy", "no_skill"), "monthly prediction stats")
    data = monthly[monthly["accuracy"].notna()]
    fig, (ax,) = _figure()
    if data.empty:
        _no_data(ax, "no month with a labelled prediction")
    else:
        ax.plot(data.index, data["accuracy"], marker="o", color=COLORS["model"],
                label=f"model (mean {data['accuracy'].mean():.1%})")
        ax.plot(data.index, data["no_skill"], ls="--", color="#444",
                label=f"no skill: most frequent class (mean {data['no_skill'].mean():.1%})")
        if baseline is not None:
            base = require_columns(baseline, ("accuracy",), "baseline prediction stats")["accuracy"].dropna()
            ax.plot(base.index, base, marker=".", ls=":", color=COLORS["baseline"],
                    label=f"baseline (mean {base.mean():.1%})")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        bottom, top = ax.get_ylim()
        ax.set_ylim(max(0.0, bottom), min(1.0, top))
        _date_axis(ax, data.index)
        _legend_outside(fig, ax)
    ax.set(title="Out-of-sample accuracy by month", xlabel="decision month-end", ylabel="accuracy")
    return fig


def rank_ic_figure(monthly: pd.DataFrame, baseline: pd.DataFrame | None = None) -> Figure:
    """Monthly rank IC of ``p_up - p_down`` vs next-month return, next to the baseline's and oracle's."""
    require_columns(monthly, ("rank_ic",), "monthly prediction stats")
    bars = {"model": monthly["rank_ic"]}
    if baseline is not None:
        bars["baseline"] = require_columns(baseline, ("rank_ic",), "baseline prediction stats")["rank_ic"]
    if "oracle_rank_ic" in monthly:
        bars["oracle"] = monthly["oracle_rank_ic"]
    table = pd.DataFrame(bars).dropna(how="all")
    fig, (ax,) = _figure()
    if table.empty:
        _no_data(ax, "no month with a rank IC")
    else:
        width = 0.8 / len(table.columns)
        positions = np.arange(len(table))
        for k, (name, values) in enumerate(table.items()):
            ax.bar(positions + (k - (len(table.columns) - 1) / 2) * width, values.fillna(0.0), width=width,
                   color=COLORS[name], label=f"{name} (mean {values.mean():.3f})")
        ax.axhline(0, color="#444", lw=0.8)
        _month_ticks(ax, table.index)
        _legend_outside(fig, ax)
    ax.set(title="Monthly rank IC of p(up) - p(down) vs next-month return", xlabel="decision month-end",
           ylabel="Spearman correlation")
    return fig


# ============================================================================ books
def basket_nav_figure(baskets: pd.DataFrame, title: str) -> Figure:
    """NAV of the high, neutral and low baskets and of the equal-weight universe."""
    require_columns(baskets, BASKETS, "baskets")
    fig, (ax,) = _figure()
    if baskets.empty:
        _no_data(ax, "no basket returns")
    for name in BASKETS:
        returns = monthly_returns(baskets[name], name)
        if returns.isna().all():
            ax.plot([], [], color=COLORS[name], label=f"{name} (empty every month)")
            continue
        path = nav(returns)
        ax.plot(path.index, path, color=COLORS[name], lw=2 if name != "universe" else 1.2,
                ls="--" if name == "universe" else "-", label=f"{name} ({path.iloc[-1] - 1:+.1%})")
    ax.axhline(1.0, color="#999", lw=0.8)
    ax.set(title=title, xlabel="month-end", ylabel="NAV (start = 1)")
    if not baskets.empty:
        _date_axis(ax, nav(baskets["universe"]).index)
    _legend_outside(fig, ax, ncols=4)
    return fig


def long_short_nav_figure(high: pd.Series, low: pd.Series, title: str) -> Figure:
    """Cumulative NAV of the monthly long/short excess (high - low), compounded monthly."""
    excess = long_short_excess(high, low)
    fig, (ax,) = _figure()
    if excess.empty:
        _no_data(ax, "no month with both a high and a low basket")
    else:
        path = nav(excess)
        ax.plot(path.index, path, color=COLORS["model"], lw=2, label="long high / short low")
        ax.fill_between(path.index, 1.0, path, color=COLORS["model"], alpha=0.12)
        ax.axhline(1.0, color="#999", lw=0.8)
        _date_axis(ax, path.index)
        title = f"{title}: cumulative excess {path.iloc[-1] - 1:+.2%}"
    ax.set(title=title, xlabel="month-end", ylabel="long/short NAV (start = 1)")
    return fig


def long_short_excess_figure(high: pd.Series, low: pd.Series, title: str) -> Figure:
    """Monthly long/short excess (high - low) as bars, with the monthly win rate in the title."""
    excess = long_short_excess(high, low)
    fig, (ax,) = _figure(WIDE)
    if excess.empty:
        _no_data(ax, "no month with both a high and a low basket")
    else:
        stats = long_short(high, low)
        wins = int((excess > 0).sum())
        if stats["degenerate"]:
            title = f"{title}: {stats['degenerate']}"
        colors = np.where(excess > 0, COLORS["positive"], COLORS["negative"])
        ax.bar(np.arange(len(excess)), excess, color=colors)
        ax.axhline(0, color="#444", lw=0.8)
        _month_ticks(ax, excess.index)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        if not stats["degenerate"]:
            title = (f"{title}: monthly win rate {stats['monthly_win_rate']:.0%} "
                     f"({wins}/{len(excess)} months), t = {stats['t_stat']:.2f}")
    ax.set(title=title, xlabel="month-end (realised)", ylabel="high - low return")
    return fig


# ============================================================================ factors
def _style_of(factors, styles: Mapping[str, list[str]] | None) -> dict[str, str]:
    owner = {}
    for style, members in (styles or {}).items():
        for f in members:
            owner[str(f)] = str(style)
    return {str(f): owner.get(str(f), "other") for f in factors}


def _style_colors(style_names) -> dict[str, str]:
    from matplotlib import colormaps

    names = [s for s in dict.fromkeys(style_names) if s != "other"]
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    colors = {s: cmap(i % cmap.N) for i, s in enumerate(names)}
    colors["other"] = "#bbbbbb"
    return colors


def _contribution(contribution) -> pd.Series:
    if not isinstance(contribution, pd.Series):
        raise ReportError(f"contribution: expected a pandas Series factor -> contribution, "
                          f"got {type(contribution).__name__}")
    try:
        values = contribution.astype(float).dropna()
    except (TypeError, ValueError):
        raise ReportError(f"contribution: values must be numeric, got dtype {contribution.dtype}") from None
    values.index = values.index.astype(str)
    return values


def factor_contribution_figure(contribution: pd.Series, styles: Mapping[str, list[str]] | None = None) -> Figure:
    """Factor contribution (sum of |input-layer weights| per factor), largest first, bars coloured by style."""
    values = _contribution(contribution).sort_values(ascending=False)
    owner = _style_of(values.index, styles)
    colors = _style_colors([owner[f] for f in values.index] if not styles else list(styles) + ["other"])
    fig, (ax,) = _figure((max(WIDE[0], 0.22 * len(values) + 1.5), 4.6))
    if values.empty:
        _no_data(ax, "no factor contributions")
    else:
        from matplotlib.patches import Patch

        ax.bar(np.arange(len(values)), values, color=[colors[owner[f]] for f in values.index])
        ax.set_xticks(np.arange(len(values)))
        ax.set_xticklabels(values.index, rotation=90, fontsize=10)
        ax.set_xlim(-0.6, len(values) - 0.4)
        present = list(dict.fromkeys(owner[f] for f in values.index))
        ax.legend(handles=[Patch(color=colors[s], label=s) for s in present], loc="upper left", fontsize=8,
                  bbox_to_anchor=(1.0, 1.0), title="style", title_fontsize=8)
    ax.grid(False, axis="x")
    ax.set(title="Factor contribution: sum of |input-layer weights|", ylabel="contribution")
    return fig


def style_contribution_figure(contribution: pd.Series, styles: Mapping[str, list[str]] | None) -> Figure:
    """Factor contribution summed per style, annotated with the number of factors and the mean."""
    values = _contribution(contribution)
    owner = _style_of(values.index, styles)
    grouped = values.groupby(pd.Series(owner)).agg(["sum", "count", "mean"]).sort_values("sum")
    colors = _style_colors(list(styles or {}) + ["other"])
    fig, (ax,) = _figure((8.0, max(3.0, 0.35 * len(grouped) + 1.2)))
    if grouped.empty:
        _no_data(ax, "no factor contributions")
    else:
        ax.barh(np.arange(len(grouped)), grouped["sum"], color=[colors[s] for s in grouped.index])
        ax.set_yticks(np.arange(len(grouped)))
        ax.set_yticklabels(grouped.index)
        for i, (_, row) in enumerate(grouped.iterrows()):
            ax.text(row["sum"], i, f"  {int(row['count'])} factors, mean {row['mean']:.3g}", va="center", fontsize=8)
        ax.set_xlim(0, grouped["sum"].max() * 1.45)
    ax.grid(False, axis="y")
    ax.set(title="Factor contribution by style (sum over the style's factors)", xlabel="contribution")
    return fig


# ============================================================================ output
def figure_png(fig: Figure | bytes, dpi: int = 100) -> bytes:
    """Render a Figure to PNG bytes (Agg); PNG bytes rendered before pass through, so a
    caller that writes figures/ and report.html renders each figure once."""
    if isinstance(fig, bytes):
        return fig
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def figure_width(fig: Figure | bytes, dpi: int = 100) -> float:
    """Width in inches of a Figure, or of PNG bytes rendered by :func:`figure_png` at ``dpi``
    (read from the PNG header)."""
    if isinstance(fig, bytes):
        return int.from_bytes(fig[16:20], "big") / dpi  # IHDR: the width in pixels
    return float(fig.get_size_inches()[0])


def save_figures(figures: Mapping[str, Figure | bytes], directory, dpi: int = 100) -> dict[str, Path]:
    """Write each figure (a Figure, or PNG bytes from :func:`figure_png`) to
    ``directory/<name>.png`` and return the paths by name."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, fig in figures.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(name)):
            raise ReportError(f"figures: name {name!r} is not a safe file name (letters, digits, _ . - only)")
        path = directory / f"{name}.png"
        path.write_bytes(figure_png(fig, dpi))
        paths[str(name)] = path
    return paths
