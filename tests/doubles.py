"""Test doubles: a cheap deterministic signal with the ``SignalModel`` serving interface.

:class:`LinearSignal` is not a trained model: its class logits are a fixed random linear
function of the cross-sectionally standardized factors of the last snapshot and of their
mean over the window. It exists so that the Backtrader plugin can be tested and
benchmarked without training (``tests/``, ``benchmarks/feed_strategy.py``), and it serves
through exactly the contract of :class:`signals.SignalModel`: ``window``,
``factor_names``, ``classes``, ``predict(history)`` and ``predict_panel`` (which calls
``predict`` on each month's trailing window), so anything that works with it works with
the real model. Tests import it as ``from doubles import LinearSignal`` (``tests/`` is on
the path of every test); it is not part of any package.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from feeds.panel import Panel, PanelError, month_end
from signals.labels import CLASSES
from signals.predictions import prediction_frame


def _zscore(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Cross-sectional z-score of ``x [N, F]`` over ``rows``; 0 elsewhere and where NaN."""
    out = np.zeros(x.shape, dtype=np.float64)
    if rows.any():
        sub = x[rows].astype(np.float64)
        mean = np.nanmean(sub, axis=0)
        std = np.nanstd(sub, axis=0)
        z = (sub - mean) / np.where(std > 0, std, 1.0)
        out[rows] = np.nan_to_num(z)
    return out


class LinearSignal:
    """Probabilities from a fixed linear-softmax map of the last snapshot and the window mean.

    Parameters
    ----------
    factor_names : list of str
        Factors it reads, in order.
    window : int
        Months of history it needs; a stock needs ``min_history`` listed months in them.
    seed : int
        Seed of the fixed weights.
    scale : float
        Logit scale (larger: more confident probabilities).
    min_history : int, optional
        Listed months a stock needs in the window to get probabilities (default: ``window``).
    """

    classes = CLASSES

    def __init__(self, factor_names: Sequence[str], window: int = 3, seed: int = 0,
                 scale: float = 1.0, min_history: int | None = None):
        self.factor_names = list(factor_names)
        self.window = int(window)
        self.min_history = self.window if min_history is None else int(min_history)
        if self.window < 1 or not 1 <= self.min_history <= self.window:
            raise ValueError(f"need 1 <= min_history <= window, got {self.min_history}, {self.window}")
        rng = np.random.default_rng(seed)
        F = len(self.factor_names)
        self.w_last = rng.normal(size=(F, 3)) * scale / np.sqrt(F)
        self.w_mean = rng.normal(size=(F, 3)) * scale / np.sqrt(F)

    def predict(self, history: Panel) -> np.ndarray:
        """Probabilities ``[N, 3]`` for the last month of ``history`` (NaN rows: no prediction)."""
        if history.T < self.window:
            raise PanelError(f"history has {history.T} months; the signal needs {self.window}")
        missing = [f for f in self.factor_names if f not in history.factor_names]
        if missing:
            raise PanelError(f"history lacks factor '{missing[0]}'")
        idx = [history.factor_names.index(f) for f in self.factor_names]
        x = history.factors[-self.window:][:, :, idx]
        listed = history.listed[-self.window:]
        now = listed[-1]
        ok = now & (listed.sum(axis=0) >= self.min_history)
        z_last = _zscore(x[-1], now)
        z_mean = np.zeros_like(z_last)
        for t in range(self.window):
            z_mean += _zscore(x[t], listed[t])
        z_mean /= self.window
        logits = z_last @ self.w_last + z_mean @ self.w_mean
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        probs[~ok] = np.nan
        return probs

    def predict_panel(self, panel: Panel, dates=None) -> pd.DataFrame:
        """Predictions for ``dates`` (default: every month with a full window), through :meth:`predict`.

        Returns a frame indexed ``(date, code)`` with ``p_down, p_neutral, p_up, pred``,
        holding only the stocks that get a prediction.
        """
        rows = (np.arange(self.window - 1, panel.T) if dates is None
                else panel.dates.get_indexer(month_end(pd.DatetimeIndex(dates))))
        probs = np.full((len(rows), panel.N, len(CLASSES)), np.nan)
        for k, t in enumerate(rows):
            if t < self.window - 1:
                raise PanelError(f"{panel.dates[t].date()} has fewer than {self.window} months of history")
            probs[k] = self.predict(panel.take(rows=slice(t - self.window + 1, t + 1)))
        return prediction_frame(panel.dates[rows], panel.codes, probs)
