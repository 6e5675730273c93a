"""Serve one SignalModel to several backtests of the same months without predicting twice."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from signals.predictions import PROBABILITY_COLUMNS, probability_grid


class MemoSignal:
    """Wraps a ``SignalModel`` and answers ``predict(history)`` without predicting twice.

    A history is answered, in this order:

    1. from predictions the model already made offline on a panel (:meth:`add_offline`), when
       the history holds exactly the model's inputs of that month on that panel: the same
       months, the same listed stocks (every stock listed in those months, so the same
       cross-sections), and on them the same factors, industries and caps. ``predict_panel``
       computes the same function of the same inputs (the model reads a stock-month only
       where it is listed: ``signals.preprocess`` fills the rest);
    2. from memory, for a history identical (byte for byte) to one answered before;
    3. by the wrapped model.

    Every book of a run streams the same snapshots, so the model predicts each month at most
    once, and not at all where the predict stage already did. Anything else is delegated
    to the wrapped model.
    """

    def __init__(self, signal):
        self.signal = signal
        self._answers: dict[str, np.ndarray] = {}
        self._panel = None
        self._offline: dict[pd.Timestamp, np.ndarray] = {}
        self.hits = 0
        self.offline_hits = 0

    def __getattr__(self, name):
        if name.startswith("__") or name == "signal":  # (copy and pickle probe these before __init__)
            raise AttributeError(name)
        return getattr(self.signal, name)

    def add_offline(self, panel, predictions: pd.DataFrame) -> None:
        """Answer histories of ``panel``'s months from ``predictions``, the wrapped model's
        predictions frame on ``panel`` (``predict_panel``)."""
        if self._panel is not None and self._panel is not panel:
            raise ValueError("offline predictions of one panel only")
        dates = pd.DatetimeIndex(predictions.index.get_level_values("date").unique())
        dtype = np.result_type(*predictions[list(PROBABILITY_COLUMNS)].dtypes)  # float32 stays float32
        grid = probability_grid(predictions, dates, panel.codes).astype(dtype)
        self._panel = panel
        self._offline.update(zip(dates, grid))

    @property
    def offline_months(self) -> pd.DatetimeIndex:
        """The months :meth:`add_offline` can answer."""
        return pd.DatetimeIndex(sorted(self._offline))

    def offline_grids(self) -> list[np.ndarray]:
        """The offline predictions, one ``[codes, 3]`` grid a month (NaN: not predicted)."""
        return [self._offline[month] for month in sorted(self._offline)]

    @staticmethod
    def key(history) -> str:
        digest = hashlib.blake2b(digest_size=20)
        for array in (history.factors, history.listed, history.industry, history.mcap,
                      history.dates.asi8, np.asarray(history.codes, dtype=str)):
            if array is not None:
                digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def predict(self, history) -> np.ndarray:
        answer = self._from_offline(history)
        if answer is not None:
            self.offline_hits += 1
            return answer
        key = self.key(history)
        if key in self._answers:
            self.hits += 1
        else:
            self._answers[key] = self.signal.predict(history)
        return self._answers[key].copy()

    def _from_offline(self, history) -> np.ndarray | None:
        """The offline answer for ``history``'s last month, or None unless ``history`` holds
        exactly that month's model inputs on the offline panel (see the class docstring)."""
        grid = self._offline.get(history.dates[-1])
        if grid is None:
            return None
        panel = self._panel
        stop = int(panel.dates.get_loc(history.dates[-1])) + 1
        rows = slice(stop - history.T, stop)
        cols = panel.codes.get_indexer(history.codes)
        names = list(self.signal.factor_names)
        if (rows.start < 0 or (cols < 0).any() or not panel.dates[rows].equals(history.dates)
                or not set(names) <= set(history.factor_names) or not set(names) <= set(panel.factor_names)):
            return None
        listed = history.listed
        window_listed = panel.listed[rows]
        if not np.array_equal(window_listed[:, cols], listed) or window_listed.sum() != listed.sum():
            return None  # other listings, or a stock of these cross-sections missing from the history
        if (history.mcap is None) != (panel.mcap is None):
            return None

        def window(values):  # the panel's values on the history's months and stocks
            return values[rows][:, cols]

        def model_factors(values, factor_names):
            return values if list(factor_names) == names else values[:, :, [factor_names.index(f) for f in names]]
        pairs = [(model_factors(history.factors, history.factor_names),
                  model_factors(window(panel.factors), panel.factor_names)),
                 (history.industry, window(panel.industry))]
        if history.mcap is not None:
            pairs.append((history.mcap, window(panel.mcap)))
        # on the listed stock-months: the only ones the model reads
        if not all(np.array_equal(ours[listed], theirs[listed], equal_nan=True) for ours, theirs in pairs):
            return None
        return grid[cols]
