"""Lazy 24-month sequence windows over the dense preprocessed panel.

A sample is a pair ``(t, i)``: stock ``i``'s factor vectors for months
``t - window + 1 .. t`` and, for training, the label of month ``t``. Samples are
only indices; a batch gathers its ``[B, window, F]`` slab from the ``[T, N, F]``
tensor with one fancy-indexing call, so no ``[samples, window, F]`` copy ever exists.

History and padding
-------------------
``history_length[t, i]`` is the number of consecutive listed months of stock ``i``
ending at ``t`` (capped at ``window``). A sample needs ``min_history`` of them
(default: the whole window). With ``min_history < window`` shorter histories are
padded: their months are packed at the start of the window, the rest is zero, and
the batch carries ``lengths`` so the model reads only the listed months (a padded
step never enters the recurrent state; see :class:`signals.model.RecurrentClassifier`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from feeds.errors import UserError
from .labels import NO_LABEL


class WindowError(UserError):
    """Window settings are inconsistent."""


@dataclass(frozen=True)
class WindowConfig:
    """Sequence window settings (defaults in brackets).

    Parameters
    ----------
    window : int
        [24] months per sample (the seed's sequence length).
    min_history : int or None
        [None = ``window``] listed months a stock needs at ``t`` to get a sample or a
        prediction; below ``window`` the shorter histories are padded and masked.
    """

    window: int = 24
    min_history: int | None = None

    def __post_init__(self):
        if self.window < 1:
            raise WindowError(f"window must be >= 1, got {self.window}")
        if self.min_history is not None and not 1 <= self.min_history <= self.window:
            raise WindowError(f"min_history must lie in 1..window ({self.window}), got {self.min_history}")

    @property
    def required(self) -> int:
        """The effective ``min_history``."""
        return self.window if self.min_history is None else self.min_history

    @property
    def pads(self) -> bool:
        """Whether histories shorter than the window are padded (else they are excluded)."""
        return self.required < self.window

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "WindowConfig":
        return cls(**data)


def history_length(listed: np.ndarray, window: int) -> np.ndarray:
    """Consecutive listed months ending at each ``t`` (0 when not listed), capped at ``window``.

    Parameters
    ----------
    listed : ndarray [T, N] bool

    Returns
    -------
    ndarray [T, N] int32
    """
    listed = np.asarray(listed, dtype=bool)
    count = np.cumsum(listed, axis=0, dtype=np.int32)
    # The count at the last unlisted month so far is where the current run started.
    restart = np.maximum.accumulate(np.where(listed, 0, count), axis=0)
    return np.minimum(count - restart, window).astype(np.int32)


def eligible(listed: np.ndarray, config: WindowConfig) -> np.ndarray:
    """[T, N] mask of stock-months with enough listed history for a window."""
    return history_length(listed, config.window) >= config.required


def sample_index(labels: np.ndarray, listed: np.ndarray, config: WindowConfig,
                 months: np.ndarray | slice | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``(t, i)`` training samples: labelled stock-months with enough history.

    Parameters
    ----------
    labels : ndarray [T, N] int
        From :func:`signals.labels.make_labels`; ``NO_LABEL`` cells are skipped.
    listed : ndarray [T, N] bool
    config : WindowConfig
    months : positions or slice of ``t`` to draw from, optional
        Default: every month.

    Returns
    -------
    t, i : ndarray int64
        Sample coordinates, sorted by month then stock.
    """
    ok = (np.asarray(labels) != NO_LABEL) & eligible(listed, config)
    if months is not None:
        keep = np.zeros(ok.shape[0], dtype=bool)
        keep[months] = True
        ok &= keep[:, None]
    t, i = np.nonzero(ok)
    return t.astype(np.int64), i.astype(np.int64)


class WindowDataset(torch.utils.data.Dataset):
    """Samples ``(t, i)`` over a dense ``[T, N, F]`` tensor, gathered lazily per batch.

    ``dataset[idx]`` takes an int, a sequence or a LongTensor of sample positions and
    returns ``(x [B, window, F] float32, lengths [B] int64 or None, y [B] int64)``;
    ``lengths`` is ``None`` when the dataset never pads, ``y`` is ``None`` without labels.

    Parameters
    ----------
    values : ndarray or Tensor [T, N, F] float32
        Preprocessed factors; shared, not copied.
    t, i : array of int
        Sample coordinates.
    config : WindowConfig
    history : ndarray [T, N] int, optional
        :func:`history_length` of the panel; required when ``config.pads``.
    labels : ndarray [T, N] int, optional
    """

    def __init__(self, values, t, i, config: WindowConfig, history=None, labels=None):
        self.values = torch.as_tensor(values)
        self.t = torch.as_tensor(np.asarray(t), dtype=torch.int64)
        self.i = torch.as_tensor(np.asarray(i), dtype=torch.int64)
        self.config = config
        self.window = config.window
        self.offsets = torch.arange(self.window, dtype=torch.int64)
        if config.pads and history is None:
            raise WindowError("a padding window dataset needs the history lengths")
        self.history = torch.as_tensor(np.asarray(history), dtype=torch.int64) if config.pads else None
        self.labels = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        if len(self.t) and int(self.t.min()) < (config.required - 1 if config.pads else self.window - 1):
            raise WindowError("a sample starts before the first month of the panel")

    def __len__(self) -> int:
        return len(self.t)

    def subset(self, positions) -> "WindowDataset":
        """The samples at ``positions``, over the same tensor."""
        positions = torch.as_tensor(np.asarray(positions), dtype=torch.int64)
        out = object.__new__(WindowDataset)
        out.__dict__.update(self.__dict__)
        out.t, out.i = self.t[positions], self.i[positions]
        return out

    def last_month(self) -> "WindowDataset":
        """The same samples seen through a one-month window (month ``t`` only).

        Month ``t`` is always the last listed month of a sample's window, so this is all a
        last-snapshot model reads, at 1/window of the gathering cost.
        """
        out = object.__new__(WindowDataset)
        out.__dict__.update(self.__dict__)
        out.config = WindowConfig(window=1)
        out.window = 1
        out.offsets = torch.arange(1, dtype=torch.int64)
        out.history = None
        return out

    def __getitem__(self, idx):
        idx = torch.as_tensor(idx, dtype=torch.int64)
        single = idx.ndim == 0
        idx = idx.reshape(-1)
        t, i = self.t[idx], self.i[idx]
        lengths = None
        if self.history is None:
            months = t[:, None] - (self.window - 1) + self.offsets
            x = self.values[months, i[:, None]]
        else:
            # Listed months go first (positions < length), zeros after: the layout that
            # torch's packed sequences read.
            lengths = self.history[t, i]
            months = t[:, None] - lengths[:, None] + 1 + self.offsets
            valid = self.offsets[None, :] < lengths[:, None]
            x = self.values[months.clamp(min=0).where(valid, t[:, None]), i[:, None]]
            x = x * valid[..., None]
        y = None if self.labels is None else self.labels[t, i]
        if single:
            return x[0], None if lengths is None else lengths[0], None if y is None else y[0]
        return x, lengths, y


class BatchSampler(torch.utils.data.Sampler):
    """Batches of sample positions as LongTensors: shuffled epochs from a seeded generator.

    Iterating yields one epoch; ``forever()`` chains epochs (the training loop draws
    a step budget from it). With ``shuffle=False`` batches come in order.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator | None = None,
                 shuffle: bool = True):
        self.n, self.batch_size, self.generator, self.shuffle = n, batch_size, generator, shuffle

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        yield from order.split(self.batch_size)

    def forever(self):
        while True:
            yield from iter(self)
