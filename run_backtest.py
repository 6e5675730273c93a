#!/usr/bin/env python
"""Train the LSTM tercile classifier and trade it in Backtrader, as the Guosen study did.

    python run_backtest.py --config configs/oos_2016.yaml [--output DIR] [--set key.sub=value ...]
                           [--quiet] [--retrain]

Writes a run directory (default ``runs/<config name>``): config.yaml, model.pt,
predictions.csv, metrics.json, report.html, tearsheet_<selection>_<book>.html, figures/.
A user mistake (bad config, bad data) is one line ``error: <what> (<where>)`` and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

# numpy's OpenBLAS threads contend with torch's on a busy laptop (a 3 ms batched matmul was
# measured at 2 s with 2 BLAS threads under load); the heavy compute here is torch's.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


_shown: set[str] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if str(message) not in _shown:  # once per message, wherever it was raised
        _shown.add(str(message))
        print(f"warning: {message}", file=sys.stderr)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run_backtest.py", description=__doc__.split("\n\n")[0],
        epilog="Configs: configs/oos_2016.yaml (the study on the synthetic market), configs/smoke.yaml "
               "(seconds), configs/real_csi300.yaml (real daily bars). See README.md.")
    parser.add_argument("--config", required=True, help="YAML run configuration")
    parser.add_argument("--output", help="run directory (default: output.dir or runs/<config name>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.steps=50 (repeatable; YAML values)")
    parser.add_argument("--quiet", action="store_true", help="no progress output (also when CI is set)")
    parser.add_argument("--retrain", action="store_true", help="train even when a cached model matches")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet = args.quiet or bool(os.environ.get("CI"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    warnings.showwarning = _show_warning
    from pipeline.config import ConfigError, load_config
    from pipeline.run import USER_ERRORS, run  # importing run registers the signal's config sections

    try:
        config = load_config(args.config, args.overrides)
        result = run(config, output=args.output, retrain=args.retrain, quiet=quiet)
    except USER_ERRORS as exc:
        if isinstance(exc, ConfigError) and args.config not in exc.where:
            exc = exc.located(args.config)  # a key found wrong while running: name the file too
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; no run directory was written", file=sys.stderr)
        return 130
    print(result.table)
    print(f"\nwrote {result.directory}/ (report.html, metrics.json, tear sheets, figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
