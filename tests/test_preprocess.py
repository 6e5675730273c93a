"""Cross-sectional preprocessing: hand-made cross-sections with known answers."""

import numpy as np
import pytest

from feeds.synthetic import make_market
from signals.preprocess import PreprocessConfig, PreprocessError, preprocess, preprocess_panel

NONE = dict(neutralize="none", restandardize=False)


def cube(*columns):
    """[1, N, F] from per-factor columns of one month."""
    return np.array(columns, dtype=np.float64).T[None]


def zscore(v):
    v = np.asarray(v, dtype=np.float64)
    return (v - v.mean()) / v.std()


def test_mad_winsorize_then_zscore_known_answer():
    # median 3, MAD = median(2, 1, 0, 1, 97) = 1, k = 5 -> bounds [-2, 8]: 100 becomes 8.
    x = cube([1, 2, 3, 4, 100])
    out = preprocess(x, np.ones((1, 5), bool), config=PreprocessConfig(**NONE))
    np.testing.assert_allclose(out[0, :, 0], zscore([1, 2, 3, 4, 8]), rtol=1e-6)
    assert out.dtype == np.float32 and out.shape == (1, 5, 1)


def test_mad_k_and_lower_tail():
    x = cube([-50, 2, 3, 4, 5, 6])  # median 3.5; MAD = median(53.5, 1.5, .5, .5, 1.5, 2.5) = 1.5
    out = preprocess(x, np.ones((1, 6), bool), config=PreprocessConfig(mad_k=2, **NONE))
    np.testing.assert_allclose(out[0, :, 0], zscore([0.5, 2, 3, 4, 5, 6]), rtol=1e-6)


def test_zero_mad_leaves_the_cross_section_unclipped():
    x = cube([0, 0, 0, 0, 0, 1, 9])  # MAD 0: clipping would erase the two non-zero values
    out = preprocess(x, np.ones((1, 7), bool), config=PreprocessConfig(**NONE))
    np.testing.assert_allclose(out[0, :, 0], zscore([0, 0, 0, 0, 0, 1, 9]), rtol=1e-6)


def test_percentile_winsorize():
    values = np.arange(101, dtype=float)
    values[-1] = 1e6
    out = preprocess(cube(values), np.ones((1, 101), bool),
                     config=PreprocessConfig(winsorize="percentile", percentile=0.05, **NONE))
    clipped = np.clip(values, 5.0, np.quantile(values, 0.95))
    np.testing.assert_allclose(out[0, :, 0], zscore(clipped), rtol=1e-5)


def test_missing_and_unlisted_become_zero_and_are_left_out_of_the_statistics():
    x = cube([1, 2, np.nan, 3, 50], [5, 5, 5, 5, 5])
    listed = np.array([[True, True, True, True, False]])
    out = preprocess(x, listed, config=PreprocessConfig(**NONE))
    np.testing.assert_allclose(out[0, [0, 1, 3], 0], zscore([1, 2, 3]), rtol=1e-6)
    assert out[0, 2, 0] == 0 and out[0, 4, 0] == 0
    assert (out[0, :, 1] == 0).all()  # a constant factor carries no information


def test_infinities_and_values_of_unlisted_stocks_are_left_out():
    x = cube([np.inf, 1, 2, 3, -np.inf, 7.0])
    listed = np.array([[True, True, True, True, True, False]])
    out = preprocess(x, listed, config=PreprocessConfig(**NONE))
    np.testing.assert_allclose(out[0, 1:4, 0], zscore([1, 2, 3]), rtol=1e-6)
    assert out[0, 0, 0] == out[0, 4, 0] == out[0, 5, 0] == 0


def test_thin_cross_section_is_filled():
    x = cube([1, 2, np.nan, np.nan])
    out = preprocess(x, np.ones((1, 4), bool), config=PreprocessConfig(min_stocks=3, fill_value=0.0, **NONE))
    assert (out == 0).all()


def test_industry_neutralization_is_the_residual_of_dummies():
    a = [1.0, 2.0, 3.0, 10.0, 12.0, 20.0]
    industry = np.array([[0, 0, 0, 1, 1, 1]])
    cfg = PreprocessConfig(winsorize="none", restandardize=False)
    out = preprocess(cube(a), np.ones((1, 6), bool), industry, config=cfg)[0, :, 0]
    z = zscore(a)
    expected = np.concatenate([z[:3] - z[:3].mean(), z[3:] - z[3:].mean()])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    restd = preprocess(cube(a), np.ones((1, 6), bool), industry,
                       config=PreprocessConfig(winsorize="none"))[0, :, 0]
    np.testing.assert_allclose(restd, zscore(expected), rtol=1e-5, atol=1e-6)


def test_industry_and_size_match_least_squares():
    rng = np.random.default_rng(3)
    n = 60
    industry = rng.integers(0, 4, n)
    mcap = np.exp(rng.normal(22, 1, n))
    y = rng.normal(size=n) + 0.7 * np.log(mcap) + industry
    y[5] = np.nan
    cfg = PreprocessConfig(winsorize="none", neutralize="industry_size", restandardize=False)
    out = preprocess(cube(y), np.ones((1, n), bool), industry[None], mcap[None], cfg)[0, :, 0]
    ok = np.isfinite(y)
    z = zscore(y[ok])
    design = np.column_stack([np.eye(4)[industry[ok]], np.log(mcap[ok])])
    beta, *_ = np.linalg.lstsq(design, z, rcond=None)
    np.testing.assert_allclose(out[ok], z - design @ beta, atol=2e-5)
    assert out[5] == 0


def test_unknown_industry_is_a_group_of_its_own():
    a = [1.0, 2.0, 3.0, 7.0, 9.0]
    industry = np.array([[0, 0, 0, -1, -1]])
    out = preprocess(cube(a), np.ones((1, 5), bool), industry,
                     config=PreprocessConfig(winsorize="none", restandardize=False))[0, :, 0]
    z = zscore(a)
    np.testing.assert_allclose(out, np.r_[z[:3] - z[:3].mean(), z[3:] - z[3:].mean()], atol=1e-6)


def test_months_and_factors_are_independent():
    market = make_market(1, n_stocks=150, start="2010-01", end="2012-12")
    panel = market.panel
    whole = preprocess_panel(panel)
    part = preprocess_panel(panel.take(rows=slice(10, 22)))
    np.testing.assert_array_equal(whole[10:22], part)
    one = preprocess(panel.factors[:, :, [3]], panel.listed, panel.industry)
    np.testing.assert_allclose(one[..., 0], whole[..., 3], atol=1e-5)  # BLAS blocking differs with F
    listed = panel.listed
    assert np.allclose(whole[listed].mean(axis=0), 0, atol=1e-5)
    assert (whole[~listed] == 0).all()


def test_vectorized_equals_the_per_month_reference_loop():
    from benchmarks import preprocess as bench
    panel = make_market(2, n_stocks=150, start="2010-01", end="2011-12").panel
    cfg = PreprocessConfig()
    np.testing.assert_allclose(preprocess_panel(panel, cfg), bench.preprocess_loop(panel, cfg), atol=5e-5)


def test_bad_settings_and_missing_data_raise_clear_errors():
    with pytest.raises(PreprocessError, match="winsorize"):
        PreprocessConfig(winsorize="clip")
    with pytest.raises(PreprocessError, match="neutralize"):
        PreprocessConfig(neutralize="sector")
    with pytest.raises(PreprocessError, match="mad_k"):
        PreprocessConfig(mad_k=0)
    x = cube([1, 2, 3])
    with pytest.raises(PreprocessError, match="industry codes"):
        preprocess(x, np.ones((1, 3), bool))
    with pytest.raises(PreprocessError, match="mcap"):
        preprocess(x, np.ones((1, 3), bool), np.zeros((1, 3), int),
                   config=PreprocessConfig(neutralize="industry_size"))
    with pytest.raises(PreprocessError, match="do not match"):
        preprocess(x, np.ones((2, 3), bool))
    panel = make_market(0, n_stocks=150, start="2010-01", end="2010-12").panel
    panel.industry[:] = -1
    with pytest.warns(UserWarning, match="falls back to the whole market"):  # issue 6: a warning, not an error
        preprocess_panel(panel)
