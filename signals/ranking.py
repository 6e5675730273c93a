"""Cross-sectional ranks and rank correlations (numpy and pandas only).

The criterion of model selection (:func:`mean_rank_ic`) and the linear rank composite
(:mod:`signals.composite`) both measure how well a score orders one month's stocks by
their next-month return: the Spearman correlation inside each month, averaged over months,
computed by :mod:`feeds.crosssection` (the one implementation, which the evaluation and
the synthetic market's oracle use too).
"""
from __future__ import annotations

import numpy as np

from feeds.crosssection import MIN_STOCKS, grouped_rank_ic

__all__ = ["MIN_STOCKS", "grouped_rank_ic", "mean_rank_ic", "cross_sectional_ranks"]


def mean_rank_ic(score: np.ndarray, outcome: np.ndarray, groups: np.ndarray) -> float:
    """Mean over months of :func:`grouped_rank_ic` (NaN when no month qualifies)."""
    ic = grouped_rank_ic(score, outcome, groups).dropna()
    return float(ic.mean()) if len(ic) else float("nan")


def cross_sectional_ranks(x: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Ranks of ``x [T, N, F]`` inside each ``(t, f)`` cross-section, scaled to [-1, 1].

    Cells not ``observed [T, N, F]`` get 0 (the middle rank); a cross-section with one
    observed value gets 0. Ties are broken by position (the inputs are continuous).
    """
    out = np.zeros(x.shape, dtype=np.float32)
    positions = np.arange(x.shape[1])[:, None]
    for t in range(x.shape[0]):  # month by month: the [T, N, F] temporaries were a gigabyte
        seen = observed[t]
        values = np.where(seen, x[t], np.nan).astype(np.float32)
        order = np.argsort(values, axis=0, kind="stable")  # NaN last
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, positions, axis=0)
        count = seen.sum(axis=0, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = np.where(count > 1, 2.0 * ranks / np.maximum(count - 1, 1) - 1.0, 0.0)
        out[t] = np.where(seen, scaled, 0.0)
    return out
