"""model.kind: the study's LSTM unchanged bit for bit, GRU and plain RNN trained, saved and
served (offline and inside Backtrader) through the same fit, checkpoint and SignalModel."""
from dataclasses import replace

import backtrader as bt
import numpy as np
import pytest

from feeds import add_panel_feeds, make_market
from signals import FitError, ModelConfig, SignalModel, SignalSpec, TrainConfig, WindowConfig, fit
from strategies import AShareCommission, LSTMTercileStrategy

COLUMNS = ["p_down", "p_neutral", "p_up"]
# min_history < window: every batch mixes packed (padded) and full sequences.
SPEC = SignalSpec(window=WindowConfig(window=4, min_history=2), model=ModelConfig(hidden=8, layers=2),
                  train=TrainConfig(steps=6, batch_size=128, eval_every=3, progress=False))


def with_kind(kind: str) -> SignalSpec:
    return replace(SPEC, model=replace(SPEC.model, kind=kind))


@pytest.fixture(scope="module")
def market():
    return make_market(3, n_stocks=60, start="2010-01", end="2013-06")


@pytest.fixture(scope="module")
def fitted(market):
    return {kind: fit(market.panel, "2011-01", "2012-12", with_kind(kind), baseline=False, composite=False)
            for kind in ("lstm", "gru", "rnn")}


def probabilities(signal, panel):
    return signal.predict_panel(panel, panel.dates[-3:])[COLUMNS].to_numpy(np.float32)


def test_the_lstm_gives_the_numbers_it_gave_before_model_kinds(market, fitted):
    # Computed with the code of commit 13a68af (fit(..., window=, model=, train_config=)):
    # same seed, same market, same settings, so the same initialisation and training, bit for bit
    # (the validation loss and the first row, on AMD EPYC and Intel Xeon alike). The other rows'
    # last bits differ between those CPUs (the whole array's sha256 did), so they are compared
    # through their column means and spreads (measured on the Xeon).
    result = fitted["lstm"]
    probs = probabilities(result.signal, market.panel)
    assert probs.shape == (255, 3)
    assert probs[0].tolist() == [0.243486225605011, 0.31402260065078735, 0.44249117374420166]
    assert result.validation_loss == 1.107261061668396
    np.testing.assert_allclose(probs.mean(axis=0), [0.2422653884, 0.3113750517, 0.4463595748], rtol=1e-5)
    np.testing.assert_allclose(probs.std(axis=0), [0.0111842118, 0.0209943317, 0.0130549865], rtol=1e-4)
    assert list(result.signal.module.state_dict())[0] == "lstm.weight_ih_l0"  # the checkpoints' keys


@pytest.mark.parametrize("kind, gates", [("gru", 3), ("rnn", 1)])
def test_gru_and_rnn_train_save_load_and_predict_alike(tmp_path, market, fitted, kind, gates):
    signal = fitted[kind].signal
    assert signal.kind == kind and signal.spec.model.describe() == f"2x8 {kind.upper()}"
    assert signal.module.input_layer()[0].shape == (gates * 8, market.panel.F)
    assert all(key.startswith((f"{kind}.", "head.")) for key in signal.module.state_dict())
    probs = probabilities(signal, market.panel)
    assert np.isfinite(probs).all() and not np.array_equal(probs, probabilities(fitted["lstm"].signal, market.panel))
    assert fitted[kind].history["val_loss"].notna().sum() == 2  # the one training loop evaluated it

    loaded = SignalModel.load(signal.save(tmp_path / f"{kind}.pt"))
    assert loaded.spec == signal.spec and loaded.kind == kind
    np.testing.assert_array_equal(probabilities(loaded, market.panel), probs)
    history = market.panel.take(rows=slice(market.panel.T - 4, market.panel.T))
    np.testing.assert_array_equal(loaded.predict(history), signal.predict(history))


def test_fit_trains_only_recurrent_kinds(market):
    with pytest.raises(FitError, match="recurrent model.*got 'logistic'"):
        fit(market.panel, "2011-01", "2012-12", with_kind("logistic"))


@pytest.mark.parametrize("kind", ["gru", "rnn"])
def test_gru_and_rnn_serve_through_the_backtrader_strategy(market, fitted, kind):
    signal = fitted[kind].signal
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(1e7)
    cerebro.broker.addcommissioninfo(AShareCommission())
    cerebro.addstrategy(LSTMTercileStrategy, signal=signal)
    add_panel_feeds(cerebro, market.panel, start="2013-01")
    strategy = cerebro.run()[0]
    online = strategy.predictions()
    dates = online.index.get_level_values("date").unique()
    assert len(dates) >= 4 and strategy.orders_sent > 0
    offline = signal.predict_panel(market.panel, dates)
    assert online.index.equals(offline.index)
    np.testing.assert_allclose(online[COLUMNS].to_numpy(), offline[COLUMNS].to_numpy(), rtol=0, atol=1e-6)
