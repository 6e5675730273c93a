"""SignalModel: checkpoints, refusals, predict == predict_panel, no look-ahead."""
import os
import pickle
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from feeds.synthetic import make_market
from signals import (CLASSES, CheckpointError, ModelConfig, SignalError, SignalModel, SignalSpec, TrainConfig,
                     WindowConfig, fit)

WINDOW = 6


@pytest.fixture(scope="module")
def market():
    return make_market(4, n_stocks=150, start="2010-01", end="2014-12")


def small_fit(panel, window=WindowConfig(window=WINDOW), **train):
    spec = SignalSpec(window=window, model=ModelConfig(hidden=8, layers=2),
                      train=TrainConfig(steps=8, batch_size=256, eval_every=4, progress=False, **train))
    return fit(panel, "2011-01", "2013-12", spec,
               baseline=TrainConfig(steps=8, batch_size=256, eval_every=4, progress=False))


@pytest.fixture(scope="module")
def fitted(market):
    return small_fit(market.panel)


def test_predict_equals_predict_panel_on_the_same_months(market, fitted):
    panel = market.panel
    for signal in (fitted.signal, fitted.baseline):
        dates = panel.dates[-14:]
        frame = signal.predict_panel(panel, dates)
        assert list(frame.columns) == ["p_down", "p_neutral", "p_up", "pred"]
        assert frame.index.names == ["date", "code"]
        for date in dates[[0, 5, -1]]:
            t = panel.dates.get_loc(date)
            history = panel.take(rows=slice(t - WINDOW - 3, t + 1))  # longer than the window: only the last 6 count
            probs = signal.predict(history)
            assert probs.shape == (panel.N, 3)
            rows = np.flatnonzero(np.isfinite(probs[:, 0]))
            month = frame.xs(date, level="date")
            assert list(month.index) == list(panel.codes[rows])
            np.testing.assert_array_equal(month[["p_down", "p_neutral", "p_up"]].to_numpy(), probs[rows])
            np.testing.assert_allclose(probs[rows].sum(axis=1), 1.0, rtol=1e-5)
            assert set(month["pred"]) <= set(CLASSES)


def test_predictions_at_t_ignore_every_value_after_t(market, fitted):
    panel = market.panel
    t = panel.T - 10
    date = panel.dates[t]
    before = fitted.signal.predict_panel(panel, [date])
    before_baseline = fitted.baseline.predict_panel(panel, [date])
    rng = np.random.default_rng(0)
    after = slice(t + 1, None)
    factors = panel.factors.copy()
    factors[after] = rng.normal(size=factors[after].shape) * 100
    ret, close = panel.ret.copy(), panel.close.copy()
    ret[after] = np.where(np.isfinite(ret[after]), rng.normal(size=ret[after].shape), np.nan)
    close[after] = np.where(np.isfinite(close[after]), close[after] * 3, np.nan)
    industry = panel.industry.copy()
    industry[after] = rng.integers(0, len(panel.industries), industry[after].shape)
    listed = panel.listed.copy()
    listed[after] = ~listed[after] & (rng.random(listed[after].shape) < 0.5) | listed[after]
    mcap = panel.mcap.copy()
    mcap[after] = mcap[after] * 7
    altered = replace(panel, factors=factors, ret=np.where(listed, ret, np.nan),
                      close=np.where(listed, close, np.nan), listed=listed, industry=industry,
                      mcap=mcap, is_st=~panel.is_st)
    assert not np.array_equal(np.nan_to_num(altered.factors), np.nan_to_num(panel.factors))
    pd.testing.assert_frame_equal(fitted.signal.predict_panel(altered, [date]), before)
    pd.testing.assert_frame_equal(fitted.baseline.predict_panel(altered, [date]), before_baseline)
    history = altered.take(rows=slice(t - WINDOW + 1, t + 1))
    np.testing.assert_array_equal(fitted.signal.predict(history)[np.isfinite(fitted.signal.predict(history)[:, 0])],
                                  before[["p_down", "p_neutral", "p_up"]].to_numpy())


def test_save_and_load_round_trip(tmp_path, market, fitted):
    path = fitted.signal.save(tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    for key in ("state_dict", "model", "factor_names", "styles", "window", "preprocess", "labels", "classes",
                "train_start", "train_end", "config", "seed", "versions", "fingerprint", "history", "train"):
        assert key in payload, key
    assert payload["classes"] == list(CLASSES) and len(payload["fingerprint"]) == 64
    loaded = SignalModel.load(path)
    assert loaded.window == WINDOW and loaded.factor_names == market.panel.factor_names
    assert loaded.classes == CLASSES and loaded.kind == "lstm"
    assert loaded.validation_accuracy == pytest.approx(fitted.validation_accuracy)
    pd.testing.assert_frame_equal(loaded.history, fitted.history, check_dtype=False)
    dates = market.panel.dates[-3:]
    pd.testing.assert_frame_equal(loaded.predict_panel(market.panel, dates),
                                  fitted.signal.predict_panel(market.panel, dates))
    base = SignalModel.load(fitted.baseline.save(tmp_path / "baseline.pt"))
    assert base.kind == "logistic"


class Exploit:
    """A pickle that would create a file if it were ever unpickled with code execution."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_tampered_or_foreign_files_are_refused_safely(tmp_path, fitted):
    good = fitted.signal.save(tmp_path / "model.pt")
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(4096))
    target = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "lstm-tercile-signal", "payload": Exploit(str(target))}, evil)
    raw_pickle = tmp_path / "raw.pkl"
    raw_pickle.write_bytes(pickle.dumps(Exploit(str(target))))
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    for path in (truncated, garbage, evil, raw_pickle, foreign, tmp_path / "missing.pt"):
        with pytest.raises(CheckpointError) as info:
            SignalModel.load(path)
        message = str(info.value)
        assert str(path) in message and "\n" not in message
    assert not target.exists()  # the embedded code never ran
    payload = torch.load(good, weights_only=True)
    payload["state_dict"] = {k: v[..., :1] for k, v in payload["state_dict"].items()}
    broken = tmp_path / "broken.pt"
    torch.save(payload, broken)
    with pytest.raises(CheckpointError, match="inconsistent"):
        SignalModel.load(broken)


def test_a_panel_with_other_factors_is_refused(market, fitted):
    panel = market.panel
    names = panel.factor_names
    with pytest.raises(SignalError, match=f"lacks factor '{names[-1]}'"):
        fitted.signal.predict(panel.select_factors(names[:-1]))
    swapped = [names[1], names[0]] + names[2:]
    with pytest.raises(SignalError, match="different order: position 0 is 'ep'"):
        fitted.signal.predict_panel(panel.select_factors(swapped))
    extra = replace(panel, factors=np.concatenate([panel.factors, panel.factors[:, :, :1]], axis=2),
                    factor_names=names + ["new_factor"])
    with pytest.raises(SignalError, match="'new_factor'"):
        fitted.signal.predict(extra)


def test_short_history_unknown_dates_and_ineligible_stocks(market, fitted):
    panel = market.panel
    with pytest.raises(SignalError, match="needs at least 6"):
        fitted.signal.predict(panel.take(rows=slice(0, WINDOW - 1)))
    with pytest.raises(SignalError, match="not a month of the panel"):
        fitted.signal.predict_panel(panel, ["2030-01-31"])
    with pytest.raises(SignalError, match="fewer than 6 months"):
        fitted.signal.predict_panel(panel, [panel.dates[2]])
    history = panel.take(rows=slice(panel.T - WINDOW, panel.T))
    probs = fitted.signal.predict(history)
    short = ~history.listed.all(axis=0)
    assert np.isnan(probs[short]).all() and np.isfinite(probs[~short]).all()


def test_padding_model_predicts_for_short_histories(market):
    panel = market.panel
    result = small_fit(panel, window=WindowConfig(window=WINDOW, min_history=2))
    history = panel.take(rows=slice(panel.T - WINDOW, panel.T))
    probs = result.signal.predict(history)
    runs = history.listed[-2:].all(axis=0)
    assert np.isfinite(probs[runs]).all() and np.isnan(probs[~history.listed[-1]]).all()
    assert (~history.listed.all(axis=0) & runs).any()  # some stocks really were padded
    frame = result.signal.predict_panel(panel, [panel.dates[-1]])
    np.testing.assert_array_equal(frame[["p_down", "p_neutral", "p_up"]].to_numpy(), probs[runs])
