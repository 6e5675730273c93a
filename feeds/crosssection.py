"""Rank correlations inside cross-sections (numpy and pandas only).

The project measures how well a score orders one month's stocks by their next-month return
with the Spearman correlation inside each month: the oracle of the synthetic market
(:meth:`feeds.synthetic.Market.oracle_rank_ic`), the model-selection criterion
(:func:`signals.ranking.mean_rank_ic`) and the evaluation of predictions
(:mod:`signals.evaluate`) all use :func:`rank_correlation` here, so their figures agree.
It sits in ``feeds``, the bottom layer, because the synthetic market needs it and ``feeds``
never imports ``signals``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MIN_STOCKS = 10  # fewer stocks in a month give no meaningful rank correlation


def rank_correlation(score: np.ndarray, outcome: np.ndarray) -> float:
    """Spearman correlation of two 1-D arrays over the pairs where both are finite.

    Ties share their average rank. NaN with fewer than :data:`MIN_STOCKS` finite pairs, or
    when either side is constant.
    """
    score, outcome = np.asarray(score, dtype=np.float64), np.asarray(outcome, dtype=np.float64)
    ok = np.isfinite(score) & np.isfinite(outcome)
    if ok.sum() < MIN_STOCKS:
        return float("nan")
    a = pd.Series(score[ok]).rank().to_numpy()
    b = pd.Series(outcome[ok]).rank().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant side has no correlation: NaN
        return float(np.corrcoef(a, b)[0, 1])


def rank_ic(score: np.ndarray, outcome: np.ndarray, dates) -> pd.Series:
    """Row-wise :func:`rank_correlation` of two ``[T, N]`` arrays (one row per month).

    Returns
    -------
    Series
        Indexed by ``dates`` (one per row), named ``rank_ic``.
    """
    values = [rank_correlation(s, o) for s, o in zip(score, outcome)]
    return pd.Series(values, index=pd.DatetimeIndex(dates), name="rank_ic", dtype=np.float64)


def grouped_rank_ic(score: np.ndarray, outcome: np.ndarray, groups: np.ndarray) -> pd.Series:
    """:func:`rank_correlation` of ``score`` with ``outcome`` inside each group (month).

    Parameters
    ----------
    score, outcome : ndarray [n]
        One value per sample; non-finite pairs are left out.
    groups : ndarray [n]
        The month of each sample.

    Returns
    -------
    Series
        Indexed by the sorted groups that have a finite pair, NaN for groups with fewer than
        :data:`MIN_STOCKS` of them.
    """
    score, outcome = np.asarray(score, dtype=np.float64), np.asarray(outcome, dtype=np.float64)
    ok = np.isfinite(score) & np.isfinite(outcome)
    score, outcome, groups = score[ok], outcome[ok], np.asarray(groups)[ok]
    order = np.argsort(groups, kind="stable")  # keeps each group's samples in their given order
    keys, starts = np.unique(groups[order], return_index=True)
    parts = np.split(order, starts[1:]) if len(order) else []
    return pd.Series([rank_correlation(score[p], outcome[p]) for p in parts], index=keys, dtype=np.float64)
