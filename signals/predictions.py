"""The predictions frame: what every model serves, every strategy records and every report reads.

A predictions frame is indexed ``(date, code)`` (decision month-end, stock) and has the
columns ``p_down, p_neutral, p_up`` (:data:`PROBABILITY_COLUMNS`: the class probabilities
in :data:`~signals.labels.CLASSES` order) and ``pred`` (the argmax class name); it holds only
the stocks that got a prediction. This module is its one definition: the schema, the
conversion between the frame and arrays on a panel's ``dates x codes`` grid, and the
ranking :func:`score` ``p_up - p_down`` that every IC of the project is computed on.

numpy and pandas only (no torch), so strategies and reports can use it freely.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from feeds.errors import UserError

from .labels import CLASSES

PROBABILITY_COLUMNS = tuple(f"p_{c}" for c in CLASSES)  # ("p_down", "p_neutral", "p_up")
PREDICTION_COLUMNS = PROBABILITY_COLUMNS + ("pred",)


class PredictionsError(UserError):
    """A predictions frame lacks a column or holds a (date, code) that is not on the panel."""


def prediction_frame(dates, codes, probs: np.ndarray) -> pd.DataFrame:
    """The predictions frame of class probabilities on a ``dates x codes`` grid.

    Parameters
    ----------
    dates : sequence of dates [T]
        The decision month-end of each row of ``probs``.
    codes : sequence of str [N]
    probs : ndarray [T, N, 3]
        Class probabilities in :data:`CLASSES` order; a stock whose probabilities are not
        all finite has no prediction that month. A float dtype is kept (float32 serving
        output stays float32).

    Returns
    -------
    DataFrame
        Indexed ``(date, code)``, month by month and in the order of ``codes`` inside a
        month; columns :data:`PREDICTION_COLUMNS`.
    """
    probs = np.asarray(probs)
    if probs.dtype.kind != "f":
        probs = probs.astype(np.float64)
    dates, codes = pd.DatetimeIndex(dates), pd.Index(codes, dtype=object)
    if probs.shape != (len(dates), len(codes), len(CLASSES)):
        raise PredictionsError(f"probabilities have shape {probs.shape}, expected "
                               f"{(len(dates), len(codes), len(CLASSES))} (dates x codes x classes)")
    t, i = np.nonzero(np.isfinite(probs).all(axis=2))
    index = pd.MultiIndex.from_arrays([dates[t], codes[i]], names=["date", "code"])
    return frame_from_probabilities(index, probs[t, i])


def frame_from_probabilities(index: pd.MultiIndex, probs: np.ndarray) -> pd.DataFrame:
    """The predictions frame of finite class probabilities ``[n, 3]``, one row per ``(date, code)`` of ``index``."""
    frame = pd.DataFrame(probs, index=index, columns=list(PROBABILITY_COLUMNS))
    frame["pred"] = np.asarray(CLASSES, dtype=object)[np.asarray(probs).argmax(axis=1)]
    return frame


def require_probabilities(predictions: pd.DataFrame, name: str = "predictions") -> pd.DataFrame:
    """Check that ``predictions`` is a DataFrame with the :data:`PROBABILITY_COLUMNS`; returns them."""
    if not isinstance(predictions, pd.DataFrame):
        raise PredictionsError(f"{name}: expected a predictions DataFrame, got {type(predictions).__name__}")
    missing = [c for c in PROBABILITY_COLUMNS if c not in predictions.columns]
    if missing:
        raise PredictionsError(f"{name} lack column '{missing[0]}'")
    return predictions[list(PROBABILITY_COLUMNS)]


def grid_positions(index: pd.MultiIndex, dates, codes) -> tuple[np.ndarray, np.ndarray]:
    """Row (date) and column (code) of every ``(date, code)`` of ``index`` on the grid.

    Raises
    ------
    PredictionsError
        For the first pair whose date or code is not on the grid.
    """
    t = pd.DatetimeIndex(dates).get_indexer(index.get_level_values(0))
    i = pd.Index(codes).get_indexer(index.get_level_values(1).astype(str))
    off = (t < 0) | (i < 0)
    if off.any():
        date, code = index[int(np.flatnonzero(off)[0])]
        raise PredictionsError(f"prediction for ({pd.Timestamp(date).date()}, {code}) is not on the panel")
    return t, i


def to_grid(values, dates, codes) -> np.ndarray:
    """A ``(date, code)``-indexed Series or DataFrame as an array on the ``dates x codes`` grid.

    A Series gives ``[T, N]``, a DataFrame ``[T, N, columns]``; float64, NaN where
    ``values`` has no row.
    """
    dates, codes = pd.DatetimeIndex(dates), pd.Index(codes)
    shape = (len(dates), len(codes)) + values.shape[1:]
    out = np.full(shape, np.nan)
    if len(values):
        t, i = grid_positions(values.index, dates, codes)
        out[t, i] = values.to_numpy(dtype=np.float64)
    return out


def probability_grid(predictions: pd.DataFrame, dates, codes) -> np.ndarray:
    """The class probabilities ``[T, N, 3]`` of a predictions frame on the grid (NaN: none)."""
    return to_grid(require_probabilities(predictions), dates, codes)


def score(predictions: pd.DataFrame) -> pd.Series:
    """The ranking score ``p_up - p_down`` of each prediction (what every IC is computed on)."""
    return (predictions["p_up"] - predictions["p_down"]).rename("score")


def predicted_class(predictions: pd.DataFrame) -> np.ndarray:
    """The index in :data:`CLASSES` of each prediction's most probable class."""
    return require_probabilities(predictions).to_numpy().argmax(axis=1)
