"""The data stage: a config's ``data`` section → the Panel (and what comes with it)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.panel import DataWarning, Panel, PanelError, load_panel
from feeds.synthetic import make_market
from signals.composite import factor_rank_ics
from signals.ranking import cross_sectional_ranks

from .config import ConfigError, RunConfig


@dataclass
class RunData:
    """What the data stage hands on.

    Attributes
    ----------
    panel : Panel
        Months up to ``dates.test_end`` only: nothing later is ever read.
    oracle : ndarray or None
        The synthetic market's expected returns on the panel's grid (never a model input).
    benchmark : Series or None
        An index's monthly returns (daily bars), indexed by realisation month-end.
    report : dict
        What the source says about itself (for metrics.json and the report).
    """

    panel: Panel
    oracle: np.ndarray | None = None
    benchmark: pd.Series | None = None
    report: dict = field(default_factory=dict)
    description: str = ""


def load_data(config: RunConfig, window: int, root: Path | None = None, history: int | None = None) -> RunData:
    """Build the panel the config asks for and check it covers the run's dates.

    Raises
    ------
    ConfigError
        A path that does not exist, or dates the data does not cover.
    PanelError
        A problem inside the data (named by the loader).
    """
    data = config.data
    root = root or Path.cwd()
    if data.source == "synthetic":
        market = make_market(seed=config.seed, **data.synthetic)
        run = RunData(market.panel, oracle=market.oracle,
                      report={"source": "synthetic", "settings": {"seed": config.seed, **data.synthetic}},
                      description="the embedded synthetic A-share market (docs/synthetic_market.md)")
    else:
        path = _existing(root, data.path, "data.path")
        if data.source == "panel":
            run = RunData(load_panel(path, factors=data.factors, styles=data.styles),
                          report={"source": "panel", "path": str(path)},
                          description=f"the panel file {path.name}")
        else:
            from feeds.daily import panel_from_daily  # pandas-heavy ingestion, only when asked

            industry_map = None
            if data.industry_map:
                industry_map = _existing(root, data.industry_map, "data.industry_map")
            panel, ingest = panel_from_daily(path, industry_map=industry_map)
            benchmark = None
            if data.benchmark:
                try:
                    benchmark = ingest.benchmark(data.benchmark)
                except PanelError as exc:
                    raise ConfigError(str(exc), "data.benchmark") from None
            run = RunData(panel, benchmark=benchmark, report={**ingest.to_dict(), "source": "daily", "path": str(path)},
                          description=f"daily bars from {path.name}: {ingest.n_stocks} stocks, "
                                      f"{ingest.adjustment.n_ex_rights_days} ex-rights days neutralised")
    return _cover(run, config, window, history or window)


def _existing(root: Path, name: str, where: str) -> Path:
    path = Path(name)
    path = path if path.is_absolute() else root / path
    if not path.exists():
        raise ConfigError(f"file not found: {path}", where)
    return path


#: Cross-sectional preprocessing (winsorize, z-score, industry residuals), tercile labels and three
#: baskets need a cross-section: below MIN_STOCKS per month they are degenerate (one stock: every
#: z-score 0 and a "validation accuracy" of 100%; two: z-scores of ±1); below FEW_STOCKS they are
#: noisy enough to say so. (The committed real-data fixture has 4 stocks: a warning, not an error.)
MIN_STOCKS, FEW_STOCKS = 3, 30


def _check_breadth(panel: Panel, first: int) -> None:
    start = panel.dates[min(first, len(panel.dates) - 1)]
    counts = panel.listed[first:].sum(axis=1) if first < len(panel.dates) else panel.listed.sum(axis=1)
    typical = int(np.median(counts))
    if typical < MIN_STOCKS:
        raise PanelError(f"too few stocks for cross-sectional preprocessing: {typical} listed per month "
                         f"(median from {start:%Y-%m}), at least {MIN_STOCKS} needed")
    if typical < FEW_STOCKS:
        warnings.warn(DataWarning(f"only {typical} stocks listed per month (median from {start:%Y-%m}); "
                                  f"cross-sections of fewer than {FEW_STOCKS} stocks give noisy z-scores, "
                                  "terciles and baskets"), stacklevel=2)


#: Industry neutralization takes each factor's industry mean out: a stock alone in its industry
#: that month keeps 0 in every factor, nothing the model can learn from. Beyond this share of the
#: listed stock-months it is worth a line (a market of few stocks split into many industries).
ALONE_IN_INDUSTRY = 0.05


def _check_industries(panel: Panel, first: int, neutralize: str) -> None:
    if neutralize == "none" or panel.industry is None:
        return
    listed, industry = panel.listed[first:], panel.industry[first:]
    t, i = np.nonzero(listed & (industry >= 0))
    if not len(t):
        return
    groups = t * (int(industry.max()) + 1) + industry[t, i]
    alone = float((np.bincount(groups)[groups] == 1).mean())
    if alone > ALONE_IN_INDUSTRY:
        warnings.warn(DataWarning(
            f"{alone:.0%} of the listed stock-months from {panel.dates[first]:%Y-%m} are alone in their industry "
            f"that month: industry neutralization leaves every factor of theirs at 0, so the model sees nothing "
            f"of them (fewer industries, more stocks, or preprocess.neutralize: none)"), stacklevel=2)


#: Calendar days between daily bars' last day and its month's end beyond which that month is
#: partial (holidays end a month's trading a few days early at most).
PARTIAL_MONTH_DAYS = 7


#: A factor missing in more than this share of the listed stock-months is mostly the fill value
#: after preprocessing (the cross-sectional mean): worth a line, since a model cannot learn from it.
SPARSE_FACTOR = 0.5


def _check_coverage(panel: Panel, first: int) -> None:
    listed = panel.listed[first:]
    if not listed.any():
        return
    start = panel.dates[first]
    missing = (np.isnan(panel.factors[first:]) & listed[..., None]).sum(axis=(0, 1)) / listed.sum()
    sparse = [(name, share) for name, share in zip(panel.factor_names, missing) if share > SPARSE_FACTOR]
    if sparse:
        sparse.sort(key=lambda item: -item[1])
        named = ", ".join(f"{name} {share:.0%}" for name, share in sparse[:5]) + (", ..." if len(sparse) > 5 else "")
        warnings.warn(DataWarning(f"{len(sparse)} factor(s) missing in more than {SPARSE_FACTOR:.0%} of the listed "
                                  f"stock-months from {start:%Y-%m} ({named}): preprocessing fills their gaps with "
                                  "the fill value (by default 0, the mean after z-scoring)"), stacklevel=2)


#: No real factor ranks next month's returns this well on average (a good one: 0.05-0.15; the
#: synthetic market's oracle, which knows every expected return: 0.13). Above it, the column
#: knows the future: a forward return or a label left among the factors.
PRESCIENT_IC, PRESCIENT_MONTHS = 0.3, 12


def _check_prescience(panel: Panel, training: slice) -> None:
    """Warn about factors whose mean rank IC with the next month's return over the training window
    (``training``: its rows, the last label month's left out) is beyond any real factor's (on up to
    PRESCIENT_MONTHS months spread over it: enough to see it)."""
    rows = np.arange(len(panel.dates))[training]
    if not len(rows):
        return
    rows = rows[np.unique(np.linspace(0, len(rows) - 1, min(len(rows), PRESCIENT_MONTHS)).astype(int))]
    future = np.where(panel.listed[rows + 1], panel.ret[rows + 1], np.nan)
    factors = panel.factors[rows]
    ranks = cross_sectional_ranks(factors, np.isfinite(factors) & panel.listed[rows][..., None])
    t, i = np.nonzero(panel.listed[rows])
    ics = factor_rank_ics(ranks, future, t, i).mean()  # the rank composite's weights, on raw factors
    # A rank IC of no skill has a std of about 1/sqrt(stocks - 1) a month: on a short window of
    # few stocks chance alone passes 0.3 (one month of 40 stocks: 0.16), so the bar is 4 of those
    # standard errors when that is higher
    noise = 1.0 / np.sqrt(max(len(t) / len(rows) - 1.0, 1.0) * len(rows))
    bar = max(PRESCIENT_IC, 4.0 * noise)
    prescient = [f"{panel.factor_names[f]} {ic:+.2f}" for f, ic in ics.items() if abs(ic) > bar]
    if prescient:
        warnings.warn(DataWarning(
            f"factor(s) with a mean rank IC beyond ±{bar:.2g} against the NEXT month's return over the "
            f"training window: {', '.join(prescient)}. No real factor ranks the future this well: is it a "
            "forward return or a label? (A factor at date t may only use data up to t.)"), stacklevel=2)


def _cover(run: RunData, config: RunConfig, window: int, history: int) -> RunData:
    """Check the dates against the data and cut the panel at ``test_end`` (``history``: the
    months a sample needs, ``WindowConfig.required``)."""
    dates = config.timestamps
    panel = run.panel
    first, last = panel.dates[0], panel.dates[-1]
    test_end = min(dates["test_end"] + pd.offsets.MonthEnd(0), last)
    if dates["test_start"] + pd.offsets.MonthEnd(0) > last:
        raise ConfigError(f"test_start {dates['test_start'].date()} is after the data's last month "
                          f"{last:%Y-%m}", "dates.test_start")
    if dates["train_start"] + pd.offsets.MonthEnd(0) < first:
        raise ConfigError(f"train_start {dates['train_start'].date()} is before the data's first month "
                          f"{first:%Y-%m}", "dates.train_start")
    # the training window's rows (its months before the last one: those have a label inside it)
    before, train_end = (int(panel.dates.searchsorted(dates[k] + pd.offsets.MonthEnd(0)))
                         for k in ("train_start", "train_end"))
    if before < history - 1 < len(panel.dates):
        # months before train_start serve as the first windows' history; without them the
        # training window's first months give no sample, and the report's span would not say so
        warnings.warn(DataWarning(
            f"dates.train_start {dates['train_start']:%Y-%m} leaves {before} month(s) of data before it: a sample "
            f"needs {history} months of history, so the first training sample is {panel.dates[history - 1]:%Y-%m}; "
            f"give the data {history - 1 - before} earlier month(s) or start training later"), stacklevel=2)
    if test_end < dates["test_end"] + pd.offsets.MonthEnd(0):
        warnings.warn(DataWarning(f"dates.test_end {dates['test_end']:%Y-%m} is after the data's last month "
                                  f"{last:%Y-%m}: the test ends there"), stacklevel=2)
    last_day = pd.Timestamp(run.report.get("last_day") or last)
    if (last_day + pd.offsets.MonthEnd(0) - last_day).days > PARTIAL_MONTH_DAYS and test_end >= last:
        warnings.warn(DataWarning(f"the daily bars end on {last_day.date()}: the test's last month, {last:%Y-%m}, "
                                  f"is partial (its return covers the days to {last_day.date()} only); end the "
                                  f"test before it with dates.test_end"), stacklevel=2)
    keep = int(panel.dates.searchsorted(test_end, "right"))
    cut = panel.take(rows=slice(0, keep))
    cut.validate(window=window)
    cut.check_values(run.description)
    _check_breadth(cut, before)
    preprocess = config.sections.get("preprocess")
    _check_industries(cut, before, preprocess.neutralize if preprocess is not None else "industry")
    _check_coverage(cut, before)
    _check_prescience(cut, slice(before, train_end))
    run.panel = cut
    if run.oracle is not None:
        run.oracle = run.oracle[:keep]
    return run
