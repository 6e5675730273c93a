"""Validation of what the reports consume: one clear error per malformed input.

Every public function of :mod:`reports` checks its inputs through the helpers here, so
a user mistake (a frame where a Series is expected, dates that are not dates, a
missing column) ends in one :class:`ReportError` whose message says what is wrong
and in which input, never in a traceback from deep inside pandas or quantstats.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from feeds.errors import UserError
from feeds.panel import Panel
from signals.predictions import PREDICTION_COLUMNS, PredictionsError, grid_positions

BASKETS = ("high", "neutral", "low", "universe")


class ReportError(UserError):
    """A report input is malformed; the message names the input and the problem."""


class ReportWarning(UserWarning):
    """A figure covers less than the run it reports (e.g. months a basket was empty)."""


def monthly_returns(returns, name: str) -> pd.Series:
    """Check a monthly return Series and return it as float64, sorted by date.

    Parameters
    ----------
    returns : pd.Series
        Simple returns (0.01 = 1%) indexed by the month-end date at which each
        return is realised. NaN is allowed (a month with an empty basket).
    name : str
        What the Series is (``"high"``, ``"benchmark"``...), used in error messages.

    Returns
    -------
    pd.Series
        A float64 copy, sorted by date, named ``name`` unless it already had a name.

    Raises
    ------
    ReportError
        Not a Series, index not a DatetimeIndex, duplicate dates, non-numeric or
        infinite values.
    """
    if not isinstance(returns, pd.Series):
        raise ReportError(f"{name}: expected a pandas Series of monthly returns, got {type(returns).__name__}")
    if not isinstance(returns.index, pd.DatetimeIndex):
        raise ReportError(f"{name}: the index must be a DatetimeIndex of month-ends, "
                          f"got {type(returns.index).__name__}")
    if returns.index.has_duplicates:
        dup = returns.index[returns.index.duplicated()][0]
        raise ReportError(f"{name}: duplicate date {dup:%Y-%m-%d}")
    try:
        out = returns.astype("float64")
    except (TypeError, ValueError):
        raise ReportError(f"{name}: returns must be numeric, got dtype {returns.dtype}") from None
    bad = np.isinf(out.to_numpy())
    if bad.any():
        raise ReportError(f"{name}: infinite return at {out.index[bad][0]:%Y-%m-%d}")
    out = out.sort_index()
    if out.name is None:
        out.name = name
    return out


def cash_filled(returns: pd.Series) -> pd.Series:
    """Treat a NaN month as a month in cash (return 0).

    A basket with no stocks in some month holds nothing, so its NAV does not move;
    empyrical's ``cum_returns`` already does this, but its volatility and Sharpe skip
    NaN instead. Filling first makes every metric see the same months.
    """
    return returns.fillna(0.0)


def require_columns(frame, columns: Iterable[str], name: str) -> pd.DataFrame:
    """Check that ``frame`` is a DataFrame holding ``columns``."""
    if not isinstance(frame, pd.DataFrame):
        raise ReportError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ReportError(f"{name}: missing column '{missing[0]}' (has: {', '.join(map(str, frame.columns))})")
    return frame


def date_code_index(obj, name: str) -> None:
    """Check that ``obj`` is indexed by a ``(date, code)`` MultiIndex with datetime dates."""
    index = getattr(obj, "index", None)
    if not isinstance(index, pd.MultiIndex) or index.nlevels != 2:
        raise ReportError(f"{name}: expected a (date, code) MultiIndex, got {type(index).__name__}")
    if not isinstance(index.levels[0], pd.DatetimeIndex):
        raise ReportError(f"{name}: the first index level must hold dates, got {index.levels[0].dtype}")


def predictions_on_panel(predictions, panel) -> tuple[np.ndarray, np.ndarray]:
    """Check a predictions frame against the panel it was made on.

    Returns
    -------
    t, i : ndarray
        The panel row (date) and column (code) of every prediction.

    Raises
    ------
    ReportError
        Not a ``(date, code)``-indexed frame with the ``signals.predictions`` columns, not a
        Panel, a duplicate ``(date, code)``, or a prediction off the panel's grid.
    """
    date_code_index(predictions, "predictions")
    require_columns(predictions, PREDICTION_COLUMNS, "predictions")
    if not isinstance(panel, Panel):
        raise ReportError(f"panel: expected a feeds.panel.Panel, got {type(panel).__name__}")
    if not predictions.index.is_unique:
        raise ReportError(f"predictions: duplicate (date, code) {predictions.index[predictions.index.duplicated()][0]}")
    try:
        return grid_positions(predictions.index, panel.dates, panel.codes)
    except PredictionsError as exc:
        raise ReportError(f"predictions: {exc}") from None


def json_safe(value):
    """Turn a nested structure of numbers, numpy scalars and containers into plain JSON types.

    NaN and infinities become ``None`` (JSON has no NaN), numpy scalars become Python
    numbers, tuples become lists and Timestamps ISO dates.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if value is None or isinstance(value, str):
        return value
    raise ReportError(f"metrics: value of type {type(value).__name__} cannot be written to JSON")
