"""Everything about the model: preprocessing, labels, windows, the torch module, training,
checkpoints and :class:`SignalModel`, the served object (SPEC §5).

Typical use::

    from signals import ModelConfig, SignalModel, SignalSpec, fit
    result = fit(panel, "2007-05", "2016-04")          # LSTM + logistic baseline + composite
    gru = fit(panel, "2007-05", "2016-04", SignalSpec(model=ModelConfig(kind="gru")))
    result.signal.save("model.pt")
    signal = SignalModel.load("model.pt")
    probs = signal.predict(history)                     # [N, 3] for history's last month
    frame = signal.predict_panel(panel, dates)          # (date, code) -> p_down, p_neutral, p_up, pred

The submodules keep their own names (``signals.preprocess.preprocess``,
``signals.train.train``); the package exports names that do not shadow them, except
``signals.fit``, the function. ``signals`` never imports backtrader, and its numpy-only
modules (``labels``, ``preprocess``, ``predictions``, ``evaluate``, ``ranking``) never
import torch: the torch-based names load on first use.
"""
import sys
import types
from importlib import import_module

# numpy-only modules: importing them (or anything that needs only them) never loads torch.
from .evaluate import (accuracy_summary, confusion_matrix, evaluate_predictions, ic_efficiency, ic_summary,
                       information_coefficients, monthly_accuracy)
from .labels import CLASSES, LabelConfig, LabelError, make_labels
from .predictions import PROBABILITY_COLUMNS, PredictionsError, prediction_frame
from .preprocess import PreprocessConfig, PreprocessError, preprocess_panel

# The modules that import torch load on first use of one of their names (PEP 562).
_TORCH_NAMES = {
    "checkpoint": ("CheckpointError",),
    "composite": ("factor_rank_ics", "fit_composite"),
    "diagnostics": ("factor_contribution", "permutation_importance", "style_contribution"),
    "fit": ("FitError", "FitResult", "fit"),
    "model": ("Ensemble", "LastSnapshotLogistic", "RecurrentClassifier", "ModelConfig", "ModelError",
              "RankComposite"),
    "quick": ("train_quick",),
    "serve": ("SignalError", "SignalModel"),
    "spec": ("SignalSpec", "SpecError"),
    "train": ("TrainConfig", "TrainError"),
    "walkforward": ("Fold", "WalkForwardConfig", "WalkForwardError", "WalkForwardSignal", "fold_plan"),
    "windows": ("WindowConfig", "WindowDataset", "WindowError"),
}
_LAZY = {name: module for module, names in _TORCH_NAMES.items() for name in names}

__all__ = [
    "SignalModel", "SignalSpec", "CLASSES", "fit", "FitResult", "train_quick",
    "WalkForwardSignal", "WalkForwardConfig", "Fold", "fold_plan",
    "PreprocessConfig", "LabelConfig", "WindowConfig", "ModelConfig", "TrainConfig",
    "preprocess_panel", "make_labels", "WindowDataset",
    "RecurrentClassifier", "LastSnapshotLogistic", "RankComposite", "Ensemble", "fit_composite", "factor_rank_ics",
    "accuracy_summary", "monthly_accuracy", "confusion_matrix", "information_coefficients", "ic_summary",
    "ic_efficiency", "evaluate_predictions", "prediction_frame", "PROBABILITY_COLUMNS",
    "factor_contribution", "style_contribution", "permutation_importance",
    "CheckpointError", "SignalError", "FitError", "PreprocessError", "LabelError", "WindowError",
    "ModelError", "TrainError", "WalkForwardError", "SpecError", "PredictionsError",
]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'signals' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """The package module, which keeps ``signals.fit`` the function.

    Importing a submodule binds it as an attribute of its package; for ``signals/fit.py``
    that attribute would hide the function :func:`fit` once anything imported the module
    first (``signals.quick`` does). That binding is skipped, so the name resolves
    through :func:`__getattr__` to the function.
    """

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and name in _LAZY:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
