"""Honest model selection, ensembles, the rank composite and walk-forward (SPEC §5)."""
import warnings
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from feeds.synthetic import make_market
from signals import (ModelConfig, SignalModel, SignalSpec, TrainConfig, WalkForwardConfig, WalkForwardSignal,
                     WindowConfig, fit, fold_plan)
from signals.ranking import cross_sectional_ranks, grouped_rank_ic
from signals.serve import SignalError
from signals.walkforward import WalkForwardError

WINDOW = WindowConfig(window=6)
SMALL = ModelConfig(hidden=8, layers=1)


def honest(**kw):
    """The small model with honest selection: time validation, rank-IC early stopping."""
    base = dict(steps=30, batch_size=128, eval_every=5, eval_samples=0, validation="time", val_months=6,
                select="rank_ic", patience=3, progress=False)
    base.update(kw)
    return SignalSpec(window=WINDOW, model=SMALL, train=TrainConfig(**base))


@contextmanager
def no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.fixture(scope="module")
def market():
    return make_market(2, n_stocks=150, start="2010-01", end="2014-12")


@pytest.fixture(scope="module")
def fitted(market):
    return fit(market.panel, "2011-01", "2013-06", honest())


# ------------------------------------------------------------------ selection on validation data
def test_rank_ic_selection_restores_the_best_validation_state(market, fitted):
    history = fitted.history
    assert "val_rank_ic" in history.columns
    scored = history.dropna(subset=["val_rank_ic"])
    best = scored.loc[scored["val_rank_ic"].idxmax()]
    assert fitted.train_result.best_step == int(best["step"])
    # The restored state is the best one: its rank IC, recomputed on the whole validation set
    # (the evaluations used all of it), is the history's maximum.
    from signals.fit import _validation
    val = fitted.validation_set
    panel = market.panel
    warm = panel.dates.get_loc(pd.Timestamp("2011-01-31")) - (WINDOW.window - 1)  # fit's warm-up rows
    t, i = val.t.numpy() + warm, val.i.numpy()
    recomputed = _validation(fitted.signal.module, val, panel.ret[t + 1, i])
    assert recomputed["rank_ic"] == pytest.approx(best["val_rank_ic"], abs=1e-9)
    assert fitted.validation["lstm"]["rank_ic"] == pytest.approx(best["val_rank_ic"], abs=1e-9)
    assert fitted.signal.meta["validation_rank_ic"] == pytest.approx(best["val_rank_ic"], abs=1e-9)


def test_a_larger_budget_does_not_change_an_early_stopped_model(market):
    kw = dict(baseline=False, composite=False)
    short = fit(market.panel, "2011-01", "2013-06", honest(steps=60, lr=0.01, patience=2), **kw)
    assert short.train_result.stopped_early
    longer = fit(market.panel, "2011-01", "2013-06", honest(steps=600, lr=0.01, patience=2), **kw)
    for key, value in short.signal.module.state_dict().items():
        assert torch.equal(value, longer.signal.module.state_dict()[key]), key


def test_time_validation_is_carved_from_the_training_window_and_purged(fitted):
    samples = fitted.samples
    assert samples["purged"] > 0 and samples["validation"] > 0
    val_months = np.unique(fitted.validation_set.t.numpy())
    assert len(val_months) == 6


def test_selection_needs_validation_returns():
    from signals.train import TrainError, train
    from signals.windows import WindowDataset
    values = np.zeros((8, 20, 3), dtype=np.float32)
    data = WindowDataset(values, np.full(20, 7), np.arange(20), WindowConfig(window=2),
                         labels=np.zeros((8, 20), dtype=np.int64))
    with pytest.raises(TrainError, match="next-month returns"):
        train(ModelConfig(n_factors=3, hidden=4, layers=1), data, data, honest().train)


# ------------------------------------------------------------------ refit on the whole window
@pytest.fixture(scope="module")
def refitted(market):
    return fit(market.panel, "2011-01", "2013-06", honest(refit="steps"))


def test_refit_trains_the_selected_budget_again_on_every_sample(market, fitted, refitted):
    selected_step = fitted.train_result.best_step
    # selection is untouched by the refit: same state, same validation figures
    for key, value in fitted.signal.module.state_dict().items():
        assert torch.equal(value, refitted.selected.module.state_dict()[key]), key
    assert {m: v["rank_ic"] for m, v in refitted.validation.items()} == \
        {m: v["rank_ic"] for m, v in fitted.validation.items()}
    refit = refitted.signal.meta["refit"]
    assert refit == {"rule": "steps", "samples": sum(fitted.samples.values()), "steps": [selected_step]}
    assert refit["samples"] > fitted.samples["train"]
    changed = [not torch.equal(v, refitted.selected.module.state_dict()[k])
               for k, v in refitted.signal.module.state_dict().items()]
    assert any(changed)
    # the baselines are refitted on the same samples
    assert refitted.baseline.meta["refit"]["samples"] == refit["samples"]
    assert not np.allclose(refitted.composite.module.weight.numpy(), fitted.composite.module.weight.numpy())
    # 'epochs' keeps the passes over the data: more steps on more samples
    epochs = TrainConfig(refit="epochs").refit_config(selected_step, fitted.samples["train"], refit["samples"])
    assert epochs.steps == int(np.ceil(selected_step * refit["samples"] / fitted.samples["train"]))
    assert epochs.steps > selected_step and epochs.patience is None and epochs.refit == "none"


def test_the_refit_reads_nothing_after_the_training_window(market, refitted):
    panel = market.panel
    end = panel.dates.get_loc(pd.Timestamp("2013-06-30"))
    future = replace(panel, factors=panel.factors.copy(), ret=panel.ret.copy())
    future.factors[end + 1:] = np.random.default_rng(0).normal(size=future.factors[end + 1:].shape)
    future.ret[end + 1:] = 0.5
    again = fit(future, "2011-01", "2013-06", honest(refit="steps"))
    for key, value in refitted.signal.module.state_dict().items():
        assert torch.equal(value, again.signal.module.state_dict()[key]), key


def test_an_unknown_refit_rule_is_one_clear_error():
    from signals.train import TrainError
    with pytest.raises(TrainError, match="train.refit must be one of none, steps, epochs"):
        TrainConfig(refit="all")


# ------------------------------------------------------------------ rank composite
def test_cross_sectional_ranks_span_minus_one_to_one_and_ignore_missing():
    x = np.array([[[3.0], [1.0], [np.nan], [2.0]]], dtype=np.float32)
    observed = np.isfinite(x)
    r = cross_sectional_ranks(np.nan_to_num(x), observed)
    assert r[0, :, 0].tolist() == [1.0, -1.0, 0.0, 0.0]


def test_grouped_rank_ic_matches_a_per_month_spearman():
    rng = np.random.default_rng(0)
    s, o = rng.normal(size=300), rng.normal(size=300)
    g = np.repeat([0, 1, 2], 100)
    ic = grouped_rank_ic(s, o, g)
    for k in range(3):
        expected = pd.Series(s[g == k]).corr(pd.Series(o[g == k]), method="spearman")
        assert ic.iloc[k] == pytest.approx(expected)


def test_composite_weights_follow_the_factors_training_ics(market, fitted):
    composite = fitted.composite
    assert composite.kind == "composite" and composite.spec.preprocess.rank
    ics = composite.meta["factor_rank_ic"]
    weight = composite.module.weight.numpy()
    assert np.sign(weight).tolist() == np.sign([ics[f] for f in composite.factor_names]).tolist()
    assert np.abs(weight).sum() == pytest.approx(1.0, abs=1e-6)
    # A score, served like any model, that ranks out-of-sample stocks better than chance.
    frame = composite.predict_panel(market.panel, market.panel.dates[-12:-1])
    assert set(frame.columns) >= {"p_down", "p_neutral", "p_up"}
    from signals import evaluate_predictions
    assert evaluate_predictions(frame, market.panel)["rank_ic_mean"] > 0


def test_composite_and_ensemble_checkpoints_round_trip(tmp_path, market, fitted):
    path = fitted.composite.save(tmp_path / "composite.pt")
    again = SignalModel.load(path)
    dates = market.panel.dates[-3:]
    pd.testing.assert_frame_equal(again.predict_panel(market.panel, dates),
                                  fitted.composite.predict_panel(market.panel, dates))
    assert again.spec == fitted.composite.spec


def test_a_composite_checkpoint_written_before_the_spec_still_loads(tmp_path, fitted):
    # Composites were saved without a 'train' section until the spec; the format is otherwise the same.
    from signals.checkpoint import payload_digest
    path = fitted.composite.save(tmp_path / "composite.pt")
    payload = torch.load(path, weights_only=True)
    del payload["train"]
    payload["digest"] = payload_digest(payload)
    torch.save(payload, path)
    loaded = SignalModel.load(path)
    assert loaded.spec == replace(fitted.composite.spec, train=TrainConfig())


# ------------------------------------------------------------------ ensembles
def test_an_ensemble_averages_the_probabilities_of_consecutive_training_seeds(tmp_path, market):
    kw = dict(baseline=False, composite=False)
    sub = dict(eval_samples=100)  # selection on a subsample: the reported figures are the whole set's
    pair = fit(market.panel, "2011-01", "2013-06", honest(ensemble=2, seed=5, **sub), **kw)
    one = fit(market.panel, "2011-01", "2013-06", honest(seed=5, **sub), **kw)
    two = fit(market.panel, "2011-01", "2013-06", honest(seed=6, **sub), **kw)
    history = market.panel.take(rows=slice(30, 36))
    expected = (one.signal.predict(history) + two.signal.predict(history)) / 2
    np.testing.assert_allclose(pair.signal.predict(history), expected, atol=1e-6, equal_nan=True)
    assert pair.signal.spec.model.members == 2 and len(pair.signal.meta["members"]) == 2
    # each member's validation figure is its own model's on the whole validation set, as the ensemble's
    assert [m["validation_rank_ic"] for m in pair.signal.meta["members"]] == [
        one.validation["lstm"]["rank_ic"], two.validation["lstm"]["rank_ic"]]
    loaded = SignalModel.load(pair.signal.save(tmp_path / "ensemble.pt"))
    np.testing.assert_array_equal(loaded.predict(history), pair.signal.predict(history))


def test_the_learning_curve_callback_gets_a_copy_not_the_training_module(market):
    seen = []

    def on_evaluate(step, signal):
        seen.append(signal.module)

    result = fit(market.panel, "2011-01", "2013-06", honest(steps=10, patience=None), baseline=False,
                 composite=False, on_evaluate=on_evaluate)
    assert seen and all(m is not result.signal.module for m in seen)


# ------------------------------------------------------------------ walk-forward
def test_fold_plan_covers_the_test_months_once_with_training_before_each_fold():
    folds = fold_plan("2007-05", "2012-04", "2012-05", "2017-04", WalkForwardConfig(retrain_every=12))
    assert len(folds) == 5
    decided = pd.DatetimeIndex([d for f in folds for d in pd.date_range(f.first_decision, f.last_decision,
                                                                        freq="ME")])
    assert decided.is_unique and len(decided) == 60
    assert decided[0] == pd.Timestamp("2012-04-30") and decided[-1] == pd.Timestamp("2017-03-31")
    for f in folds:
        assert f.train_end <= f.first_decision  # labels realised by the first decision
        assert f.train_start == pd.Timestamp("2007-05-31")
    rolling = fold_plan("2007-05", "2012-04", "2012-05", "2017-04", WalkForwardConfig(12, "rolling"))
    assert [f.train_start.year for f in rolling] == [2007, 2008, 2009, 2010, 2011]
    assert fold_plan("2007-05", "2012-04", "2012-05", "2012-07", WalkForwardConfig(12))[0].last_decision == \
        pd.Timestamp("2012-06-30")
    with pytest.raises(WalkForwardError):
        WalkForwardConfig(retrain_every=0)
    with pytest.raises(WalkForwardError):
        fold_plan("2007-05", "2012-04", "2012-05", "2017-04", WalkForwardConfig())


@pytest.fixture(scope="module")
def walk(market):
    config = WalkForwardConfig(retrain_every=6)
    plan = fold_plan("2011-01", "2013-06", "2013-07", "2014-06", config)
    models = [fit(market.panel, f.train_start, f.train_end, honest(), baseline=False, composite=False).signal
              for f in plan]
    return plan, WalkForwardSignal([(f.first_decision, m) for f, m in zip(plan, models)])


def test_walk_forward_signal_picks_the_fold_by_the_history_last_date(market, walk):
    plan, signal = walk
    panel = market.panel
    assert len(plan) == 2 and signal.window == WINDOW.window
    for fold, model in zip(plan, signal.models):
        for date in (fold.first_decision, fold.last_decision):
            t = panel.dates.get_loc(date)
            history = panel.take(rows=slice(t - WINDOW.window + 1, t + 1))
            np.testing.assert_array_equal(signal.predict(history), model.predict(history))
    t = panel.dates.get_loc(plan[0].first_decision) - 1
    with pytest.raises(SignalError, match="no walk-forward fold"):
        signal.predict(panel.take(rows=slice(t - WINDOW.window + 1, t + 1)))


def test_walk_forward_offline_equals_per_month_online_and_round_trips(tmp_path, market, walk):
    plan, signal = walk
    panel = market.panel
    dates = pd.date_range(plan[0].first_decision, plan[-1].last_decision, freq="ME")
    offline = signal.predict_panel(panel, dates)
    assert offline.index.get_level_values("date").unique().equals(pd.DatetimeIndex(dates, name="date"))
    for date in dates[[0, 5, 6, 11]]:
        t = panel.dates.get_loc(date)
        online = signal.predict(panel.take(rows=slice(t - WINDOW.window + 1, t + 1)))
        rows = offline.xs(date, level="date")
        codes = panel.codes.get_indexer(rows.index)
        np.testing.assert_allclose(rows[["p_down", "p_neutral", "p_up"]].to_numpy(), online[codes], atol=1e-6)
    loaded = WalkForwardSignal.load(signal.save(tmp_path / "models"))
    pd.testing.assert_frame_equal(loaded.predict_panel(panel, dates), offline)


def test_a_fold_model_never_sees_data_after_its_training_window(market, walk):
    plan, signal = walk
    panel = market.panel
    cut = panel.dates.get_loc(plan[0].train_end) + 1
    altered = panel.take(rows=slice(0, panel.T))
    altered.factors[cut:] = np.random.default_rng(9).normal(size=altered.factors[cut:].shape).astype(np.float32)
    altered.ret[cut:] = -altered.ret[cut:]
    again = fit(altered, plan[0].train_start, plan[0].train_end, honest(), baseline=False, composite=False).signal
    for key, value in signal.models[0].module.state_dict().items():
        assert torch.equal(value, again.module.state_dict()[key]), key


# ------------------------------------------------------------------ through the main command
WF_CONFIG = """
name: wf_tiny
seed: 0
data: {source: synthetic, synthetic: {n_stocks: 80, start: 2010-01, end: 2013-12}}
dates: {train_start: 2011-01-01, train_end: 2012-04-30, test_start: 2012-05-01, test_end: 2013-10-31}
walk_forward: {retrain_every: 9}
window: {window: 6}
labels: {excess: true}
model: {hidden: 8, layers: 1}
train: {batch_size: 128, steps: 20, eval_every: 5, validation: time, val_months: 4, select: rank_ic, patience: 2,
        refit: steps, ensemble: 2}
backtest: {selections: [class], books: [long_short], cash: 10000000.0}
output: {tearsheets: false}
"""


def test_walk_forward_through_the_main_command(tmp_path):
    import json

    import run_backtest
    from signals.walkforward import MANIFEST

    config = tmp_path / "wf.yaml"
    config.write_text(WF_CONFIG)
    args = ["--config", str(config), "--quiet", "--set", f"output.cache_dir={tmp_path / 'cache'}"]
    assert run_backtest.main([*args, "--output", str(tmp_path / "run")]) == 0
    out = tmp_path / "run"
    assert (out / "models" / MANIFEST).is_file() and len(list((out / "models").glob("fold_*.pt"))) == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["walk_forward"]["folds"]) == 2
    years = [row["year"] for row in metrics["walk_forward"]["by_year"]]
    assert years == [2012, 2013, "all"]
    overall = metrics["walk_forward"]["by_year"][-1]
    assert overall["months"] == 18
    for key in ("lstm.rank_ic_mean", "lstm.rank_ic_t", "lstm.ic_efficiency", "composite.rank_ic_mean",
                "baseline.rank_ic_mean", "class.cum_excess", "class.monthly_win_rate", "class.t_stat"):
        assert key in overall
    assert overall["lstm.rank_ic_mean"] == pytest.approx(metrics["class"]["rank_ic_mean"])
    # the long/short figures' own months: the whole run's, and the years' add up to them
    assert overall["class.n_months"] == metrics["class"]["long_short"]["n_months"]
    assert sum(row["class.n_months"] for row in metrics["walk_forward"]["by_year"][:-1]) == overall["class.n_months"]
    assert set(metrics["validation"]) == {"lstm", "baseline", "composite"}
    assert metrics["lstm_margin"]["better_baseline"] in ("logistic", "composite")
    # every fold's ensemble members refitted their own selected step counts on the whole window, and
    # each member's validation rank IC is kept beside the ensemble's (as configs/walk_forward.yaml)
    for fold in metrics["training"]["folds"]:
        members = fold["members"]
        assert [m["seed"] for m in members] == [0, 1] and members[0]["best_step"] == fold["best_step"]
        assert fold["refit"]["rule"] == "steps" and fold["refit"]["steps"] == [m["best_step"] for m in members]
        assert all(np.isfinite(m["validation_rank_ic"]) for m in members)
        assert np.isfinite(fold["validation"]["lstm"]["rank_ic"])
    # what describes the run is every fold's: validation figures their mean, timings their sum,
    # and the report names each fold's training span
    folds = metrics["training"]["folds"]
    assert metrics["validation"]["lstm"]["rank_ic"] == pytest.approx(
        np.mean([f["validation"]["lstm"]["rank_ic"] for f in folds]))
    assert metrics["validation_accuracy"] == pytest.approx(np.mean([f["validation_accuracy"] for f in folds]))
    assert metrics["training"]["timings"]["train"] == pytest.approx(sum(f["timings"]["train"] for f in folds))
    assert metrics["training"]["best_step"] is None and all(f["samples"]["train"] > 0 for f in folds)
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "2011-01..2012-04, 2011-01..2013-01 (expanding walk-forward" in report
    # One Backtrader run across both folds: its predictions equal the offline ones.
    assert metrics["checks"]["online_offline_max_abs_diff"] < 1e-6
    served = WalkForwardSignal.load(out / "models")
    assert len(served.models) == 2
    # Every fold is cached by its own key: a second run trains nothing.
    assert run_backtest.main([*args, "--output", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["checks"]["model_cached"] is True
    assert again["walk_forward"]["by_year"] == metrics["walk_forward"]["by_year"]


@pytest.mark.parametrize("best, members, warned", [
    (20, None, True),                                                    # the first evaluation, 200 steps on
    (40, None, True),                                                    # the second
    (60, None, False),                                                   # the third: no warning
    (20, [{"seed": 0, "best_step": 200}, {"seed": 1, "best_step": 20}], True),  # one member of an ensemble
    (200, [{"seed": 0, "best_step": 200}, {"seed": 1, "best_step": 180}], False),
])
def test_a_selection_at_the_first_evaluations_warns_that_the_model_is_barely_trained(best, members, warned):
    from pipeline.train import warn_early_selection

    train = TrainConfig(steps=3000, validation="time", select="rank_ic", patience=10, eval_every=20)
    training = {"history": pd.DataFrame({"step": range(0, 221, 20)}), "best_step": best, "members": members}
    with pytest.warns(UserWarning, match="barely trained") if warned else no_warning():
        warn_early_selection(training, train)
    # a budget that ended right there, or a last state served, selected nothing early
    with no_warning():
        warn_early_selection({**training, "history": pd.DataFrame({"step": [0, 20, 40]})}, train)
        warn_early_selection(training, replace(train, select="loss", patience=None))


def test_the_lstm_margin_tests_the_monthly_rank_ic_difference_against_the_better_baseline():
    from scipy import stats

    from pipeline.evaluate import lstm_margin, summary_rows

    dates = pd.date_range("2016-04-30", periods=6, freq="ME")
    lstm = pd.DataFrame({"rank_ic": [0.10, 0.08, np.nan, 0.12, 0.02, 0.09]}, index=dates)
    composite = pd.DataFrame({"rank_ic": [0.05, 0.09, 0.07, 0.06, 0.04, 0.03]}, index=dates)
    logistic = pd.DataFrame({"rank_ic": [0.0] * 6}, index=dates)  # worse: never the one compared
    margin = lstm_margin({"rank_ic_mean": 0.082, "ic_efficiency": 0.8}, {"rank_ic_mean": 0.0},
                         {"rank_ic_mean": 0.057, "ic_efficiency": 0.5},
                         {"lstm": lstm, "baseline": logistic, "composite": composite})
    difference = np.array([0.05, -0.01, 0.06, -0.02, 0.06])  # the month without an LSTM IC drops out
    assert margin["better_baseline"] == "composite"
    assert margin["months"] == 5 and margin["months_ahead"] == 3
    assert margin["t_stat"] == pytest.approx(stats.ttest_1samp(difference, 0.0).statistic)
    assert margin["p_value"] == pytest.approx(stats.ttest_1samp(difference, 0.0).pvalue)
    assert margin["rank_ic_mean"] == pytest.approx(0.025)
    # the headline table says it; a run without the monthly series has no such row
    block = {"oos_accuracy": 0.5, "no_skill_accuracy": 0.5, "rank_ic_mean": 0.082,
             "long_short": {"cum_excess": 0.1, "monthly_win_rate": 0.6}}
    doc = {"selections": ["class"], "class": block, "baseline": {}, "oracle": {}, "lstm_margin": margin}
    row = [r for r in summary_rows(doc) if r[0].startswith("LSTM minus composite")]
    assert row and row[0][1] == f"+0.025 (t {margin['t_stat']:.1f}; 3 of 5)"
    assert not [r for r in summary_rows({**doc, "lstm_margin": {"better_baseline": "composite"}})
                if r[0].startswith("LSTM minus")]
