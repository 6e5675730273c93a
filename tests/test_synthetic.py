"""Properties of the synthetic A-share market (SPEC §4.3): checked on what it produces, not how."""
import numpy as np
import pandas as pd
import pytest

from feeds.crosssection import MIN_STOCKS, grouped_rank_ic, rank_ic
from feeds.synthetic import STYLES, make_market
from feeds.panel import PanelError


@pytest.fixture(scope="module")
def market():
    return make_market(seed=0)


def cross_section_z(x, listed):
    """Robust z-score of one cross-section ([N] or [N, F]) with clipping: a crude preprocessing."""
    x = np.where(listed.reshape(listed.shape + (1,) * (x.ndim - 1)), x, np.nan)
    med = np.nanmedian(x, axis=0, keepdims=True)
    mad = np.nanmedian(np.abs(x - med), axis=0, keepdims=True) * 1.4826
    z = np.clip((x - med) / np.where(mad > 0, mad, 1), -5, 5)
    return np.nan_to_num(z)


def r_squared(y, X):
    X = np.column_stack([np.ones(len(y)), X])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    return 1 - resid.var() / y.var()


def test_listed_counts_follow_the_a_share_history(market):
    p = market.panel
    counts = pd.Series(p.listed.sum(axis=1), index=p.dates)
    assert 1200 <= counts.iloc[0] <= 1400
    assert 2800 <= counts["2016-12-31"] <= 3200
    assert counts["2013-12-31"] - counts["2013-01-31"] < 40  # the 2013 IPO halt
    delisted = (p.listed[:-1] & ~p.listed[1:]).sum()
    assert 0 < delisted < 0.05 * p.N


def test_industries_are_uneven(market):
    p = market.panel
    sizes = np.bincount(p.industry[-1][p.listed[-1]], minlength=len(p.industries))
    assert len(p.industries) == 28 and sizes.min() > 0 and sizes.max() > 5 * sizes.min()


def test_styles_and_factor_counts(market):
    p = market.panel
    assert p.F == 48 and len(p.styles) == 10
    assert {k: len(v) for k, v in p.styles.items()} == {
        "value": 6, "growth": 5, "profitability": 5, "leverage": 4, "size": 3,
        "momentum": 5, "reversal": 3, "volatility": 6, "liquidity": 6, "technical": 5}


def test_factors_within_a_style_are_correlated_views(market):
    p = market.panel
    t = p.dates.get_loc(pd.Timestamp("2014-06-30"))
    z = cross_section_z(p.factors[t], p.listed[t])[p.listed[t]]
    corr = np.abs(np.corrcoef(z.T))
    style = np.array([p.style_of[f] for f in p.factor_names])
    same = style[:, None] == style[None, :]
    off_diag = ~np.eye(p.F, dtype=bool)
    for name in ("value", "growth", "profitability", "leverage", "momentum", "volatility", "liquidity"):
        inside = corr[np.ix_(style == name, style == name)][off_diag[np.ix_(style == name, style == name)]]
        assert inside.mean() > 0.25, name
    assert corr[~same & off_diag].mean() < 0.15
    # some views are sign-flipped: negative correlations inside the leverage style
    lev = [p.factor_names.index(f) for f in STYLES["leverage"]]
    assert (np.corrcoef(z[:, lev].T) < -0.2).any()


def test_factors_carry_industry_offsets(market):
    p = market.panel
    t = p.dates.get_loc(pd.Timestamp("2015-06-30"))
    ok = p.listed[t]
    dummies = np.eye(len(p.industries))[p.industry[t, ok]]
    shares = [r_squared(cross_section_z(p.factors[t, :, j], p.listed[t])[ok], dummies[:, 1:])
              for j in range(p.F)]
    assert np.median(shares) > 0.08  # industry explains a real share of factor levels


def test_fat_tails_outliers_and_missing_values(market):
    p = market.panel
    age = np.cumsum(p.listed, axis=0)
    mature = p.listed & (age > 13)
    missing = np.isnan(p.factors[mature]).mean(axis=0)
    assert 0.01 <= missing.mean() <= 0.03 and missing.min() > 0.003 and missing.max() < 0.06
    t = p.dates.get_loc(pd.Timestamp("2012-03-31"))
    x = np.where(p.listed[t][:, None], p.factors[t], np.nan)
    med = np.nanmedian(x, axis=0)
    mad = np.nanmedian(np.abs(x - med), axis=0) * 1.4826
    robust_max = np.nanmax(np.abs(x - med) / mad, axis=0)
    assert (robust_max > 10).mean() > 0.9  # nearly every factor has gross outliers this month
    ret = p.ret[p.listed & np.isfinite(p.ret)]
    excess_kurtosis = pd.Series(ret - ret.mean()).kurt()
    assert excess_kurtosis > 1.0


def test_flag_rates_and_semantics(market):
    p = market.panel
    listed = p.listed
    assert 0.01 <= p.suspended[listed].mean() <= 0.03
    assert 0.01 <= p.limit_up[listed].mean() <= 0.02
    assert 0.01 <= p.limit_down[listed].mean() <= 0.02
    assert 0.02 <= p.is_st[listed].mean() <= 0.04
    assert not (p.suspended & (p.limit_up | p.limit_down)).any()
    assert np.nanmean(p.ret[p.limit_up]) > np.nanmean(p.ret[listed]) > np.nanmean(p.ret[p.limit_down])
    assert (p.ret[p.suspended] == 0).all()  # the return is realised on resumption


def test_market_has_fat_tailed_boom_bust(market):
    p = market.panel
    mkt = pd.Series(np.nanmean(p.ret, axis=1), index=p.dates)
    assert 0.06 <= mkt.std() <= 0.13
    assert (1 + mkt["2006-01":"2007-09"]).prod() > 2.0
    assert (1 + mkt["2007-10":"2008-10"]).prod() < 0.5


def test_oracle_rank_ic_is_calibrated(market):
    ic = market.oracle_rank_ic()
    assert 0.10 <= ic.mean() <= 0.15
    assert (ic > 0).mean() > 0.9


def test_mu_variance_shares_match_the_settings(market):
    shares = market.variance_shares()
    assert shares == pytest.approx({"linear": 0.5, "nonlinear": 0.2, "sequence": 0.3}, abs=0.01)
    off = make_market(seed=1, n_stocks=100, start="2010-01", end="2012-12", share_sequence=0.0)
    assert off.variance_shares()["sequence"] == pytest.approx(0.0, abs=1e-9)


def test_oracle_is_not_in_the_panel_and_is_nan_off_listing(market):
    assert np.isnan(market.oracle[~market.panel.listed]).all()
    assert np.isfinite(market.oracle[market.panel.listed]).all()


def test_last_snapshot_cannot_reach_the_oracle_but_the_history_can(market):
    """The sequence part of mu is invisible in one snapshot and visible in two of them."""
    p = market.panel
    seq_r2_snapshot, seq_r2_history, mu_r2_snapshot = [], [], []
    for t in range(p.dates.get_loc(pd.Timestamp("2013-01-31")), p.dates.get_loc(pd.Timestamp("2013-06-30"))):
        ok = p.listed[t] & p.listed[t - 6]
        now = cross_section_z(p.factors[t], p.listed[t])[ok]
        before = cross_section_z(p.factors[t - 6], p.listed[t - 6])[ok]
        snapshot = np.column_stack([now, now ** 2])
        seq_r2_snapshot.append(r_squared(market.parts["sequence"][t, ok], snapshot))
        seq_r2_history.append(r_squared(market.parts["sequence"][t, ok], np.column_stack([snapshot, before])))
        mu_r2_snapshot.append(r_squared(market.oracle[t, ok], snapshot))
    assert np.mean(seq_r2_snapshot) < 0.05
    assert np.mean(seq_r2_history) > 0.3
    assert np.mean(mu_r2_snapshot) < 0.7


def test_same_seed_same_market_other_seed_other_market():
    a = make_market(seed=3, n_stocks=80, start="2011-01", end="2013-06")
    b = make_market(seed=3, n_stocks=80, start="2011-01", end="2013-06")
    c = make_market(seed=4, n_stocks=80, start="2011-01", end="2013-06")
    np.testing.assert_array_equal(a.panel.factors, b.panel.factors)
    np.testing.assert_array_equal(a.panel.ret, b.panel.ret)
    np.testing.assert_array_equal(a.oracle, b.oracle)
    assert not np.array_equal(a.panel.ret[np.isfinite(a.panel.ret)][:100], c.panel.ret[np.isfinite(c.panel.ret)][:100])


def test_overrides_and_unknown_setting():
    small = make_market(seed=0, n_stocks=50, start="2012-01", end="2013-12", n_industries=5)
    assert small.panel.T == 24 and len(small.panel.industries) == 5 and 40 <= small.panel.listed[0].sum() <= 60
    with pytest.raises(PanelError, match="unknown synthetic market setting 'n_stock'"):
        make_market(seed=0, n_stock=5)


def test_rank_ic_helper():
    score = np.array([[1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, np.nan]])
    outcome = score.copy() ** 3
    assert rank_ic(score, outcome, ["2020-01-31"]).iloc[0] == pytest.approx(1.0)


def test_rank_ic_by_rows_and_by_groups_agree():
    """The [T, N] form and the per-sample form are one computation: ties share their average
    rank, non-finite pairs drop out and a month needs MIN_STOCKS pairs."""
    rng = np.random.default_rng(3)
    score = np.round(rng.normal(size=(4, 30)), 1)  # ties
    outcome = rng.normal(size=(4, 30))
    score[0, :25] = np.nan  # 5 pairs left: too few
    outcome[1, :30 - MIN_STOCKS] = np.inf  # exactly MIN_STOCKS pairs left
    rows = rank_ic(score, outcome, pd.date_range("2020-01-31", periods=4, freq="ME"))
    groups = grouped_rank_ic(score.ravel(), outcome.ravel(), np.repeat(np.arange(4), 30))
    np.testing.assert_array_equal(rows.to_numpy(), groups.to_numpy())
    assert np.isnan(rows.iloc[0]) and np.isfinite(rows.iloc[1:]).all()
    for t in (1, 2, 3):
        ok = np.isfinite(score[t]) & np.isfinite(outcome[t])
        expected = pd.Series(score[t, ok]).corr(pd.Series(outcome[t, ok]), method="spearman")
        assert rows.iloc[t] == pytest.approx(expected)


def test_every_listed_month_has_a_price(market):
    p = market.panel
    assert np.isfinite(p.close[p.listed]).all() and (p.close[p.listed] > 0).all()
    assert np.isnan(p.close[~p.listed]).all()
