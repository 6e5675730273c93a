"""Array helpers on dense ``[days or months, stocks]`` grids (row = time, column = stock).

Plain numpy, no pandas: the daily-bar modules (``daily_*``), the factor library and the
Backtrader feed share them, so none of those has to import another for a helper.
"""
from __future__ import annotations

import numpy as np


def last_row(mask: np.ndarray) -> np.ndarray:
    """[D, N] row of the last True at or before each row (-1 before the first)."""
    rows = np.arange(mask.shape[0])[:, None]
    return np.maximum.accumulate(np.where(mask, rows, -1), axis=0)


def first_row(mask: np.ndarray) -> np.ndarray:
    """[N] row of the first True of each column (-1 when none)."""
    first = np.argmax(mask, axis=0)
    return np.where(mask.any(axis=0), first, -1)


def carry(a: np.ndarray, present: np.ndarray, fill=np.nan) -> np.ndarray:
    """Each row's value from the last row at or before it where ``present`` (``fill`` before the first)."""
    last = last_row(present)
    out = a[np.maximum(last, 0), np.arange(a.shape[1])]
    return np.where(last >= 0, out, fill).astype(a.dtype, copy=False)


def ffill(a: np.ndarray) -> np.ndarray:
    """Carry the last finite value down axis 0 (NaN before the first one)."""
    return carry(a, np.isfinite(a))


def shift(a: np.ndarray, fill=np.nan) -> np.ndarray:
    """Row d holds row d-1 (the first row gets ``fill``)."""
    out = np.empty_like(a)
    out[0] = fill
    out[1:] = a[:-1]
    return out


def lag(a: np.ndarray, k: int) -> np.ndarray:
    """Row t holds row t-k (NaN for the first k rows)."""
    out = np.full_like(a, np.nan)
    if k < len(a):
        out[k:] = a[:len(a) - k]
    return out
