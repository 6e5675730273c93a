"""The linear rank composite: the baseline a quant builds before any model.

Each factor's cross-sectional rank, signed and weighted by its mean rank IC over the
training samples (Spearman correlation with the next-month return, per month, averaged):
``score = Σ_f IC_f · rank_f / Σ_f |IC_f|``. It sees the last snapshot only and learns
nothing but one number per factor, so what a sequence model adds is its margin over this.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .model import ModelConfig, RankComposite
from .ranking import MIN_STOCKS


def factor_rank_ics(ranks: np.ndarray, outcome: np.ndarray, t: np.ndarray, i: np.ndarray,
                    dates=None) -> pd.DataFrame:
    """Monthly rank IC of every factor over the samples ``(t, i)``.

    Parameters
    ----------
    ranks : ndarray [T, N, F]
        Cross-sectional ranks of the factors (``PreprocessConfig(rank=True)``).
    outcome : ndarray [T, N]
        The next-month return of each stock-month.
    t, i : ndarray [n]
        The samples (e.g. the training split of :func:`signals.fit`).
    dates : sequence, optional
        Labels of the months (default: the positions ``t``).

    Returns
    -------
    DataFrame
        One row per month with at least ``MIN_STOCKS`` samples, one column per factor.
    """
    t, i = np.asarray(t), np.asarray(i)
    rows, index = [], []
    for month in np.unique(t):
        stocks = i[t == month]
        y = outcome[month, stocks]
        ok = np.isfinite(y)
        if ok.sum() < MIN_STOCKS:
            continue
        x = ranks[month, stocks[ok]].astype(np.float64)
        r = pd.Series(y[ok]).rank().to_numpy()
        xc, rc = x - x.mean(axis=0), r - r.mean()
        den = np.sqrt((xc ** 2).sum(axis=0) * (rc ** 2).sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            rows.append(np.where(den > 0, xc.T @ rc / den, 0.0))
        index.append(month if dates is None else dates[month])
    return pd.DataFrame(rows, index=index)


def fit_composite(ranks: np.ndarray, outcome: np.ndarray, t: np.ndarray, i: np.ndarray,
                  config: ModelConfig) -> tuple[RankComposite, np.ndarray]:
    """A :class:`RankComposite` weighted by the factors' mean rank ICs over ``(t, i)``.

    Returns the module and the mean ICs ``[F]``. The logits are scaled so that the score
    has unit standard deviation over the samples.
    """
    ics = factor_rank_ics(ranks, outcome, t, i)
    mean = np.nan_to_num(ics.mean().to_numpy(dtype=np.float64)) if len(ics) else np.zeros(ranks.shape[-1])
    total = np.abs(mean).sum()
    weight = mean / total if total > 0 else mean
    module = RankComposite(config)
    score = ranks[np.asarray(t), np.asarray(i)].astype(np.float64) @ weight
    spread = float(score.std()) if len(score) > 1 else 0.0
    with torch.no_grad():
        module.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        module.scale.fill_(1.0 / spread if spread > 0 else 1.0)
    return module.eval(), mean
