"""The shipped configs: each one loads, builds its signal and, for walk-forward, its folds; the
honest ones stay honest (a config edit must not quietly turn a reported protocol into another)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import pipeline.run  # noqa: F401  (registers the config sections)
from pipeline.config import load_config
from pipeline.train import signal_spec
from pipeline.walkforward import folds, walk_forward

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
WALK_FORWARD = {"walk_forward.yaml", "real_csi300_wf.yaml"}


def shipped(name: str):
    return load_config(str(next(path for path in CONFIGS if path.name == name)))


def test_every_config_is_found():
    assert {"oos_2016.yaml", "smoke.yaml", *WALK_FORWARD} <= {path.name for path in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_a_shipped_config_loads_and_builds_its_signal(path):
    config = load_config(str(path))
    signal_spec(config)  # raises on a setting the signal refuses
    if path.name in WALK_FORWARD:
        assert walk_forward(config) is not None and len(folds(config)) >= 2


@pytest.mark.parametrize("name", sorted(WALK_FORWARD))
def test_the_walk_forward_configs_are_honest_over_at_least_60_months(name):
    config = shipped(name)
    train = signal_spec(config).train
    # checkpoints chosen on a purged time split of each fold's own window, by the ranking it trades
    assert (train.validation, train.select, train.refit) == ("time", "rank_ic", "steps")
    assert train.patience is not None and train.steps is not None
    months = pd.period_range(config.dates.test_start, config.dates.test_end, freq="M")
    assert len(months) >= 60
    for fold in folds(config):  # no fold trains on a label month after its first decision
        assert fold.train_end <= fold.first_decision


def test_the_study_config_keeps_the_study_protocol():
    config = shipped("oos_2016.yaml")
    spec = signal_spec(config)
    assert (spec.model.hidden, spec.model.layers, spec.window.window) == (400, 2, 24)
    assert (spec.train.validation, spec.train.val_fraction, spec.train.batch_size) == ("random", 0.1, 1000)


def test_the_five_market_study_sweep_is_the_study_config():
    # its figures are reported as the study config's across markets: nothing but the seed axis,
    # the name and the tear sheets may differ
    sweep, study = shipped("sweep_study.yaml").to_dict(), shipped("oos_2016.yaml").to_dict()
    assert sweep.pop("sweep")["axes"] == {"seed": "0..4"}
    assert sweep.pop("output") == {**study.pop("output"), "tearsheets": False}
    assert (sweep.pop("name"), study.pop("name")) == ("sweep_study", "oos_2016")
    assert sweep == study
