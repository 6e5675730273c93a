"""Render every report output from made-up run results, to look at the pages.

    python examples/demo_report.py [OUTPUT_DIR]        (default: ./outputs/demo_report)

Nothing here is trained or backtested: a small synthetic market provides returns and
its oracle; "predictions" are the oracle blurred by noise (a weaker blur for the model
than for the baseline); baskets are formed from them the way the strategy does (by
predicted class, and by the top 30% of each class probability) and earn the next
month's equal-weight return; the training history and the factor contributions are
invented curves. It exercises the whole ``reports`` API the way ``run_backtest.py``
wires it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from feeds.synthetic import STYLES, make_market
from reports import (build_figures, metrics_document, monthly_prediction_stats, prediction_metrics, save_figures,
                     write_report, write_tearsheet)
from signals.predictions import frame_from_probabilities


def predictions_from(score: pd.Series, rng: np.random.Generator, noise: float) -> pd.DataFrame:
    """Class probabilities from a noisy score: softmax of (-k s, bias, +k s)."""
    s = score + rng.normal(0, noise, len(score))
    s = (s - s.groupby(level=0).transform("mean")) / s.groupby(level=0).transform("std")
    logits = np.stack([-1.2 * s, np.full(len(s), 0.6), 1.2 * s], axis=1)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return frame_from_probabilities(score.index, p)


def basket_returns(pred: pd.DataFrame, next_return: pd.Series, mode: str, top_pct: float = 0.3) -> pd.DataFrame:
    """Equal-weight next-month return of each basket, indexed by the month it is realised."""
    rows = {}
    for date, month in pred.groupby(level=0):
        r = next_return.loc[month.index]
        if mode == "class":
            members = {"high": month["pred"] == "up", "neutral": month["pred"] == "neutral",
                       "low": month["pred"] == "down"}
        else:
            members = {name: month[col].rank(ascending=False, pct=True) <= top_pct
                       for name, col in (("high", "p_up"), ("neutral", "p_neutral"), ("low", "p_down"))}
        realised = date + pd.offsets.MonthEnd(1)
        rows[realised] = {name: r[mask.to_numpy()].mean() for name, mask in members.items()}
        rows[realised]["universe"] = r.mean()
    return pd.DataFrame.from_dict(rows, orient="index")[["high", "neutral", "low", "universe"]]


def training_history(rng: np.random.Generator, steps: int = 60) -> tuple[pd.DataFrame, list]:
    """An invented training history in ``signals.train``'s format, and input-layer snapshots.

    Losses decay, accuracies rise, and the input-layer weights spread out as training
    proceeds; the history holds their mean/std/percentiles, the snapshots the arrays.
    """
    step = np.arange(1, steps + 1) * 10
    decay = np.exp(-step / 150)
    history = pd.DataFrame({
        "step": step, "epoch": step / 100,
        "train_loss": 0.75 + 0.35 * decay + rng.normal(0, 0.01, steps),
        "train_acc": 0.62 - 0.2 * decay + rng.normal(0, 0.005, steps),
        "val_loss": 0.80 + 0.30 * decay + rng.normal(0, 0.01, steps),
        "val_acc": 0.58 - 0.17 * decay + rng.normal(0, 0.005, steps),
    })
    snapshots, stats = [], []
    for k, spread in enumerate(0.05 + 0.04 * (1 - decay)):
        weight = rng.normal(0, spread, (4 * 100, 48))
        bias = rng.normal(0.02 * (1 - decay[k]), spread / 2, 4 * 100)
        snapshots.append({"step": int(step[k]), "weight": weight, "bias": bias})
        row = {}
        for prefix, values in (("w_in", weight), ("b_in", bias)):
            row.update({f"{prefix}_mean": values.mean(), f"{prefix}_std": values.std(),
                        f"{prefix}_abs_mean": np.abs(values).mean()})
            for q in (1, 5, 25, 50, 75, 95, 99):
                row[f"{prefix}_p{q:02d}"] = np.quantile(values, q / 100)
        stats.append(row)
    return pd.concat([history, pd.DataFrame(stats)], axis=1), snapshots


def main(out: Path) -> None:
    rng = np.random.default_rng(7)
    market = make_market(0, n_stocks=400, start="2013-01", end="2017-04")
    panel = market.panel
    oracle = market.oracle_frame()
    dates = oracle.index.get_level_values(0)
    score = oracle[(dates >= "2016-04-30") & (dates <= "2017-03-31")]  # the 12 out-of-sample decisions
    next_ret = pd.DataFrame(np.vstack([panel.ret[1:], np.full((1, panel.N), np.nan)]),
                            index=panel.dates, columns=panel.codes).stack()
    next_return = next_ret.reindex(score.index)

    model = predictions_from(score, rng, noise=0.02)
    baseline = predictions_from(score, rng, noise=0.05)
    prediction = monthly_prediction_stats(model, panel, oracle=market.oracle)
    baseline_monthly = monthly_prediction_stats(baseline, panel, oracle=market.oracle)
    baskets = {mode: basket_returns(model, next_return, mode) for mode in ("class", "top_pct")}
    books = {mode: {"long_short": (frame["high"] - frame["low"]) - 0.002} for mode, frame in baskets.items()}

    history, snapshots = training_history(rng)
    names = [f for members in STYLES.values() for f in members]
    contribution = pd.Series(rng.gamma(4, 1, len(names)) * 10, index=names)

    out.mkdir(parents=True, exist_ok=True)
    doc = metrics_document(baskets, prediction_metrics(model, panel, oracle=market.oracle), books=books,
                           baseline=prediction_metrics(baseline, panel, oracle=market.oracle),
                           validation_accuracy=float(history["val_acc"].iloc[-1]),
                           timings={"data": 0.8, "train": 41.2, "backtest": 12.5, "report": 6.1})
    (out / "metrics.json").write_text(json.dumps(doc, indent=2))
    sheets = {}
    for mode, frame in baskets.items():
        for book in ("high", "low"):
            name = f"tearsheet_{mode}_{book}.html"
            write_tearsheet(frame[book], frame["universe"], out / name, f"{mode} selection: {book} basket")
            sheets[f"{mode}: {book} basket"] = name
    figures = build_figures(baskets=baskets, prediction=prediction, baseline=baseline_monthly, history=history,
                            snapshots=snapshots, contribution=contribution, styles=STYLES)
    save_figures(figures, out / "figures")
    context = {
        "title": "Demo run report (made-up inputs)",
        "description": "Every number on this page comes from examples/demo_report.py: a synthetic market with "
                       "noisy oracle predictions standing in for a trained model.",
        "run": {"Data": "synthetic A-share market, seed 0, 400 initial stocks, 2013-01..2017-04",
                "Training window": "2013-01-31 .. 2016-03-31 (demo: nothing trained)",
                "Out-of-sample window": "decisions 2016-04-30 .. 2017-03-31, returns realised 2016-05 .. 2017-04",
                "Labels": "3 classes of the next-month return: up > +3%, down < -3%, neutral in between",
                "Validation protocol": "random 10% split (the study's)",
                "Model": "LSTM 2 x 400, window 24, 48 factors (demo stand-in)"},
        "execution": "close",
        "config": {"data": {"source": "synthetic", "seed": 0}, "strategy": {"selection": ["class", "top_pct"]}},
        "tearsheets": sheets,
    }
    write_report(out / "report.html", doc, figures, context)
    print(f"wrote {out / 'report.html'}, {out / 'metrics.json'}, {len(sheets)} tear sheets, "
          f"{len(figures)} figures")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("outputs/demo_report"))
