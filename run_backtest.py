#!/usr/bin/env python
"""Train the LSTM tercile classifier and trade it in Backtrader, as the Guosen study did.

    python run_backtest.py --config configs/oos_2016.yaml [--output DIR] [--set key.sub=value ...]
                           [--quiet] [--log-level LEVEL] [--retrain]
    python run_backtest.py --config configs/sweep.yaml [--ray-address ADDRESS] [--executor KIND] ...

Writes a run directory (default ``runs/<config name>``): config.yaml, model.pt,
predictions.csv, metrics.json, report.html, tearsheet_<selection>_<book>.html, figures/.
A config with a ``sweep`` section runs one such run per point of its grid (on Ray when it is
installed) and writes ``sweep.csv`` and ``sweep.html`` beside ``points/`` (pipeline/sweep.py);
it exits 1 only when every point failed.
A user mistake (bad config, bad data, an output path that is not ours, a full disk) is one line
``error: <what> (<where>)`` and exit status 2; Ctrl-C or SIGTERM is one line and exit status 130
or 143, and leaves no staging or cache debris.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

# numpy's OpenBLAS threads contend with torch's on a busy laptop (a 3 ms batched matmul was
# measured at 2 s with 2 BLAS threads under load); the heavy compute here is torch's.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# torch's OpenMP threads spin while they wait for work by default; beside a busy neighbour that
# spinning steals the core the other thread needs (benchmarks/under_load.py: a 2x400 step beside
# one busy process took 2.05x the fair share with spinning, 1.32x with PASSIVE). Read once, when
# torch starts its OpenMP runtime, so it must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


from pipeline import interrupts  # the standard library only: before anything heavy

_shown: set[str] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if str(message) not in _shown:  # once per message, wherever it was raised
        _shown.add(str(message))
        print(f"warning: {message}", file=sys.stderr)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run_backtest.py", description=__doc__.split("\n\n")[0],
        epilog="Configs: configs/oos_2016.yaml (the study on the synthetic market), configs/smoke.yaml "
               "(seconds), configs/real_csi300.yaml (real daily bars), configs/sweep.yaml (seeds x "
               "settings, summarised as mean +- std). See README.md.")
    parser.add_argument("--config", required=True, help="YAML run configuration")
    parser.add_argument("--output", help="run directory (default: output.dir or runs/<config name>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set train.steps=50 (repeatable; YAML values)")
    parser.add_argument("--quiet", action="store_true", help="no progress output (also when CI is set)")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="progress lines on stderr from this level up (default INFO; run.log in the run "
                             "directory keeps INFO and up whatever the level)")
    parser.add_argument("--retrain", action="store_true", help="train even when a cached model matches")
    parser.add_argument("--ray-address", metavar="ADDRESS",
                        help="sweeps: run the points on this Ray cluster (head:6379, ray://head:10001, or auto); "
                             "default: a local Ray instance on this machine's cores")
    parser.add_argument("--executor", choices=["auto", "ray", "plain"],
                        help="sweeps: 'ray', 'plain' (in this process, one point at a time), or 'auto' "
                             "(the default: Ray when installed, else plain)")
    args = parser.parse_args(argv)
    if args.output:  # --output=~/x reaches us unexpanded (the shell expands ~ only at a word's start)
        args.output = os.path.expanduser(args.output)
    return args


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def main(argv=None) -> int:
    try:
        with interrupts.signals_raise():
            try:
                return _main(parse_args(argv))
            except Exception:
                # A library that swallowed the signal's exception mid-import (seen: torch importing
                # sympy at 2 s) fails later with its own error; the signal is still what ended the run.
                interrupts.check()
                raise
    except KeyboardInterrupt as exc:  # from the first moment on: imports take seconds
        return _interrupted(exc, "no run directory was written and no cache entry was left half-written")


def _interrupted(exc: KeyboardInterrupt, left: str) -> int:
    """One line saying what was interrupted and what was ``left``; the exit status of the signal."""
    what = "terminated" if isinstance(exc, interrupts.Terminated) else "interrupted"
    print(f"error: {what}; {left}", file=sys.stderr)
    return 143 if isinstance(exc, interrupts.Terminated) else 130


def _main(args) -> int:
    quiet = args.quiet or bool(os.environ.get("CI"))
    os.environ.setdefault("MPLBACKEND", "Agg")
    warnings.showwarning = _show_warning
    _shown.clear()  # once per message and command (a process may run several: tests, notebooks)
    with interrupts.signals_deferred():
        from pipeline.config import ConfigError, load_config
        from pipeline.run import USER_ERRORS, run  # importing run registers the signal's config sections
        from pipeline.sweep import is_sweep  # registers the 'sweep' section

    try:
        config = load_config(args.config, args.overrides)
        if is_sweep(config):
            return _sweep(args, quiet or args.log_level not in ("DEBUG", "INFO"))
        if args.ray_address or args.executor:
            raise ConfigError("--ray-address and --executor apply to sweeps; this config has no sweep section",
                              args.config)
        result = run(config, output=args.output, retrain=args.retrain, quiet=quiet, log_level=args.log_level)
    except USER_ERRORS as exc:  # every package's errors derive from feeds.errors.UserError
        if isinstance(exc, ConfigError) and args.config not in exc.where:
            exc = exc.located(args.config)  # a key found wrong while running: name the file too
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine, not the code: disk full, read-only, permissions
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or _one_line(exc)}{where}", file=sys.stderr)
        return 2
    print(result.table)
    print(f"\nwrote {result.directory}/ (report.html, metrics.json, tear sheets, figures)")
    return 0


def _sweep(args, quiet: bool) -> int:
    """Run the sweep config ``args.config``: 0 when at least one point has a run, else 1."""
    from pipeline.sweep import run_sweep

    try:
        result = run_sweep(args.config, args.overrides, args.output, executor=args.executor or "auto",
                           ray_address=args.ray_address, retrain=args.retrain, quiet=quiet)
    except KeyboardInterrupt as exc:
        return _interrupted(exc, "the points finished so far are kept; the same command resumes the sweep")
    print(result.table)
    print(f"\nwrote {result.directory}/ (sweep.html, sweep.csv, points/)")
    if result.counts["done"] + result.counts["skipped"] == 0:
        first = result.points["error"].iloc[0]
        print(f"error: every point of the sweep failed (first: {first}); see {result.directory}/sweep.csv",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
