"""The torch modules: the seed's LSTM classifier and the last-snapshot logistic baseline.

Both map a batch of windows ``x [B, window, F]`` (and optional ``lengths [B]`` for
padded histories, listed months first) to 3 logits in :data:`signals.labels.CLASSES`
order, so one training loop, one checkpoint format and one ``SignalModel`` serve both.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from feeds.errors import UserError

MODEL_KINDS = ("lstm", "logistic")


class ModelError(UserError):
    """Model settings are inconsistent."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture (defaults in brackets; the seed's in the LSTM column).

    Parameters
    ----------
    kind : {'lstm', 'logistic'}
        ['lstm'] :class:`LSTMClassifier`; 'logistic' is :class:`LastSnapshotLogistic`.
    n_factors : int
        [48] input features per month (set from the panel by :func:`signals.fit`).
    hidden : int
        [400] LSTM units per layer.
    layers : int
        [2] stacked LSTM layers.
    dropout : float
        [0.0] dropout between LSTM layers and before the output layer (the seed uses none).
    n_classes : int
        [3] output classes.
    """

    kind: str = "lstm"
    n_factors: int = 48
    hidden: int = 400
    layers: int = 2
    dropout: float = 0.0
    n_classes: int = 3

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise ModelError(f"model.kind must be one of {', '.join(MODEL_KINDS)}, got {self.kind!r}")
        if self.n_factors < 1 or self.hidden < 1 or self.layers < 1 or self.n_classes < 2:
            raise ModelError(f"model sizes must be positive (n_factors={self.n_factors}, "
                             f"hidden={self.hidden}, layers={self.layers}, n_classes={self.n_classes})")
        if not 0.0 <= self.dropout < 1.0:
            raise ModelError(f"model.dropout must lie in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return cls(**data)


class LSTMClassifier(nn.Module):
    """``nn.LSTM(F, hidden, layers, batch_first=True)`` → last hidden state → linear → logits.

    With ``lengths`` the batch is packed, so each sequence's state stops at its own
    last listed month and padding never enters the recurrence.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(config.n_factors, config.hidden, config.layers, batch_first=True,
                            dropout=config.dropout if config.layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None and bool((lengths < x.shape[1]).any()):
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(x)
        return self.head(self.dropout(h[-1]))

    def input_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Input-to-hidden weights ``[4·hidden, F]`` and biases ``[4·hidden]`` of the first layer.

        The bias is ``bias_ih + bias_hh`` (torch splits one bias in two).
        """
        return self.lstm.weight_ih_l0, self.lstm.bias_ih_l0 + self.lstm.bias_hh_l0


class LastSnapshotLogistic(nn.Module):
    """Multinomial logistic regression on the last listed month of the window.

    The baseline of SPEC §5: the same samples and pipeline as the LSTM, but no sequence.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.n_factors, config.n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            last = x[:, -1]
        else:
            last = x[torch.arange(x.shape[0], device=x.device), lengths.to(x.device) - 1]
        return self.linear(last)

    def input_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights ``[classes, F]`` and biases ``[classes]``."""
        return self.linear.weight, self.linear.bias


def build_model(config: ModelConfig) -> nn.Module:
    """The module ``config.kind`` names."""
    return {"lstm": LSTMClassifier, "logistic": LastSnapshotLogistic}[config.kind](config)
