"""``fit``: the whole training pipeline, panel in, served models out.

preprocess (per month-end cross-section) → labels (next month's return class) →
lazy windows → validation split → train the recurrent model (``spec.model.kind``: LSTM,
GRU or RNN; ``train.ensemble`` seeds) → train the last-snapshot logistic baseline and fit
the linear rank composite on the very same samples and split → wrap each as
:class:`SignalModel`, each with its own :class:`SignalSpec`.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from feeds.errors import UserError
from feeds.panel import Panel, month_end

from .checkpoint import panel_fingerprint
from .composite import fit_composite
from .labels import NO_LABEL, make_labels
from .model import RECURRENT_KINDS, Ensemble
from .preprocess import preprocess_panel
from .ranking import mean_rank_ic
from .serve import SignalModel
from .spec import SignalSpec
from .train import TrainConfig, TrainResult, _loss_accuracy, predict_logits, train
from .windows import WindowConfig, WindowDataset, history_length, sample_index


class FitError(UserError):
    """The panel and the training dates cannot be used together."""


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    signal : SignalModel
        The trained recurrent model (last state, or best validation state with early
        stopping; with ``train.refit`` that budget trained again on every sample); with
        ``train.ensemble > 1`` the average of that many training seeds.
    baseline : SignalModel or None
        The last-snapshot multinomial logistic regression, same samples and split.
    composite : SignalModel or None
        The linear rank composite (:mod:`signals.composite`) fitted on the training split.
    selected : SignalModel or None
        With ``train.refit``: the state the validation split selected, before the refit
        (``signal`` is the refitted model); None without refit.
    validation : dict
        ``{model: {"loss", "accuracy", "rank_ic"}}`` on the whole validation set for
        ``lstm`` (the recurrent model, whatever its kind: the key the run's metrics keep),
        ``baseline`` and ``composite`` (the composite has no loss or accuracy).
    history, baseline_history : DataFrame
        Training history per evaluation (see :class:`signals.train.TrainResult`).
    validation_accuracy, baseline_validation_accuracy : float
        Accuracy of the returned state on the whole validation set.
    validation_loss, baseline_validation_loss : float
    timings : dict
        Seconds of ``preprocess``, ``train``, ``baseline`` and ``total``, and
        ``seconds_per_100_steps`` of the recurrent model.
    samples : dict
        Counts: ``train``, ``validation``, ``purged``.
    validation_set : WindowDataset
        The validation samples over the preprocessed training panel (for
        :func:`signals.diagnostics.permutation_importance`).
    train_result, baseline_result : TrainResult
        The (first member's) training record.
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
    validation_set: WindowDataset = field(repr=False)
    train_result: TrainResult = field(repr=False)
    baseline_result: TrainResult | None = field(default=None, repr=False)
    composite: SignalModel | None = None
    validation: dict = field(default_factory=dict)
    selected: SignalModel | None = None


BASELINE_EPOCHS = 4.0


def default_baseline_train(config: TrainConfig) -> TrainConfig:
    """The baseline's budget: the recurrent model's settings with at least ``BASELINE_EPOCHS`` passes.

    A logistic-regression step costs milliseconds, so the baseline gets enough passes
    over the samples to converge instead of the recurrent model's step budget; it is never
    the under-trained side of the comparison.
    """
    return replace(config, steps=None, epochs=max(config.epochs or 0.0, BASELINE_EPOCHS))


def fit(panel: Panel, train_start, train_end, spec: SignalSpec | None = None, *,
        baseline: TrainConfig | bool = True, composite: bool = True, progress: bool | None = None,
        config: dict | None = None, on_evaluate=None, report=None) -> FitResult:
    """Train the recurrent signal (and the baselines) on ``panel`` between two dates.

    Parameters
    ----------
    panel : Panel
        Raw panel; months before ``train_start`` serve as warm-up history for the first
        windows, months after ``train_end`` are never read.
    train_start, train_end : date-like
        First and last month-end of the training window (any day inside a month). A
        sample ``(t, i)`` needs ``train_start <= t`` and its label month ``t + 1 <=
        train_end``, so no label leaks past the window.
    spec : SignalSpec, optional
        Window, preprocessing, labels, model and training settings; defaults follow the
        seed study. ``spec.model.kind`` is 'lstm', 'gru' or 'rnn'; ``spec.model.n_factors``
        is set from the panel.
    baseline : TrainConfig or bool
        Train the logistic baseline: ``True`` with :func:`default_baseline_train`,
        a TrainConfig for its own budget, ``False`` to skip it.
    composite : bool
        Fit the linear rank composite baseline.
    progress : bool, optional
        Overrides ``spec.train.progress`` (the CLI passes ``not --quiet``).
    config : dict, optional
        The caller's full configuration, stored in the checkpoints.
    on_evaluate : callable, optional
        ``on_evaluate(step, signal)`` after each evaluation of the recurrent model, with a
        :class:`SignalModel` around the current weights (for learning curves).
    report : callable, optional
        ``report(line)`` gets each training run's up-front cost estimate
        (:func:`signals.train.estimate_line`), e.g. a logger.

    Raises
    ------
    FitError
        Dates outside the panel, too few months, no samples, or a model kind that is
        not recurrent.
    """
    started = time.perf_counter()
    spec = spec or SignalSpec()
    if spec.model.kind not in RECURRENT_KINDS:
        raise FitError(f"fit trains a recurrent model (model.kind {', '.join(RECURRENT_KINDS)}), got "
                       f"{spec.model.kind!r}; the logistic and composite baselines come with it")
    train_config = spec.train if progress is None else replace(spec.train, progress=progress)
    spec = replace(spec, model=replace(spec.model, n_factors=panel.F), train=train_config)
    window, preprocess, model = spec.window, spec.preprocess, spec.model

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
    label_grid = make_labels(train_panel.ret, train_panel.listed, spec.labels)
    history = history_length(train_panel.listed, window.window)
    t, i = sample_index(label_grid, train_panel.listed, window, months=slice(first - warm, None))
    if len(t) == 0:
        raise FitError(f"no training samples between {start.date()} and {end.date()}: no stock has a label "
                       f"and {window.required} listed months of history")
    train_pos, val_pos, purged = split_validation(t, train_config, window)
    full = WindowDataset(values, t, i, window, history=history, labels=label_grid)
    train_set, val_set = full.subset(train_pos), full.subset(val_pos)
    # The outcome of a sample is its next-month return; labels stop at train_end, so do these.
    outcome = np.full(label_grid.shape, np.nan)
    outcome[:-1] = train_panel.ret[1:]
    outcome[label_grid == NO_LABEL] = np.nan
    val_returns = outcome[t[val_pos], i[val_pos]]

    meta = {"train_start": start.strftime("%Y-%m-%d"), "train_end": end.strftime("%Y-%m-%d"),
            "seed": train_config.seed, "fingerprint": panel_fingerprint(train_panel),
            "config": config or {}, "samples": {"train": len(train_pos), "validation": len(val_pos),
                                                "purged": purged}}

    callback = None
    if on_evaluate is not None:
        def callback(step, module):
            # A copy: SignalModel serves from the CPU, and the module being trained may be on CUDA.
            on_evaluate(step, SignalModel(copy.deepcopy(module), spec, panel.factor_names, panel.styles, meta))
    t0 = time.perf_counter()
    members, results, refitted, refits = [], [], [], []
    for k in range(train_config.ensemble):
        member_config = replace(train_config, seed=train_config.seed + k)
        desc = f"train {model.kind}" + ("" if train_config.ensemble == 1 else f" {k + 1}/{train_config.ensemble}")
        module, member_result = train(model, train_set, val_set, member_config, desc=desc,
                                      on_evaluate=callback if k == 0 else None, val_returns=val_returns,
                                      report=report)
        members.append(module)
        results.append(member_result)
        if train_config.refit != "none":
            module, record = _refit(model, full, val_set, member_config, member_result, len(train_pos), desc, report)
            refitted.append(module)
            refits.append(record)
    result = results[0]
    served = spec
    if len(members) > 1:
        served = replace(spec, model=replace(model, members=len(members)))
    module = _served_module(served, members)
    train_seconds = time.perf_counter() - t0
    validation = {"lstm": _validation(module, val_set, val_returns, result if len(members) == 1 else None)}
    signal_meta = _meta(meta, result, validation["lstm"])
    if len(members) > 1:  # each seed on the whole validation set, as the ensemble: comparable figures
        signal_meta["members"] = [{"seed": train_config.seed + k, "best_step": r.best_step,
                                   "validation_rank_ic": _validation(m, val_set, val_returns, r)["rank_ic"]}
                                  for k, (m, r) in enumerate(zip(members, results))]
    selected = None
    if refitted:
        selected = SignalModel(module, served, panel.factor_names, panel.styles, signal_meta)
        signal_meta = {**signal_meta, "refit": {**refits[0], "steps": [r["steps"] for r in refits]}}  # per member
        module = _served_module(served, refitted)
    signal = SignalModel(module, served, panel.factor_names, panel.styles, signal_meta)

    base = base_result = None
    base_loss = base_acc = None
    baseline_seconds = 0.0
    if baseline is not False:
        base_config = default_baseline_train(train_config) if baseline is True else baseline
        if progress is not None:
            base_config = replace(base_config, progress=progress)
        base_spec = replace(spec, model=replace(model, kind="logistic"), train=base_config)
        # The baseline reads month t only (the last listed month of every window), so it trains
        # on one-month views of the same samples: same split, 1/window of the gathering.
        base_train, base_val = train_set.last_month(), val_set.last_month()
        t0 = time.perf_counter()
        base_module, base_result = train(base_spec.model, base_train, base_val, base_config, desc="train baseline",
                                         val_returns=val_returns)
        validation["baseline"] = _validation(base_module, base_val, val_returns, base_result)
        base_meta = _meta(meta, base_result, validation["baseline"])
        if base_config.refit != "none":  # the same samples as the recurrent model's refit
            base_module, record = _refit(base_spec.model, full.last_month(), base_val, base_config, base_result,
                                         len(train_pos), "train baseline")
            base_meta["refit"] = {**record, "steps": [record["steps"]]}
        baseline_seconds = time.perf_counter() - t0
        base = SignalModel(base_module, base_spec, panel.factor_names, panel.styles, base_meta)
        base_loss, base_acc = validation["baseline"]["loss"], validation["baseline"]["accuracy"]

    rank_model = None
    if composite:
        rank_spec = replace(spec, preprocess=replace(preprocess, rank=True),
                            model=replace(model, kind="composite", members=1))
        ranks = preprocess_panel(train_panel, rank_spec.preprocess)
        rank_module, ics = fit_composite(ranks, outcome, t[train_pos], i[train_pos], rank_spec.model)
        val_score = ranks[t[val_pos], i[val_pos]].astype(np.float64) @ rank_module.weight.double().numpy()
        validation["composite"] = {"loss": float("nan"), "accuracy": float("nan"),
                                   "rank_ic": mean_rank_ic(val_score, val_returns, t[val_pos])}
        if train_config.refit != "none":  # its weights from every sample, as the refitted models'
            rank_module, ics = fit_composite(ranks, outcome, t, i, rank_spec.model)
        rank_model = SignalModel(rank_module, rank_spec, panel.factor_names, panel.styles,
                                 {**meta, "factor_rank_ic": dict(zip(panel.factor_names, map(float, ics))),
                                  "validation_rank_ic": validation["composite"]["rank_ic"]})

    timings = {"preprocess": preprocess_seconds, "train": train_seconds, "baseline": baseline_seconds,
               "seconds_per_100_steps": result.timings["seconds_per_100_steps"],
               "total": time.perf_counter() - started}
    return FitResult(signal=signal, selected=selected, baseline=base, history=result.history,
                     baseline_history=None if base_result is None else base_result.history,
                     validation_accuracy=validation["lstm"]["accuracy"], baseline_validation_accuracy=base_acc,
                     validation_loss=validation["lstm"]["loss"], baseline_validation_loss=base_loss, timings=timings,
                     samples=dict(meta["samples"]), validation_set=val_set, train_result=result,
                     baseline_result=base_result, composite=rank_model, validation=validation)


def _refit(model_config, samples: WindowDataset, val_set: WindowDataset, config: TrainConfig,
           selected: TrainResult, n_train: int, desc: str, report=None):
    """The module trained again on ``samples`` (every sample of the window) for the budget the
    validation split selected (:meth:`TrainConfig.refit_config`), same seed as the selection;
    and its record for the checkpoint: ``{"rule", "samples", "steps"}``."""
    refit = config.refit_config(selected.best_step, n_train, len(samples))
    module, _ = train(model_config, samples, val_set, refit, report=report,
                      desc=f"{desc} refit on all {len(samples):,} samples")
    return module, {"rule": config.refit, "samples": len(samples), "steps": refit.steps}


def _served_module(spec: SignalSpec, members: list):
    return members[0] if len(members) == 1 else Ensemble(spec.model, members).eval()


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


def _validation(module, val_set: WindowDataset, val_returns: np.ndarray, result: TrainResult | None = None) -> dict:
    """Loss, accuracy and mean monthly rank IC of a trained module on the whole validation set
    (taken from ``result`` when training already evaluated the returned state on all of it)."""
    if result is not None and result.validated_on_all and np.isfinite(result.best_val_loss):
        return {"loss": result.best_val_loss, "accuracy": result.best_val_acc, "rank_ic": result.best_val_rank_ic}
    logits = predict_logits(module, val_set)
    loss, accuracy = _loss_accuracy(logits, val_set)
    probs = torch.softmax(logits, dim=1).numpy()
    return {"loss": loss, "accuracy": accuracy,
            "rank_ic": mean_rank_ic(probs[:, 2] - probs[:, 0], val_returns, val_set.t.numpy())}


def _meta(meta: dict, result: TrainResult, validation: dict) -> dict:
    history = result.history
    return {**meta, "validation_loss": validation["loss"],
            "validation_accuracy": validation["accuracy"], "validation_rank_ic": validation["rank_ic"],
            "best_step": result.best_step, "stopped_early": result.stopped_early, "timings": dict(result.timings),
            "history": {c: history[c].astype(float).tolist() for c in history.columns},
            "snapshots": [{"step": s["step"], "weight": s["weight"], "bias": s["bias"]} for s in result.snapshots]}
