"""Metrics of a finished run: books (empyrical), long/short, predictions, ``metrics.json``.

All functions are pure: they take monthly return Series / frames and return plain dicts
or frames. Conventions, shared by every function here:

* A monthly return Series is indexed by the month-end at which the return is
  *realised* (the ``BasketReturns`` convention); a NaN month (an empty basket) counts
  as a month in cash, return 0 (see :func:`reports.inputs.cash_filled`).
* Prediction statistics are indexed by the *decision* month-end ``t``: the
  prediction made at ``t`` is scored against the return of month ``t+1``. They are
  computed by :mod:`signals.evaluate` (one implementation for the project).
* Annualisation uses 12 periods a year (empyrical ``period="monthly"``).
* Ratios such as the ICIR are *not* annualised (mean / std of monthly values);
  multiply by ``sqrt(12)`` for an annualised figure.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import empyrical
import numpy as np
import pandas as pd
from scipy import stats

from feeds.panel import Panel
from signals import evaluate
from strategies.baskets import BOOK_BASKETS

from .inputs import (BASKETS, ReportError, cash_filled, json_safe, monthly_returns, predictions_on_panel,
                     require_columns)

if TYPE_CHECKING:
    from signals.labels import LabelConfig

PERIOD = "monthly"
BOOK_KEYS = ("n_months", "n_empty_months", "degenerate", "cum_return", "annual_return", "annual_volatility", "sharpe", "sortino",
             "max_drawdown", "calmar", "alpha", "beta")
LONG_SHORT_KEYS = ("cum_excess", "monthly_win_rate", "t_stat", "mean_excess", "n_months", "degenerate")
PREDICTION_KEYS = evaluate.SUMMARY_KEYS


# ============================================================================ books
def degenerate_reason(returns: pd.Series) -> str | None:
    """Why a book's statistics would mean nothing, or ``None`` when they are meaningful.

    A book needs at least two invested months (a finite, non-zero return): a book that
    never invested (every month NaN, an empty basket, or exactly 0, cash) or that was
    invested in one month only has no volatility, Sharpe ratio, win rate or t statistic.
    """
    raw = monthly_returns(returns, "returns")
    values = raw.to_numpy()
    invested = int((np.isfinite(values) & (values != 0)).sum())
    if len(raw) == 0:
        return "no months"
    if raw.isna().all():
        return f"the basket was empty in all {len(raw)} months"
    if invested == 0:
        return f"never invested in its {len(raw)} months (every monthly return is 0)"
    if invested == 1:
        return f"invested in only 1 of its {len(raw)} months"
    return None


def book_metrics(returns: pd.Series, benchmark: pd.Series | None = None) -> dict:
    """Standard performance measures of one book's monthly returns (empyrical).

    Parameters
    ----------
    returns : pd.Series
        Monthly simple returns indexed by realisation month-end. NaN = a month in cash.
    benchmark : pd.Series, optional
        Monthly benchmark returns (the equal-weight universe). When given, ``alpha``
        (annualised) and ``beta`` are estimated on the months both series share.

    Returns
    -------
    dict
        ``n_months``, ``n_empty_months`` (NaN months, counted as cash; when every
        month is empty all measures are NaN), ``degenerate`` (:func:`degenerate_reason`:
        a book never invested or invested in one month only has this reason, its
        ``cum_return`` and no other measure), ``cum_return`` (compounded), ``annual_return`` (CAGR),
        ``annual_volatility``, ``sharpe``, ``sortino`` (risk-free 0),
        ``max_drawdown`` (negative), ``calmar``, ``alpha``, ``beta``. A measure that is
        undefined (no drawdown for Calmar, zero volatility, no benchmark) is NaN.
    """
    raw = monthly_returns(returns, "returns")
    out = dict.fromkeys(BOOK_KEYS, np.nan)
    out["n_months"], out["n_empty_months"] = len(raw), int(raw.isna().sum())
    out["degenerate"] = degenerate_reason(raw)
    if raw.isna().all():  # never held anything: no performance to measure (not a flat NAV)
        return _typed(out)
    book = cash_filled(raw)
    if out["degenerate"]:  # cash, or one data point: its NAV moved, nothing else is measurable
        out["cum_return"] = empyrical.cum_returns_final(book)
        return _typed(out)
    with np.errstate(divide="ignore", invalid="ignore"):
        out.update(
            cum_return=empyrical.cum_returns_final(book),
            annual_return=empyrical.annual_return(book, period=PERIOD),
            annual_volatility=empyrical.annual_volatility(book, period=PERIOD),
            sharpe=empyrical.sharpe_ratio(book, period=PERIOD),
            sortino=empyrical.sortino_ratio(book, period=PERIOD),
            max_drawdown=empyrical.max_drawdown(book),
            calmar=empyrical.calmar_ratio(book, period=PERIOD),
        )
        if benchmark is not None:
            bench = cash_filled(monthly_returns(benchmark, "benchmark"))
            common = book.index.intersection(bench.index)
            if len(common) >= 2:
                alpha, beta = empyrical.alpha_beta(book[common], bench[common], period=PERIOD)
                out.update(alpha=alpha, beta=beta)
    return _typed(out)


def _typed(out: dict) -> dict:
    return {k: v if k == "degenerate" else int(v) if k.startswith("n_") else float(v) for k, v in out.items()}


def nav(returns: pd.Series, start: float = 1.0) -> pd.Series:
    """Net asset value path of a book, starting at ``start`` one month before its first return.

    The extra first point (the previous month-end) makes a plotted NAV begin at 1.0
    on the decision date instead of after the first month's move.
    """
    book = cash_filled(monthly_returns(returns, "returns"))
    if book.empty:
        return book
    path = empyrical.cum_returns(book, starting_value=start)
    first = book.index[0] - pd.offsets.MonthEnd(1)
    return pd.concat([pd.Series([start], index=[first]), path]).rename(book.name)


def long_short(high: pd.Series, low: pd.Series) -> dict:
    """The study's long/short measures of the high and low baskets.

    The monthly excess is ``high - low``, over the months where both are defined
    (an empty leg leaves no long/short position that month, so the month is dropped).

    Parameters
    ----------
    high, low : pd.Series
        Monthly returns of the high and low baskets (realisation month-ends).

    Returns
    -------
    dict
        ``cum_excess``: the compounded monthly excess, ``prod(1 + (h - l)) - 1``: the
        growth of a book rebalanced monthly to +1 high / -1 low (the study's
        "cumulative long/short excess"; the same as ``empyrical.cum_returns_final``
        of the excess). ``monthly_win_rate``: share of months with ``h > l``.
        ``t_stat``: one-sample t statistic of the mean monthly excess against 0
        (``scipy.stats.ttest_1samp``, n-1 degrees of freedom). ``mean_excess``:
        the arithmetic mean monthly excess. ``n_months``: months used.
        ``degenerate``: with fewer than 2 months, the reason there is no win rate or
        t statistic (``None`` otherwise); ``cum_excess`` and ``mean_excess`` remain.
    """
    high = monthly_returns(high, "high")
    low = monthly_returns(low, "low")
    excess = (high - low).dropna()  # aligns on dates; a month missing from either leg drops out
    out = dict.fromkeys(LONG_SHORT_KEYS, np.nan)
    out["n_months"] = len(excess)
    out["degenerate"] = None
    if len(excess) < 2:
        out["degenerate"] = (f"only {len(excess)} month{'' if len(excess) == 1 else 's'} with both a high and a "
                             "low basket: no win rate or t statistic")
    if len(excess) == 0:
        return out
    out["cum_excess"] = float(empyrical.cum_returns_final(excess))
    out["mean_excess"] = float(excess.mean())
    if len(excess) >= 2:
        out["monthly_win_rate"] = float((excess > 0).mean())
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # zero variance: t is inf/NaN, not an error
            out["t_stat"] = float(stats.ttest_1samp(excess.to_numpy(), 0.0).statistic)
    return out


def long_short_excess(high: pd.Series, low: pd.Series) -> pd.Series:
    """Monthly excess ``high - low`` over the months where both legs are defined."""
    high = monthly_returns(high, "high")
    low = monthly_returns(low, "low")
    return (high - low).dropna().rename("excess")


# ============================================================================ predictions
# The evaluation itself lives in signals.evaluate (one implementation for the project, which
# names its figures as metrics.json does); these two functions check the report's inputs and
# hand them over.
def monthly_prediction_stats(predictions: pd.DataFrame, panel: Panel, labels: LabelConfig | None = None,
                             oracle: np.ndarray | None = None) -> pd.DataFrame:
    """Per decision month: accuracy, its no-skill reference, IC and rank IC (and the oracle's rank IC).

    Parameters
    ----------
    predictions : pd.DataFrame
        ``SignalModel.predict_panel`` output: ``(date, code)`` index, columns
        ``p_down, p_neutral, p_up, pred``.
    panel : Panel
        The raw panel the predictions were made on; the outcome of a prediction at
        ``t`` is the return of month ``t+1`` and its label (``labels``) the class of it.
    labels : signals.LabelConfig, optional
        Label definition (default: the seed's fixed +/-3%).
    oracle : ndarray [T, N], optional
        The synthetic market's true expected returns (``Market.oracle``) on the grid of
        ``panel``; adds ``oracle_rank_ic``, computed on the same stocks as the model's.

    Returns
    -------
    pd.DataFrame
        :func:`signals.evaluate.monthly_evaluation`: indexed by decision month-end
        ``date``: ``accuracy``, ``no_skill`` (share of the month's most frequent realised
        class), ``n`` (labelled predictions), ``ic``, ``rank_ic`` of ``p_up - p_down`` vs
        the next-month return, ``n_ic``; ``oracle_rank_ic`` with an oracle.
    """
    _check_predictions(predictions, panel, oracle)
    return evaluate.monthly_evaluation(predictions, panel, labels, oracle)


def prediction_metrics(predictions: pd.DataFrame, panel: Panel, labels: LabelConfig | None = None,
                       oracle: np.ndarray | None = None) -> dict:
    """The prediction scalars of ``metrics.json`` (:data:`PREDICTION_KEYS`): the inputs checked
    (one :class:`ReportError` per mistake), then :func:`signals.evaluate.evaluate_predictions`,
    which defines every key (``ic_efficiency`` and ``oracle_rank_ic_mean`` NaN without an oracle)."""
    _check_predictions(predictions, panel, oracle)
    return evaluate.evaluate_predictions(predictions, panel, labels, oracle)


def _check_predictions(predictions, panel, oracle) -> None:
    predictions_on_panel(predictions, panel)
    if oracle is not None and np.shape(oracle) != (panel.T, panel.N):
        raise ReportError(f"oracle: shape {np.shape(oracle)} does not match the panel {(panel.T, panel.N)}")


# ============================================================================ metrics.json
def selection_metrics(baskets: pd.DataFrame, prediction: Mapping | None = None,
                      books: Mapping[str, pd.Series] | None = None) -> dict:
    """The block of ``metrics.json`` for one selection mode.

    Parameters
    ----------
    baskets : pd.DataFrame
        ``BasketReturns.get_analysis()``: columns ``high, neutral, low, universe``,
        indexed by realisation month-end.
    prediction : dict, optional
        :func:`prediction_metrics` of the model (the same for every selection mode: it
        describes the model, not the baskets).
    books : dict of str -> pd.Series, optional
        Monthly returns of traded books (Backtrader NAV returns, after costs), keyed
        by book name.

    Returns
    -------
    dict
        The prediction keys, ``baskets.<name>`` (:func:`book_metrics`, against the
        universe), ``long_short`` (:func:`long_short` of high vs low) and
        ``books.<name>`` (:func:`book_metrics` against the universe; ``n_empty_months``: the
        months in which a basket the book holds was empty, so that part of it sat in cash).
    """
    require_columns(baskets, BASKETS, "baskets")
    universe = baskets["universe"]
    block = _prediction_block(prediction)
    block["baskets"] = {name: book_metrics(baskets[name].rename(name),
                                           None if name == "universe" else universe)
                        for name in BASKETS}
    block["long_short"] = long_short(baskets["high"], baskets["low"])
    block["books"] = {str(name): _traded_book(monthly_returns(series, f"book {name}"), universe,
                                              baskets, BOOK_BASKETS.get(str(name)))
                      for name, series in (books or {}).items()}
    return block


def _traded_book(returns: pd.Series, universe: pd.Series, baskets: pd.DataFrame, held) -> dict:
    """:func:`book_metrics` of a traded book, whose empty months are those of its baskets: its NAV
    return is never NaN (a month in cash earns 0), so its own series would always say 0."""
    out = book_metrics(returns, universe)
    if held:
        out["n_empty_months"] = int(baskets[list(held)].isna().any(axis=1).sum())
    return out


def metrics_document(baskets: Mapping[str, pd.DataFrame], prediction: Mapping | None = None, *,
                     books: Mapping[str, Mapping[str, pd.Series]] | None = None,
                     baseline: Mapping | None = None, validation_accuracy: float | None = None,
                     timings: Mapping[str, float] | None = None) -> dict:
    """Assemble the ``metrics.json`` document of a run (SPEC §7).

    Parameters
    ----------
    baskets : dict of str -> pd.DataFrame
        Selection mode (``"class"``, ``"top_pct"``) -> basket returns
        (columns ``high, neutral, low, universe``).
    prediction : dict, optional
        :func:`prediction_metrics` of the model over the out-of-sample months (with
        the oracle on the synthetic market).
    books : dict of str -> dict of str -> pd.Series, optional
        Selection mode -> book name -> monthly returns of the traded book.
    baseline : dict, optional
        :func:`prediction_metrics` of the last-snapshot baseline model.
    validation_accuracy : float, optional
        Final (best-state) validation accuracy of training.
    timings : dict of str -> float, optional
        Seconds spent per stage.

    Returns
    -------
    dict
        JSON-safe (NaN -> ``None``), always with the same keys:
        ``selections`` (the mode names), one block per mode
        (:func:`selection_metrics`), ``validation_accuracy``, ``baseline``
        (``oos_accuracy, no_skill_accuracy, ic_mean, rank_ic_mean, icir,
        ic_efficiency``), ``oracle`` (``rank_ic_mean, ic_efficiency``: the model's IC
        efficiency; ``None`` values off the synthetic market) and ``timings``.
    """
    if not isinstance(baskets, Mapping) or not baskets:
        raise ReportError("baskets: expected a non-empty dict of selection mode -> basket returns frame")
    reserved = {"selections", "validation_accuracy", "baseline", "oracle", "timings"}
    clash = reserved.intersection(map(str, baskets))
    if clash:
        raise ReportError(f"baskets: selection mode name '{sorted(clash)[0]}' is reserved in metrics.json")
    model = _prediction_block(prediction)
    doc: dict = {"selections": [str(mode) for mode in baskets]}
    for mode, frame in baskets.items():
        doc[str(mode)] = selection_metrics(frame, model, (books or {}).get(mode))

    doc["validation_accuracy"] = validation_accuracy
    base = _prediction_block(baseline)
    doc["baseline"] = {k: base[k] for k in ("oos_accuracy", "no_skill_accuracy", "ic_mean", "rank_ic_mean",
                                            "icir", "ic_efficiency")}
    doc["oracle"] = {"rank_ic_mean": model["oracle_rank_ic_mean"], "ic_efficiency": model["ic_efficiency"]}
    doc["timings"] = {str(k): float(v) for k, v in (timings or {}).items()}
    return json_safe(doc)


def _prediction_block(summary: Mapping | None) -> dict:
    """The :data:`PREDICTION_KEYS` of a :func:`prediction_metrics` dict (NaN when absent)."""
    if summary is None:
        return dict.fromkeys(PREDICTION_KEYS, np.nan)
    if not isinstance(summary, Mapping):
        raise ReportError(f"prediction metrics: expected the dict of prediction_metrics, got {type(summary).__name__}")
    return {k: summary.get(k, np.nan) for k in PREDICTION_KEYS}
