"""A small recurrent signal trained in seconds, for examples, notebooks and the README snippet.

:func:`train_quick` is :func:`signals.fit` with small settings: a one-layer LSTM (``kind``:
or GRU, RNN) of 32 units over 12-month windows, 60 optimizer steps of 256 windows, tercile
labels (a third of each month's stocks in every class, so each basket is filled whatever the
market did), no baselines. It is a working :class:`~signals.serve.SignalModel`, not a replication of the
study: train the study's model with the main command (``lstm-tercile --config
configs/oos_2016.yaml``) or :func:`signals.fit` with its defaults.
"""
from __future__ import annotations

from .fit import fit
from .labels import LabelConfig
from .model import ModelConfig
from .serve import SignalModel
from .spec import SignalSpec
from .train import TrainConfig
from .windows import WindowConfig


def train_quick(panel, train_start, train_end, *, window: int = 12, hidden: int = 32, steps: int = 60,
                seed: int = 0, labels: LabelConfig | None = None, kind: str = "lstm") -> SignalModel:
    """Train a small recurrent model on ``panel`` from ``train_start`` to ``train_end``; return it served.

    Parameters
    ----------
    panel : feeds.Panel
    train_start, train_end : date-like
        The training window (as :func:`signals.fit`; months after ``train_end`` are never read).
    window : int
        Months of history per sample (and what the strategy streams before its first decision).
    hidden : int
        Recurrent units (one layer).
    steps : int
        Optimizer steps of 256 windows.
    seed : int
        Training seed (the result is deterministic on CPU).
    labels : LabelConfig, optional
        Default ``LabelConfig(kind="tercile")``.
    kind : {'lstm', 'gru', 'rnn'}
        The recurrent cell.
    """
    spec = SignalSpec(window=WindowConfig(window=window), labels=labels or LabelConfig(kind="tercile"),
                      model=ModelConfig(kind=kind, hidden=hidden, layers=1),
                      train=TrainConfig(steps=steps, batch_size=256, eval_every=steps, eval_samples=500,
                                        seed=seed, progress=False))
    return fit(panel, train_start, train_end, spec, baseline=False, progress=False).signal
