"""Cross-sectional ranks and rank correlations (numpy and pandas only).

The criterion of model selection (:func:`grouped_rank_ic`) and the linear rank composite
(:mod:`signals.composite`) both measure how well a score orders one month's stocks by
their next-month return: the Spearman correlation inside each month, averaged over months.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MIN_STOCKS = 10  # fewer stocks in a month give no meaningful rank correlation


def grouped_rank_ic(score: np.ndarray, outcome: np.ndarray, groups: np.ndarray) -> pd.Series:
    """Spearman correlation of ``score`` with ``outcome`` inside each group (month).

    Parameters
    ----------
    score, outcome : ndarray [n]
        One value per sample; non-finite pairs are left out.
    groups : ndarray [n]
        The month of each sample.

    Returns
    -------
    Series
        Indexed by group, NaN for groups with fewer than ``MIN_STOCKS`` finite pairs.
    """
    frame = pd.DataFrame({"g": np.asarray(groups), "s": np.asarray(score, dtype=np.float64),
                          "o": np.asarray(outcome, dtype=np.float64)})
    frame = frame[np.isfinite(frame["s"]) & np.isfinite(frame["o"])]
    ranks = frame.groupby("g")[["s", "o"]].rank()
    ranks["g"] = frame["g"]
    counts = ranks.groupby("g").size()
    ic = ranks.groupby("g")[["s", "o"]].corr().xs("s", level=1)["o"] if len(ranks) else pd.Series(dtype=float)
    return ic.where(counts.reindex(ic.index) >= MIN_STOCKS)


def mean_rank_ic(score: np.ndarray, outcome: np.ndarray, groups: np.ndarray) -> float:
    """Mean over months of :func:`grouped_rank_ic` (NaN when no month qualifies)."""
    ic = grouped_rank_ic(score, outcome, groups).dropna()
    return float(ic.mean()) if len(ic) else float("nan")


def cross_sectional_ranks(x: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Ranks of ``x [T, N, F]`` inside each ``(t, f)`` cross-section, scaled to [-1, 1].

    Cells not ``observed [T, N, F]`` get 0 (the middle rank); a cross-section with one
    observed value gets 0. Ties are broken by position (the inputs are continuous).
    """
    values = np.where(observed, x, np.nan).astype(np.float32)
    order = np.argsort(values, axis=1, kind="stable")  # NaN last
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(x.shape[1])[None, :, None], axis=1)
    count = observed.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(count > 1, 2.0 * ranks / np.maximum(count - 1, 1) - 1.0, 0.0)
    return np.where(observed, scaled, 0.0).astype(np.float32)
