"""Evaluation functions on hand-made predictions, and the diagnostics."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch

from feeds.panel import Panel
from feeds.synthetic import make_market
from signals import (ModelConfig, SignalSpec, TrainConfig, WindowConfig, accuracy_summary, confusion_matrix,
                     evaluate_predictions, factor_contribution, fit, ic_efficiency, ic_summary,
                     information_coefficients, monthly_accuracy, permutation_importance, style_contribution)
from signals.diagnostics import input_weights
from signals.evaluate import SUMMARY_KEYS, EvaluationError, next_returns

DATES = pd.date_range("2020-01-31", periods=3, freq="ME")
CODES = [f"S{k:02d}" for k in range(12)]


def toy_panel(ret):
    T, N = ret.shape
    return Panel(dates=DATES[:T], codes=CODES[:N], factors=np.random.default_rng(0).normal(size=(T, N, 1)),
                 factor_names=["f"], ret=ret, close=np.ones((T, N)), listed=np.ones((T, N), bool))


def frame(probs, month=0, codes=None):
    codes = codes or CODES[:len(probs)]
    index = pd.MultiIndex.from_arrays([[DATES[month]] * len(probs), codes], names=["date", "code"])
    out = pd.DataFrame(np.asarray(probs, float), index=index, columns=["p_down", "p_neutral", "p_up"])
    out["pred"] = np.array(["down", "neutral", "up"])[out.to_numpy().argmax(axis=1)]
    return out


def onehot(classes):
    return np.eye(3)[classes] * 0.8 + 0.2 / 3


def test_accuracy_no_skill_and_confusion_matrix():
    ret = np.zeros((2, 6))
    ret[1] = [0.05, 0.06, 0.07, 0.0, -0.05, 0.10]  # true classes: up up up neutral down up
    panel = toy_panel(ret)
    preds = frame(onehot([2, 2, 1, 1, 0, 0]))
    monthly = monthly_accuracy(preds, panel)
    assert monthly.loc[DATES[0], "accuracy"] == pytest.approx(4 / 6)
    assert monthly.loc[DATES[0], "no_skill"] == pytest.approx(4 / 6)  # "up" is 4 of 6
    assert monthly.loc[DATES[0], "n"] == 6
    summary = accuracy_summary(preds, panel)
    assert summary == pytest.approx({"accuracy": 4 / 6, "no_skill": 4 / 6, "n": 6, "months": 1})
    cm = confusion_matrix(preds, panel)
    assert cm.loc["up", "up"] == 2 and cm.loc["up", "neutral"] == 1 and cm.loc["up", "down"] == 1
    assert cm.loc["down", "down"] == 1 and cm.loc["neutral", "neutral"] == 1 and cm.to_numpy().sum() == 6


def test_predictions_without_an_outcome_are_left_out():
    panel = toy_panel(np.zeros((2, 4)))
    last = frame(onehot([0, 1, 2, 1]), month=1, codes=CODES[:4])
    assert accuracy_summary(last, panel)["n"] == 0
    assert information_coefficients(last, panel).empty


def test_information_coefficients_against_numpy():
    rng = np.random.default_rng(5)
    ret = rng.normal(0, 0.1, (3, 12))
    panel = toy_panel(ret)
    probs = rng.dirichlet(np.ones(3), size=(2, 12))
    preds = pd.concat([frame(probs[0], 0), frame(probs[1], 1)])
    ics = information_coefficients(preds, panel)
    assert list(ics.index) == list(DATES[:2])
    for m in range(2):
        score = probs[m, :, 2] - probs[m, :, 0]
        assert ics["ic"].iloc[m] == pytest.approx(np.corrcoef(score, ret[m + 1])[0, 1])
        ranks = pd.Series(score).rank(), pd.Series(ret[m + 1]).rank()
        assert ics["rank_ic"].iloc[m] == pytest.approx(np.corrcoef(*ranks)[0, 1])
    summary = ic_summary(ics)
    assert summary["icir"] == pytest.approx(ics["ic"].mean() / ics["ic"].std(ddof=1))
    assert summary["months"] == 2


def test_ic_efficiency_is_one_for_the_oracle_itself_and_uses_the_same_stocks():
    market = make_market(6, n_stocks=150, start="2010-01", end="2011-12")
    panel, oracle = market.panel, market.oracle
    t, i = np.nonzero(np.isfinite(oracle) & panel.listed)
    keep = (t >= 12) & (i % 2 == 0)  # half the stocks, one year
    t, i = t[keep], i[keep]
    mu = oracle[t, i]
    index = pd.MultiIndex.from_arrays([panel.dates[t], panel.codes[i]], names=["date", "code"])
    perfect = pd.DataFrame({"p_down": 0.5 - mu, "p_neutral": 0.0, "p_up": 0.5 + mu}, index=index)
    eff = ic_efficiency(perfect, panel, oracle)
    assert eff["ic_efficiency"] == pytest.approx(1.0) and eff["months"] == 11
    noisy = perfect.assign(p_up=0.5 + mu + np.random.default_rng(0).normal(0, 0.05, len(mu)))
    assert 0 < ic_efficiency(noisy, panel, oracle)["ic_efficiency"] < 1
    figures = evaluate_predictions(perfect.assign(pred="up"), panel, oracle=oracle)
    assert figures["ic_efficiency"] == pytest.approx(1.0)
    assert set(figures) == set(SUMMARY_KEYS)  # the metrics.json names, used as they are by reports
    assert figures["oracle_rank_ic_mean"] == pytest.approx(eff["oracle_rank_ic"])
    assert np.isnan(evaluate_predictions(perfect.assign(pred="up"), panel)["ic_efficiency"])  # no oracle
    with pytest.raises(EvaluationError, match="oracle has shape"):
        ic_efficiency(perfect, panel, oracle[:-1])


def test_next_returns_shift_by_one_month():
    ret = np.arange(6, dtype=float).reshape(3, 2)
    out = next_returns(toy_panel(ret))
    np.testing.assert_array_equal(out[:2], ret[1:])
    assert np.isnan(out[2]).all()


@pytest.fixture(scope="module")
def fitted():
    market = make_market(7, n_stocks=150, start="2010-01", end="2013-12")
    return fit(market.panel, "2011-01", "2013-06",
               SignalSpec(window=WindowConfig(window=6), model=ModelConfig(hidden=8, layers=1),
                          train=TrainConfig(steps=5, batch_size=256, eval_every=5)), progress=False)


def test_factor_contribution_is_the_sum_of_absolute_input_weights(fitted):
    signal = fitted.signal
    weight = signal.module.lstm.weight_ih_l0.detach().numpy()
    contrib = factor_contribution(signal)
    assert list(contrib.index) == signal.factor_names
    np.testing.assert_allclose(contrib.to_numpy(), np.abs(weight).sum(axis=0), rtol=1e-6)
    styles = style_contribution(signal)
    assert set(styles.index) == set(signal.styles)
    assert styles["value"] == pytest.approx(contrib[signal.styles["value"]].sum(), rel=1e-6)
    w, b = input_weights(fitted.baseline)
    assert w.shape == (3, signal.module.config.n_factors) and b.shape == (3,)


def test_permutation_importance_finds_the_only_factor_the_model_reads(fitted):
    signal = copy.deepcopy(fitted.baseline)
    with torch.no_grad():
        signal.module.linear.weight.zero_()
        signal.module.linear.weight[2, 3] = 5.0  # the model reads factor 3 only
    name = signal.factor_names[3]
    table = permutation_importance(signal, fitted.validation_set, by="factor", max_samples=500, seed=1)
    assert len(table) == len(signal.factor_names)
    assert abs(table.loc[name, "loss_increase"]) > 1e-3  # shuffling the one factor read changes the loss
    assert (table.drop(name)["loss_increase"].abs() < 1e-6).all()  # shuffling any other does nothing
    by_style = permutation_importance(signal, fitted.validation_set, by="style", max_samples=500)
    style = next(s for s, m in signal.styles.items() if name in m)
    assert abs(by_style.loc[style, "loss_increase"]) > 1e-3
    assert (by_style.drop(style)["loss_increase"].abs() < 1e-6).all()
