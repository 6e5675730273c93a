"""``fit``: the whole training pipeline, panel in, served models out.

preprocess (per month-end cross-section) → labels (next month's return class) →
lazy windows → validation split → train the LSTM → train the last-snapshot logistic
baseline on the very same samples and split → wrap both as :class:`SignalModel`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from feeds.errors import UserError
from feeds.panel import Panel, month_end

from .checkpoint import panel_fingerprint
from .labels import LabelConfig, make_labels
from .model import ModelConfig
from .preprocess import PreprocessConfig, preprocess_panel
from .serve import SignalModel
from .train import TrainConfig, TrainResult, evaluate, train
from .windows import WindowConfig, WindowDataset, history_length, sample_index


class FitError(UserError):
    """The panel and the training dates cannot be used together."""


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    signal : SignalModel
        The trained LSTM (last state, or best validation state with early stopping).
    baseline : SignalModel or None
        The last-snapshot multinomial logistic regression, same samples and split.
    history, baseline_history : DataFrame
        Training history per evaluation (see :class:`signals.train.TrainResult`).
    validation_accuracy, baseline_validation_accuracy : float
        Accuracy of the returned state on the whole validation set.
    validation_loss, baseline_validation_loss : float
    timings : dict
        Seconds of ``preprocess``, ``train``, ``baseline`` and ``total``, and
        ``seconds_per_100_steps`` of the LSTM.
    samples : dict
        Counts: ``train``, ``validation``, ``purged``.
    validation : WindowDataset
        The validation samples over the preprocessed training panel (for
        :func:`signals.diagnostics.permutation_importance`).
    train_result, baseline_result : TrainResult
    """

    signal: SignalModel
    baseline: SignalModel | None
    history: pd.DataFrame
    baseline_history: pd.DataFrame | None
    validation_accuracy: float
    baseline_validation_accuracy: float | None
    validation_loss: float
    baseline_validation_loss: float | None
    timings: dict
    samples: dict
    validation: WindowDataset = field(repr=False)
    train_result: TrainResult = field(repr=False)
    baseline_result: TrainResult | None = field(default=None, repr=False)


BASELINE_EPOCHS = 4.0


def default_baseline_train(config: TrainConfig) -> TrainConfig:
    """The baseline's budget: the LSTM's settings with at least ``BASELINE_EPOCHS`` passes.

    A logistic-regression step costs milliseconds, so the baseline gets enough passes
    over the samples to converge instead of the LSTM's step budget; it is never the
    under-trained side of the comparison.
    """
    return replace(config, steps=None, epochs=max(config.epochs or 0.0, BASELINE_EPOCHS))


def fit(panel: Panel, train_start, train_end, *, window: WindowConfig | None = None,
        preprocess: PreprocessConfig | None = None, labels: LabelConfig | None = None,
        model: ModelConfig | None = None, train_config: TrainConfig | None = None,
        baseline: TrainConfig | bool = True, progress: bool | None = None,
        config: dict | None = None, on_evaluate=None) -> FitResult:
    """Train the LSTM signal (and the baseline) on ``panel`` between two dates.

    Parameters
    ----------
    panel : Panel
        Raw panel; months before ``train_start`` serve as warm-up history for the first
        windows, months after ``train_end`` are never read.
    train_start, train_end : date-like
        First and last month-end of the training window (any day inside a month). A
        sample ``(t, i)`` needs ``train_start <= t`` and its label month ``t + 1 <=
        train_end``, so no label leaks past the window.
    window, preprocess, labels, model, train_config : configs, optional
        Defaults follow the seed study. ``model.n_factors`` is set from the panel.
    baseline : TrainConfig or bool
        Train the logistic baseline: ``True`` with :func:`default_baseline_train`,
        a TrainConfig for its own budget, ``False`` to skip it.
    progress : bool, optional
        Overrides ``train_config.progress`` (the CLI passes ``not --quiet``).
    config : dict, optional
        The caller's full configuration, stored in the checkpoints.
    on_evaluate : callable, optional
        ``on_evaluate(step, signal)`` after each evaluation of the LSTM, with a
        :class:`SignalModel` around the current weights (for learning curves).

    Raises
    ------
    FitError
        Dates outside the panel, too few months, or no samples.
    """
    started = time.perf_counter()
    window = window or WindowConfig()
    preprocess = preprocess or PreprocessConfig()
    labels = labels or LabelConfig()
    train_config = train_config or TrainConfig()
    if progress is not None:
        train_config = replace(train_config, progress=progress)
    model = replace(model or ModelConfig(), n_factors=panel.F)

    start, end = month_end([train_start])[0], month_end([train_end])[0]
    if start >= end:
        raise FitError(f"train_start {start.date()} must be before train_end {end.date()}")
    if start < panel.dates[0] or end > panel.dates[-1]:
        raise FitError(f"training window {start.date()}..{end.date()} is outside the panel "
                       f"({panel.dates[0].date()}..{panel.dates[-1].date()})")
    first = int(panel.dates.searchsorted(start, "left"))
    last = int(panel.dates.searchsorted(end, "right")) - 1
    warm = max(0, first - (window.window - 1))
    train_panel = panel.take(rows=slice(warm, last + 1))
    train_panel.validate(window=window.window)

    t0 = time.perf_counter()
    values = preprocess_panel(train_panel, preprocess)
    preprocess_seconds = time.perf_counter() - t0
    label_grid = make_labels(train_panel.ret, train_panel.listed, labels)
    history = history_length(train_panel.listed, window.window)
    t, i = sample_index(label_grid, train_panel.listed, window, months=slice(first - warm, None))
    if len(t) == 0:
        raise FitError(f"no training samples between {start.date()} and {end.date()}: no stock has a label "
                       f"and {window.required} listed months of history")
    train_pos, val_pos, purged = split_validation(t, train_config, window)
    full = WindowDataset(values, t, i, window, history=history, labels=label_grid)
    train_set, val_set = full.subset(train_pos), full.subset(val_pos)

    meta = {"train_start": start.strftime("%Y-%m-%d"), "train_end": end.strftime("%Y-%m-%d"),
            "seed": train_config.seed, "fingerprint": panel_fingerprint(train_panel),
            "config": config or {}, "samples": {"train": len(train_pos), "validation": len(val_pos),
                                                "purged": purged}}

    callback = None
    if on_evaluate is not None:
        def callback(step, module):
            on_evaluate(step, SignalModel(module, model, window, preprocess, labels, panel.factor_names,
                                          panel.styles, meta))
    t0 = time.perf_counter()
    module, result = train(model, train_set, val_set, train_config, desc="train lstm", on_evaluate=callback)
    train_seconds = time.perf_counter() - t0
    val_loss, val_acc = _validation(module, val_set, result)
    signal = SignalModel(module, model, window, preprocess, labels, panel.factor_names, panel.styles,
                         _meta(meta, train_config, result, val_loss, val_acc))

    base = base_result = None
    base_loss = base_acc = None
    baseline_seconds = 0.0
    if baseline is not False:
        base_config = default_baseline_train(train_config) if baseline is True else baseline
        if progress is not None:
            base_config = replace(base_config, progress=progress)
        base_model = replace(model, kind="logistic")
        # The baseline reads month t only (the last listed month of every window), so it trains
        # on one-month views of the same samples: same split, 1/window of the gathering.
        base_train, base_val = train_set.last_month(), val_set.last_month()
        t0 = time.perf_counter()
        base_module, base_result = train(base_model, base_train, base_val, base_config, desc="train baseline")
        baseline_seconds = time.perf_counter() - t0
        base_loss, base_acc = _validation(base_module, base_val, base_result)
        base = SignalModel(base_module, base_model, window, preprocess, labels, panel.factor_names,
                           panel.styles, _meta(meta, base_config, base_result, base_loss, base_acc))

    timings = {"preprocess": preprocess_seconds, "train": train_seconds, "baseline": baseline_seconds,
               "seconds_per_100_steps": result.timings["seconds_per_100_steps"],
               "total": time.perf_counter() - started}
    return FitResult(signal=signal, baseline=base, history=result.history,
                     baseline_history=None if base_result is None else base_result.history,
                     validation_accuracy=val_acc, baseline_validation_accuracy=base_acc,
                     validation_loss=val_loss, baseline_validation_loss=base_loss, timings=timings,
                     samples=dict(meta["samples"]), validation=val_set, train_result=result,
                     baseline_result=base_result)


def split_validation(t: np.ndarray, config: TrainConfig, window: WindowConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """Positions of the training and validation samples, and the number purged.

    'random': a seeded ``val_fraction`` of all samples. 'time': the samples of the last
    ``val_months`` months; training keeps the months before them minus a purge gap of
    ``purge_months`` (default ``window - 1``) months, so that no training window shares
    an input month with a validation window.
    """
    n = len(t)
    if config.validation == "random":
        order = np.random.default_rng(config.seed).permutation(n)
        n_val = max(1, int(round(config.val_fraction * n)))
        return np.sort(order[n_val:]), np.sort(order[:n_val]), 0
    months = np.unique(t)
    gap = window.window - 1 if config.purge_months is None else config.purge_months
    if len(months) < config.val_months + gap + 1:
        raise FitError(f"time validation needs more than {config.val_months} + {gap} purged months of samples; "
                       f"the training window has {len(months)}")
    first_val = months[-config.val_months]
    val = np.flatnonzero(t >= first_val)
    train_mask = t < first_val - gap
    return np.flatnonzero(train_mask), val, int(n - len(val) - train_mask.sum())


def _validation(module, val_set: WindowDataset, result: TrainResult) -> tuple[float, float]:
    """Loss and accuracy of the returned state on the whole validation set (reused when already known)."""
    if result.validated_on_all and np.isfinite(result.best_val_loss):
        return result.best_val_loss, result.best_val_acc
    return evaluate(module, val_set)


def _meta(meta: dict, config: TrainConfig, result: TrainResult, loss: float, accuracy: float) -> dict:
    history = result.history
    return {**meta, "train": config.to_dict(), "validation_loss": loss, "validation_accuracy": accuracy,
            "best_step": result.best_step, "stopped_early": result.stopped_early, "timings": dict(result.timings),
            "history": {c: history[c].astype(float).tolist() for c in history.columns},
            "snapshots": [{"step": s["step"], "weight": s["weight"], "bias": s["bias"]} for s in result.snapshots]}
