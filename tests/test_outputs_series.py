"""The research outputs of a run: series files, factor file, run.log, and report.html in a browser.

One small end-to-end run (configs/smoke.yaml, few training steps, one traded book per
selection) feeds every test here. The headline figures of metrics.json are reproduced from
the series files alone, each loaded with one ``pandas.read_parquet``.
"""
import contextlib
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import run_backtest
from reports import factor as FA

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs" / "smoke.yaml")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("outputs")
    out = base / "run"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = run_backtest.main(["--config", SMOKE, "--output", str(out), "--log-level", "WARNING",
                                  "--set", f"output.cache_dir={base / 'cache'}", "--set", "train.steps=20",
                                  "--set", "backtest.books=[long_short]"])
    assert code == 0
    return out, stderr.getvalue()


def metrics(out):
    return json.loads((out / "metrics.json").read_text())


def test_headline_figures_from_the_series_files(run_dir):
    out, _ = run_dir
    doc = metrics(out)
    returns = pd.read_parquet(out / "series" / "returns.parquet")
    ic = pd.read_parquet(out / "series" / "ic.parquet")
    for mode in doc["selections"]:
        ls = doc[mode]["long_short"]
        excess = (returns[f"{mode}.basket.high"] - returns[f"{mode}.basket.low"]).dropna()
        assert len(excess) == ls["n_months"]
        if ls["n_months"] == 0:  # a basket never filled (a barely trained model): nothing to reproduce
            assert ls["cum_excess"] is None and ls["degenerate"]
            continue
        assert np.prod(1 + excess) - 1 == pytest.approx(ls["cum_excess"], rel=1e-12)
        if ls["degenerate"] is None:
            assert (excess > 0).mean() == pytest.approx(ls["monthly_win_rate"], rel=1e-12)
        else:
            assert ls["monthly_win_rate"] is None
        book = returns[f"{mode}.book.long_short"]
        assert np.prod(1 + book.fillna(0)) - 1 == pytest.approx(doc[mode]["books"]["long_short"]["cum_return"])
        assert ic.loc[ic["model"] == "lstm", "rank_ic"].mean() == pytest.approx(doc[mode]["rank_ic_mean"], rel=1e-12)
    assert doc["top_pct"]["long_short"]["degenerate"] is None  # top 30%: both baskets every month
    assert ic.loc[ic["model"] == "baseline", "rank_ic"].mean() == pytest.approx(doc["baseline"]["rank_ic_mean"])
    assert set(ic["model"]) >= {"lstm", "baseline"}
    # the CSV twin holds the same numbers
    csv = pd.read_csv(out / "series" / "returns.csv", index_col="date", parse_dates=["date"])
    pd.testing.assert_frame_equal(csv, returns, check_freq=False, check_index_type=False, rtol=1e-9)


def test_positions_transactions_and_turnover_agree_with_the_book(run_dir):
    out, _ = run_dir
    returns = pd.read_parquet(out / "series" / "returns.parquet")
    positions = pd.read_parquet(out / "series" / "positions.parquet")
    transactions = pd.read_parquet(out / "series" / "transactions.parquet")
    turnover = pd.read_parquet(out / "series" / "turnover.parquet")
    for (mode, book), held in positions.groupby(["selection", "book"]):
        value = held.groupby("date")["value"].sum()  # stocks at their close + cash = the broker's value
        nav_returns = (value / value.shift(1) - 1).dropna()
        book_returns = returns[f"{mode}.book.{book}"].reindex(nav_returns.index)
        np.testing.assert_allclose(nav_returns, book_returns, rtol=1e-9, atol=1e-12)
        weights = held[held["code"] != "cash"].groupby("date")["weight"].apply(lambda w: w.abs().sum())
        assert (weights > 0.5).all()  # invested, at any gross
        fees = transactions.query("selection == @mode and book == @book").groupby("decision_date")["commission"].sum()
        traded = turnover.query("selection == @mode and book == @book").set_index("date")["commission"]
        np.testing.assert_allclose(fees.reindex(traded.index), traded, rtol=1e-9)
    assert {"date", "decision_date", "code", "shares", "price", "value", "commission"} <= set(transactions.columns)


def test_factor_functions_run_on_the_factor_file_unchanged(run_dir):
    out, _ = run_dir
    doc = metrics(out)
    factor = pd.read_parquet(out / "series" / "factor.parquet")
    assert factor.index.names == ["date", "asset"]
    assert {"score", "fwd_1m", "fwd_3m", "fwd_6m", "industry"} <= set(factor.columns)
    np.testing.assert_allclose(factor["score"], factor["p_up"] - factor["p_down"])
    first = doc["selections"][0]
    assert FA.factor_ic(factor)["fwd_1m"].mean() == pytest.approx(doc[first]["rank_ic_mean"], rel=1e-9)
    assert FA.factor_ic(factor, "pearson")["fwd_1m"].mean() == pytest.approx(doc[first]["ic_mean"], rel=1e-9)
    summary = FA.factor_summary(factor)
    assert summary["rank_ic"]["fwd_1m"]["t_stat"] == pytest.approx(doc["factor"]["rank_ic"]["fwd_1m"]["t_stat"])
    assert len(FA.quantile_returns(factor)) == 5 and not FA.ic_by_industry(factor).empty
    assert FA.rank_autocorrelation(factor).notna().sum() == factor.index.get_level_values(0).nunique() - 1


def test_ic_t_statistics_allow_for_the_overlap_of_longer_horizons():
    rng = np.random.default_rng(0)
    shocks = rng.normal(0.02, 0.1, 20003)
    overlapping = shocks[2:] + shocks[1:-1] + shocks[:-2]  # like the monthly ICs of a 3-month return
    ic = pd.DataFrame({"fwd_1m": overlapping, "fwd_3m": overlapping})  # one row a month
    table = FA.ic_summary(ic)
    plain, newey_west = table.loc["fwd_1m"], table.loc["fwd_3m"]
    assert plain["lags"] == 0 and newey_west["lags"] == 2
    assert plain["se"] == pytest.approx(plain["std"] / np.sqrt(plain["n"]))
    # Bartlett weights 2/3, 1/3 on the MA(2)'s autocorrelations 2/3, 1/3: 1 + 2 (4/9 + 1/9) = 19/9
    assert (newey_west["se"] / plain["se"]) ** 2 == pytest.approx(19 / 9, rel=0.03)
    assert newey_west["t_stat"] == pytest.approx(plain["t_stat"] / np.sqrt(19 / 9), rel=0.03)
    assert newey_west["p_value"] > plain["p_value"]


def test_alphalens_agrees_with_the_factor_functions(run_dir):
    al = pytest.importorskip("alphalens", reason="alphalens-reloaded is optional (it needs statsmodels)")
    out, _ = run_dir
    factor = pd.read_parquet(out / "series" / "factor.parquet")
    prices = pd.read_parquet(out / "series" / "prices.parquet")
    # alphalens computes its own forward returns from prices (0 for a stock that delists);
    # the rows where every horizon is known are the same on both sides
    known = factor.dropna(subset=["fwd_1m", "fwd_3m", "fwd_6m"])
    data = al.utils.get_clean_factor_and_forward_returns(known["score"], prices, groupby=known["industry"],
                                                         periods=(1, 3, 6), quantiles=5, max_loss=1.0,
                                                         filter_zscore=None)
    # its forward returns are the file's (it computes them from prices.parquet)
    ours = known.loc[data.index]
    for period, column in (("1D", "fwd_1m"), ("3D", "fwd_3m"), ("6D", "fwd_6m")):
        np.testing.assert_allclose(data[period], ours[column], rtol=1e-12, atol=1e-14)
    # the same statistics; ties in the forward returns (e.g. two 0% months) can rank differently
    # at the last bit, so on the file they agree closely, on alphalens' own numbers exactly
    theirs = al.performance.factor_information_coefficient(data)
    np.testing.assert_allclose(theirs.to_numpy(), FA.factor_ic(known).reindex(theirs.index).to_numpy(), atol=1e-3)
    same = data.rename(columns={"factor": "score", "group": "industry", "1D": "fwd_1m", "3D": "fwd_3m",
                                "6D": "fwd_6m"})
    np.testing.assert_allclose(theirs.to_numpy(), FA.factor_ic(same).reindex(theirs.index).to_numpy(), atol=1e-12)
    quantiles = al.performance.mean_return_by_quantile(data, demeaned=False)[0]
    np.testing.assert_allclose(quantiles.to_numpy(), FA.quantile_returns(same).to_numpy(), atol=1e-12)
    auto = al.performance.factor_rank_autocorrelation(data, period=1)
    np.testing.assert_allclose(auto.to_numpy(), FA.rank_autocorrelation(same).to_numpy(), atol=1e-12)
    by_industry = al.performance.mean_information_coefficient(data, by_group=True)["1D"]
    mine = FA.ic_by_industry(same, min_group=1)["mean"]
    np.testing.assert_allclose(by_industry.to_numpy(), mine.reindex(by_industry.index).to_numpy(), atol=1e-12)


def test_run_log_and_log_level(run_dir):
    out, stderr = run_dir
    assert "data:" not in stderr and "backtest:" not in stderr  # --log-level WARNING: no progress lines
    assert "\r" not in stderr
    log = (out / "run.log").read_text()
    for stage in ("data:", "model:", "predict:", "backtest: class/long_short", "outputs: series/", "outputs: report"):
        assert stage in log
    assert "\r" not in log and "validation accuracy" in log  # the summary table closes the log


def test_degenerate_books_are_marked(run_dir):
    out, _ = run_dir
    doc = metrics(out)
    for mode in doc["selections"]:
        for name, m in doc[mode]["baskets"].items():
            if m["degenerate"]:
                assert m["sharpe"] is None and m["annual_volatility"] is None
            else:
                assert m["n_months"] - m["n_empty_months"] >= 2


# ------------------------------------------------------------------------- in a browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def browse(page: Path, *args: str) -> str:
    """Open ``page`` in headless Chromium; return its console log (stderr)."""
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", *args, page.as_uri()], capture_output=True, text=True, timeout=120)
    return done.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine")
def test_report_and_tear_sheets_render_without_console_errors(run_dir, tmp_path):
    out, _ = run_dir
    pages = [out / "report.html"] + sorted(out.glob("tearsheet_*.html"))
    assert len(pages) == 3
    for page in pages:
        shot = tmp_path / f"{page.stem}.png"
        log = browse(page, f"--screenshot={shot}", "--window-size=1280,2000")
        console = [line for line in log.splitlines() if "CONSOLE" in line]
        assert not [line for line in console if re.search(r"Uncaught|Error", line)], (page.name, console)
        assert shot.exists() and shot.stat().st_size > 10_000, page.name
    report = (out / "report.html").read_text()
    assert 'id="factor"' in report and "series/factor.parquet" in report
    for page in out.glob("tearsheet_*.html"):
        text = page.read_text()
        assert "onload" not in text and "CAGR﹪" not in text
        assert not re.search(r"<td>(Expected Daily|Best Day|Worst Day|Win Days|Risk-Adjusted Return)", text)


# ------------------------------------------------------------------------- small units
def test_factor_frame_compounds_forward_returns_and_names_industries():
    from feeds.synthetic import make_market
    from reports.series import factor_frame

    panel = make_market(seed=1, n_stocks=40, start="2010-01", end="2012-12").panel
    dates = panel.dates[20:24]
    t = panel.dates.get_indexer(dates)
    index = pd.MultiIndex.from_product([dates, panel.codes[:5]], names=["date", "code"])
    predictions = pd.DataFrame({"p_down": 0.2, "p_neutral": 0.3, "p_up": 0.5, "pred": "up"}, index=index)
    frame = factor_frame(predictions, panel)
    i = 3
    expected = np.prod(1 + panel.ret[t[0] + 1:t[0] + 4, i]) - 1
    assert frame.loc[(dates[0], panel.codes[i]), "fwd_3m"] == pytest.approx(expected)
    assert frame.loc[(dates[0], panel.codes[i]), "fwd_1m"] == pytest.approx(panel.ret[t[0] + 1, i])
    assert frame.loc[(dates[0], panel.codes[i]), "industry"] == panel.industries[panel.industry[t[0], i]]
    assert frame["score"].eq(0.3).all()


def test_log_keeps_every_line_for_run_log_and_draws_no_bar_off_a_terminal():
    from pipeline.log import Log

    stream = io.StringIO()
    log = Log(quiet=False, level="WARNING", stream=stream)
    log("data: loaded")
    log.debug("detail")
    log.warning("careful")
    assert stream.getvalue() == "careful\n" and not log.progress
    assert "INFO    data: loaded" in log.text() and "careful" in log.text() and "detail" not in log.text()
    verbose = Log(quiet=True, level="debug", stream=stream)
    verbose.debug("detail")
    assert "DEBUG   detail" in verbose.text() and not verbose.progress
