"""Cross-sectional factor preprocessing: winsorize, z-score, industry-neutralize, fill.

Every step works on one month-end cross-section at a time (the stocks listed at that
month), so the value of month ``t`` depends on month ``t`` alone: preprocessing a
24-month history and preprocessing the whole panel give the same numbers for the
months they share. That is what lets training (whole panel) and serving (the last
``window`` snapshots) share :func:`preprocess`.

The work is vectorized over all months and factors at once, with no BLAS call (its
thread pool stalls on a busy 2-core machine): medians come from one sort of the
``[T, F, N]`` cube and the MADs from the same sorted rows by a vectorized bisection;
industry means from one ``np.add.reduceat`` over the stock-months ordered by
(month, industry); the optional size term from the Frisch-Waugh-Lovell form of the
OLS (regress the industry-demeaned factor on the industry-demeaned ln market cap).
``python benchmarks/preprocess.py`` times it against a per-month pandas + lstsq loop.
"""
from __future__ import annotations

import warnings

from dataclasses import asdict, dataclass

import numpy as np

from .ranking import cross_sectional_ranks

from feeds.errors import UserError

WINSORIZE = ("mad", "percentile", "none")
NEUTRALIZE = ("industry", "industry_size", "none")


class NoIndustryWarning(UserWarning):
    """Industry neutralization fell back to the whole market."""


class PreprocessError(UserError):
    """The preprocessing settings or the panel cannot be used together."""


@dataclass(frozen=True)
class PreprocessConfig:
    """Settings of :func:`preprocess` (defaults in brackets).

    Parameters
    ----------
    winsorize : {'mad', 'percentile', 'none'}
        ['mad'] clip each cross-section to ``median ± mad_k · MAD`` where
        ``MAD = median(|x - median|)`` (unscaled); 'percentile' clips to the
        ``percentile`` and ``1 - percentile`` quantiles (linear interpolation).
        A cross-section whose MAD is 0 is not clipped (the bounds would collapse
        every value onto the median).
    mad_k : float
        [5.0] width of the MAD band.
    percentile : float
        [0.01] lower tail share for 'percentile'.
    neutralize : {'industry', 'industry_size', 'none'}
        ['industry'] replace each z-scored factor by the residual of an OLS on
        industry dummies (= the factor minus its industry mean); 'industry_size'
        adds ln market cap as a regressor (needs ``mcap``). Stocks with an unknown
        industry (-1) form a group of their own.
    restandardize : bool
        [True] z-score the residuals again, so every factor enters the model with
        unit cross-sectional variance whatever share of it the industries explained.
    fill_value : float
        [0.0] value of missing factors after standardization (the cross-sectional
        mean); cells of stocks not listed are also set to it.
    min_stocks : int
        [3] a (month, factor) cross-section with fewer observed values is filled.
    rank : bool
        [False] end by replacing each value with its rank in the cross-section, scaled
        to [-1, 1] (missing values get 0, the middle): the inputs of the linear rank
        composite baseline (:mod:`signals.composite`).
    """

    winsorize: str = "mad"
    mad_k: float = 5.0
    percentile: float = 0.01
    neutralize: str = "industry"
    restandardize: bool = True
    fill_value: float = 0.0
    min_stocks: int = 3
    rank: bool = False

    def __post_init__(self):
        if self.winsorize not in WINSORIZE:
            raise PreprocessError(f"preprocess.winsorize must be one of {', '.join(WINSORIZE)}, "
                                  f"got {self.winsorize!r}")
        if self.neutralize not in NEUTRALIZE:
            raise PreprocessError(f"preprocess.neutralize must be one of {', '.join(NEUTRALIZE)}, "
                                  f"got {self.neutralize!r}")
        if not self.mad_k > 0:
            raise PreprocessError(f"preprocess.mad_k must be > 0, got {self.mad_k}")
        if not 0 < self.percentile < 0.5:
            raise PreprocessError(f"preprocess.percentile must lie in (0, 0.5), got {self.percentile}")
        if self.min_stocks < 2:
            raise PreprocessError(f"preprocess.min_stocks must be >= 2, got {self.min_stocks}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PreprocessConfig":
        return cls(**data)


def preprocess(factors: np.ndarray, listed: np.ndarray, industry: np.ndarray | None = None,
               mcap: np.ndarray | None = None, config: PreprocessConfig | None = None) -> np.ndarray:
    """Preprocess a raw factor cube, each month-end cross-section on its own.

    Parameters
    ----------
    factors : ndarray [T, N, F]
        Raw factor values, NaN where missing.
    listed : ndarray [T, N] bool
        The cross-section of month ``t`` is the stocks with ``listed[t]``.
    industry : ndarray [T, N] int, optional
        Industry index per stock-month, -1 when unknown. Required unless
        ``config.neutralize == 'none'``.
    mcap : ndarray [T, N], optional
        Market capitalisation; required for ``neutralize='industry_size'``.
    config : PreprocessConfig, optional
        Settings; the defaults follow the seed study.

    Returns
    -------
    ndarray [T, N, F] float32
        Winsorized, z-scored, neutralized values; ``config.fill_value`` where the
        raw value was missing or the stock is not listed.

    Raises
    ------
    PreprocessError
        Shapes disagree, or a neutralization needs data the panel lacks.
    """
    config = config or PreprocessConfig()
    factors = np.asarray(factors)
    listed = np.asarray(listed, dtype=bool)
    if factors.ndim != 3 or listed.shape != factors.shape[:2]:
        raise PreprocessError(f"factors {factors.shape} and listed {listed.shape} do not match as [T, N, F] / [T, N]")
    T, N, F = factors.shape
    # float32 halves the memory of the cube. Between steps the cells not observed hold 0,
    # so that sums need no mask.
    finite = np.isfinite(factors)
    observed = finite & listed[:, :, None]
    hidden = ~observed
    weight = observed.astype(np.float32)
    count = weight.sum(axis=1)  # [T, F]

    if np.count_nonzero(finite) == np.count_nonzero(observed) and not np.isinf(factors).any():
        x = np.array(factors, dtype=np.float32, order="C")  # every left-out cell is NaN already
    else:  # values of unlisted stocks or infinities: make them NaN, which sorts last
        x = np.ascontiguousarray(np.where(observed, factors, np.float32(np.nan)), dtype=np.float32)
    del finite, observed
    if config.winsorize != "none":
        lo, hi = _winsor_bounds(x, count, config)
        np.maximum(x, lo[:, None, :], out=x)  # NaN stays NaN
        np.minimum(x, hi[:, None, :], out=x)
    np.copyto(x, 0.0, where=hidden)

    neutral = config.neutralize != "none"
    # A z-score before a neutralization that is z-scored again changes nothing: the residual
    # of a*x + b on regressors that span the constant is a times the residual of x.
    if not (neutral and config.restandardize):
        _zscore(x, weight, count)
    if neutral:
        if industry is None:
            raise PreprocessError("industry neutralization needs industry codes; "
                                  "set preprocess.neutralize to 'none' for a panel without them")
        industry = np.asarray(industry)
        if industry.shape != (T, N):
            raise PreprocessError(f"industry has shape {industry.shape}, expected {(T, N)}")
        size = None
        if config.neutralize == "industry_size":
            if mcap is None:
                raise PreprocessError("preprocess.neutralize 'industry_size' needs mcap in the panel")
            mcap = np.asarray(mcap, dtype=np.float64)
            if mcap.shape != (T, N):
                raise PreprocessError(f"mcap has shape {mcap.shape}, expected {(T, N)}")
            with np.errstate(divide="ignore", invalid="ignore"):
                size = np.where(listed & (mcap > 0), np.log(mcap), np.nan)
        _neutralize(x, weight, hidden, industry, listed, size)
        if config.restandardize:
            _zscore(x, weight, count, centred=True)

    if config.rank:
        x = cross_sectional_ranks(x, ~hidden)
    if config.fill_value != 0.0:
        np.copyto(x, np.float32(config.fill_value), where=hidden)
    thin = count < config.min_stocks
    if thin.any():
        x[np.broadcast_to(thin[:, None, :], x.shape)] = config.fill_value
    return x


# ============================================================================ internals
def _quantile_sorted(ordered: np.ndarray, count: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` (linear interpolation) of rows sorted with NaN last and ``count`` finite values."""
    pos = q * np.maximum(count - 1, 0)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
    a = np.take_along_axis(ordered, lo[..., None], axis=-1)[..., 0]
    b = np.take_along_axis(ordered, hi[..., None], axis=-1)[..., 0]
    out = a + (b - a) * (pos - lo)
    return np.where(count > 0, out, np.nan)


def _winsor_bounds(x: np.ndarray, count: np.ndarray,
                   config: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper clipping bounds [T, F] (float32) of every cross-section of ``x``.

    ``x`` is [T, N, F] with NaN in the cells left out, which sorts them last.
    """
    ordered = x.transpose(0, 2, 1).copy(order="C")  # each cross-section contiguous, x untouched
    ordered.sort(axis=2)
    cnt = count.astype(np.int64)
    if config.winsorize == "percentile":
        return (_quantile_sorted(ordered, cnt, config.percentile).astype(np.float32),
                _quantile_sorted(ordered, cnt, 1.0 - config.percentile).astype(np.float32))
    med = _quantile_sorted(ordered, cnt, 0.5)
    mad = _median_abs_deviation(ordered, cnt, med)
    width = np.where(mad > 0, config.mad_k * mad, np.inf)
    return (med - width).astype(np.float32), (med + width).astype(np.float32)


def _median_abs_deviation(ordered: np.ndarray, count: np.ndarray, med: np.ndarray) -> np.ndarray:
    """Median of |a - med| of every row, from the rows sorted (NaN last) — no second sort.

    With ``s = count // 2`` the values below the split, read backwards, and those above
    it give two ascending lists of distances ``A_i = med - a[s-1-i]`` and ``B_j = a[s+j] - med``
    (a value equal to the median may sit on either side: its distance is 0 on both). The
    k-th smallest distance is the k-th of the merged lists, found for all rows at once by
    bisection on how many come from A: the smallest i with ``A_i >= B_(k-i)``; it is then
    ``max(A_(i-1), B_(k-i))``.
    """
    n = count
    s = n // 2
    last = ordered.shape[-1] - 1

    def at(index):
        return np.take_along_axis(ordered, np.clip(index, 0, last)[..., None], axis=-1)[..., 0].astype(np.float64)

    def a_list(i):  # A_i; +inf past its end, -inf before its start
        return np.where(i >= s, np.inf, np.where(i < 0, -np.inf, med - at(s - 1 - i)))

    def b_list(j):  # B_j; +inf past its end, -inf before its start
        return np.where(j >= n - s, np.inf, np.where(j < 0, -np.inf, at(s + j) - med))

    def kth(k):
        lo, hi = np.maximum(0, k + 1 - (n - s)), np.minimum(k + 1, s)
        while (lo < hi).any():
            mid = (lo + hi) // 2
            take_fewer = a_list(mid) >= b_list(k - mid)
            open_ = lo < hi
            hi = np.where(open_ & take_fewer, mid, hi)
            lo = np.where(open_ & ~take_fewer, mid + 1, lo)
        return np.maximum(a_list(lo - 1), b_list(k - lo))

    k_lo = np.maximum(n - 1, 0) // 2
    k_hi = n // 2
    mad = 0.5 * (kth(k_lo) + kth(np.minimum(k_hi, np.maximum(n - 1, 0))))
    return np.where(n > 0, mad, np.nan)


def _zscore(x: np.ndarray, weight: np.ndarray, count: np.ndarray, centred: bool = False) -> None:
    """Z-score every [T, ·, F] cross-section of ``x`` in place over its observed cells.

    ``x`` holds 0 where ``weight`` is 0 and keeps it. Population std; a cross-section
    that is constant up to rounding has no information and becomes 0. ``centred``: the
    cross-sections already have mean 0 (industry residuals), only scale them.
    """
    n = np.maximum(count, 1)[:, None, :]
    if centred:
        mean = np.zeros((x.shape[0], 1, x.shape[2]))
    else:
        mean = x.sum(axis=1, keepdims=True) / n
        x -= mean
        x *= weight
    std = np.sqrt(np.einsum("tnf,tnf->tf", x, x)[:, None, :] / n)
    scale = np.where(std > 1e-6 * (1.0 + np.abs(mean)), 1.0 / np.where(std > 0, std, 1.0), 0.0)
    x *= scale.astype(np.float32)


def _neutralize(x: np.ndarray, weight: np.ndarray, hidden: np.ndarray, industry: np.ndarray,
                listed: np.ndarray, size: np.ndarray | None) -> None:
    """Replace each [T, N, F] cross-section of ``x`` in place by its OLS residual on industry dummies.

    Each (month, factor) regression uses the stocks where that factor is observed and,
    with ``size`` (ln market cap), where the size is known too; then the residual also
    removes the size term (Frisch-Waugh-Lovell: the industry-demeaned factor regressed
    on the industry-demeaned size). An observed stock with unknown size gets the
    industry-demeaned value. Group sums avoid BLAS, whose thread pool was measured to stall
    for seconds on a busy 2-core machine: the stock-months are ordered once by their flat
    (month, group) id and every group is summed for all factors at once by
    ``np.add.reduceat``; counts are the group sizes minus the (few) cells left out, by one
    ``np.bincount``; group means go back to stocks by one row gather.
    """
    T, N, F = x.shape
    groups = np.where(listed, industry, -1).astype(np.int64)
    n_groups = int(groups.max(initial=-1)) + 2  # the last group: unknown industry
    groups[groups < 0] = n_groups - 1
    rows = (np.arange(T)[:, None] * n_groups + groups).ravel()
    listed_rows = np.flatnonzero(listed.reshape(T * N))  # unlisted stock-months add nothing
    if len(listed_rows) == 0:
        return
    keys = rows[listed_rows]
    if T * n_groups < 2 ** 16:
        keys = keys.astype(np.uint16)  # numpy radix-sorts 16-bit keys: 20x faster than int64
    order = listed_rows[np.argsort(keys, kind="stable")]
    ordered = rows[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    present = ordered[starts]
    listed_flat = listed.reshape(T * N)
    group_size = np.bincount(rows[listed_flat], minlength=T * n_groups)

    def group_means(values, left_out_mask):
        # Cells outside the sample hold 0 in ``values``, so they add nothing to the sums.
        sums = np.zeros((T * n_groups, F), dtype=np.float32)
        sums[present] = np.add.reduceat(np.take(values.reshape(T * N, F), order, axis=0), starts, axis=0)
        left_out = np.flatnonzero(left_out_mask & listed[:, :, None])
        counts = group_size[:, None] - np.bincount(rows[left_out // F] * F + left_out % F,
                                                    minlength=T * n_groups * F).reshape(T * n_groups, F)
        means = sums / np.maximum(counts, 1).astype(np.float32)
        return np.take(means, rows, axis=0).reshape(T, N, F)

    if size is None:
        x -= group_means(x, hidden)
        x *= weight
        return
    unknown = ~np.isfinite(size)
    sample = weight * ~unknown[:, :, None]
    left_out = hidden | unknown[:, :, None]
    s = np.where(unknown, 0.0, size).astype(np.float32)[:, :, None] * sample
    s -= group_means(s, left_out)
    s *= sample
    x -= group_means(x * sample, left_out)
    x *= weight
    sxy = np.einsum("tnf,tnf->tf", s, x)
    sxx = np.einsum("tnf,tnf->tf", s, s)
    beta = (sxy / np.where(sxx > 0, sxx, np.inf)).astype(np.float32)
    s *= beta[:, None, :]
    x -= s


def preprocess_panel(panel, config: PreprocessConfig | None = None) -> np.ndarray:
    """:func:`preprocess` of a :class:`feeds.Panel`: [T, N, F] float32.

    Raises
    ------
    PreprocessError
        Industry neutralization is on but the panel knows no industry, or the size
        term is on and the panel has no ``mcap``.
    """
    config = config or PreprocessConfig()
    industry = None
    if config.neutralize != "none":
        industry = panel.industry
        if not panel.has_industry:
            # Issue 6: without an industry map the data is still usable; neutralize against
            # the whole market (one group) and say so.
            warnings.warn("the panel knows no industry: industry neutralization falls back to the whole "
                          "market (give an 'industry' column or data.industry_map)", NoIndustryWarning,
                          stacklevel=2)
            industry = np.where(panel.listed, 0, -1).astype(np.int32)
    return preprocess(panel.factors, panel.listed, industry, panel.mcap, config)
