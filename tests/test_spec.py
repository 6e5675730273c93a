"""SignalSpec: one frozen value of the five signal sections, its dict round trip and fingerprint."""
from dataclasses import FrozenInstanceError, replace

import pytest

from signals import (LabelConfig, ModelConfig, PreprocessConfig, SignalSpec, SpecError, TrainConfig,
                     WindowConfig)

CUSTOM = SignalSpec(window=WindowConfig(window=12, min_history=6), preprocess=PreprocessConfig(winsorize="percentile"),
                    labels=LabelConfig(kind="tercile"), model=ModelConfig(kind="gru", hidden=64, layers=1),
                    train=TrainConfig(steps=None, epochs=2.0, validation="time", select="rank_ic", patience=3))


def test_defaults_are_the_seed_study_and_sections_change_by_replace():
    spec = SignalSpec()
    assert spec.window.window == 24 and spec.model.kind == "lstm" and spec.model.describe() == "2x400 LSTM"
    gru = replace(spec, model=replace(spec.model, kind="gru"))
    assert gru.model.kind == "gru" and gru.window == spec.window and spec.model.kind == "lstm"
    with pytest.raises(FrozenInstanceError):
        spec.model = ModelConfig()


@pytest.mark.parametrize("spec", [SignalSpec(), CUSTOM], ids=["defaults", "custom"])
def test_to_dict_and_from_dict_round_trip(spec):
    data = spec.to_dict()
    assert list(data) == ["window", "preprocess", "labels", "model", "train"]
    assert SignalSpec.from_dict(data) == spec
    assert SignalSpec.from_dict({k: data[k] for k in reversed(data)}) == spec
    assert SignalSpec.from_dict({"model": {"kind": "rnn"}}) == SignalSpec(model=ModelConfig(kind="rnn"))


def test_the_fingerprint_is_stable_and_follows_every_setting_but_progress():
    reordered = SignalSpec.from_dict({k: dict(reversed(v.items())) for k, v in CUSTOM.to_dict().items()})
    assert reordered.fingerprint() == CUSTOM.fingerprint() and len(CUSTOM.fingerprint()) == 64
    quiet = replace(CUSTOM, train=replace(CUSTOM.train, progress=False))
    assert quiet.fingerprint() == CUSTOM.fingerprint()
    for other in (replace(CUSTOM, model=replace(CUSTOM.model, kind="lstm")),
                  replace(CUSTOM, train=replace(CUSTOM.train, seed=1)),
                  replace(CUSTOM, window=WindowConfig(window=12))):
        assert other.fingerprint() != CUSTOM.fingerprint()


def test_mistakes_are_one_line_errors():
    with pytest.raises(SpecError, match="unknown signal section 'modle'"):
        SignalSpec.from_dict({"modle": {}})
    with pytest.raises(SpecError, match="unknown setting 'model.cell'"):
        SignalSpec.from_dict({"model": {"cell": "gru"}})
    with pytest.raises(SpecError, match="SignalSpec.model must be a ModelConfig, got dict"):
        SignalSpec(model={"kind": "gru"})
    with pytest.raises(ValueError, match="model.kind must be one of lstm, gru, rnn, logistic, composite"):
        SignalSpec.from_dict({"model": {"kind": "transformer"}})


def test_model_kinds_describe_themselves():
    assert ModelConfig(kind="rnn", hidden=32, layers=1).describe() == "1x32 RNN"
    assert ModelConfig(kind="gru", members=5).describe() == "2x400 GRU, 5 seeds"
    assert ModelConfig(kind="logistic").describe() == "last-snapshot logistic"
