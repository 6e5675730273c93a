"""The main command's pipeline: config → data → signal → backtests → metrics → outputs.

Each stage is a function; :func:`run` strings them together, times them, and writes
everything into an atomically published run directory (:class:`pipeline.output.RunDirectory`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from signals import (LabelConfig, ModelConfig, PreprocessConfig, SignalModel, TrainConfig, WalkForwardConfig,
                     WindowConfig, fit)
from signals.checkpoint import library_versions, panel_fingerprint
from signals.diagnostics import factor_contribution

from feeds.errors import UserError
from signals import CheckpointError
from signals.checkpoint import torch_save_atomic

from .config import ConfigError, RunConfig, dump_config, register_section
from .data import RunData, load_data
from .walkforward import folds, save_signal, served_model, train_signals, walk_forward, yearly_table
from .output import (RunDirectory, check_output, fingerprint, os_error, publishable, remove_stale,
                     staging_directory, unlock, write_atomic)

# What a user can get wrong (config, data, settings, the output path): one line and exit 2 in
# the CLI. Every package's error type derives from UserError, so none can slip past this list.
USER_ERRORS = (UserError,)

# The signal's own dataclasses are config sections; seed, device and progress come from the
# top level / the command line, so they are not settable inside ``train``.
SIGNAL_SECTIONS = {"window": WindowConfig, "preprocess": PreprocessConfig, "labels": LabelConfig,
                   "model": ModelConfig, "train": TrainConfig}
MANAGED = {"train": {"seed": "the top-level 'seed'", "device": "the top-level 'device'", "progress": "--quiet"},
           "model": {"n_factors": "the data", "kind": "the run (it trains the LSTM and the baselines)",
                     "members": "train.ensemble"}}
for _name, _cls in SIGNAL_SECTIONS.items():
    register_section(_name, _cls, MANAGED.get(_name))
register_section("walk_forward", WalkForwardConfig)


class Log:
    """Progress lines of a run: on stderr from ``level`` up (none with ``quiet``), and every
    line from INFO up (DEBUG too when ``level`` is DEBUG) kept for the run directory's ``run.log``.

    ``progress`` says whether progress bars (tqdm) should draw: only on a terminal, never
    with ``quiet`` or a level above INFO, so redirected output holds lines, not carriage returns.
    """

    LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}

    def __init__(self, quiet: bool = False, level: str = "INFO", stream=None):
        if str(level).upper() not in self.LEVELS:
            raise ConfigError(f"log level must be one of {', '.join(self.LEVELS)}, got {level!r}", "--log-level")
        self.quiet = quiet
        self.level = self.LEVELS[str(level).upper()]
        self.stream = stream if stream is not None else sys.stderr
        self.lines: list[str] = []
        self.started = time.perf_counter()
        isatty = getattr(self.stream, "isatty", None)
        self.progress = not quiet and self.level <= self.LEVELS["INFO"] and bool(isatty and isatty())

    def __call__(self, message: str, level: str = "INFO") -> None:
        value = self.LEVELS[level]
        if value >= min(self.level, self.LEVELS["INFO"]):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            self.lines.extend(f"{stamp} {time.perf_counter() - self.started:7.1f}s {level:<7} {line}"
                              for line in str(message).splitlines() or [""])
        if not self.quiet and value >= self.level:
            print(message, file=self.stream, flush=True)

    @contextlib.contextmanager
    def capturing_warnings(self):
        """Inside the block every warning shown is also kept for ``run.log`` (shown as before)."""
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            self.record(f"warning: {message}")
            shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            yield
        finally:
            warnings.showwarning = shown

    def record(self, message: str) -> None:
        """Keep ``message`` for ``run.log`` only (e.g. the summary table the CLI prints on stdout)."""
        self.lines.extend(str(message).splitlines())

    def debug(self, message: str) -> None:
        self(message, "DEBUG")

    def warning(self, message: str) -> None:
        self(message, "WARNING")

    def text(self) -> str:
        """What ``run.log`` holds."""
        return "\n".join(self.lines) + "\n"


@dataclass
class SignalBundle:
    """The trained models and what training left for the report."""

    signal: SignalModel  # or a signals.WalkForwardSignal: one model per fold
    baseline: SignalModel
    composite: SignalModel | None = None
    training: dict = field(default_factory=dict)  # history, snapshots, validation figures
    cached: bool = False
    key: str = ""


# ------------------------------------------------------------------------------- stages
def sections(config: RunConfig) -> dict:
    out = {name: config.sections.get(name) or cls() for name, cls in SIGNAL_SECTIONS.items()}
    out["train"] = replace(out["train"], seed=config.seed, device=config.device)
    return out


def model_key(config: RunConfig, data: RunData) -> str:
    """Hash of everything that determines the trained models."""
    s = sections(config)
    train_end = config.timestamps["train_end"] + pd.offsets.MonthEnd(0)
    upto = int(data.panel.dates.searchsorted(train_end, "right"))
    return fingerprint({
        "panel": panel_fingerprint(data.panel.take(rows=slice(0, upto))),
        "dates": [config.dates.train_start, config.dates.train_end],
        "signal": {k: dataclasses.asdict(replace(v, progress=True) if k == "train" else v) for k, v in s.items()},
        "versions": {k: v for k, v in library_versions().items() if k in ("torch", "numpy", "lstm_tercile")},
        "device": str(torch.cuda.is_available() and config.device != "cpu"),
    })


def train_or_load(config: RunConfig, data: RunData, retrain: bool, quiet: bool, log: Log,
                  cache_root: Path) -> SignalBundle:
    """Train the LSTM and the baseline, or load them from the cache by :func:`model_key`.

    A cache entry ``<cache_root>/<key>/`` is served only when its ``entry.json`` names this key
    and every file matches the SHA-256 recorded there (each checkpoint also checks its own
    digest); anything else is retrained, with one warning line. Debris of killed runs in the
    cache root is removed first.
    """
    key = model_key(config, data)
    cache = cache_root / key
    remove_stale(cache_root, (".*.tmp",))
    stale = cache.exists()  # unusable or --retrain: the new entry replaces it
    if cache.exists() and not retrain:
        try:
            bundle = _load_entry(cache, key)
            log(f"model: loaded from cache {cache} (--retrain to train again)")
            return bundle
        except Exception as exc:  # a damaged or foreign cache entry is retrained, never trusted
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            warnings.warn(f"model cache entry {cache} is unusable ({reason}); training again")
    s = sections(config)
    log(f"model: training {s['model'].layers}x{s['model'].hidden} LSTM on {config.dates.train_start}.."
        f"{config.dates.train_end} ({s['train'].validation} validation)")
    result = fit(data.panel, config.dates.train_start, config.dates.train_end, window=s["window"],
                 preprocess=s["preprocess"], labels=s["labels"], model=s["model"], train_config=s["train"],
                 progress=not quiet, config=config.to_dict())
    training = {
        "history": result.history, "baseline_history": result.baseline_history,
        "snapshots": result.train_result.snapshots,
        "validation_accuracy": result.validation_accuracy,
        "baseline_validation_accuracy": result.baseline_validation_accuracy,
        "validation": result.validation, "best_step": result.train_result.best_step,
        "samples": result.samples, "timings": result.timings,
    }
    _store_entry(cache_root, key, {"model.pt": result.signal.save, "baseline.pt": result.baseline.save,
                                   "composite.pt": result.composite.save,
                                   "training.pt": lambda path: _save_training(training, path)}, replace=stale)
    return SignalBundle(result.signal, result.baseline, result.composite, training, cached=False, key=key)


CACHE_ENTRY = "entry.json"  # {"key": ..., "files": {name: sha256}} inside every cache entry


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_entry(cache: Path, key: str) -> SignalBundle:
    """The cached models under ``cache`` if they are exactly what ``key`` names, else an error."""
    try:
        entry = json.loads((cache / CACHE_ENTRY).read_text(encoding="utf-8"))
        files = dict(entry["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"no valid {CACHE_ENTRY} ({type(exc).__name__})") from None
    if entry.get("key") != key:
        raise CheckpointError(f"it holds the model of key {entry.get('key')!r}, not {key}")
    for name in ("model.pt", "baseline.pt", "composite.pt", "training.pt"):
        if name not in files or _sha256(cache / name) != files[name]:
            raise CheckpointError(f"{name} is not the file that was cached under this key")
    return SignalBundle(SignalModel.load(cache / "model.pt"), SignalModel.load(cache / "baseline.pt"),
                        SignalModel.load(cache / "composite.pt"), _load_training(cache / "training.pt"),
                        cached=True, key=key)


def _store_entry(cache_root: Path, key: str, writers: dict, replace: bool = False) -> None:
    """Write a cache entry in a private, locked staging directory and rename it into place.

    Two runs of the same key never mix files: if another run published the entry meanwhile,
    its complete entry is kept and this one discarded. With ``replace`` (the entry this run
    found was unusable, or ``--retrain``) an existing entry is replaced. The cache is an optimisation: a full or read-only disk is one warning line and
    the run goes on (its own outputs then say whether they could be written).
    """
    cache = cache_root / key
    staging = lock = None
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        staging, lock = staging_directory(cache_root, f".{key}.", ".tmp", key=key)
        for name, write in writers.items():
            write(staging / name)
        entry = {"key": key, "files": {name: _sha256(staging / name) for name in writers}}
        (staging / CACHE_ENTRY).write_text(json.dumps(entry, indent=1), encoding="utf-8")
        publishable(staging)
        if replace and cache.exists():  # move it aside: a rename onto a full directory fails
            aside = Path(tempfile.mkdtemp(prefix=f".{key}.old-", suffix=".tmp", dir=cache_root))
            try:
                os.replace(cache, aside)
            except OSError:
                pass  # gone already, or being replaced by a concurrent run
            shutil.rmtree(aside, ignore_errors=True)
        try:
            os.replace(staging, cache)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise  # else: a concurrent run of the same key published first; keep its entry
    except OSError as exc:
        warnings.warn(f"the trained model was not cached ({os_error(exc, 'model cache')}); the run goes on")
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        unlock(lock)


def _save_training(training: dict, path: Path) -> None:
    payload = {k: v for k, v in training.items() if k not in ("history", "baseline_history", "snapshots")}
    for name in ("history", "baseline_history"):
        frame = training[name]
        payload[name] = None if frame is None else {c: frame[c].tolist() for c in frame.columns}
    payload["snapshots"] = [{"step": int(s["step"]), "weight": torch.as_tensor(np.asarray(s["weight"])),
                             "bias": torch.as_tensor(np.asarray(s["bias"]))} for s in training["snapshots"]]
    torch_save_atomic(payload, path)


def _load_training(path: Path) -> dict:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    for name in ("history", "baseline_history"):
        payload[name] = None if payload[name] is None else pd.DataFrame(payload[name])
    payload["snapshots"] = [{"step": s["step"], "weight": s["weight"].numpy(), "bias": s["bias"].numpy()}
                            for s in payload["snapshots"]]
    return payload


def decision_dates(config: RunConfig, panel) -> pd.DatetimeIndex:
    """Month-ends at which the strategy decides: the month before ``test_start`` up to the
    month before ``test_end``, so the realised returns fill ``test_start``..``test_end``."""
    stamps = config.timestamps
    first = stamps["test_start"] + pd.offsets.MonthEnd(0) - pd.offsets.MonthEnd(1)
    last = stamps["test_end"] + pd.offsets.MonthEnd(0) - pd.offsets.MonthEnd(1)
    dates = panel.dates[(panel.dates >= first) & (panel.dates <= last)]
    if len(dates) == 0:
        raise ConfigError(f"no decision month between {first.date()} and {last.date()} in the data", "dates")
    return dates


def predict_offline(bundle: SignalBundle, data: RunData, dates) -> dict[str, pd.DataFrame]:
    """Offline predictions of the LSTM and the baselines on the decision months."""
    return {"model": bundle.signal.predict_panel(data.panel, dates),
            "baseline": bundle.baseline.predict_panel(data.panel, dates),
            "composite": bundle.composite.predict_panel(data.panel, dates)}


def run_backtests(config: RunConfig, data: RunData, signal, dates, log: Log) -> dict:
    """One Backtrader run per selection × book.

    Returns ``{selection: {"baskets": frame, "books": {book: returns}, "turnover": {book: frame},
    "predictions": in-backtest predictions}}``.
    """
    from strategies import AShareCommission
    from strategies.backtest import run_book

    from .memo import MemoSignal

    bt = config.backtest
    memo = MemoSignal(signal)  # every book of the same months asks the same questions
    out = {}
    for selection in bt.selections:
        block = {"books": {}, "turnover": {}}
        for book in bt.books:
            t0 = time.perf_counter()
            costs = AShareCommission(commission=bt.costs.commission, min_commission=bt.costs.min_commission,
                                     stamp_duty=bt.costs.stamp_duty, lot=bt.lot)
            result = run_book(data.panel, memo, start=dates[0], end=dates[-1] + pd.offsets.MonthEnd(1),
                              cash=bt.cash, commission=costs, selection=selection, book=book,
                              top_pct=bt.top_pct, gross=bt.gross, lot=bt.lot, execution=bt.execution)
            block["books"][book] = result.returns
            block["turnover"][book] = result.turnover
            positions, transactions = result.strategy.analyzers.holdings.get_analysis()
            block.setdefault("positions", {})[book], block.setdefault("transactions", {})[book] = positions, transactions
            block.setdefault("baskets", result.baskets)
            block.setdefault("predictions", result.predictions)
            log(f"backtest: {selection}/{book} {len(result.returns)} months, "
                f"cum {np.prod(1 + result.returns.fillna(0)) - 1:+.2%} ({time.perf_counter() - t0:.1f} s)")
        out[selection] = block
    return out


def online_offline_gap(online: pd.DataFrame, offline: pd.DataFrame) -> float:
    """Largest |probability difference| between in-backtest and offline predictions on the
    offline decision months (the backtest also decides at its last bar, which realises nothing)."""
    cols = ["p_down", "p_neutral", "p_up"]
    online = online[online.index.get_level_values("date").isin(offline.index.get_level_values("date"))]
    # no join(suffixes=...): pandas < 3.1 lacks it (requirements allow pandas 2.2)
    joined = online[cols].add_suffix("_online").join(offline[cols], how="outer")
    diff = joined[[f"{c}_online" for c in cols]].to_numpy() - joined[cols].to_numpy()
    if np.isnan(diff).any():
        return float("inf")  # a stock predicted on one side only
    return float(np.abs(diff).max()) if diff.size else 0.0


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

    panel = data.panel
    grid = make_labels(panel.ret, panel.listed, labels)
    t = panel.dates.get_indexer(frame.index.get_level_values("date"))
    i = panel.codes.get_indexer(frame.index.get_level_values("code"))
    nxt = np.full(panel.ret.shape, np.nan)
    nxt[:-1] = panel.ret[1:]
    out = frame.copy()
    out["next_return"] = nxt[t, i]
    names = np.array(list(CLASSES) + [""], dtype=object)
    out["realised"] = names[np.where(grid[t, i] < 0, len(CLASSES), grid[t, i])]
    return out


def lstm_margin(model: dict, logistic: dict, composite: dict) -> dict:
    """The LSTM's out-of-sample rank IC and IC efficiency minus those of the better baseline
    (the one with the higher rank IC)."""
    better = "composite" if composite.get("rank_ic_mean", -np.inf) >= logistic.get("rank_ic_mean", -np.inf) \
        else "logistic"
    base = composite if better == "composite" else logistic
    return {"better_baseline": better,
            **{key: float(model.get(key, np.nan) - base.get(key, np.nan)) for key in ("rank_ic_mean", "ic_efficiency")}}


def summary_rows(doc: dict) -> list[tuple[str, str, str]]:
    """The headline table (this run vs the study) printed at the end of a run."""
    def pct(x):
        return "n/a" if x is None else f"{x:.1%}"

    def num(x, fmt=".3f"):
        return "n/a" if x is None else format(x, fmt)

    first = doc[doc["selections"][0]]
    rows = [("validation accuracy", pct(doc.get("validation_accuracy")), STUDY["validation_accuracy"]),
            ("OOS accuracy (no-skill)", f"{pct(first.get('oos_accuracy'))} ({pct(first.get('no_skill_accuracy'))})",
             STUDY["oos_accuracy"]),
            ("OOS mean rank IC (logistic; rank composite)",
             f"{num(first.get('rank_ic_mean'))} ({num(doc['baseline'].get('rank_ic_mean'))}; "
             f"{num((doc.get('composite') or {}).get('rank_ic_mean'))})", "-")]
    if doc["oracle"].get("ic_efficiency") is not None:
        rows.append(("IC efficiency vs oracle (logistic; rank composite)",
                     f"{num(doc['oracle']['ic_efficiency'], '.2f')} ({num(doc['baseline'].get('ic_efficiency'), '.2f')}; "
                     f"{num((doc.get('composite') or {}).get('ic_efficiency'), '.2f')})", "-"))
    if doc.get("validation") and doc["validation"].get("lstm"):
        lstm, logistic, composite = (num((doc["validation"].get(m) or {}).get("rank_ic"))
                                     for m in ("lstm", "baseline", "composite"))
        rows.insert(1, ("validation rank IC (logistic; rank composite)", f"{lstm} ({logistic}; {composite})", "-"))
    for mode in doc["selections"]:
        ls = doc[mode]["long_short"]
        rows.append((f"{mode}: long/short cum excess", pct(ls.get("cum_excess")),
                     STUDY.get(f"{mode}.long_short.cum_excess", "-")))
        rows.append((f"{mode}: long/short monthly win rate", pct(ls.get("monthly_win_rate")),
                     STUDY.get(f"{mode}.long_short.monthly_win_rate", "-")))
    return rows


def format_table(rows) -> str:
    header = ("measure", "this run", "study")
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(3)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@dataclass
class RunResult:
    directory: Path
    metrics: dict
    table: str


def run(config: RunConfig, output: Path | None = None, retrain: bool = False, quiet: bool = False,
        root: Path | None = None, log_level: str = "INFO") -> RunResult:
    """Run the whole pipeline and publish the run directory. See the module docstring.

    Progress lines go to stderr from ``log_level`` up (none with ``quiet``) and to ``run.log``,
    and so do the warnings raised during the run."""
    log = Log(quiet, log_level)
    with log.capturing_warnings():
        return _run(config, output, retrain, log, root)


def _run(config: RunConfig, output: Path | None, retrain: bool, log: Log, root: Path | None) -> RunResult:
    from reports import (build_figures, metrics_document, monthly_prediction_stats, prediction_metrics,
                         save_figures, write_report)
    from reports.factor import factor_summary
    from reports.series import factor_frame, prices_frame, write_series
    from reports.tearsheet import write_book_tearsheets
    from reports.inputs import json_safe

    root = Path(root or Path.cwd())
    output = check_output(Path(output or config.output.dir or root / "runs" / config.name))  # before any work
    timings: dict[str, float] = {}
    started = time.perf_counter()
    s = sections(config)

    t0 = time.perf_counter()
    data = load_data(config, s["window"].window, root)
    timings["data"] = time.perf_counter() - t0
    log(f"data: {data.panel} from {data.description} ({timings['data']:.1f} s)")

    t0 = time.perf_counter()
    cache_root = Path(config.output.cache_dir)
    bundle = train_signals(config, data, retrain, not log.progress, log, cache_root if cache_root.is_absolute()
                           else root / cache_root)
    timings["train"] = time.perf_counter() - t0
    for served in (bundle.signal, bundle.baseline, bundle.composite):
        served.to(config.device)  # predictions on CUDA when the run trains there
    log(f"model: {'loaded' if bundle.cached else 'trained'} ({timings['train']:.1f} s)")
    training = bundle.training

    t0 = time.perf_counter()
    dates = decision_dates(config, data.panel)
    offline = predict_offline(bundle, data, dates)
    timings["predict"] = time.perf_counter() - t0
    log(f"predict: {len(dates)} decision months {dates[0]:%Y-%m}..{dates[-1]:%Y-%m} ({timings['predict']:.1f} s)")

    t0 = time.perf_counter()
    books = run_backtests(config, data, bundle.signal, dates, log)
    timings["backtest"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    labels = s["labels"]
    model_stats = prediction_metrics(offline["model"], data.panel, labels, oracle=data.oracle)
    base_stats = prediction_metrics(offline["baseline"], data.panel, labels, oracle=data.oracle)
    composite_stats = prediction_metrics(offline["composite"], data.panel, labels, oracle=data.oracle)
    timings["total_before_outputs"] = time.perf_counter() - started
    doc = metrics_document({m: b["baskets"] for m, b in books.items()}, model_stats,
                           books={m: b["books"] for m, b in books.items()}, baseline=base_stats,
                           validation_accuracy=training.get("validation_accuracy"), timings=timings)
    gaps = {m: online_offline_gap(b["predictions"], offline["model"]) for m, b in books.items()}
    doc["checks"] = {"online_offline_max_abs_diff": max(gaps.values()),
                     "model_cached": bundle.cached, "model_key": bundle.key}
    doc["composite"] = composite_stats
    doc["validation"] = training.get("validation")
    doc["lstm_margin"] = lstm_margin(model_stats, base_stats, composite_stats)
    doc["training"] = {"baseline_validation_accuracy": training.get("baseline_validation_accuracy"),
                       "samples": training.get("samples"), "timings": training.get("timings"),
                       "best_step": training.get("best_step"), "folds": training.get("folds")}
    if walk_forward(config) is not None:
        monthly = {name: monthly_prediction_stats(offline[key], data.panel, labels, oracle=data.oracle)
                   for name, key in (("lstm", "model"), ("baseline", "baseline"), ("composite", "composite"))}
        doc["walk_forward"] = {"folds": [f.describe() for f in folds(config)],
                               "by_year": yearly_table(monthly, {m: b["baskets"] for m, b in books.items()})}
    doc["data"] = data.report
    doc["protocol"] = {"decisions": [f"{dates[0]:%Y-%m-%d}", f"{dates[-1]:%Y-%m-%d}"],
                       "execution": config.backtest.execution,
                       "label_return": "month-end close t to month-end close t+1"}

    with RunDirectory(output) as staging:
        (staging / "config.yaml").write_text(dump_config(config), encoding="utf-8")
        save_signal(bundle.signal, staging)
        labelled_predictions(offline["model"], data, labels).to_csv(staging / "predictions.csv",
                                                                    float_format="%.6g")
        series_models = {"lstm" if name == "model" else name: monthly_prediction_stats(
            frame, data.panel, labels, oracle=data.oracle if name == "model" else None)
            for name, frame in offline.items()}  # the LSTM and every baseline
        factor = factor_frame(offline["model"], data.panel)
        doc["factor"] = factor_summary(factor)
        written = write_series(staging / "series", books=books, models=series_models, factor=factor,
                               prices=prices_frame(data.panel))
        log(f"outputs: series/ ({', '.join(sorted(written))})")
        tearsheets = (write_book_tearsheets(books, staging, config.name, data.benchmark, log)
                      if config.output.tearsheets else {})
        figures = build_figures(
            baskets={m: b["baskets"] for m, b in books.items()},
            prediction=series_models["lstm"], baseline=series_models.get("baseline"),
            history=training.get("history"), snapshots=training.get("snapshots"),
            contribution=factor_contribution(served_model(bundle.signal)), styles=data.panel.styles,
            top_pct=config.backtest.top_pct, factor=factor)
        save_figures(figures, staging / "figures")
        log(f"outputs: figures/ ({len(figures)} figures)")
        timings["outputs"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - started
        doc["timings"] = {k: round(v, 2) for k, v in timings.items() if k != "total_before_outputs"}
        context = {"title": f"{config.name}: LSTM multi-factor stock selection",
                   "description": f"Data: {data.description}. Model trained on {config.dates.train_start}.."
                                  f"{config.dates.train_end}; out-of-sample decisions {dates[0]:%Y-%m}.."
                                  f"{dates[-1]:%Y-%m}" + (" (model loaded from the cache)." if bundle.cached else "."),
                   "run": {"data": data.description, "train": f"{config.dates.train_start}..{config.dates.train_end}",
                           "out of sample": f"{config.dates.test_start}..{config.dates.test_end}",
                           "validation": s["train"].validation, "model": f"{s['model'].layers}x{s['model'].hidden} LSTM, "
                           f"window {s['window'].window}, {s['train'].steps} steps of {s['train'].batch_size}",
                           "seed": config.seed},
                   "execution": config.backtest.execution, "top_pct": config.backtest.top_pct,
                   "config": config.to_dict(), "tearsheets": tearsheets, "series": sorted(written)}
        write_report(staging / "report.html", doc, figures, context)
        (staging / "metrics.json").write_text(json.dumps(json_safe(doc), indent=2), encoding="utf-8")
        table = format_table(summary_rows(json_safe(doc)))
        log(f"outputs: report.html, metrics.json ({time.perf_counter() - t0:.1f} s); run {timings['total']:.1f} s")
        log.record(table)
        (staging / "run.log").write_text(log.text(), encoding="utf-8")
    return RunResult(directory=output, metrics=doc, table=table)
