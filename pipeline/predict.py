"""The predict stage: the decision months and every model's offline predictions on them."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .cache import SignalBundle
from .config import ConfigError, RunConfig
from .data import RunData


@dataclass
class Predictions:
    """Offline predictions: ``frames[name]`` is a (date, code) frame of ``p_down``, ``p_neutral``,
    ``p_up``, ``pred`` for ``name`` in ``model`` (the LSTM), ``baseline`` (logistic), ``composite``."""

    dates: pd.DatetimeIndex
    frames: dict[str, pd.DataFrame]


def decision_dates(config: RunConfig, panel) -> pd.DatetimeIndex:
    """Month-ends at which the strategy decides: the month before ``test_start`` up to the
    month before ``test_end``, so the realised returns fill ``test_start``..``test_end``."""
    stamps = config.timestamps
    first = stamps["test_start"] + pd.offsets.MonthEnd(0) - pd.offsets.MonthEnd(1)
    last = stamps["test_end"] + pd.offsets.MonthEnd(0) - pd.offsets.MonthEnd(1)
    dates = panel.dates[(panel.dates >= first) & (panel.dates <= last)]
    if len(dates) == 0:
        raise ConfigError(f"no decision month between {first.date()} and {last.date()} in the data", "dates")
    return dates


def predict(config: RunConfig, data: RunData, bundle: SignalBundle) -> Predictions:
    """The predict stage: the LSTM's and the baselines' predictions on the decision months."""
    dates = decision_dates(config, data.panel)
    return Predictions(dates, {name: model.predict_panel(data.panel, dates) for name, model in bundle.served.items()})
