"""The evaluate stage: metrics.json's document, the per-month series and the headline table.

:func:`evaluate` turns the predictions and backtests into the metrics document (model and
baselines against the realised returns and the oracle, books, checks, walk-forward years,
factor view); :func:`summary_rows` / :func:`format_table` give the table the CLI prints.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from signals import LabelConfig

from .backtest import online_offline_gap
from .cache import SignalBundle
from .config import RunConfig
from .data import RunData
from .predict import Predictions
from .walkforward import folds, walk_forward, yearly_table


@dataclass
class Evaluation:
    """What the evaluate stage found: ``doc`` is metrics.json; ``monthly`` the per-month
    prediction statistics per model (``lstm``, ``baseline``, ``composite``) for series/ and the
    figures; ``factor`` the LSTM score's factor frame (reports.series.factor_frame)."""

    doc: dict
    monthly: dict[str, pd.DataFrame]
    factor: pd.DataFrame


def evaluate(config: RunConfig, data: RunData, bundle: SignalBundle, predictions: Predictions,
             backtests: dict, labels: LabelConfig, timings: dict) -> Evaluation:
    """The evaluate stage (``labels``: the run's label settings, for the realised classes)."""
    from reports import metrics_document, monthly_prediction_stats, prediction_metrics
    from reports.factor import factor_summary
    from reports.series import factor_frame

    offline, dates, training = predictions.frames, predictions.dates, bundle.training
    stats = {name: prediction_metrics(frame, data.panel, labels, oracle=data.oracle)
             for name, frame in offline.items()}
    doc = metrics_document({m: b["baskets"] for m, b in backtests.items()}, stats["model"],
                           books={m: b["books"] for m, b in backtests.items()}, baseline=stats["baseline"],
                           validation_accuracy=training.get("validation_accuracy"), timings=timings)
    gaps = {m: online_offline_gap(b["predictions"], offline["model"]) for m, b in backtests.items()}
    doc["checks"] = {"online_offline_max_abs_diff": max(gaps.values()),
                     "model_cached": bundle.cached, "model_key": bundle.key}
    doc["composite"] = stats["composite"]
    doc["validation"] = training.get("validation")
    series = {"lstm" if name == "model" else name: monthly_prediction_stats(
        frame, data.panel, labels, oracle=data.oracle if name == "model" else None)
        for name, frame in offline.items()}  # the LSTM and every baseline
    doc["lstm_margin"] = lstm_margin(stats["model"], stats["baseline"], stats["composite"], series)
    doc["training"] = {"baseline_validation_accuracy": training.get("baseline_validation_accuracy"),
                       "samples": training.get("samples"), "timings": training.get("timings"),
                       **bundle.selection, "folds": training.get("folds")}
    if walk_forward(config) is not None:
        # the years' IC efficiency of the baselines too: their series again, with the oracle
        monthly = {"lstm": series["lstm"], **{name: monthly_prediction_stats(
            offline[name], data.panel, labels, oracle=data.oracle) for name in ("baseline", "composite")}}
        doc["walk_forward"] = {"folds": [f.describe() for f in folds(config)],
                               "by_year": yearly_table(monthly, {m: b["baskets"] for m, b in backtests.items()})}
    _warn_uncovered_months(doc, backtests)
    doc["data"] = data.report
    doc["protocol"] = {"decisions": [f"{dates[0]:%Y-%m-%d}", f"{dates[-1]:%Y-%m-%d}"],
                       "execution": config.backtest.execution,
                       "label_return": "month-end close t to month-end close t+1"}
    factor = factor_frame(offline["model"], data.panel)
    doc["factor"] = factor_summary(factor)
    return Evaluation(doc, series, factor)


def _warn_uncovered_months(doc: dict, backtests: dict) -> None:
    # An empty high or low basket leaves no long/short position that month, so the selection's
    # long/short figures cover fewer months than the run traded; no book need hold that basket.
    from reports import ReportWarning

    for mode, block in backtests.items():
        baskets, covered = block["baskets"], doc[mode]["long_short"]["n_months"]
        if covered < len(baskets):
            empty = ", ".join(f"the {name} basket was empty in {int(baskets[name].isna().sum())}"
                              for name in ("high", "low") if baskets[name].isna().any())
            warnings.warn(ReportWarning(f"{mode} selection: the long/short figures cover {covered} of "
                                        f"{len(baskets)} months ({empty})"), stacklevel=2)


STUDY = {  # SPEC §2: what the Guosen report states
    "validation_accuracy": "85–90%",
    "oos_accuracy": "just above 50%",
    "class.long_short.monthly_win_rate": "75%",
    "class.long_short.cum_excess": "4.5%",
    "top_pct.long_short.monthly_win_rate": "> 90%",
    "top_pct.long_short.cum_excess": "> 9%",
}


def labelled_predictions(frame: pd.DataFrame, data: RunData, labels: LabelConfig) -> pd.DataFrame:
    """Predictions with the realised next-month return and class (for predictions.csv)."""
    from signals import CLASSES, make_labels
    from signals.evaluate import next_returns
    from signals.predictions import grid_positions

    panel = data.panel
    grid = make_labels(panel.ret, panel.listed, labels)
    t, i = grid_positions(frame.index, panel.dates, panel.codes)
    out = frame.copy()
    out["next_return"] = next_returns(panel)[t, i]
    names = np.array(list(CLASSES) + [""], dtype=object)
    out["realised"] = names[np.where(grid[t, i] < 0, len(CLASSES), grid[t, i])]
    return out


def lstm_margin(model: dict, logistic: dict, composite: dict, monthly: dict[str, pd.DataFrame] | None = None) -> dict:
    """The LSTM's out-of-sample rank IC and IC efficiency minus those of the better baseline
    (the one with the higher rank IC), and whether the months tell the two apart.

    Parameters
    ----------
    model, logistic, composite : dict
        :func:`reports.prediction_metrics` of each.
    monthly : dict of str -> DataFrame, optional
        :func:`reports.monthly_prediction_stats` keyed ``lstm``, ``baseline`` (the logistic),
        ``composite``: adds the paired monthly comparison of rank ICs.

    Returns
    -------
    dict
        ``better_baseline``; ``rank_ic_mean`` and ``ic_efficiency``: the LSTM's minus the
        better baseline's. With ``monthly``: ``months`` (decision months where both have a
        rank IC), ``months_ahead`` (of them, months where the LSTM's is higher), ``t_stat``
        and ``p_value`` of the mean monthly difference (one-sample t test against 0, as the
        factor view's IC tests: one-month returns do not overlap). Twelve months rarely
        separate two signals; the t statistic says when they do.
    """
    better = "composite" if composite.get("rank_ic_mean", -np.inf) >= logistic.get("rank_ic_mean", -np.inf) \
        else "logistic"
    base = composite if better == "composite" else logistic
    out = {"better_baseline": better,
           **{key: float(model.get(key, np.nan) - base.get(key, np.nan)) for key in ("rank_ic_mean", "ic_efficiency")}}
    if monthly is not None:
        from reports.factor import ic_summary

        other = monthly["composite" if better == "composite" else "baseline"]["rank_ic"]
        difference = (monthly["lstm"]["rank_ic"] - other).dropna()
        test = ic_summary(difference.to_frame("margin")).loc["margin"]
        out.update(months=int(len(difference)), months_ahead=int((difference > 0).sum()),
                   t_stat=float(test["t_stat"]), p_value=float(test["p_value"]))
    return out


def summary_rows(doc: dict) -> list[tuple[str, str, str]]:
    """The headline table (this run vs the study) printed at the end of a run."""
    def pct(x):
        return "n/a" if x is None else f"{x:.1%}"

    def num(x, fmt=".3f"):
        return "n/a" if x is None or not np.isfinite(x) else format(x, fmt)

    first = doc[doc["selections"][0]]
    folds = len((doc.get("walk_forward") or {}).get("folds") or ())
    of_folds = f", mean of {folds} folds" if folds else ""
    rows = [(f"validation accuracy{of_folds}", pct(doc.get("validation_accuracy")), STUDY["validation_accuracy"]),
            ("OOS accuracy (no-skill)", f"{pct(first.get('oos_accuracy'))} ({pct(first.get('no_skill_accuracy'))})",
             STUDY["oos_accuracy"]),
            ("OOS mean rank IC (logistic; rank composite)",
             f"{num(first.get('rank_ic_mean'))} ({num(doc['baseline'].get('rank_ic_mean'))}; "
             f"{num((doc.get('composite') or {}).get('rank_ic_mean'))})", "-")]
    if doc["oracle"].get("ic_efficiency") is not None:
        rows.append(("IC efficiency vs oracle (logistic; rank composite)",
                     f"{num(doc['oracle']['ic_efficiency'], '.2f')} ({num(doc['baseline'].get('ic_efficiency'), '.2f')}; "
                     f"{num((doc.get('composite') or {}).get('ic_efficiency'), '.2f')})", "-"))
    margin = doc.get("lstm_margin") or {}
    if margin.get("months"):
        rows.append((f"LSTM minus {margin['better_baseline']}: rank IC (t; months ahead)",
                     f"{margin['rank_ic_mean']:+.3f} (t {num(margin['t_stat'], '.1f')}; "
                     f"{margin['months_ahead']} of {margin['months']})", "-"))
    if doc.get("validation") and doc["validation"].get("lstm"):
        lstm, logistic, composite = (num((doc["validation"].get(m) or {}).get("rank_ic"))
                                     for m in ("lstm", "baseline", "composite"))
        rows.insert(1, (f"validation rank IC (logistic; rank composite){of_folds}", f"{lstm} ({logistic}; {composite})",
                        "-"))
    for mode in doc["selections"]:
        ls = doc[mode]["long_short"]
        rows.append((f"{mode}: long/short cum excess", pct(ls.get("cum_excess")),
                     STUDY.get(f"{mode}.long_short.cum_excess", "-")))
        rows.append((f"{mode}: long/short monthly win rate",
                     f"{pct(ls.get('monthly_win_rate'))} of {ls.get('n_months', 0)} months",
                     STUDY.get(f"{mode}.long_short.monthly_win_rate", "-")))
    return rows


def format_table(rows) -> str:
    header = ("measure", "this run", "study")
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(3)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
