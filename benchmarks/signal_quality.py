"""Signal quality across synthetic markets: what the recurrent model is worth next to the baselines.

For each market seed it trains, on the same samples and split, the recurrent model (``--kind``:
the study's LSTM, a GRU or a plain RNN; or an ensemble of ``--ensemble`` training seeds), the
last-snapshot logistic regression and the linear rank composite, under one or more protocols:

* ``study``: the Guosen protocol (random 10% validation split, a fixed budget of
  ``--study-steps`` = the study's 100 iterations), train 2007-05..2016-04, out of sample
  2016-05..2017-04;
* ``honest``: the same dates, but a purged time split (the last 12 months of the training
  window) and early stopping with best-state restore on the validation rank IC;
* ``walk-forward``: the honest training, retrained every ``--retrain-every`` months over
  the return months ``--wf-start``..2017-04 (≥ 60 months), each fold on data before it.

Per market and protocol it prints each model's validation rank IC (the only figure any
setting may be chosen by), out-of-sample rank IC and IC efficiency (model rank IC ÷ the
oracle's, same months and stocks), then mean ± std over markets, and the recurrent model's
margin over the better baseline. ``--validation-only`` skips every out-of-sample figure: that
is the mode for choosing settings (docs/signals.md, "Model selection").

    python benchmarks/signal_quality.py --market-seeds 0 1 2 3 4 --protocol study honest walk-forward
    python benchmarks/signal_quality.py --market-seeds 0 --protocol honest --validation-only --hidden 32 64 128
    python benchmarks/signal_quality.py --market-seeds 0 --protocol honest --validation-only --kind lstm gru rnn
    python benchmarks/signal_quality.py --n-stocks 300 --hidden 16 --max-steps 50   # a quick look
    python benchmarks/signal_quality.py --market-seeds 0 --inner --refit steps epochs   # choose the refit rule
    python benchmarks/signal_quality.py --summarize m0.json m1.json ...   # one table from runs made in parallel

Training is deterministic for a seed; timings depend on the machine's load.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from feeds.synthetic import make_market
from signals import (LabelConfig, ModelConfig, SignalSpec, TrainConfig, WalkForwardConfig, WalkForwardSignal,
                     evaluate_predictions, fit, fold_plan)
from signals.model import RECURRENT_KINDS

BASELINES = ("logistic", "composite")
STUDY_DATES = ("2007-05", "2016-04", "2016-05", "2017-04")
# --inner: the last year of the study's training window scored by models trained before it,
# so a setting can be chosen on figures that never read the out-of-sample year.
INNER_DATES = ("2007-05", "2015-04", "2015-05", "2016-04")


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--market-seeds", type=int, nargs="+", default=[0], help="synthetic market seeds")
    parser.add_argument("--train-seed", type=int, default=0, help="training seed (the first of an ensemble)")
    parser.add_argument("--protocol", nargs="+", choices=("study", "honest", "walk-forward"), default=["honest"])
    parser.add_argument("--n-stocks", type=int, default=1300, help="stocks at the start (1300 = default market)")
    parser.add_argument("--kind", nargs="+", choices=RECURRENT_KINDS, default=["lstm"],
                        help="recurrent cell (a list compares)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64],
                        help="recurrent units per layer (a list compares)")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--labels", nargs="+", default=["fixed"],
                        help="fixed, fixed-excess, tercile (a list compares)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0, help="Adam's L2 penalty (train.weight_decay)")
    parser.add_argument("--ema", type=float, help="serve a moving average of the weights with this decay (train.ema)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--ensemble", type=int, default=1)
    parser.add_argument("--refit", nargs="+", choices=("none", "steps", "epochs"), default=["none"],
                        help="train.refit after selection (a list compares; with a refit the selected "
                             "state is reported too, as '<kind>-selected')")
    parser.add_argument("--inner", action="store_true",
                        help="train to 2015-04 and score 2015-05..2016-04, inside the study's training "
                             "window: for choosing settings without reading the out-of-sample year")
    parser.add_argument("--study-steps", type=int, default=100, help="the study protocol's fixed budget")
    parser.add_argument("--max-steps", type=int, default=1000, help="the honest protocols' budget (early stopping)")
    parser.add_argument("--patience", type=int, default=10, help="evaluations without a better validation rank IC")
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--eval-samples", type=int, default=10000)
    parser.add_argument("--retrain-every", type=int, default=12)
    parser.add_argument("--wf-start", default="2012-05", help="first return month of the walk-forward")
    parser.add_argument("--validation-only", action="store_true", help="no out-of-sample figure at all")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--summarize", nargs="+", metavar="JSON",
                        help="print the summary of earlier --json files (e.g. one per market seed) and exit")
    args = parser.parse_args(argv)
    if args.inner and "walk-forward" in args.protocol:
        parser.error("--inner scores the study's dates one year earlier; walk-forward has its own (--wf-start)")
    return args


def label_config(name: str) -> LabelConfig:
    kinds = {"fixed": LabelConfig(), "fixed-excess": LabelConfig(excess=True), "tercile": LabelConfig(kind="tercile")}
    if name not in kinds:
        raise SystemExit(f"error: unknown --labels {name!r} (one of {', '.join(kinds)})")
    return kinds[name]


def train_config(args, protocol: str, refit: str = "none") -> TrainConfig:
    if protocol == "study":
        return TrainConfig(steps=args.study_steps, validation="random", batch_size=args.batch_size, lr=args.lr,
                           weight_decay=args.weight_decay, ema=args.ema, eval_every=args.eval_every,
                           seed=args.train_seed, ensemble=args.ensemble,
                           progress=args.progress, refit=refit)
    return TrainConfig(steps=args.max_steps, validation="time", select="rank_ic", patience=args.patience,
                       eval_every=args.eval_every, eval_samples=args.eval_samples, batch_size=args.batch_size,
                       lr=args.lr, weight_decay=args.weight_decay, ema=args.ema, seed=args.train_seed,
                       ensemble=args.ensemble,
                       progress=args.progress, refit=refit)


def models(out: dict) -> tuple[str, ...]:
    """The models of a result: its recurrent kind (results saved before ``--kind``: 'lstm'), the
    selected state before a refit, and the baselines."""
    kind = out.get("kind", "lstm")
    return (kind, *((f"{kind}-selected",) if out.get("refit", "none") != "none" else ()), *BASELINES)


def fit_fold(panel, start, end, args, protocol, hidden, labels, kind, refit="none"):
    spec = SignalSpec(labels=labels, model=ModelConfig(kind=kind, hidden=hidden, layers=args.layers,
                                                       dropout=args.dropout),
                      train=train_config(args, protocol, refit))
    result = fit(panel, start, end, spec)
    served = {kind: result.signal, "logistic": result.baseline, "composite": result.composite}
    validation = {kind: result.validation["lstm"], "logistic": result.validation["baseline"],
                  "composite": result.validation["composite"]}
    if result.selected is not None:
        served[f"{kind}-selected"], validation[f"{kind}-selected"] = result.selected, result.validation["lstm"]
    return served, validation, {"best_step": result.train_result.best_step,
                                "steps": result.train_result.timings["steps"],
                                "seconds": result.timings["train"]}


def run_protocol(market, args, protocol: str, kind: str, hidden: int, labels_name: str, refit: str = "none") -> dict:
    panel, labels = market.panel, label_config(labels_name)
    train_start, train_end, test_start, test_end = INNER_DATES if args.inner else STUDY_DATES
    if protocol == "walk-forward":
        first_test = pd.Timestamp(args.wf_start) + pd.offsets.MonthEnd(0)
        train_end = f"{first_test - pd.offsets.MonthEnd(1):%Y-%m}"
        folds = fold_plan(train_start, train_end, args.wf_start, test_end, WalkForwardConfig(args.retrain_every))
    else:
        folds = fold_plan(train_start, train_end, test_start, test_end, WalkForwardConfig(12))[:1]
    out = {"protocol": protocol, "kind": kind, "hidden": hidden, "labels": labels_name, "refit": refit,
           "inner": args.inner, "ensemble": args.ensemble}
    served = {m: [] for m in models(out)}
    val = {m: [] for m in models(out)}
    fold_info = []
    for fold in folds:
        fold_models, validation, info = fit_fold(panel, fold.train_start, fold.train_end, args, protocol, hidden,
                                                 labels, kind, refit)
        for m in models(out):
            served[m].append((fold.first_decision, fold_models[m]))
            val[m].append(validation[m]["rank_ic"])
        fold_info.append({"fold": fold.describe(), **info})
        print(f"   {fold.describe()}: best step {info['best_step']} of {info['steps']} ({info['seconds']:.0f} s); "
              f"validation rank IC " + ", ".join(f"{m} {validation[m]['rank_ic']:.4f}" for m in models(out)),
              flush=True)
    out["folds"] = fold_info
    decisions = panel.dates[(panel.dates >= folds[0].first_decision) & (panel.dates <= folds[-1].last_decision)]
    for m in models(out):
        figures = {"validation_rank_ic": float(np.mean(val[m]))}
        if not args.validation_only:
            predictions = WalkForwardSignal(served[m]).predict_panel(panel, decisions)
            full = evaluate_predictions(predictions, panel, labels, oracle=market.oracle)
            figures.update({k: full[k] for k in ("rank_ic_mean", "ic_mean", "icir", "ic_efficiency", "oos_accuracy",
                                                 "no_skill_accuracy", "n_months")})
        out[m] = figures
    return out


def print_result(seed: int, out: dict, validation_only: bool) -> None:
    print(f"== market {seed}, {out['protocol']}, {models(out)[0].upper()} hidden {out['hidden']}, "
          f"refit {out.get('refit', 'none')}, "
          f"labels {out['labels']}")
    for m in models(out):
        f = out[m]
        line = f"   {m:10s} validation rank IC {f['validation_rank_ic']:7.4f}"
        if not validation_only:
            line += (f"   {'inner-year' if out.get('inner') else 'OOS'} rank IC {f['rank_ic_mean']:7.4f} over "
                     f"{f['n_months']} months, IC efficiency "
                     f"{f['ic_efficiency']:6.3f}, accuracy {f['oos_accuracy']:.3f} (no-skill {f['no_skill_accuracy']:.3f})")
        print(line, flush=True)


# What makes two results comparable: a summary averages over market seeds within one setting only.
SETTING = ("protocol", "span", "kind", "hidden", "labels", "ensemble", "refit")


def setting(r: dict) -> dict:
    """The setting of a result (results saved before a key existed: its default)."""
    return {"protocol": r["protocol"], "span": "inner-year" if r.get("inner") else "OOS", "kind": models(r)[0],
            "hidden": r["hidden"], "labels": r["labels"], "ensemble": r.get("ensemble", 1),
            "refit": r.get("refit", "none")}


def result_rows(results: list[dict]) -> pd.DataFrame:
    """One row per result and model: its setting, the market seed and every figure."""
    return pd.DataFrame([{**setting(r), "model": m, "seed": r["seed"], **r[m]} for r in results for m in models(r)])


def summary(results: list[dict], validation_only: bool) -> pd.DataFrame:
    keys = ["validation_rank_ic"] + ([] if validation_only else ["rank_ic_mean", "ic_efficiency"])
    return result_rows(results).groupby([*SETTING, "model"], sort=False)[keys].agg(["mean", "std", "min"])


def main(argv=None):
    args = parse(argv)
    if args.summarize:
        saved = [json.loads(Path(name).read_text()) for name in args.summarize]
        # results saved before they carried these keys: the run's settings say
        results = [{"ensemble": doc["settings"].get("ensemble", 1), "inner": doc["settings"].get("inner", False), **r}
                   for doc in saved for r in doc["results"]]
        args.market_seeds = sorted({r["seed"] for r in results})
        args.validation_only = any(doc["settings"]["validation_only"] for doc in saved)
        return report(args, results, started=None)
    torch.set_num_threads(args.threads)
    results = []
    started = time.perf_counter()
    for seed in args.market_seeds:
        t0 = time.perf_counter()
        market = make_market(seed, n_stocks=args.n_stocks)
        print(f"market {seed}: {market.panel} ({time.perf_counter() - t0:.1f} s)", flush=True)
        for protocol, kind, hidden, labels, refit in itertools.product(args.protocol, args.kind, args.hidden,
                                                                       args.labels, args.refit):
            out = run_protocol(market, args, protocol, kind, hidden, labels, refit)
            out["seed"] = seed
            print_result(seed, out, args.validation_only)
            results.append(out)
    report(args, results, started)
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "results": results}, indent=2, default=float))


def report(args, results: list[dict], started: float | None) -> None:
    table = summary(results, args.validation_only)
    took = "" if started is None else f" ({time.perf_counter() - started:.0f} s in all)"
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(f"\n== mean, std and min over market seeds {args.market_seeds}{took}\n{table}")
    if not args.validation_only:
        frame = result_rows(results)
        with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
            print(f"\n== IC efficiency per market seed\n"
                  f"{frame.pivot_table('ic_efficiency', [*SETTING, 'model'], 'seed', sort=False)}")
        recurrent = frame[frame["model"] == frame["kind"]].set_index([*SETTING, "seed"])["ic_efficiency"]
        best = frame[frame["model"].isin(BASELINES)].groupby([*SETTING, "seed"])["ic_efficiency"].max()
        for key, margin in (recurrent - best.reindex(recurrent.index)).groupby(list(SETTING), sort=False):
            label = ", ".join(f"{name} {value}" for name, value in zip(SETTING, key))
            print(f"   {label}: IC efficiency minus the better baseline's, per market seed: "
                  f"{', '.join(f'{seed} {m:+.3f}' for seed, m in zip(margin.index.get_level_values('seed'), margin))}")


if __name__ == "__main__":
    main()
