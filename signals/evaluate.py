"""Honest out-of-sample evaluation of a predictions frame.

Every function takes a predictions frame (:mod:`signals.predictions`: indexed
``(date, code)``, columns ``p_down, p_neutral, p_up, pred``, as
:meth:`SignalModel.predict_panel` returns it) and the raw panel it was made from; the
outcome of a prediction at month-end ``t`` is the stock's return over month ``t + 1``
(so predictions at the panel's last month have no outcome and are left out). The ICs
are those of the score ``p_up - p_down`` (:func:`signals.predictions.score`), rank ICs
by :func:`feeds.crosssection.rank_ic`. These are the project's only prediction metrics:
the reports, the Backtrader ``PredictionLog`` and the benchmarks all read them from here.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from feeds.crosssection import MIN_STOCKS, rank_ic
from feeds.errors import UserError
from feeds.panel import Panel

from .labels import CLASSES, LabelConfig, NO_LABEL, make_labels
from .predictions import grid_positions, predicted_class, score, to_grid

#: The keys of :func:`evaluate_predictions`, the prediction figures of ``metrics.json``.
SUMMARY_KEYS = ("n_months", "n_predictions", "oos_accuracy", "no_skill_accuracy", "ic_mean", "rank_ic_mean",
                "icir", "rank_icir", "ic_efficiency", "oracle_rank_ic_mean")


class EvaluationError(UserError):
    """Predictions and panel do not fit together."""


def score_grid(predictions: pd.DataFrame, panel: Panel) -> np.ndarray:
    """[T, N]: the score ``p_up - p_down`` of every prediction on the panel's grid (NaN: none)."""
    return to_grid(score(predictions), panel.dates, panel.codes)


def next_returns(panel: Panel) -> np.ndarray:
    """[T, N]: the return over month ``t + 1`` of every stock-month (NaN for the last month)."""
    out = np.full((panel.T, panel.N), np.nan)
    out[:-1] = panel.ret[1:]
    return np.where(panel.listed, out, np.nan)


def _labelled(predictions: pd.DataFrame, panel: Panel, labels: LabelConfig | None):
    """Predicted and true class of every prediction whose next-month label exists, plus dates."""
    true = make_labels(panel.ret, panel.listed, labels)
    t, i = grid_positions(predictions.index, panel.dates, panel.codes)
    y = true[t, i].astype(np.int64)
    pred = predicted_class(predictions)
    ok = y != NO_LABEL
    return pred[ok], y[ok], panel.dates[t[ok]]


def monthly_accuracy(predictions: pd.DataFrame, panel: Panel, labels: LabelConfig | None = None) -> pd.DataFrame:
    """Per month: ``accuracy``, ``no_skill`` (share of that month's most frequent true class), ``n``.

    ``no_skill`` is what always predicting the month's majority class would score, a
    reference that knows the month's outcome: an accuracy above it is skill.
    """
    pred, y, dates = _labelled(predictions, panel, labels)
    frame = pd.DataFrame({"date": dates, "hit": pred == y, "y": y})
    if frame.empty:
        return pd.DataFrame(columns=["accuracy", "no_skill", "n"], index=pd.DatetimeIndex([], name="date"))
    grouped = frame.groupby("date")
    counts = pd.crosstab(frame["date"], frame["y"])
    out = pd.DataFrame({"accuracy": grouped["hit"].mean(),
                        "no_skill": counts.max(axis=1) / counts.sum(axis=1),
                        "n": grouped.size()})
    out.index.name = "date"
    return out


def accuracy_summary(predictions: pd.DataFrame, panel: Panel, labels: LabelConfig | None = None) -> dict:
    """Pooled ``accuracy`` and ``no_skill`` over all labelled predictions, with ``n`` and ``months``."""
    monthly = monthly_accuracy(predictions, panel, labels)
    n = monthly["n"].sum()
    if n == 0:
        return {"accuracy": float("nan"), "no_skill": float("nan"), "n": 0, "months": 0}
    return {"accuracy": float((monthly["accuracy"] * monthly["n"]).sum() / n),
            "no_skill": float((monthly["no_skill"] * monthly["n"]).sum() / n),
            "n": int(n), "months": int(len(monthly))}


def confusion_matrix(predictions: pd.DataFrame, panel: Panel, labels: LabelConfig | None = None) -> pd.DataFrame:
    """Counts: rows the true class, columns the predicted class (both in :data:`CLASSES` order)."""
    pred, y, _ = _labelled(predictions, panel, labels)
    k = len(CLASSES)
    counts = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    return pd.DataFrame(counts, index=pd.Index(CLASSES, name="true"), columns=pd.Index(CLASSES, name="predicted"))


def information_coefficients(predictions: pd.DataFrame, panel: Panel) -> pd.DataFrame:
    """Per month with an outcome: ``ic`` (Pearson) and ``rank_ic`` (Spearman) of the score
    against next-month returns, and ``n`` (stocks with both); months with fewer than
    ``MIN_STOCKS`` such stocks are left out."""
    signal = score_grid(predictions, panel)
    outcome = next_returns(panel)
    ok = np.isfinite(signal) & np.isfinite(outcome)
    months = np.flatnonzero(ok.sum(axis=1) >= MIN_STOCKS)
    ric = rank_ic(signal[months], outcome[months], panel.dates[months])
    out = pd.DataFrame({"ic": _pearson_rows(signal[months], outcome[months]), "rank_ic": ric.to_numpy(),
                        "n": ok[months].sum(axis=1)}, index=pd.DatetimeIndex(panel.dates[months], name="date"))
    return out


def ic_summary(ics: pd.DataFrame) -> dict:
    """Means, standard deviations and IRs (mean ÷ std, monthly, not annualised) of the monthly ICs."""
    out = {"months": int(len(ics))}
    for col in ("ic", "rank_ic"):
        values = ics[col].dropna()
        mean, std = float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        out[f"{col}_mean"] = mean
        out[f"{col}_std"] = std
        out[f"{col}ir"] = mean / std if std and np.isfinite(std) and std > 0 else float("nan")
    return out


def oracle_rank_ics(predictions: pd.DataFrame, panel: Panel, oracle: np.ndarray) -> pd.DataFrame:
    """Per month: the rank IC of the model's score and of the oracle over the same stocks.

    Parameters
    ----------
    oracle : ndarray [T, N]
        The true expected next-month return of the synthetic market (``Market.oracle``),
        on the grid of ``panel``.

    Returns
    -------
    DataFrame
        Indexed by decision month ``date``: ``rank_ic`` (model) and ``oracle_rank_ic``, over
        the stocks with a score, an oracle value and an outcome; only months with at least
        ``MIN_STOCKS`` of them.
    """
    oracle = np.asarray(oracle, dtype=np.float64)
    if oracle.shape != (panel.T, panel.N):
        raise EvaluationError(f"oracle has shape {oracle.shape}, expected {(panel.T, panel.N)}")
    signal = score_grid(predictions, panel)
    outcome = next_returns(panel)
    cells = np.isfinite(signal) & np.isfinite(outcome) & np.isfinite(oracle)
    months = np.flatnonzero(cells.sum(axis=1) >= MIN_STOCKS)
    dates = panel.dates[months]
    model = rank_ic(np.where(cells, signal, np.nan)[months], outcome[months], dates)
    best = rank_ic(np.where(cells, oracle, np.nan)[months], outcome[months], dates)
    return pd.DataFrame({"rank_ic": model, "oracle_rank_ic": best}).rename_axis("date")


def ic_efficiency(predictions: pd.DataFrame, panel: Panel, oracle: np.ndarray) -> dict:
    """Model mean rank IC ÷ oracle mean rank IC over the same months AND the same stocks
    (:func:`oracle_rank_ics`).

    Returns
    -------
    dict
        ``model_rank_ic``, ``oracle_rank_ic``, ``ic_efficiency``, ``months``.
    """
    ics = oracle_rank_ics(predictions, panel, oracle)
    m, o = float(ics["rank_ic"].mean()), float(ics["oracle_rank_ic"].mean())
    return {"model_rank_ic": m, "oracle_rank_ic": o, "ic_efficiency": m / o if o else float("nan"),
            "months": int(len(ics))}


def monthly_evaluation(predictions: pd.DataFrame, panel: Panel, labels: LabelConfig | None = None,
                       oracle: np.ndarray | None = None) -> pd.DataFrame:
    """Per decision month: :func:`monthly_accuracy` and :func:`information_coefficients`.

    Returns
    -------
    DataFrame
        Indexed by ``date``: ``accuracy``, ``no_skill``, ``n`` (labelled predictions),
        ``ic``, ``rank_ic``, ``n_ic`` (stocks with a score and an outcome; 0 and NaN ICs
        where too few), and with ``oracle`` the oracle's ``oracle_rank_ic`` over the
        model's stocks (:func:`oracle_rank_ics`).
    """
    accuracy = monthly_accuracy(predictions, panel, labels)
    ics = information_coefficients(predictions, panel).rename(columns={"n": "n_ic"})
    monthly = accuracy.join(ics, how="outer")
    monthly["n"] = monthly["n"].fillna(0).astype(int)
    monthly["n_ic"] = monthly["n_ic"].fillna(0).astype(int)
    if oracle is not None:
        best = oracle_rank_ics(predictions, panel, oracle)["oracle_rank_ic"]
        monthly["oracle_rank_ic"] = best.reindex(monthly.index).to_numpy()
    monthly.index.name = "date"
    return monthly


def evaluate_predictions(predictions: pd.DataFrame, panel: Panel, labels: LabelConfig | None = None,
                         oracle: np.ndarray | None = None) -> dict:
    """The summary figures of a predictions frame, keyed as in ``metrics.json`` (:data:`SUMMARY_KEYS`).

    Returns
    -------
    dict
        ``n_months`` (months with an IC), ``n_predictions`` (labelled predictions),
        ``oos_accuracy`` and ``no_skill_accuracy`` (pooled over all labelled predictions),
        ``ic_mean``, ``rank_ic_mean``, ``icir`` and ``rank_icir`` (mean ÷ std of the
        monthly values, not annualised), and with ``oracle`` ``ic_efficiency`` and
        ``oracle_rank_ic_mean`` (:func:`ic_efficiency`; NaN without one). Plain ints and
        floats.
    """
    acc = accuracy_summary(predictions, panel, labels)
    ics = ic_summary(information_coefficients(predictions, panel))
    eff = ic_efficiency(predictions, panel, oracle) if oracle is not None else {}
    out = {"n_months": ics["months"], "n_predictions": acc["n"], "oos_accuracy": acc["accuracy"],
           "no_skill_accuracy": acc["no_skill"], "ic_mean": ics["ic_mean"], "rank_ic_mean": ics["rank_ic_mean"],
           "icir": ics["icir"], "rank_icir": ics["rank_icir"],
           "ic_efficiency": eff.get("ic_efficiency", np.nan), "oracle_rank_ic_mean": eff.get("oracle_rank_ic", np.nan)}
    return {k: int(v) if k.startswith("n_") else float(v) for k, v in out.items()}


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=1)
    a0 = np.where(ok, a, 0.0)
    b0 = np.where(ok, b, 0.0)
    am = a0.sum(axis=1, keepdims=True) / np.maximum(n, 1)[:, None]
    bm = b0.sum(axis=1, keepdims=True) / np.maximum(n, 1)[:, None]
    da, db = np.where(ok, a - am, 0.0), np.where(ok, b - bm, 0.0)
    den = np.sqrt((da ** 2).sum(axis=1) * (db ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (da * db).sum(axis=1) / den, np.nan)
