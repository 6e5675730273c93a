"""A deterministic synthetic A-share market that knows its own expected returns.

``make_market(seed=0)`` returns a :class:`Market` whose ``.panel`` looks like the
A-share market of 2005-01..2017-04 closely enough that every step of the Guosen
method matters, and whose ``.oracle`` is the true expected next-month return
``mu[t, i]`` of every stock-month (never a model input). The full data-generating
process, with measured figures, is documented in ``docs/synthetic_market.md``;
in short:

* **Universe.** 1,300 stocks listed at the start; IPOs follow the real yearly
  counts (the 2010-11 wave, the 2013 halt), so about 3,000 are listed in 2016; a
  small delisting hazard. 28 industries of uneven (Zipf-like) size.
* **Latent states.** Value, growth, profitability and leverage are per-stock AR(1)
  scores; a volatility state drives idiosyncratic volatility and a liquidity
  state drives turnover. Size is the log market cap, which moves with returns.
* **Returns.** ``r[t+1] = beta * m[t+1] + g[t+1, industry] + mu[t] + sigma[t] * e``
  with a fat-tailed market (monthly vol about 8%, the 2007 and 2015 boom-bust
  regimes), industry returns, and Student-t idiosyncratic noise whose scale is
  tied to the volatility state.
* **Expected return mu**, three parts orthogonalised month by month and mixed by
  documented variance shares (default 50% / 20% / 30%):
  linear style premia that drift over time; non-linear effects (value ×
  profitability, a small-cap threshold, a volatility U-shape); and sequence effects
  visible only in the history (the 6-month change of growth and profitability
  beyond what their current level implies). Scaled so the oracle monthly rank IC
  is about 0.12.
* **48 factors in 10 styles.** Fundamental factors are noisy, partly persistent,
  some sign-flipped views of their latent score; price-volume factors are computed
  from the simulated return, volatility and turnover paths as real ones are. All
  carry industry offsets, fat tails, rare gross outliers and 1-3% missing values.
* **Flags.** Suspensions (about 2% of stock-months; the return is realised on
  resumption), month-end limit-up / limit-down (about 1.5% each, concentrated in
  that month's winners / losers) and ST status (about 3%, tied to low
  profitability).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from .crosssection import rank_ic
from .panel import Panel, PanelError, month_end

STYLES: dict[str, list[str]] = {
    "value": ["bp", "ep", "sp", "cfp", "dp", "ep_fy1"],
    "growth": ["sales_growth", "profit_growth", "roe_change", "asset_growth", "eps_growth"],
    "profitability": ["roe", "roa", "gross_margin", "net_margin", "roic"],
    "leverage": ["debt_to_assets", "current_ratio", "accruals", "interest_cover"],
    "size": ["ln_mcap", "ln_float_mcap", "ln_assets"],
    "momentum": ["mom_3m", "mom_6m", "mom_12m", "mom_12_1", "mom_6_1"],
    "reversal": ["rev_1m", "rev_1m_industry", "rev_1m_abnormal"],
    "volatility": ["dvol_1m", "dvol_3m", "vol_6m", "vol_12m", "max_ret_1m", "ivol_12m"],
    "liquidity": ["turn_1m", "turn_3m", "turn_6m", "turn_trend", "amihud_1m", "ln_amount_1m"],
    "technical": ["ma_gap_3", "ma_gap_12", "high_12m", "rsi_6", "psy_12"],
}

# Yearly IPO counts of the real A-share market (rounded); scaled by n_stocks / 1300.
IPO_PER_YEAR = {2005: 15, 2006: 66, 2007: 120, 2008: 77, 2009: 99, 2010: 347, 2011: 277,
                2012: 154, 2013: 2, 2014: 124, 2015: 219, 2016: 248, 2017: 450}

# Mean monthly market return by regime (start, end inclusive); the rest is 0.5%.
REGIMES = [("2006-01", "2007-09", 0.08), ("2007-10", "2008-10", -0.07), ("2008-11", "2009-07", 0.06),
           ("2014-07", "2015-05", 0.06), ("2015-06", "2016-01", -0.06)]


@dataclass(frozen=True)
class MarketConfig:
    """Settings of the generator; every field can be overridden in :func:`make_market`.

    Parameters (defaults in brackets)
    ---------------------------------
    seed [0]: the random seed; the same seed gives the same market, bit for bit.
    start ['2005-01'], end ['2017-04']: first and last month of the panel.
    n_stocks [1300]: stocks listed at ``start``; IPO counts scale with it.
    n_industries [28]: number of industries (uneven sizes).
    burn_in [24]: months simulated before ``start`` so that price-volume factors of the
        initial stocks have history.
    delist_hazard [0.0002]: monthly probability that a listed stock delists (0: none does).
    mu_scale [0.0125]: cross-sectional std of mu (monthly); sets the oracle IC.
    share_linear [0.5], share_nonlinear [0.2], share_sequence [0.3]: variance shares of
        the three parts of mu (normalised to sum to 1; 0 switches a part off).
    premium_drift [0.5]: std of the slow drift of each linear premium, relative to its size.
    market_vol [0.08]: monthly market volatility; industry_vol [0.035]; idio_vol [0.09].
    missing_rate [0.02]: average share of factor cells missing at random (1-3% by factor).
    outlier_rate [0.002]: share of factor cells replaced by gross outliers.
    suspend_rate [0.02], limit_rate [0.015], st_rate [0.03]: flag frequencies.
    """

    seed: int = 0
    start: str = "2005-01"
    end: str = "2017-04"
    n_stocks: int = 1300
    n_industries: int = 28
    burn_in: int = 24
    delist_hazard: float = 0.0002
    mu_scale: float = 0.0125
    share_linear: float = 0.5
    share_nonlinear: float = 0.2
    share_sequence: float = 0.3
    premium_drift: float = 0.5
    market_vol: float = 0.08
    industry_vol: float = 0.035
    idio_vol: float = 0.09
    missing_rate: float = 0.02
    outlier_rate: float = 0.002
    suspend_rate: float = 0.02
    limit_rate: float = 0.015
    st_rate: float = 0.03


@dataclass(eq=False)
class Market:
    """What :func:`make_market` returns.

    Attributes
    ----------
    panel : Panel
        The observable market (what a model may use).
    oracle : ndarray [T, N]
        mu[t, i], the expected return of month t+1 given everything at t (NaN where not listed).
    parts : dict of ndarray [T, N]
        The linear, non-linear and sequence parts of ``oracle`` (they sum to it).
    config : MarketConfig
    """

    panel: Panel
    oracle: np.ndarray
    parts: dict[str, np.ndarray]
    config: MarketConfig
    description: str = field(default="", repr=False)

    def oracle_frame(self) -> pd.Series:
        """``oracle`` as a Series on the panel's ``(date, code)`` index (listed cells only)."""
        p = self.panel
        index = pd.MultiIndex.from_product([p.dates, p.codes], names=["date", "code"])
        return pd.Series(self.oracle.ravel(), index=index, name="mu")[p.listed.ravel()]

    def variance_shares(self) -> dict[str, float]:
        """Mean over months of each part's cross-sectional variance ÷ that of mu."""
        total = np.nanvar(self.oracle, axis=1)
        ok = total > 0
        return {k: float(np.mean(np.nanvar(v, axis=1)[ok] / total[ok])) for k, v in self.parts.items()}

    def oracle_rank_ic(self) -> pd.Series:
        """Monthly Spearman correlation of mu[t] with the realised return of month t+1."""
        return rank_ic(self.oracle[:-1], self.panel.ret[1:], self.panel.dates[:-1])


def make_market(seed: int = 0, **overrides) -> Market:
    """Generate the synthetic market (see the module docstring and ``docs/synthetic_market.md``).

    Parameters
    ----------
    seed : int
        Random seed; the same seed and overrides give an identical market.
    **overrides
        Any field of :class:`MarketConfig` (``n_stocks``, ``start``, ``end``,
        ``n_industries``, ``share_sequence``, ...).
    """
    known = {f.name for f in fields(MarketConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise PanelError(f"unknown synthetic market setting '{unknown[0]}' (known: {', '.join(sorted(known))})")
    cfg = MarketConfig(seed=seed, **overrides)
    return _Generator(cfg).run()


# ============================================================================ internals
def _zscore_rows(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Cross-sectional z-score of each row over ``mask`` (0 outside it)."""
    x = np.where(mask, x, np.nan)
    mean = np.nanmean(x, axis=1, keepdims=True)
    std = np.nanstd(x, axis=1, keepdims=True)
    return np.nan_to_num((x - mean) / np.where(std > 0, std, 1.0))


def _residualise_rows(y: np.ndarray, xs: list[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """Row-wise OLS residual of ``y`` on ``xs`` (plus a constant) over ``mask``."""
    out = np.zeros_like(y)
    for t in range(y.shape[0]):
        m = mask[t]
        if m.sum() < len(xs) + 2:
            continue
        X = np.column_stack([np.ones(m.sum())] + [x[t, m] for x in xs])
        beta, *_ = np.linalg.lstsq(X, y[t, m], rcond=None)
        out[t, m] = y[t, m] - X @ beta
    return out


def _rolling(x: np.ndarray, w: int, how: str) -> np.ndarray:
    """Trailing ``w``-month mean/std/sum/max along axis 0; NaN unless all ``w`` values exist."""
    T = x.shape[0]
    out = np.full_like(x, np.nan)
    if T < w:
        return out
    stack = np.stack([x[w - 1 - k: T - k] for k in range(w)])  # [w, T-w+1, N]
    ok = np.isfinite(stack).all(axis=0)
    if how == "mean":
        val = stack.mean(axis=0)
    elif how == "sum":
        val = stack.sum(axis=0)
    elif how == "std":
        val = stack.std(axis=0, ddof=1)
    elif how == "max":
        val = stack.max(axis=0)
    else:
        raise ValueError(how)
    out[w - 1:] = np.where(ok, val, np.nan)
    return out


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full_like(x, np.nan)
    out[k:] = x[:-k]
    return out


class _Generator:
    """One generation run; split into steps so each stays readable."""

    def __init__(self, cfg: MarketConfig):
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        dates = month_end(pd.date_range(pd.Timestamp(cfg.start), pd.Timestamp(cfg.end) + pd.offsets.MonthEnd(0),
                                        freq="ME"))
        if len(dates) < 2:
            raise PanelError(f"synthetic market needs at least 2 months ({cfg.start}..{cfg.end})")
        self.dates = dates
        self.all_dates = month_end(pd.date_range(end=dates[0], periods=cfg.burn_in + 1, freq="ME")[:-1]
                                   .append(dates))
        self.Tx = len(self.all_dates)

    # ------------------------------------------------------------------ universe
    def universe(self):
        cfg, rng = self.cfg, self.rng
        scale = cfg.n_stocks / 1300.0
        ipo_month = [np.full(cfg.n_stocks, -1)]
        for year in sorted(set(self.all_dates.year)):
            months = np.flatnonzero((self.all_dates.year == year) & (np.arange(self.Tx) >= cfg.burn_in))
            if len(months) == 0:
                continue
            count = rng.poisson(IPO_PER_YEAR.get(year, 150) * scale * len(months) / 12)
            ipo_month.append(rng.choice(months, size=count))
        ipo = np.sort(np.concatenate(ipo_month))
        N = len(ipo)
        delist = np.full(N, self.Tx)
        # a hazard of 0: nobody delists (numpy's geometric needs p > 0)
        life = rng.geometric(cfg.delist_hazard, size=N) if cfg.delist_hazard > 0 else np.full(N, self.Tx)
        start = np.maximum(ipo, 0)
        delist = np.where(start + life < self.Tx, start + life, self.Tx)
        t = np.arange(self.Tx)[:, None]
        self.N = N
        self.listed = (t >= ipo[None, :]) & (t < delist[None, :])
        self.ipo = ipo
        weights = 1.0 / np.arange(1, cfg.n_industries + 1) ** 0.8
        self.industry = rng.choice(cfg.n_industries, size=N, p=weights / weights.sum())
        self.codes = np.array([f"{600000 + i if i % 2 == 0 else i:06d}.{'SH' if i % 2 == 0 else 'SZ'}"
                               for i in range(N)])

    # ------------------------------------------------------------------- latents
    def ar1(self, phi: float, shape=None, df: float | None = None) -> np.ndarray:
        """Stationary unit-variance AR(1) paths, [Tx, N]."""
        shape = shape or (self.Tx, self.N)
        shocks = self.rng.standard_normal(shape) if df is None else \
            self.rng.standard_t(df, shape) / np.sqrt(df / (df - 2))
        out = np.empty(shape)
        out[0] = shocks[0]
        s = np.sqrt(1 - phi ** 2)
        for t in range(1, shape[0]):
            out[t] = phi * out[t - 1] + s * shocks[t]
        return out

    def latents(self):
        self.L = {"value": self.ar1(0.97), "growth": self.ar1(0.92), "profitability": self.ar1(0.96),
                  "leverage": self.ar1(0.98), "volatility": self.ar1(0.95), "liquidity": self.ar1(0.95)}
        self.beta = np.clip(self.rng.normal(1.0, 0.25, self.N), 0.3, 1.8)
        self.sigma = self.cfg.idio_vol * np.exp(0.35 * self.L["volatility"])

    # ------------------------------------------------------------------- returns
    def market_path(self):
        cfg, rng = self.cfg, self.rng
        mean = np.full(self.Tx, 0.005)
        mean[: cfg.burn_in] = -0.005
        for lo, hi, m in REGIMES:
            sel = (self.all_dates >= month_end([lo])[0]) & (self.all_dates <= month_end([hi])[0])
            mean[sel] = m
        shocks = rng.standard_t(4, self.Tx) / np.sqrt(2)
        self.market = mean + cfg.market_vol * shocks
        self.ind_ret = cfg.industry_vol * rng.standard_t(5, (self.Tx, cfg.n_industries)) / np.sqrt(5 / 3)

    def returns_and_mu(self):
        """Simulate returns month by month: mu[t] depends on the state at t (incl. past returns)."""
        cfg, rng, Tx, N = self.cfg, self.rng, self.Tx, self.N
        listed = self.listed
        eps = rng.standard_t(4, (Tx, N)) / np.sqrt(2)
        log_mcap0 = np.where(self.ipo < 0, np.log(3e9), np.log(2e9)) + rng.normal(0, 0.9, N)
        premia = self.premium_paths()
        parts = {k: np.full((Tx, N), np.nan) for k in ("linear", "nonlinear", "sequence")}
        true_ret = np.full((Tx, N), np.nan)
        log_mcap = np.full((Tx, N), np.nan)
        weights = np.array([cfg.share_linear, cfg.share_nonlinear, cfg.share_sequence], float)
        if (weights < 0).any() or weights.sum() <= 0:
            raise PanelError("synthetic market: variance shares must be >= 0 and not all 0")
        weights = np.sqrt(weights / weights.sum())
        L = self.L
        seq_raw = np.zeros((Tx, N))
        for name in ("growth", "profitability"):
            change = L[name] - _lag(L[name], 6)
            seq_raw += _residualise_rows(np.nan_to_num(change), [L[name]], np.isfinite(change) & listed)
        prev_mcap = log_mcap0.copy()
        for t in range(Tx):
            m = listed[t]
            if t > 0:
                r = (self.beta * self.market[t] + self.ind_ret[t, self.industry]
                     + np.nan_to_num(mu_prev) + self.sigma[t - 1] * eps[t])
                r = np.maximum(r, -0.6)
                true_ret[t] = np.where(m & listed[t - 1], r, np.nan)
                prev_mcap = prev_mcap + np.where(np.isfinite(true_ret[t]), np.log1p(np.nan_to_num(true_ret[t])), 0.0)
            log_mcap[t] = np.where(m, prev_mcap, np.nan)
            z = {k: _zscore_rows(v[t:t + 1], m[None]) for k, v in L.items()}
            size = _zscore_rows(log_mcap[t:t + 1], m[None])
            rev = _zscore_rows(np.nan_to_num(true_ret[t:t + 1]), m[None])
            mom = _zscore_rows(np.nan_to_num(np.nansum(np.log1p(true_ret[max(0, t - 11):t]), axis=0))[None], m[None])
            lin = (premia[t, 0] * z["value"] + premia[t, 1] * z["growth"] + premia[t, 2] * z["profitability"]
                   + premia[t, 3] * z["leverage"] + premia[t, 4] * size + premia[t, 5] * mom
                   + premia[t, 6] * rev + premia[t, 7] * z["volatility"] + premia[t, 8] * z["liquidity"])
            small = (size < np.nanquantile(np.where(m, size, np.nan), 0.15)).astype(float)
            nonlin = 0.6 * z["value"] * z["profitability"] + 1.0 * small - 0.5 * (z["volatility"] ** 2)
            seq = seq_raw[t:t + 1]
            mask = m[None]
            lin = _zscore_rows(lin, mask)
            nonlin = _zscore_rows(_residualise_rows(nonlin, [lin], mask), mask)
            seq = _zscore_rows(_residualise_rows(seq, [lin, nonlin], mask), mask)
            for key, part, w in zip(parts, (lin, nonlin, seq), weights):
                parts[key][t] = np.where(m, cfg.mu_scale * w * part[0], np.nan)
            mu_prev = parts["linear"][t] + parts["nonlinear"][t] + parts["sequence"][t]
        self.true_ret, self.log_mcap, self.parts = true_ret, log_mcap, parts
        self.mu = parts["linear"] + parts["nonlinear"] + parts["sequence"]

    def premium_paths(self) -> np.ndarray:
        """Slowly drifting linear premia [Tx, 9]: value, growth, profit, leverage, size, mom, rev, vol, liq."""
        base = np.array([0.5, 0.3, 0.4, -0.2, -0.6, 0.15, -0.6, -0.4, -0.5])
        drift = self.ar1(0.97, shape=(self.Tx, len(base)))
        return base * (1 + self.cfg.premium_drift * drift)

    # --------------------------------------------------------------------- flags
    def flags(self):
        cfg, rng, Tx, N = self.cfg, self.rng, self.Tx, self.N
        listed = self.listed
        # Suspensions: episodes with mean length 3 months; the return is realised on resumption.
        start = rng.random((Tx, N)) < cfg.suspend_rate / 3.0
        length = rng.geometric(1 / 3.0, (Tx, N))
        susp = np.zeros((Tx, N), bool)
        remaining = np.zeros(N, int)
        for t in range(Tx):
            remaining = np.where(start[t] & (remaining == 0), length[t], remaining)
            susp[t] = (remaining > 0) & listed[t]
            remaining = np.maximum(remaining - 1, 0)
        first = self.ipo.clip(0)
        susp[first, np.arange(N)] = False  # the listing month trades
        ret = self.true_ret.copy()
        carry = np.zeros(N)
        for t in range(Tx):
            g = np.nan_to_num(np.log1p(self.true_ret[t]))
            carry += g
            ret[t] = np.where(susp[t], 0.0, np.expm1(carry))
            carry = np.where(susp[t], carry, 0.0)
        ret[~listed] = np.nan
        ret[np.isnan(self.true_ret) & ~susp] = np.nan
        self.ret = ret
        # ST: low profitability, with hysteresis so the status persists.
        st = np.zeros((Tx, N), bool)
        enter, leave = np.quantile(self.L["profitability"], [cfg.st_rate * 0.6, cfg.st_rate * 1.5])
        for t in range(1, Tx):
            st[t] = np.where(st[t - 1], self.L["profitability"][t] < leave, self.L["profitability"][t] < enter)
        self.is_st = st & listed
        # Month-end limit-up/down: concentrated in the month's winners/losers; not when suspended.
        pct = pd.DataFrame(np.where(listed & ~susp, ret, np.nan)).rank(axis=1, pct=True).to_numpy()
        pct = np.nan_to_num(pct, nan=0.5)
        draw = rng.random((Tx, N))
        tradable = listed & ~susp
        self.limit_up = tradable & (draw < 4 * cfg.limit_rate * pct ** 3)
        self.limit_down = tradable & (draw > 1 - 4 * cfg.limit_rate * (1 - pct) ** 3)
        self.suspended = susp

    # ------------------------------------------------------------------- factors
    def factors(self) -> dict[str, np.ndarray]:
        rng, L, ret = self.rng, self.L, self.ret
        f: dict[str, np.ndarray] = {}

        def view(latent, rho, sign=1.0, skew=False, persist=0.7):
            noise = self.ar1(persist, df=5)
            x = sign * (rho * latent + np.sqrt(1 - rho ** 2) * noise)
            return np.exp(0.6 * x) if skew else x

        for name, rho, sign, skew in [("bp", .8, 1, True), ("ep", .75, 1, False), ("sp", .65, 1, True),
                                      ("cfp", .6, 1, False), ("dp", .55, 1, True), ("ep_fy1", .7, 1, False)]:
            f[name] = view(L["value"], rho, sign, skew)
        for name, rho in [("sales_growth", .7), ("profit_growth", .75), ("roe_change", .65),
                          ("asset_growth", .55), ("eps_growth", .7)]:
            f[name] = view(L["growth"], rho, persist=0.3)
        for name, rho in [("roe", .85), ("roa", .8), ("gross_margin", .6), ("net_margin", .7), ("roic", .75)]:
            f[name] = view(L["profitability"], rho)
        for name, rho, sign in [("debt_to_assets", .8, 1), ("current_ratio", .65, -1), ("accruals", .5, 1),
                                ("interest_cover", .6, -1)]:
            f[name] = view(L["leverage"], rho, sign)
        float_ratio = np.clip(0.6 + 0.2 * self.ar1(0.99), 0.15, 1.0)
        f["ln_mcap"] = self.log_mcap
        f["ln_float_mcap"] = self.log_mcap + np.log(float_ratio)
        f["ln_assets"] = self.log_mcap - 0.4 * L["value"] + 0.3 * self.ar1(0.9)
        # price-volume styles, from the observed monthly paths
        lr = np.log1p(ret)
        for w in (3, 6, 12):
            f[f"mom_{w}m"] = _rolling(lr, w, "sum")
        f["mom_12_1"] = _lag(_rolling(lr, 11, "sum"), 1)
        f["mom_6_1"] = _lag(_rolling(lr, 5, "sum"), 1)
        ind_mean = pd.DataFrame(ret).T.groupby(self.industry).transform("mean").T.to_numpy()
        f["rev_1m"] = ret
        f["rev_1m_industry"] = ret - ind_mean
        f["rev_1m_abnormal"] = ret - self.beta * self.market[:, None]
        daily = self.sigma / np.sqrt(21) * np.sqrt(rng.chisquare(20, self.sigma.shape) / 20) \
            * (1 + 2 * np.abs(self.market))[:, None]
        daily = np.where(np.isfinite(ret) & ~self.suspended, daily, np.nan)
        f["dvol_1m"] = daily
        f["dvol_3m"] = _rolling(daily, 3, "mean")
        f["vol_6m"] = _rolling(ret, 6, "std")
        f["vol_12m"] = _rolling(ret, 12, "std")
        f["max_ret_1m"] = daily * (2.2 + 0.5 * rng.gumbel(size=daily.shape))
        resid = ret - self.beta * self.market[:, None] - self.ind_ret[:, self.industry]
        f["ivol_12m"] = _rolling(resid, 12, "std")
        turnover = np.exp(np.log(0.35) + 0.6 * L["liquidity"] + 3 * np.abs(np.nan_to_num(ret))
                          + 0.3 * self.market[:, None] / 0.08 + 0.3 * rng.standard_normal(ret.shape))
        turnover = np.where(self.suspended, 0.0, turnover)
        turnover = np.where(np.isfinite(ret), turnover, np.nan)
        lt = np.log(turnover + 1e-4)
        f["turn_1m"] = lt
        f["turn_3m"] = _rolling(lt, 3, "mean")
        f["turn_6m"] = _rolling(lt, 6, "mean")
        f["turn_trend"] = lt - _rolling(lt, 12, "mean")
        amount = turnover * np.exp(f["ln_float_mcap"])
        f["amihud_1m"] = np.abs(ret) / (amount / 1e8 + 1e-3)
        f["ln_amount_1m"] = np.log(amount + 1.0)
        price0 = np.exp(rng.normal(np.log(10.0), 0.6, self.N))  # A-share prices of a few to tens of CNY
        close = price0 * np.exp(np.nancumsum(lr, axis=0))
        close = np.where(self.listed, close, np.nan)  # the listing month has a price, not a return
        f["ma_gap_3"] = close / _rolling(close, 3, "mean") - 1
        f["ma_gap_12"] = close / _rolling(close, 12, "mean") - 1
        f["high_12m"] = close / _rolling(close, 12, "max") - 1
        gains = _rolling(np.clip(ret, 0, None), 6, "sum")
        f["rsi_6"] = gains / (_rolling(np.abs(ret), 6, "sum") + 1e-9)
        f["psy_12"] = _rolling((ret > 0).astype(float) + np.where(np.isfinite(ret), 0, np.nan), 12, "mean")
        self.close = close
        return f

    def blemish(self, f: dict[str, np.ndarray]) -> np.ndarray:
        """Industry offsets, outliers and missing values; returns [T, N, F] float32 in style order."""
        cfg, rng = self.cfg, self.rng
        names = [n for members in STYLES.values() for n in members]
        T0 = cfg.burn_in
        listed = self.listed[T0:]
        out = np.empty((self.Tx - T0, self.N, len(names)), np.float32)
        for j, name in enumerate(names):
            x = f[name][T0:].astype(np.float64)
            scale = np.nanstd(np.where(listed, x, np.nan))
            offset = rng.normal(0, 0.5, self.cfg.n_industries)[self.industry] * scale
            x = x + offset[None, :]
            out_cells = rng.random(x.shape) < cfg.outlier_rate
            med = np.nanmedian(np.where(listed, x, np.nan))
            gross = med + (x - med) * rng.uniform(5, 30, x.shape) + rng.choice([-1, 1], x.shape) * 10 * scale
            x = np.where(out_cells, gross, x)
            rate = rng.uniform(0.5, 1.5) * cfg.missing_rate
            x = np.where(rng.random(x.shape) < rate, np.nan, x)
            out[:, :, j] = np.where(listed, x, np.nan)
        return out, names

    # ---------------------------------------------------------------------- run
    def run(self) -> Market:
        self.universe()
        self.latents()
        self.market_path()
        self.returns_and_mu()
        self.flags()
        factors, names = self.blemish(self.factors())
        T0 = self.cfg.burn_in
        keep = self.listed[T0:].any(axis=0)  # drop stocks that delisted during the burn-in
        listed = self.listed[T0:][:, keep]
        cut = lambda a: a[T0:][:, keep]  # noqa: E731
        industries = [f"IND{k + 1:02d}" for k in range(self.cfg.n_industries)]
        panel = Panel(dates=self.dates, codes=self.codes[keep], factors=factors[:, keep], factor_names=names,
                      ret=cut(self.ret), close=cut(self.close),
                      listed=listed, industry=self.industry[keep], industries=industries,
                      styles={k: list(v) for k, v in STYLES.items()}, suspended=cut(self.suspended),
                      limit_up=cut(self.limit_up), limit_down=cut(self.limit_down), is_st=cut(self.is_st),
                      mcap=np.exp(cut(self.log_mcap)))
        parts = {k: cut(v) for k, v in self.parts.items()}
        return Market(panel=panel, oracle=cut(self.mu), parts=parts, config=self.cfg,
                      description=__doc__.split("* **Universe")[0].strip())
