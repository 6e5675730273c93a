"""``SignalModel``: the served object, from raw month-end snapshots to class probabilities.

One object holds the trained module and every setting needed to use it (window,
preprocessing, factor names and order, class order). :meth:`SignalModel.predict`
answers for the last month of a raw history — what a Backtrader strategy calls
each month-end with the snapshots it has streamed so far; :meth:`predict_panel`
answers for many months of a panel offline. Both go through
:meth:`SignalModel._predict_month`, and preprocessing is per month-end
cross-section, so the two agree exactly and neither can see a month after the one
it predicts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from feeds.errors import UserError
from feeds.panel import Panel, month_end

from .checkpoint import CheckpointError, library_versions, load_checkpoint, plain, save_checkpoint
from .labels import CLASSES
from .model import build_model
from .predictions import prediction_frame
from .preprocess import preprocess_panel
from .spec import SECTIONS, SignalSpec
from .train import predict_logits
from .windows import WindowDataset, history_length


class SignalError(UserError):
    """A panel or a request does not fit the model (wrong factors, too little history, unknown date)."""


class SignalModel:
    """A trained classifier with its preprocessing, served month by month.

    Attributes
    ----------
    window : int
        Months of history per prediction.
    min_history : int
        Listed months a stock needs for a prediction (shorter: NaN).
    factor_names : list of str
        The factors, in the order the model reads them; a panel must match exactly.
    classes : tuple
        ``("down", "neutral", "up")``: the column order of :meth:`predict`.
    kind : str
        ``spec.model.kind``: 'lstm', 'gru', 'rnn', or a baseline's 'logistic' / 'composite'.
    spec : SignalSpec
        The window, preprocessing, labels, model and training settings it was trained with.
    meta : dict
        Training record: dates, configuration, seed, versions, panel fingerprint,
        validation accuracy, history.

    Parameters
    ----------
    module : torch.nn.Module
    spec : SignalSpec
    factor_names : list of str
    styles : dict, optional
        ``{style: [factor, ...]}``.
    meta : dict, optional
    """

    classes = CLASSES

    def __init__(self, module: torch.nn.Module, spec: SignalSpec, factor_names, styles=None, meta=None):
        self.module = module.cpu().eval()
        self.device = torch.device("cpu")
        self.spec = spec
        self.factor_names = list(factor_names)
        self.styles = {k: list(v) for k, v in (styles or {}).items()}
        self.meta = dict(meta or {})
        if spec.model.n_factors != len(self.factor_names):
            raise SignalError(f"model reads {spec.model.n_factors} factors but {len(self.factor_names)} are named")

    # ------------------------------------------------------------ properties
    @property
    def window(self) -> int:
        return self.spec.window.window

    @property
    def min_history(self) -> int:
        return self.spec.window.required

    @property
    def kind(self) -> str:
        return self.spec.model.kind

    @property
    def history(self) -> pd.DataFrame:
        """The training history stored with the model (one row per evaluation; empty if none)."""
        return pd.DataFrame(self.meta.get("history") or {})

    @property
    def validation_accuracy(self) -> float:
        """Accuracy of the restored state on the whole validation set (NaN if unknown)."""
        return float(self.meta.get("validation_accuracy", float("nan")))

    def __repr__(self) -> str:
        span = self.meta.get("train_start", "?"), self.meta.get("train_end", "?")
        return (f"SignalModel({self.kind}, window={self.window}, {len(self.factor_names)} factors, "
                f"trained {span[0]}..{span[1]})")

    def to(self, device) -> "SignalModel":
        """Serve on ``device`` ('cpu', 'cuda' or 'auto' = CUDA when available); returns ``self``.

        Predictions are computed there in batches and returned as numpy arrays on the CPU.
        """
        from .train import resolve_device

        self.device = resolve_device(str(device))
        self.module.to(self.device)
        return self

    # ------------------------------------------------------------ persistence
    def to_checkpoint(self) -> dict:
        """The checkpoint dict (plain types and tensors)."""
        return plain({
            "kind": self.kind,
            "state_dict": {k: v.cpu() for k, v in self.module.state_dict().items()},
            **self.spec.to_dict(),  # one key per section: window, preprocess, labels, model, train
            "classes": list(CLASSES),
            "factor_names": self.factor_names,
            "styles": self.styles,
            "versions": library_versions(),
            **{k: v for k, v in self.meta.items() if k not in ("versions",)},
        })

    def save(self, path) -> Path:
        """Write the checkpoint to ``path`` (atomically)."""
        return save_checkpoint(self.to_checkpoint(), path)

    @classmethod
    def load(cls, path) -> "SignalModel":
        """Load a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``, on CPU).

        A composite baseline saved before the spec existed has no ``train`` section; it reads
        as the default training settings (a composite is fitted, not trained).

        Raises
        ------
        CheckpointError
            The file is missing, not a checkpoint, tampered with, or inconsistent.
        """
        payload = load_checkpoint(path)
        if list(payload["classes"]) != list(CLASSES):
            raise CheckpointError(f"{path}: class order {payload['classes']} differs from {list(CLASSES)}")
        try:
            spec = SignalSpec.from_dict({k: payload[k] for k in SECTIONS if k in payload})
            module = build_model(spec.model)
            module.load_state_dict(payload["state_dict"], strict=True)
        except (TypeError, ValueError, RuntimeError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{path}: inconsistent checkpoint ({first[:200]})") from None
        known = {"format", "format_version", "kind", "state_dict", *SECTIONS, "classes", "factor_names", "styles"}
        meta = {k: v for k, v in payload.items() if k not in known}
        return cls(module, spec, payload["factor_names"], payload["styles"], meta)

    # ------------------------------------------------------------ prediction
    def check_panel(self, panel: Panel) -> None:
        """Raise :class:`SignalError` unless ``panel`` has exactly this model's factors, in order."""
        names = list(panel.factor_names)
        if names == self.factor_names:
            return
        missing = [f for f in self.factor_names if f not in names]
        extra = [f for f in names if f not in self.factor_names]
        if missing:
            raise SignalError(f"panel lacks factor '{missing[0]}' that the model was trained on "
                              f"({len(missing)} missing; the model reads {len(self.factor_names)} factors)")
        if extra:
            raise SignalError(f"panel has factor '{extra[0]}' that the model was not trained on "
                              f"({len(extra)} extra; select the model's factors with panel.select_factors)")
        pos = next(k for k, (a, b) in enumerate(zip(names, self.factor_names)) if a != b)
        raise SignalError(f"panel factors are in a different order: position {pos} is '{names[pos]}', "
                          f"the model expects '{self.factor_names[pos]}' (use panel.select_factors)")

    def predict(self, history: Panel) -> np.ndarray:
        """Class probabilities for the LAST month of ``history``.

        Parameters
        ----------
        history : Panel
            Raw (unpreprocessed) month-end snapshots, at least ``window`` months
            (``min_history`` when the model pads), oldest first. Only the last
            ``window`` months are read.

        Returns
        -------
        ndarray [N, 3] float32
            ``p_down, p_neutral, p_up`` per code of ``history``; NaN rows for stocks not
            listed at the last month or with fewer than ``min_history`` listed months.
        """
        self.check_panel(history)
        need = self.window if not self.spec.window.pads else self.min_history
        if history.T < need:
            raise SignalError(f"history has {history.T} months; the model needs at least {need} "
                              f"(window {self.window})")
        if history.T > self.window:
            history = history.take(rows=slice(history.T - self.window, history.T))
        values = preprocess_panel(history, self.spec.preprocess)
        return self._predict_month(values, history.listed)

    def predict_panel(self, panel: Panel, dates=None) -> pd.DataFrame:
        """Predictions for many months of ``panel``, through the same path as :meth:`predict`.

        Parameters
        ----------
        panel : Panel
            Raw panel; each predicted month uses only itself and the ``window - 1``
            months before it.
        dates : iterable of dates, optional
            Months to predict (any day inside a month selects it). Default: every month
            with enough history before it.

        Returns
        -------
        DataFrame
            Indexed ``(date, code)``; columns ``p_down, p_neutral, p_up`` and ``pred``
            (the argmax class name); rows only for stocks with a prediction.
        """
        self.check_panel(panel)
        first = (self.min_history if self.spec.window.pads else self.window) - 1
        if dates is None:
            positions = list(range(first, panel.T))
        else:
            wanted = month_end(list(dates) if not isinstance(dates, (str, pd.Timestamp)) else [dates])
            positions = panel.dates.get_indexer(wanted)
            if (positions < 0).any():
                bad = wanted[positions < 0][0]
                raise SignalError(f"date {bad.date()} is not a month of the panel "
                                  f"({panel.dates[0].date()}..{panel.dates[-1].date()})")
            if (positions < first).any():
                bad = wanted[positions < first][0]
                raise SignalError(f"date {bad.date()} has fewer than {first + 1} months of history in the panel")
        # Preprocessing reads each month on its own: only the months the windows read are
        # preprocessed (a year of decisions reads 35 of the default panel's 148 months).
        probs = np.full((len(positions), panel.N, len(CLASSES)), np.nan, dtype=np.float32)
        if len(positions) == 0:
            return prediction_frame(panel.dates[positions], panel.codes, probs)
        first_row = max(0, min(positions) - self.window + 1)
        read = panel.take(rows=slice(first_row, max(positions) + 1))
        values = preprocess_panel(read, self.spec.preprocess)
        for k, t in enumerate(positions):
            lo, hi = max(0, t - self.window + 1) - first_row, t + 1 - first_row
            probs[k] = self._predict_month(values[lo:hi], read.listed[lo:hi])
        return prediction_frame(panel.dates[positions], panel.codes, probs)

    def _predict_month(self, values: np.ndarray, listed: np.ndarray) -> np.ndarray:
        """Probabilities [N, 3] for the last month of preprocessed ``values`` [W', N, F]."""
        history = history_length(listed, self.window)
        last = len(values) - 1
        stocks = np.flatnonzero(history[last] >= self.min_history)
        out = np.full((values.shape[1], len(CLASSES)), np.nan, dtype=np.float32)
        if len(stocks) == 0:
            return out
        dataset = WindowDataset(values, np.full(len(stocks), last), stocks, self.spec.window,
                                history=history)
        with torch.no_grad():
            logits = predict_logits(self.module, dataset, device=self.device)
            out[stocks] = torch.softmax(logits, dim=1).numpy()
        return out
