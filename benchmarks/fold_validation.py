"""A config's validation figures, fold by fold, without a single out-of-sample figure.

Trains (or loads from the model cache, exactly as the main command would: the same keys, so a
later ``run_backtest.py`` with the same config reuses every model) the config's models — one
bundle, or one per walk-forward fold — and prints, per fold, the training window, the selected
step, and the validation rank IC of the LSTM (and of each ensemble member), the logistic
baseline and the rank composite. It predicts nothing after a training window and runs no
backtest: this is what a setting may be chosen on (docs/signals.md, "Model selection").

    python benchmarks/fold_validation.py --config configs/real_csi300_wf.yaml --set model.hidden=128
    python benchmarks/fold_validation.py --config configs/walk_forward.yaml --json val.json

``--set`` takes the main command's overrides. Works on any data source the config names.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fold_rows(bundle) -> list[dict]:
    """One row per fold (one for a run without walk-forward) of a trained bundle's record."""
    training = bundle.training
    folds = training.get("folds") or [{"fold": "single split", "cached": bundle.cached, **bundle.selection,
                                       "validation": training.get("validation")}]
    rows = []
    for fold in folds:
        validation = fold.get("validation") or {}
        row = {"fold": fold["fold"], "cached": fold.get("cached"), "best_step": fold.get("best_step")}
        for model in ("lstm", "baseline", "composite"):
            row[model] = (validation.get(model) or {}).get("rank_ic")
        row["members"] = [(m["seed"], m["validation_rank_ic"]) for m in fold.get("members") or []]
        rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML run configuration")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, as in run_backtest.py (repeatable)")
    parser.add_argument("--retrain", action="store_true", help="train even when a cached model matches")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)

    from pipeline.config import ConfigError, load_config
    from pipeline.data import load_data
    from pipeline.run import USER_ERRORS  # registers the signal's config sections
    from pipeline.sweep import is_sweep
    from pipeline.train import model_cache, signal_spec, train_signals

    def log(message):
        print(message, file=sys.stderr, flush=True)

    try:
        config = load_config(args.config, args.overrides)
        if is_sweep(config):  # its base settings alone are none of its points
            raise ConfigError("this is a sweep config; give one point's settings with --set on a run config",
                              args.config)
        spec = signal_spec(config)
        root = Path.cwd()  # relative data and cache paths resolve as in run_backtest.py
        data = load_data(config, spec.window.window, root, history=spec.window.required)
        started = time.perf_counter()
        bundle = train_signals(config, data, args.retrain, False, log, model_cache(config, root))
    except USER_ERRORS as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    rows = fold_rows(bundle)

    print(f"{' '.join([args.config, *args.overrides])}: validation rank IC by fold ({seconds:.0f} s)")
    print(f"{'fold':58s} {'step':>5s} {'LSTM':>7s} {'logistic':>9s} {'composite':>9s}  members")
    for row in rows:
        members = ", ".join(f"seed {seed} {ic:.4f}" for seed, ic in row["members"]) if len(row["members"]) > 1 else ""
        ics = (f"{row[m]:{w}.4f}" if row[m] is not None else f"{'-':>{w}s}"
               for m, w in (("lstm", 7), ("baseline", 9), ("composite", 9)))
        print(f"{row['fold']:58s} {row['best_step'] or 0:5d} {' '.join(ics)}  {members}")
    if args.json:
        args.json.write_text(json.dumps({"config": args.config, "overrides": args.overrides,
                                         "seconds": seconds, "folds": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
