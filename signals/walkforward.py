"""Walk-forward: one model per fold, each trained only on data before its test months.

A fold retrains every ``retrain_every`` months. Fold ``j`` trades the return months
``test_start + j·k .. test_start + (j+1)·k - 1`` (decided one month-end before each), and
trains on label months up to ``train_end + j·k``: the gap the dates leave between
``train_end`` and ``test_start`` (a purge, 0 by default) stays the same in every fold.
'expanding' folds all start at ``train_start``; 'rolling' folds move their start with
their end, keeping the first fold's length.

:class:`WalkForwardSignal` serves the folds through the :class:`signals.SignalModel`
contract (``window``, ``factor_names``, ``predict(history)``, ``predict_panel``): it picks
the fold model strictly by the history's last month-end, so one Backtrader run spans
every fold with the strategy unchanged.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.errors import UserError
from feeds.panel import Panel, month_end

from .serve import SignalError, SignalModel

SCHEMES = ("expanding", "rolling")
MANIFEST = "walk_forward.json"


class WalkForwardError(UserError):
    """Walk-forward settings or dates that give no usable fold."""


@dataclass(frozen=True)
class WalkForwardConfig:
    """Walk-forward settings (defaults in brackets).

    Parameters
    ----------
    retrain_every : int or None
        [None = off: one model trained on ``dates.train_start..train_end``] months between
        retrainings, which is also each fold's number of test months.
    scheme : {'expanding', 'rolling'}
        ['expanding'] every fold trains from ``dates.train_start``; 'rolling' keeps the
        first fold's training length and moves its start forward with its end.
    """

    retrain_every: int | None = None
    scheme: str = "expanding"

    def __post_init__(self):
        if self.retrain_every is not None and self.retrain_every < 1:
            raise WalkForwardError(f"walk_forward.retrain_every must be >= 1 month, got {self.retrain_every}")
        if self.scheme not in SCHEMES:
            raise WalkForwardError(f"walk_forward.scheme must be one of {', '.join(SCHEMES)}, got {self.scheme!r}")

    @property
    def enabled(self) -> bool:
        return self.retrain_every is not None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: its training window and the month-ends it decides at."""

    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    first_decision: pd.Timestamp
    last_decision: pd.Timestamp

    @property
    def name(self) -> str:
        return f"fold{self.index:02d}_{self.first_decision:%Y-%m}"

    def describe(self) -> str:
        return (f"fold {self.index}: train {self.train_start:%Y-%m}..{self.train_end:%Y-%m}, "
                f"decide {self.first_decision:%Y-%m}..{self.last_decision:%Y-%m}")


def fold_plan(train_start, train_end, test_start, test_end, config: WalkForwardConfig) -> list[Fold]:
    """The folds of a walk-forward over ``test_start..test_end`` (return months).

    Raises
    ------
    WalkForwardError
        Walk-forward is off, or the dates leave no test month.
    """
    if not config.enabled:
        raise WalkForwardError("walk_forward.retrain_every is not set")
    start, end, first_test, last_test = month_end([train_start, train_end, test_start, test_end])
    if not start < end < first_test <= last_test:
        raise WalkForwardError(f"walk-forward needs train_start < train_end < test_start <= test_end, got "
                               f"{start:%Y-%m}, {end:%Y-%m}, {first_test:%Y-%m}, {last_test:%Y-%m}")
    k = config.retrain_every

    def shift(date, months):  # MonthEnd(0) leaves a month-end where it is
        return date + pd.offsets.MonthEnd(months)

    folds, j = [], 0
    while shift(first_test, j * k) <= last_test:
        test_from = shift(first_test, j * k)
        test_to = min(shift(test_from, k - 1), last_test)
        fold_start = shift(start, j * k) if config.scheme == "rolling" else start
        folds.append(Fold(j, fold_start, shift(end, j * k), shift(test_from, -1), shift(test_to, -1)))
        j += 1
    return folds


class WalkForwardSignal:
    """Fold models served as one signal (the ``SignalModel`` contract).

    Parameters
    ----------
    folds : list of (first decision month-end, SignalModel)
        In time order; the fold of a month-end ``d`` is the last one whose first decision
        is on or before ``d``.
    """

    def __init__(self, folds):
        folds = sorted(((month_end([d])[0], m) for d, m in folds), key=lambda f: f[0])
        if not folds:
            raise WalkForwardError("a walk-forward signal needs at least one fold")

        def served_alike(model):  # training settings may differ (a fold trained by an older version)
            spec = model.spec
            return model.factor_names, spec.window, spec.preprocess, spec.labels, spec.model

        if any(served_alike(model) != served_alike(folds[0][1]) for _, model in folds[1:]):
            raise WalkForwardError("every fold model must read the same factors with the same window, "
                                   "preprocessing, labels and model")
        self.starts = pd.DatetimeIndex([d for d, _ in folds])
        self.models = [m for _, m in folds]

    # The SignalModel contract ------------------------------------------------------
    @property
    def window(self) -> int:
        return self.models[0].window

    @property
    def min_history(self) -> int:
        return self.models[0].min_history

    @property
    def factor_names(self) -> list[str]:
        return self.models[0].factor_names

    @property
    def styles(self) -> dict:
        return self.models[0].styles

    @property
    def classes(self):
        return self.models[0].classes

    @property
    def kind(self) -> str:
        return self.models[0].kind

    @property
    def spec(self):
        """The first fold's :class:`signals.SignalSpec` (every fold serves the same window,
        preprocessing, labels and model)."""
        return self.models[0].spec

    @property
    def latest(self) -> SignalModel:
        """The last fold's model (the one a user would trade next)."""
        return self.models[-1]

    def __repr__(self) -> str:
        return (f"WalkForwardSignal({len(self.models)} folds of {self.kind}, first decisions "
                f"{', '.join(f'{d:%Y-%m}' for d in self.starts)})")

    def to(self, device) -> "WalkForwardSignal":
        """Serve every fold model on ``device`` (see ``SignalModel.to``); returns ``self``."""
        for model in self.models:
            model.to(device)
        return self

    def model_for(self, date) -> SignalModel:
        """The fold model that decides at month-end ``date``.

        Raises
        ------
        SignalError
            ``date`` is before the first fold's first decision (no model may see it).
        """
        date = month_end([date])[0]
        pos = int(self.starts.searchsorted(date, "right")) - 1
        if pos < 0:
            raise SignalError(f"no walk-forward fold decides at {date:%Y-%m}: the first fold starts "
                              f"deciding at {self.starts[0]:%Y-%m}")
        return self.models[pos]

    def check_panel(self, panel: Panel) -> None:
        self.models[0].check_panel(panel)

    def predict(self, history: Panel) -> np.ndarray:
        """Probabilities ``[N, 3]`` for the last month of ``history``, from its fold's model."""
        return self.model_for(history.dates[-1]).predict(history)

    def predict_panel(self, panel: Panel, dates=None) -> pd.DataFrame:
        """Offline predictions, each month from its own fold's model (see ``SignalModel.predict_panel``)."""
        self.check_panel(panel)
        if dates is None:
            dates = panel.dates[panel.dates >= self.starts[0]]
        wanted = month_end(list(dates) if not isinstance(dates, (str, pd.Timestamp)) else [dates])
        fold = np.array([int(self.starts.searchsorted(d, "right")) - 1 for d in wanted], dtype=int)
        if (fold < 0).any():
            self.model_for(wanted[fold < 0][0])  # raises with the date
        frames = [self.models[k].predict_panel(panel, wanted[fold == k]) for k in np.unique(fold)]
        return pd.concat(frames).sort_index(level=["date", "code"], sort_remaining=False)

    # Persistence -----------------------------------------------------------------------
    def save(self, directory) -> Path:
        """Write ``walk_forward.json`` and one checkpoint per fold into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        entries = []
        for start, model in zip(self.starts, self.models):
            name = f"fold_{start:%Y-%m}.pt"
            model.save(directory / name)
            entries.append({"first_decision": f"{start:%Y-%m-%d}", "checkpoint": name,
                            "train_start": model.meta.get("train_start"), "train_end": model.meta.get("train_end")})
        (directory / MANIFEST).write_text(json.dumps({"folds": entries}, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory) -> "WalkForwardSignal":
        """Read a directory written by :meth:`save` (each checkpoint verified as ``SignalModel.load`` does)."""
        directory = Path(directory)
        try:
            entries = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))["folds"]
            folds = [(e["first_decision"], directory / Path(e["checkpoint"]).name) for e in entries]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise WalkForwardError(f"{directory} is not a walk-forward model directory "
                                   f"({type(exc).__name__}: no readable {MANIFEST})") from None
        return cls([(start, SignalModel.load(path)) for start, path in folds])
