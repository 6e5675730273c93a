"""The walk-forward stage of the main command: one cached model bundle per fold, served as one.

With a ``walk_forward`` section (``retrain_every`` set), :func:`pipeline.train.train_signals`
plans the folds (:func:`folds`), trains or loads each fold exactly as a single run would (same
cache, keyed by the fold's training dates), and :func:`combine_folds` wraps the LSTM, the
logistic baseline and the rank composite of every fold in :class:`signals.WalkForwardSignal`.
:func:`yearly_table` gives the per-year figures of a long out-of-sample span.
"""
from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from signals import WalkForwardSignal, fold_plan

from .cache import SignalBundle
from .config import RunConfig


def walk_forward(config: RunConfig):
    """The ``walk_forward`` section, or ``None`` when walk-forward is off."""
    section = config.sections.get("walk_forward")
    return section if section is not None and section.enabled else None


def folds(config: RunConfig):
    """The folds of a walk-forward config (see :func:`signals.fold_plan`)."""
    d = config.dates
    return fold_plan(d.train_start, d.train_end, d.test_start, d.test_end, walk_forward(config))


def fold_config(config: RunConfig, fold) -> RunConfig:
    """``config`` with the fold's training dates (and its test months), sections kept."""
    out = copy.copy(config)
    out.dates = replace(config.dates, train_start=f"{fold.train_start:%Y-%m-%d}",
                        train_end=f"{fold.train_end:%Y-%m-%d}",
                        test_start=f"{fold.first_decision + pd.offsets.MonthEnd(1):%Y-%m-%d}",
                        test_end=f"{fold.last_decision + pd.offsets.MonthEnd(1):%Y-%m-%d}")
    out.sections = dict(config.sections)
    return out


def combine_folds(plan, bundles: list[SignalBundle]) -> SignalBundle:
    """The folds' bundles served as one: each model a :class:`signals.WalkForwardSignal` that
    picks the fold by date.

    The training record holds every fold's own figures under ``folds``; the validation figures
    are the folds' means and the timings their sums. Only the training curves (``history``,
    ``snapshots``: one figure each) are the latest fold's, as the report says.
    """
    starts = [fold.first_decision for fold in plan]

    def served(name):
        return WalkForwardSignal(list(zip(starts, (getattr(b, name) for b in bundles))))

    last = bundles[-1].training
    training = {key: last.get(key) for key in ("history", "baseline_history", "snapshots")}
    training["folds"] = [{"fold": fold.describe(), "cached": b.cached, "key": b.key, **b.selection,
                          "validation": b.training.get("validation"),
                          "validation_accuracy": b.training.get("validation_accuracy"),
                          "samples": b.training.get("samples"), "timings": b.training.get("timings")}
                         for fold, b in zip(plan, bundles)]
    for key in ("validation_accuracy", "baseline_validation_accuracy"):
        training[key] = _mean([b.training.get(key) for b in bundles])
    validations = [b.training.get("validation") or {} for b in bundles]
    training["validation"] = {model: {figure: _mean([v.get(model, {}).get(figure) for v in validations])
                                      for figure in figures}
                              for model, figures in (validations[-1] or {}).items()}
    timings = [b.training.get("timings") or {} for b in bundles]
    training["timings"] = {key: float(sum(t.get(key) or 0.0 for t in timings))
                           for key in ("preprocess", "train", "baseline", "total") if key in timings[-1]}
    return SignalBundle(served("signal"), served("baseline"), served("composite"), training,
                        cached=all(b.cached for b in bundles), key=",".join(b.key for b in bundles))


def _mean(values) -> float | None:
    """The mean of the folds' figures that exist (``None`` when none does; a fold whose
    validation months gave no rank IC has NaN)."""
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else None


def served_model(signal):
    """The single model behind ``signal`` to draw (a walk-forward's latest fold)."""
    return signal.latest if isinstance(signal, WalkForwardSignal) else signal


def save_signal(signal, staging: Path) -> str:
    """Write the served model into the run directory; return the name written."""
    if isinstance(signal, WalkForwardSignal):
        signal.save(staging / "models")
        return "models/"
    signal.save(staging / "model.pt")
    return "model.pt"


def yearly_table(monthly: dict[str, pd.DataFrame], baskets: dict[str, pd.DataFrame]) -> list[dict]:
    """Per return year and overall: IC, rank IC, ICIR, its t statistic, IC efficiency, L/S figures.

    Parameters
    ----------
    monthly : dict
        ``{model: reports.monthly_prediction_stats(...)}`` (indexed by decision month; the
        return is realised a month later, which is the month the year is read from).
    baskets : dict
        ``{selection: basket returns}`` with ``high`` and ``low`` columns (realisation months).

    Returns
    -------
    list of dict
        One row per year, then ``year = 'all'``: ``months``, and per model
        ``<model>.ic_mean``, ``.rank_ic_mean``, ``.rank_icir``, ``.rank_ic_t`` (mean ÷ std ×
        √months), ``.ic_efficiency`` (with an oracle); per selection
        ``<selection>.n_months`` (the months with both a high and a low basket, which the
        long/short figures use), ``.cum_excess``, ``.monthly_win_rate``, ``.t_stat``.
    """
    from reports.metrics import long_short

    first = next(iter(monthly.values()))
    years = sorted({(d + pd.offsets.MonthEnd(1)).year for d in first.index})
    rows = []
    for year in [*years, "all"]:
        row = {"year": year}
        for name, frame in monthly.items():
            realised = frame.index + pd.offsets.MonthEnd(1)
            part = frame if year == "all" else frame[realised.year == year]
            ric = part["rank_ic"].dropna()
            row.setdefault("months", int(len(ric)))  # the first model's months with a rank IC
            std = float(ric.std(ddof=1)) if len(ric) > 1 else float("nan")
            row[f"{name}.ic_mean"] = float(part["ic"].mean())
            row[f"{name}.rank_ic_mean"] = float(ric.mean())
            row[f"{name}.rank_icir"] = float(ric.mean() / std) if std > 0 else float("nan")
            row[f"{name}.rank_ic_t"] = float(ric.mean() / std * np.sqrt(len(ric))) if std > 0 else float("nan")
            if "oracle_rank_ic" in part:
                oracle = part["oracle_rank_ic"].dropna().mean()
                row[f"{name}.ic_efficiency"] = float(ric.mean() / oracle) if oracle else float("nan")
        for selection, frame in baskets.items():
            part = frame if year == "all" else frame[frame.index.year == year]
            ls = long_short(part["high"], part["low"])
            for key in ("n_months", "cum_excess", "monthly_win_rate", "t_stat"):
                row[f"{selection}.{key}"] = ls[key]
        rows.append(row)
    return rows
