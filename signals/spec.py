"""``SignalSpec``: every setting that defines a trained signal, as one frozen value.

The window, preprocessing, labels, model and training sections travel together: into
:func:`signals.fit`, inside :class:`signals.SignalModel`, into checkpoints (one key per
section, the layout checkpoints have always had), into the main command's cache key
(:meth:`SignalSpec.fingerprint`) and out of its YAML config (one section each). Change one
section with :func:`dataclasses.replace`::

    spec = SignalSpec(model=ModelConfig(kind="gru", hidden=64))
    spec = replace(spec, train=replace(spec.train, steps=300))
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields

from feeds.errors import UserError

from .labels import LabelConfig
from .model import ModelConfig
from .preprocess import PreprocessConfig
from .train import TrainConfig
from .windows import WindowConfig

SECTIONS = {"window": WindowConfig, "preprocess": PreprocessConfig, "labels": LabelConfig,
            "model": ModelConfig, "train": TrainConfig}


class SpecError(UserError):
    """A signal spec holds something other than its sections' settings."""


@dataclass(frozen=True)
class SignalSpec:
    """The settings of a signal, one config per section (defaults: the seed study's).

    Parameters
    ----------
    window : WindowConfig
    preprocess : PreprocessConfig
    labels : LabelConfig
    model : ModelConfig
        ``kind`` picks the architecture ('lstm', 'gru', 'rnn'; the baselines' spec says
        'logistic' or 'composite'); ``n_factors`` is set from the panel by :func:`signals.fit`.
    train : TrainConfig
        The training settings the model was (or will be) trained with.
    """

    window: WindowConfig = field(default_factory=WindowConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        for name, cls in SECTIONS.items():
            value = getattr(self, name)
            if not isinstance(value, cls):
                raise SpecError(f"SignalSpec.{name} must be a {cls.__name__}, got {type(value).__name__} "
                                f"(SignalSpec.from_dict reads plain dicts)")

    def to_dict(self) -> dict:
        """``{section: {setting: value}}`` of plain values (what checkpoints store)."""
        return {name: getattr(self, name).to_dict() for name in SECTIONS}

    @classmethod
    def from_dict(cls, data: dict) -> "SignalSpec":
        """The spec of :meth:`to_dict`'s output; a missing section takes its defaults.

        Raises
        ------
        SpecError
            An unknown section or setting.
        """
        unknown = [name for name in data if name not in SECTIONS]
        if unknown:
            raise SpecError(f"unknown signal section '{unknown[0]}' (sections: {', '.join(SECTIONS)})")
        sections = {}
        for name, values in data.items():
            known = {f.name for f in fields(SECTIONS[name])}
            extra = [key for key in values if key not in known]
            if extra:
                raise SpecError(f"unknown setting '{name}.{extra[0]}'")
            sections[name] = SECTIONS[name].from_dict(dict(values))
        return cls(**sections)

    def fingerprint(self) -> str:
        """SHA-256 of every setting that can change a trained model (all but ``train.progress``).

        Stable across processes and key orders, so a cache can be keyed by it.
        """
        settings = self.to_dict()
        del settings["train"]["progress"]  # a progress bar changes no number
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
