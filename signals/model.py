"""The torch modules: the recurrent classifier (LSTM, GRU or plain RNN), the last-snapshot
baselines, ensembles.

All map a batch of windows ``x [B, window, F]`` (and optional ``lengths [B]`` for
padded histories, listed months first) to 3 logits in :data:`signals.labels.CLASSES`
order, so one training loop, one checkpoint format and one ``SignalModel`` serve them all.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from feeds.errors import UserError

# The cells of :class:`RecurrentClassifier`: the study's LSTM and the two it is compared with.
RECURRENT_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
RECURRENT_KINDS = tuple(RECURRENT_CELLS)
MODEL_KINDS = (*RECURRENT_KINDS, "logistic", "composite")


class ModelError(UserError):
    """Model settings are inconsistent."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture (defaults in brackets: the seed's).

    Parameters
    ----------
    kind : {'lstm', 'gru', 'rnn', 'logistic', 'composite'}
        ['lstm'] the study's model; 'gru' and 'rnn' (tanh) are the other cells of
        :class:`RecurrentClassifier`. 'logistic' is :class:`LastSnapshotLogistic` and
        'composite' :class:`RankComposite` (fitted by :mod:`signals.composite`, not trained):
        the baselines :func:`signals.fit` trains next to the recurrent model.
    n_factors : int
        [48] input features per month (set from the panel by :func:`signals.fit`).
    hidden : int
        [400] recurrent units per layer.
    layers : int
        [2] stacked recurrent layers.
    dropout : float
        [0.0] dropout between recurrent layers and before the output layer (the seed uses none).
    n_classes : int
        [3] output classes.
    members : int
        [1] models averaged by an :class:`Ensemble` (set by ``train.ensemble``).
    """

    kind: str = "lstm"
    n_factors: int = 48
    hidden: int = 400
    layers: int = 2
    dropout: float = 0.0
    n_classes: int = 3
    members: int = 1

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise ModelError(f"model.kind must be one of {', '.join(MODEL_KINDS)}, got {self.kind!r}")
        if self.n_factors < 1 or self.hidden < 1 or self.layers < 1 or self.n_classes < 2:
            raise ModelError(f"model sizes must be positive (n_factors={self.n_factors}, "
                             f"hidden={self.hidden}, layers={self.layers}, n_classes={self.n_classes})")
        if self.members < 1:
            raise ModelError(f"an ensemble needs at least one member, got {self.members}")
        if not 0.0 <= self.dropout < 1.0:
            raise ModelError(f"model.dropout must lie in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return cls(**data)

    def describe(self) -> str:
        """What the model is, for log lines and reports: ``'2x400 LSTM'``, ``'1x32 GRU, 5 seeds'``."""
        if self.kind in RECURRENT_KINDS:
            name = f"{self.layers}x{self.hidden} {self.kind.upper()}"
        else:
            name = {"logistic": "last-snapshot logistic", "composite": "rank composite"}[self.kind]
        return name if self.members == 1 else f"{name}, {self.members} seeds"


class RecurrentClassifier(nn.Module):
    """``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN(F, hidden, layers, batch_first=True)`` → last hidden
    state → linear → logits.

    With ``lengths`` the batch is packed, so each sequence's state stops at its own
    last listed month and padding never enters the recurrence.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # Registered under its kind, so the state dict names the cell ('lstm.weight_ih_l0',
        # 'gru.weight_ih_l0'): LSTM checkpoints keep the keys they had before GRU and RNN.
        # The cell is built first, then the head: the LSTM's initialisation draws stay as they were.
        self.add_module(config.kind, RECURRENT_CELLS[config.kind](
            config.n_factors, config.hidden, config.layers, batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0))
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.n_classes)

    @property
    def cell(self) -> nn.RNNBase:
        """The recurrent layers (``self.lstm``, ``self.gru`` or ``self.rnn``)."""
        return getattr(self, self.config.kind)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None and bool((lengths < x.shape[1]).any()):
            x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.cell(x)
        if isinstance(h, tuple):  # the LSTM's (hidden, cell) state
            h = h[0]
        return self.head(self.dropout(h[-1]))

    def input_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Input-to-hidden weights ``[gates·hidden, F]`` and biases ``[gates·hidden]`` of the first
        layer (4 gates for the LSTM, 3 for the GRU, 1 for the RNN).

        The bias is ``bias_ih + bias_hh`` (torch splits one bias in two; in the GRU's
        candidate gate the hidden part is scaled by the reset gate, so there it is a summary).
        """
        return self.cell.weight_ih_l0, self.cell.bias_ih_l0 + self.cell.bias_hh_l0


class LastSnapshotLogistic(nn.Module):
    """Multinomial logistic regression on the last listed month of the window.

    The baseline of SPEC §5: the same samples and pipeline as the recurrent model, but no sequence.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.n_factors, config.n_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.last_month(x, lengths))

    @staticmethod
    def last_month(x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, F]``: each window's last listed month."""
        if lengths is None:
            return x[:, -1]
        return x[torch.arange(x.shape[0], device=x.device), lengths.to(x.device) - 1]

    def input_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights ``[classes, F]`` and biases ``[classes]``."""
        return self.linear.weight, self.linear.bias


class RankComposite(nn.Module):
    """The linear rank composite: ``s = Σ_f w_f · rank_f`` of the last listed month.

    Its inputs are cross-sectional ranks (``PreprocessConfig(rank=True)``) and its
    weights the factors' mean training-window rank ICs (:func:`signals.composite.fit_composite`),
    so each factor enters signed and weighted by how well it ranked stocks in training. The
    logits ``(-s, 0, s) · scale`` make ``p_up - p_down`` increase with ``s``: a score, not a
    calibrated classifier.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.register_buffer("weight", torch.zeros(config.n_factors))
        self.register_buffer("scale", torch.ones(()))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        s = LastSnapshotLogistic.last_month(x, lengths) @ self.weight * self.scale
        return torch.stack([-s, torch.zeros_like(s), s], dim=1)

    def input_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights ``[1, F]`` and a zero bias ``[1]``."""
        return self.weight[None], torch.zeros(1, device=self.weight.device)


class Ensemble(nn.Module):
    """The average of its members' probabilities, returned as log-probabilities.

    ``softmax`` of the output is the mean of the members' softmax outputs, so an ensemble
    is served exactly like a single model.
    """

    def __init__(self, config: ModelConfig, members: list[nn.Module] | None = None):
        super().__init__()
        self.config = config
        single = ModelConfig(**{**config.to_dict(), "members": 1})
        self.members = nn.ModuleList(members or [_single(single) for _ in range(config.members)])

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m(x, lengths), dim=1) for m in self.members]).mean(0)
        return torch.log(probs.clamp_min(1e-12))

    def input_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first member's input layer (the figures show one model)."""
        return self.members[0].input_layer()


def _single(config: ModelConfig) -> nn.Module:
    if config.kind in RECURRENT_KINDS:
        return RecurrentClassifier(config)
    return {"logistic": LastSnapshotLogistic, "composite": RankComposite}[config.kind](config)


def build_model(config: ModelConfig) -> nn.Module:
    """The module ``config.kind`` names (an :class:`Ensemble` of them when ``members > 1``)."""
    return Ensemble(config) if config.members > 1 else _single(config)
