"""The main command's pipeline: config → data → train → predict → backtest → evaluate → publish.

Each stage is a function with typed inputs and outputs in its own module, so walk-forward
and sweeps can call any of them on their own:

=========  ==========================================  =====================================
stage      function                                    gives
=========  ==========================================  =====================================
data       :func:`pipeline.data.load_data`             :class:`~pipeline.data.RunData`
train      :func:`pipeline.train.train_signals`        :class:`~pipeline.cache.SignalBundle`
predict    :func:`pipeline.predict.predict`            :class:`~pipeline.predict.Predictions`
backtest   :func:`pipeline.backtest.run_backtests`     ``{selection: {books, baskets, ...}}``
evaluate   :func:`pipeline.evaluate.evaluate`          :class:`~pipeline.evaluate.Evaluation`
publish    :func:`pipeline.publish.publish`            :class:`~pipeline.publish.RunResult`
=========  ==========================================  =====================================

:func:`run` strings them together, times them, and publishes everything as one atomically
renamed run directory (:class:`pipeline.output.RunDirectory`).
"""
from __future__ import annotations

import time
from pathlib import Path

from signals import WalkForwardConfig

from feeds.errors import UserError

from . import interrupts
from .backtest import run_backtests
from .config import RunConfig, register_section
from .data import load_data
from .evaluate import evaluate
from .log import Log
from .output import RunDirectory, check_output
from .predict import predict
from .provenance import inputs_stamp
from .publish import RunResult, publish, tearsheets
from .train import MANAGED, SIGNAL_SECTIONS, model_cache, signal_spec, train_signals

# What a user can get wrong (config, data, settings, the output path): one line and exit 2 in
# the CLI. Every package's error type derives from UserError, so none can slip past this list.
USER_ERRORS = (UserError,)

for _name, _cls in SIGNAL_SECTIONS.items():
    register_section(_name, _cls, MANAGED.get(_name))
register_section("walk_forward", WalkForwardConfig)

__all__ = ["run", "RunResult", "USER_ERRORS", "Log"]


def run(config: RunConfig, output: Path | None = None, retrain: bool = False, quiet: bool = False,
        root: Path | None = None, log_level: str = "INFO") -> RunResult:
    """Run the whole pipeline and publish the run directory. See the module docstring.

    Progress lines go to stderr from ``log_level`` up (none with ``quiet``) and to ``run.log``,
    and so do the warnings raised during the run."""
    log = Log(quiet, log_level)
    with log.capturing_warnings():
        return _run(config, output, retrain, log, root)


def _run(config: RunConfig, output: Path | None, retrain: bool, log: Log, root: Path | None) -> RunResult:
    root = Path(root or Path.cwd())
    output = check_output(Path(output or config.output.dir or root / "runs" / config.name))  # before any work
    timings: dict[str, float] = {}
    started = time.perf_counter()
    spec = signal_spec(config)
    inputs = inputs_stamp(config, root)  # before reading: a file changed during the run is not this one

    t0 = time.perf_counter()
    data = load_data(config, spec.window.window, root, history=spec.window.required)
    timings["data"] = time.perf_counter() - t0
    log(f"data: {data.panel} from {data.description} ({timings['data']:.1f} s)")

    t0 = time.perf_counter()
    bundle = train_signals(config, data, retrain, not log.progress, log, model_cache(config, root))
    timings["train"] = time.perf_counter() - t0
    interrupts.check()  # a signal swallowed while training (see pipeline.interrupts) ends the run here
    for served in bundle.served.values():
        served.to(config.device)  # predictions on CUDA when the run trains there
    log(f"model: {'loaded' if bundle.cached else 'trained'} ({timings['train']:.1f} s)")

    t0 = time.perf_counter()
    predictions = predict(config, data, bundle)
    timings["predict"] = time.perf_counter() - t0
    dates = predictions.dates
    log(f"predict: {len(dates)} decision months {dates[0]:%Y-%m}..{dates[-1]:%Y-%m} ({timings['predict']:.1f} s)")

    t0 = time.perf_counter()
    backtests = run_backtests(config, data, bundle.signal, dates, log, offline=predictions.frames["model"])
    timings["backtest"] = time.perf_counter() - t0

    with RunDirectory(output) as staging, tearsheets(config, data, backtests, staging) as sheets:
        t0 = time.perf_counter()
        evaluation = evaluate(config, data, bundle, predictions, backtests, spec.labels, dict(timings))
        evaluation.doc["checks"]["inputs"] = inputs
        timings["evaluate"] = time.perf_counter() - t0
        return publish(staging, output, config, spec, data, bundle, predictions, backtests, evaluation,
                       sheets, log, timings, started)
