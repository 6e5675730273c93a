"""Class labels: the class of each stock's return over the NEXT month.

The label of stock ``i`` at month-end ``t`` is the class of ``ret[t + 1, i]`` (the
return realised from the close of ``t`` to the close of ``t + 1``), so the last month
of a panel has no label. Classes follow :data:`CLASSES`: 0 = down, 1 = neutral, 2 = up.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from feeds.errors import UserError

CLASSES = ("down", "neutral", "up")
NO_LABEL = -1
LABEL_KINDS = ("fixed", "tercile")


class LabelError(UserError):
    """Label settings are inconsistent."""


@dataclass(frozen=True)
class LabelConfig:
    """How next-month returns become classes (defaults in brackets).

    Parameters
    ----------
    kind : {'fixed', 'tercile'}
        ['fixed'] up when the return exceeds ``up``, down when it is below ``down``,
        neutral in between (the seed's ±3%); 'tercile' splits every month's
        cross-section into thirds by return rank (ties share the lower class).
    up : float
        [0.03] upper threshold for 'fixed'.
    down : float
        [-0.03] lower threshold for 'fixed'.
    excess : bool
        [False] classify the return minus the month's equal-weight cross-sectional
        mean (the market move is then no longer part of the label). Ranks, and so
        'tercile', are unaffected.
    """

    kind: str = "fixed"
    up: float = 0.03
    down: float = -0.03
    excess: bool = False

    def __post_init__(self):
        if self.kind not in LABEL_KINDS:
            raise LabelError(f"labels.kind must be one of {', '.join(LABEL_KINDS)}, got {self.kind!r}")
        if not self.down < self.up:
            raise LabelError(f"labels.down ({self.down}) must be below labels.up ({self.up})")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LabelConfig":
        return cls(**data)


def classify(returns: np.ndarray, config: LabelConfig | None = None) -> np.ndarray:
    """Classes of the returns of ONE month per row: [T, N] float → [T, N] int8 (-1 where NaN).

    Row ``t`` is a cross-section of realised returns; 'tercile' and ``excess`` use each
    row's finite values only.
    """
    config = config or LabelConfig()
    r = np.asarray(returns, dtype=np.float64)
    ok = np.isfinite(r)
    out = np.full(r.shape, NO_LABEL, dtype=np.int8)
    if config.kind == "tercile":
        # 0-based rank within each row; tied returns share the lowest rank, hence one class.
        rank = pd.DataFrame(r).rank(axis=1, method="min").to_numpy() - 1
        count = ok.sum(axis=1, keepdims=True)
        cls = np.minimum(3 * np.nan_to_num(rank) // np.maximum(count, 1), 2).astype(np.int8)
        out[ok] = cls[ok]
        return out
    if config.excess:
        n = np.maximum(ok.sum(axis=1, keepdims=True), 1)
        r = r - np.where(ok, r, 0.0).sum(axis=1, keepdims=True) / n
    out[ok] = 1
    out[ok & (r > config.up)] = 2
    out[ok & (r < config.down)] = 0
    return out


def make_labels(ret: np.ndarray, listed: np.ndarray, config: LabelConfig | None = None) -> np.ndarray:
    """Label of every stock-month: the class of next month's return.

    Parameters
    ----------
    ret : ndarray [T, N]
        ``ret[t]`` is the return of the month ending at ``dates[t]``.
    listed : ndarray [T, N] bool
        A stock gets a label at ``t`` only if it is listed at ``t``.
    config : LabelConfig, optional

    Returns
    -------
    ndarray [T, N] int8
        Class index, or ``NO_LABEL`` (-1) when the stock is not listed at ``t``, its
        next return is unknown, or ``t`` is the last month.
    """
    ret = np.asarray(ret)
    out = np.full(ret.shape, NO_LABEL, dtype=np.int8)
    if ret.shape[0] > 1:
        out[:-1] = classify(ret[1:], config)
    out[~np.asarray(listed, dtype=bool)] = NO_LABEL
    return out
