"""The series behind every figure of a run, as files a researcher loads with one call each.

:func:`write_series` writes ``series/`` in the run directory (Parquet; CSV too for the
small tables a spreadsheet user opens):

* ``returns``: monthly returns, index ``date`` (realisation month-end), one column per
  ``<selection>.basket.<high|neutral|low|universe>`` (paper baskets) and
  ``<selection>.book.<book>`` (traded Backtrader books, after costs).
* ``ic``: per model (``model`` = the run's LSTM, ``baseline``, ...) and decision month:
  ``accuracy, no_skill, n, ic, rank_ic, n_ic`` (and ``oracle_rank_ic``).
* ``turnover``: per selection, book and decision month: ``buy, sell, commission, turnover``.
* ``positions`` / ``transactions`` (Parquet only): month-end holdings and executed orders
  of every traded book (:class:`strategies.positions.Holdings`).
* ``factor`` (Parquet only): the signal as a factor, alphalens style: index ``(date,
  asset)``, ``score`` = p_up - p_down, the class probabilities, forward returns
  ``fwd_1m, fwd_3m, fwd_6m`` and ``industry`` (:func:`factor_frame`).
* ``prices`` (Parquet only): month-end adjusted close, ``date`` x ``asset``, the ``prices``
  argument of ``alphalens.utils.get_clean_factor_and_forward_returns``.

What every column means is in ``docs/reports.md``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from feeds.panel import Panel
from signals.predictions import PROBABILITY_COLUMNS, score

from .files import atomic_path
from .inputs import BASKETS, monthly_returns, predictions_on_panel, require_columns

HORIZONS = (1, 3, 6)  # months of the factor file's forward returns
CSV_FILES = ("returns", "ic", "turnover")


def forward_column(months: int) -> str:
    return f"fwd_{months}m"


# ============================================================================ frames
def returns_frame(books: Mapping[str, Mapping]) -> pd.DataFrame:
    """Wide monthly returns: ``<selection>.basket.<name>`` and ``<selection>.book.<book>`` columns."""
    columns = {}
    for mode, block in books.items():
        baskets = require_columns(block["baskets"], BASKETS, f"{mode} baskets")
        for name in BASKETS:
            columns[f"{mode}.basket.{name}"] = monthly_returns(baskets[name], f"{mode} basket {name}")
        for book, series in (block.get("books") or {}).items():
            columns[f"{mode}.book.{book}"] = monthly_returns(series, f"{mode} book {book}")
    frame = pd.DataFrame(columns, dtype=np.float64)
    frame.index = pd.DatetimeIndex(frame.index, name="date")
    return frame.sort_index()


def ic_frame(models: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Long table of :func:`reports.metrics.monthly_prediction_stats` per model: ``model, date, ...``."""
    frames = []
    for name, monthly in models.items():
        require_columns(monthly, ("accuracy", "ic", "rank_ic"), f"{name} monthly prediction stats")
        part = monthly.copy()
        part.index = pd.DatetimeIndex(part.index, name="date")
        frames.append(part.reset_index().assign(model=str(name)))
    if not frames:
        return pd.DataFrame(columns=["model", "date", "accuracy", "ic", "rank_ic"])
    out = pd.concat(frames, ignore_index=True)
    return out[["model", "date"] + [c for c in out.columns if c not in ("model", "date")]]


def _long(books: Mapping[str, Mapping], key: str, index_name: str = "date") -> pd.DataFrame:
    """Concatenate ``books[mode][key][book]`` frames with ``selection`` and ``book`` columns."""
    frames = []
    for mode, block in books.items():
        for book, frame in (block.get(key) or {}).items():
            if frame is None:
                continue
            part = frame.reset_index() if index_name in (frame.index.names or []) else frame.reset_index(drop=True)
            frames.append(part.assign(selection=str(mode), book=str(book)))
    if not frames:
        return pd.DataFrame(columns=["selection", "book", index_name])
    out = pd.concat(frames, ignore_index=True)
    return out[["selection", "book"] + [c for c in out.columns if c not in ("selection", "book")]]


def factor_frame(predictions: pd.DataFrame, panel: Panel, horizons: Sequence[int] = HORIZONS) -> pd.DataFrame:
    """The model's predictions as an alphalens-style factor table.

    Parameters
    ----------
    predictions : pd.DataFrame
        ``SignalModel.predict_panel`` output, ``(date, code)`` -> ``p_down, p_neutral,
        p_up, pred``; dates are decision month-ends on ``panel``.
    panel : Panel
        The raw panel (returns and industries).
    horizons : sequence of int
        Forward-return horizons in months.

    Returns
    -------
    pd.DataFrame
        Index ``(date, asset)``; ``score`` (p_up - p_down, the ranking score every IC of
        the run uses), ``p_down, p_neutral, p_up, pred``, ``fwd_<k>m`` (the compounded
        return of months t+1..t+k, NaN unless every month is known and the stock is
        listed at ``t``: ``fwd_1m`` is the outcome every IC of the run is computed on)
        and ``industry`` (the panel's industry name at ``t``; missing without one).
    """
    t, i = predictions_on_panel(predictions, panel)
    out = pd.DataFrame({"score": score(predictions).to_numpy(np.float64)},
                       index=pd.MultiIndex.from_arrays([predictions.index.get_level_values(0),
                                                        predictions.index.get_level_values(1).astype(str)],
                                                       names=["date", "asset"]))
    for col in PROBABILITY_COLUMNS:
        out[col] = predictions[col].to_numpy(np.float64)
    out["pred"] = predictions["pred"].astype(str).to_numpy()
    growth = np.log1p(panel.ret)  # NaN where the month's return is unknown
    for k in horizons:
        fwd = np.full(panel.ret.shape, np.nan)
        if panel.T > k:
            window = np.lib.stride_tricks.sliding_window_view(growth[1:], k, axis=0)  # [T-k, N, k]
            fwd[:panel.T - k] = np.expm1(window.sum(axis=-1))
        fwd = np.where(panel.listed, fwd, np.nan)
        out[forward_column(k)] = fwd[t, i]
    if panel.has_industry:
        names = np.array(list(panel.industries) + [None], dtype=object)
        codes = panel.industry[t, i]
        out["industry"] = pd.array(names[np.where(codes >= 0, codes, len(panel.industries))], dtype="string")
    else:
        out["industry"] = pd.array([None] * len(out), dtype="string")
    return out.sort_index()


def prices_frame(panel: Panel) -> pd.DataFrame:
    """Month-end adjusted close, ``date`` x ``asset`` (alphalens' ``prices``)."""
    frame = pd.DataFrame(panel.close, index=pd.DatetimeIndex(panel.dates, name="date"),
                         columns=pd.Index(panel.codes.astype(str), name="asset"))
    return frame.where(panel.listed)


# ============================================================================ files
def write_series(directory, *, books: Mapping[str, Mapping], models: Mapping[str, pd.DataFrame] | None = None,
                 factor: pd.DataFrame | None = None, prices: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write the series files of a run into ``directory`` (usually ``<run>/series``).

    Parameters
    ----------
    books : dict
        Selection -> ``{"baskets": frame, "books": {book: returns}, "turnover": {book:
        frame}, "positions": {book: frame}, "transactions": {book: frame}}`` (what the
        pipeline's backtests return; the last three are optional).
    models : dict of str -> pd.DataFrame, optional
        Model name -> :func:`reports.metrics.monthly_prediction_stats`.
    factor : pd.DataFrame, optional
        :func:`factor_frame`.
    prices : pd.DataFrame, optional
        :func:`prices_frame`.

    Returns
    -------
    dict of str -> Path
        File name -> path, for every file written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tables = {"returns": returns_frame(books), "ic": ic_frame(models or {}),
              "turnover": _long(books, "turnover"), "positions": _long(books, "positions"),
              "transactions": _long(books, "transactions")}
    if factor is not None:
        tables["factor"] = factor
    if prices is not None:
        tables["prices"] = prices
    written = {}
    for name, frame in tables.items():
        path = directory / f"{name}.parquet"
        with atomic_path(path) as tmp:
            frame.to_parquet(tmp)
        written[path.name] = path
        if name in CSV_FILES:
            path = directory / f"{name}.csv"
            with atomic_path(path) as tmp:
                frame.to_csv(tmp, index=name == "returns", float_format="%.10g", date_format="%Y-%m-%d")
            written[path.name] = path
    return written
