"""Signal quality on the synthetic market: the figures of issue 3's "Done when".

Trains the LSTM and the last-snapshot logistic baseline with the study's settings
(train 2007-05..2016-04, 24-month windows, 2 x 400 LSTM, batch 1000, Adam 1e-3, 10%
validation) under one or both validation protocols, predicts the out-of-sample year
2016-05..2017-04 through ``SignalModel.predict_panel`` and prints, per protocol:
validation accuracy, OOS accuracy next to its no-skill reference, OOS mean IC / rank
IC / ICIR, the IC efficiency of both models against the oracle (same months, same
stocks), and seconds per 100 training steps.

    python benchmarks/signal_quality.py                       # defaults, both protocols
    python benchmarks/signal_quality.py --validation random --steps 100
    python benchmarks/signal_quality.py --n-stocks 300 --hidden 64 --steps 50   # quick look

Timings depend on the load of the machine (our 2 cores are shared): read them as
indicative.
"""
from __future__ import annotations

import sys
from pathlib import Path

import argparse
import json
import resource
import time
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from feeds.synthetic import make_market
from signals import (LabelConfig, ModelConfig, PreprocessConfig, TrainConfig, WindowConfig, evaluate_predictions,
                     fit)


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="market seed")
    parser.add_argument("--train-seed", type=int, default=0, help="training seed")
    parser.add_argument("--n-stocks", type=int, default=1300, help="stocks at the start (1300 = default market)")
    parser.add_argument("--share", type=float, nargs=3, metavar=("LINEAR", "NONLINEAR", "SEQUENCE"),
                        help="variance shares of mu (default: the market's 0.5 0.2 0.3)")
    parser.add_argument("--train-start", default="2007-05")
    parser.add_argument("--train-end", default="2016-04")
    parser.add_argument("--oos-start", default="2016-05")
    parser.add_argument("--oos-end", default="2017-04")
    parser.add_argument("--validation", choices=("random", "time", "both"), default="both")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--eval-every", type=int, default=TrainConfig.eval_every)
    parser.add_argument("--patience", type=int, default=None)
    parser.add_argument("--hidden", type=int, default=ModelConfig.hidden)
    parser.add_argument("--layers", type=int, default=ModelConfig.layers)
    parser.add_argument("--dropout", type=float, default=ModelConfig.dropout)
    parser.add_argument("--window", type=int, default=WindowConfig.window)
    parser.add_argument("--labels", choices=("fixed", "tercile"), default=LabelConfig.kind)
    parser.add_argument("--excess", action="store_true", help="label the return in excess of the cross-section")
    parser.add_argument("--neutralize", default=PreprocessConfig.neutralize)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the target machine has 2 cores)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--curve", action="store_true",
                        help="also print the LSTM's OOS figures at every evaluation (a learning curve)")
    parser.add_argument("--eval-samples", type=int, default=TrainConfig.eval_samples)
    parser.add_argument("--json", help="also write the figures to this file")
    return parser.parse_args(argv)


def run(args, protocol: str, market) -> dict:
    panel = market.panel
    train_config = TrainConfig(steps=args.steps, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                               eval_every=args.eval_every, eval_samples=args.eval_samples,
                               patience=args.patience, validation=protocol,
                               seed=args.train_seed, progress=args.progress)
    labels = LabelConfig(kind=args.labels, excess=args.excess)
    oos = panel.slice(args.oos_start, args.oos_end).dates
    curve = []

    def on_evaluate(step, signal):
        figures = evaluate_predictions(signal.predict_panel(panel, oos), panel, labels, oracle=market.oracle)
        curve.append({"step": step, **figures})
        print(f"   [curve] step {step:4d}: OOS accuracy {figures['oos_accuracy']:.4f}, rank IC "
              f"{figures['rank_ic_mean']:.4f}, IC efficiency {figures['ic_efficiency']:.3f}", flush=True)

    result = fit(panel, args.train_start, args.train_end, window=WindowConfig(window=args.window),
                 preprocess=PreprocessConfig(neutralize=args.neutralize), labels=labels,
                 model=ModelConfig(hidden=args.hidden, layers=args.layers, dropout=args.dropout),
                 train_config=train_config, baseline=not args.no_baseline,
                 on_evaluate=on_evaluate if args.curve else None)
    out = {"protocol": protocol, "samples": result.samples, "best_step": result.train_result.best_step,
           "steps": result.train_result.timings["steps"],
           "seconds_per_100_steps": result.timings["seconds_per_100_steps"],
           "train_seconds": result.timings["train"], "preprocess_seconds": result.timings["preprocess"],
           "baseline_seconds": result.timings["baseline"], "curve": curve,
           "history": result.history[["step", "train_loss", "train_acc", "val_loss", "val_acc"]].to_dict("list")}
    models = {"lstm": (result.signal, result.validation_accuracy)}
    if result.baseline is not None:
        models["baseline"] = (result.baseline, result.baseline_validation_accuracy)
    for name, (signal, val_acc) in models.items():
        start = time.perf_counter()
        predictions = signal.predict_panel(panel, oos)
        seconds = time.perf_counter() - start
        figures = evaluate_predictions(predictions, panel, labels, oracle=market.oracle)
        out[name] = {"validation_accuracy": val_acc, "predict_seconds": seconds, **figures}
    return out


def report(out: dict) -> None:
    print(f"\n== validation protocol: {out['protocol']}  (samples {out['samples']}, steps {out['steps']}, "
          f"best step {out['best_step']})")
    print(f"   seconds per 100 training steps: {out['seconds_per_100_steps']:.1f}   "
          f"(training {out['train_seconds']:.1f} s, baseline {out['baseline_seconds']:.1f} s, "
          f"preprocess {out['preprocess_seconds']:.2f} s)")
    print(f"   {'model':9s} {'val acc':>8s} {'OOS acc':>8s} {'no-skill':>8s} {'IC':>7s} {'rank IC':>8s} "
          f"{'ICIR':>6s} {'oracle':>7s} {'IC eff':>7s} {'predict s':>9s}")
    for name in ("lstm", "baseline"):
        if name in out:
            m = out[name]
            print(f"   {name:9s} {m['validation_accuracy']:8.4f} {m['oos_accuracy']:8.4f} {m['no_skill']:8.4f} "
                  f"{m['ic_mean']:7.4f} {m['rank_ic_mean']:8.4f} {m['icir']:6.2f} {m['oracle_rank_ic']:7.4f} "
                  f"{m['ic_efficiency']:7.3f} {m['predict_seconds']:9.1f}")


def main(argv=None):
    args = parse(argv)
    torch.set_num_threads(args.threads)
    overrides = {"n_stocks": args.n_stocks}
    if args.share:
        overrides.update(share_linear=args.share[0], share_nonlinear=args.share[1], share_sequence=args.share[2])
    start = time.perf_counter()
    market = make_market(args.seed, **overrides)
    print(f"market: {market.panel} ({time.perf_counter() - start:.1f} s); settings: {vars(args)}")
    protocols = ("random", "time") if args.validation == "both" else (args.validation,)
    results = []
    for protocol in protocols:
        results.append(run(args, protocol, market))
        report(results[-1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of this process: {peak:.0f} MB; total {time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"settings": vars(args), "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
