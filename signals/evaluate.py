"""Honest out-of-sample evaluation of a predictions frame.

Every function takes the frame of :meth:`SignalModel.predict_panel` (indexed
``(date, code)``, columns ``p_down, p_neutral, p_up, pred``) and the raw panel it
was made from; the outcome of a prediction at month-end ``t`` is the stock's return
over month ``t + 1`` (so predictions at the panel's last month have no outcome and
are left out). The score used for the ICs is ``p_up - p_down``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from feeds.errors import UserError
from feeds.panel import Panel
from feeds.synthetic import rank_ic

from .labels import CLASSES, LabelConfig, NO_LABEL, make_labels
from .serve import COLUMNS


class EvaluationError(UserError):
    """Predictions and panel do not fit together."""


def score(predictions: pd.DataFrame) -> pd.Series:
    """The ranking score ``p_up - p_down`` of each prediction."""
    return (predictions["p_up"] - predictions["p_down"]).rename("score")


def to_grid(values: pd.Series, panel: Panel) -> np.ndarray:
    """A ``(date, code)`` Series as a [T, N] array on the panel's grid (NaN elsewhere)."""
    out = np.full((panel.T, panel.N), np.nan)
    if len(values) == 0:
        return out
    t = panel.dates.get_indexer(values.index.get_level_values("date"))
    i = panel.codes.get_indexer(values.index.get_level_values("code").astype(str))
    if (t < 0).any() or (i < 0).any():
        where = values.index[np.flatnonzero((t < 0) | (i < 0))[0]]
        raise EvaluationError(f"prediction for ({pd.Timestamp(where[0]).date()}, {where[1]}) is not on the panel")
    out[t, i] = values.to_numpy(dtype=np.float64)
    return out


def next_returns(panel: Panel) -> np.ndarray:
    """[T, N]: the return over month ``t + 1`` of every stock-month (NaN for the last month)."""
    out = np.full((panel.T, panel.N), np.nan)
    out[:-1] = panel.ret[1:]
    return np.where(panel.listed, out, np.nan)


def _labelled(predictions: pd.DataFrame, panel: Panel, labels: LabelConfig | None):
    """Predicted and true class of every prediction whose next-month label exists, plus dates."""
    true = make_labels(panel.ret, panel.listed, labels)
    t = panel.dates.get_indexer(predictions.index.get_level_values("date"))
    i = panel.codes.get_indexer(predictions.index.get_level_values("code").astype(str))
    if (t < 0).any() or (i < 0).any():
        raise EvaluationError("predictions hold (date, code) pairs that are not on the panel")
    y = true[t, i].astype(np.int64)
    pred = predictions[list(COLUMNS)].to_numpy().argmax(axis=1)
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
    against next-month returns, and ``n`` (stocks with both)."""
    signal = to_grid(score(predictions), panel)
    outcome = next_returns(panel)
    ok = np.isfinite(signal) & np.isfinite(outcome)
    months = np.flatnonzero(ok.sum(axis=1) >= 10)
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


def ic_efficiency(predictions: pd.DataFrame, panel: Panel, oracle: np.ndarray) -> dict:
    """Model mean rank IC ÷ oracle mean rank IC over the same months AND the same stocks.

    Parameters
    ----------
    oracle : ndarray [T, N]
        The true expected next-month return of the synthetic market (``Market.oracle``),
        on the grid of ``panel``.

    Returns
    -------
    dict
        ``model_rank_ic``, ``oracle_rank_ic``, ``ic_efficiency``, ``months``.
    """
    oracle = np.asarray(oracle, dtype=np.float64)
    if oracle.shape != (panel.T, panel.N):
        raise EvaluationError(f"oracle has shape {oracle.shape}, expected {(panel.T, panel.N)}")
    signal = to_grid(score(predictions), panel)
    outcome = next_returns(panel)
    cells = np.isfinite(signal) & np.isfinite(outcome) & np.isfinite(oracle)
    months = np.flatnonzero(cells.sum(axis=1) >= 10)
    dates = panel.dates[months]
    model = rank_ic(np.where(cells, signal, np.nan)[months], outcome[months], dates)
    best = rank_ic(np.where(cells, oracle, np.nan)[months], outcome[months], dates)
    m, o = float(model.mean()), float(best.mean())
    return {"model_rank_ic": m, "oracle_rank_ic": o, "ic_efficiency": m / o if o else float("nan"),
            "months": int(len(months))}


def evaluate_predictions(predictions: pd.DataFrame, panel: Panel, labels: LabelConfig | None = None,
                         oracle: np.ndarray | None = None) -> dict:
    """The summary figures of a predictions frame (plain floats, for ``metrics.json``).

    Keys: ``oos_accuracy``, ``no_skill``, ``n``, ``ic_mean``, ``rank_ic_mean``,
    ``icir``, ``rank_icir``, ``ic_months``; with ``oracle`` also ``oracle_rank_ic`` and
    ``ic_efficiency``.
    """
    acc = accuracy_summary(predictions, panel, labels)
    ics = ic_summary(information_coefficients(predictions, panel))
    out = {"oos_accuracy": acc["accuracy"], "no_skill": acc["no_skill"], "n": acc["n"],
           "ic_mean": ics["ic_mean"], "rank_ic_mean": ics["rank_ic_mean"], "icir": ics["icir"],
           "rank_icir": ics["rank_icir"], "ic_months": ics["months"]}
    if oracle is not None:
        eff = ic_efficiency(predictions, panel, oracle)
        out["oracle_rank_ic"] = eff["oracle_rank_ic"]
        out["ic_efficiency"] = eff["ic_efficiency"]
    return out


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
