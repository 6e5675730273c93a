"""The publish stage: every output file, staged privately and renamed into place at once."""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from signals import SignalSpec
from signals.diagnostics import factor_contribution

from .cache import SignalBundle
from . import forked
from .config import RunConfig, dump_config
from .data import RunData
from .evaluate import Evaluation, format_table, labelled_predictions, summary_rows
from .predict import Predictions
from .walkforward import folds, save_signal, served_model, walk_forward


@dataclass
class RunResult:
    directory: Path
    metrics: dict
    table: str


@dataclass
class TearSheets:
    """The books' tear sheets being written: ``pages`` (:class:`reports.tearsheet.BookPage`) and
    ``written``, the ``(index, file name)`` of each page as it is done (see :func:`tearsheets`)."""

    pages: list
    written: object


@contextlib.contextmanager
def tearsheets(config: RunConfig, data: RunData, backtests: dict, directory: Path):
    """Write the books' tear sheets into ``directory`` in forked workers (``backtest.workers``)
    while the caller goes on; the context gives a :class:`TearSheets`, and leaving it ends the
    workers, whatever is left.

    A page (quantstats, about 2 CPU-seconds) needs its book only, so the pages start before
    the evaluate stage: this process evaluates, writes the series and draws the figures beside
    them instead of leaving a core idle.
    """
    from reports.tearsheet import book_pages

    pages = (book_pages(backtests, config.name, data.benchmark, f"Index {config.data.benchmark}")
             if config.output.tearsheets else [])
    with forked.imap(_write_page, directory, pages, forked.workers_for(config.backtest.workers, len(pages))) \
            as written:
        yield TearSheets(pages, written)


def publish(staging: Path, output: Path, config: RunConfig, spec: SignalSpec, data: RunData,
            bundle: SignalBundle, predictions: Predictions, backtests: dict, evaluation: Evaluation,
            sheets: TearSheets, log, timings: dict, started: float) -> RunResult:
    """Write the run's files (see docs/reports.md) into ``staging``, the private directory that
    becomes ``output`` (:class:`~pipeline.output.RunDirectory`), and return what the CLI prints.

    ``spec`` is the run's signal (:func:`pipeline.train.signal_spec`); ``sheets`` the tear sheets
    being written there (:func:`tearsheets`); ``timings`` gets ``outputs`` and ``total``
    (seconds since ``started``) before metrics.json is written.
    """
    from reports import build_figures, figure_png, save_figures, write_report
    from reports.inputs import json_safe
    from reports.series import prices_frame, write_series

    t0 = time.perf_counter()
    doc, series, training, dates = evaluation.doc, evaluation.monthly, bundle.training, predictions.dates
    (staging / "config.yaml").write_text(dump_config(config), encoding="utf-8")
    save_signal(bundle.signal, staging)
    labelled_predictions(predictions.frames["model"], data, spec.labels).to_csv(
        staging / "predictions.csv", float_format="%.6g")
    written = write_series(staging / "series", books=backtests, models=series, factor=evaluation.factor,
                           prices=prices_frame(data.panel))
    log(f"outputs: series/ ({', '.join(sorted(written))})")
    figures = build_figures(
        baskets={m: b["baskets"] for m, b in backtests.items()},
        prediction=series["lstm"], baseline=series.get("baseline"),
        history=training.get("history"), snapshots=training.get("snapshots"),
        contribution=factor_contribution(served_model(bundle.signal)), styles=data.panel.styles,
        top_pct=config.backtest.top_pct, factor=evaluation.factor)
    figures = {name: figure_png(fig) for name, fig in figures.items()}  # once for figures/ and the report
    save_figures(figures, staging / "figures")
    pages = sheets.pages
    for index, _ in sheets.written:
        log(f"outputs: {pages[index].file}{pages[index].note}")
    links = {page.label: page.file for page in pages}
    log(f"outputs: figures/ ({len(figures)} figures)")
    timings["outputs"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    doc["timings"] = {k: round(v, 2) for k, v in timings.items()}
    context = {"title": f"{config.name}: {spec.model.kind.upper()} multi-factor stock selection",
               "description": f"Data: {data.description}. Model trained on {trained_on(config)}; out-of-sample "
                              f"decisions {dates[0]:%Y-%m}..{dates[-1]:%Y-%m}"
                              + (" (model loaded from the cache)." if bundle.cached else "."),
               "run": {"data": data.description, "train": trained_on(config),
                       "out of sample": f"{config.dates.test_start}..{config.dates.test_end}",
                       "validation": spec.train.validation, "model": f"{spec.model.describe()}, window "
                       f"{spec.window.window}, {spec.train.steps} steps of {spec.train.batch_size}",
                       "seed": config.seed},
               "execution": config.backtest.execution, "top_pct": config.backtest.top_pct,
               "config": config.to_dict(), "tearsheets": links, "series": sorted(written)}
    write_report(staging / "report.html", doc, figures, context)
    (staging / "metrics.json").write_text(json.dumps(json_safe(doc), indent=2), encoding="utf-8")
    table = format_table(summary_rows(json_safe(doc)))
    log(f"outputs: report.html, metrics.json ({time.perf_counter() - t0:.1f} s); run {timings['total']:.1f} s")
    log.record(table)
    (staging / "run.log").write_text(log.text(), encoding="utf-8")
    return RunResult(directory=output, metrics=doc, table=table)


def trained_on(config: RunConfig) -> str:
    """The training span(s) of a run, as the report names them (a walk-forward's every fold)."""
    d, section = config.dates, walk_forward(config)
    if section is None:
        return f"{d.train_start}..{d.train_end}"
    spans = ", ".join(f"{f.train_start:%Y-%m}..{f.train_end:%Y-%m}" for f in folds(config))
    return (f"{spans} ({section.scheme} walk-forward, one model per fold, retrained every "
            f"{section.retrain_every} months; the training and factor-contribution figures show the latest fold)")


def _write_page(directory, page) -> str:
    return page.write(directory).name
