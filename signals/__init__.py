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
``signals.train.train``); the package exports names that do not shadow them.
``signals`` never imports backtrader.
"""
from .checkpoint import CheckpointError
from .composite import factor_rank_ics, fit_composite
from .diagnostics import factor_contribution, permutation_importance, style_contribution
from .evaluate import (accuracy_summary, confusion_matrix, evaluate_predictions, ic_efficiency, ic_summary,
                       information_coefficients, monthly_accuracy)
from .fit import FitError, FitResult, fit
from .labels import CLASSES, LabelConfig, LabelError, make_labels
from .model import Ensemble, LastSnapshotLogistic, ModelConfig, ModelError, RankComposite, RecurrentClassifier
from .preprocess import PreprocessConfig, PreprocessError, preprocess_panel
from .quick import train_quick
from .serve import SignalError, SignalModel
from .spec import SignalSpec, SpecError
from .train import TrainConfig, TrainError
from .walkforward import Fold, WalkForwardConfig, WalkForwardError, WalkForwardSignal, fold_plan
from .windows import WindowConfig, WindowDataset, WindowError

__all__ = [
    "SignalModel", "SignalSpec", "CLASSES", "fit", "FitResult", "train_quick",
    "WalkForwardSignal", "WalkForwardConfig", "Fold", "fold_plan",
    "PreprocessConfig", "LabelConfig", "WindowConfig", "ModelConfig", "TrainConfig",
    "preprocess_panel", "make_labels", "WindowDataset",
    "RecurrentClassifier", "LastSnapshotLogistic", "RankComposite", "Ensemble", "fit_composite", "factor_rank_ics",
    "accuracy_summary", "monthly_accuracy", "confusion_matrix", "information_coefficients", "ic_summary",
    "ic_efficiency", "evaluate_predictions",
    "factor_contribution", "style_contribution", "permutation_importance",
    "CheckpointError", "SignalError", "FitError", "PreprocessError", "LabelError", "WindowError",
    "ModelError", "TrainError", "WalkForwardError", "SpecError",
]
