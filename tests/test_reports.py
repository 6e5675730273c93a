"""reports/: metrics, tear sheets, figures and the summary page, on made-up run results."""
from __future__ import annotations

import json
import math
import re
import socket
import warnings

import empyrical
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from feeds.synthetic import STYLES, make_market
from reports import (ReportError, ReportWarning, basket_nav_figure, book_metrics, build_figures, factor_contribution_figure,
                     figure_png, input_distribution_figure, long_short, long_short_excess_figure,
                     long_short_nav_figure, metrics_document, monthly_prediction_stats, nav, oos_accuracy_figure,
                     prediction_metrics, rank_ic_figure, save_figures, style_contribution_figure,
                     training_accuracy_figure, training_loss_figure, write_report, write_tearsheet)
from reports.tearsheet import book_pages
from reports.metrics import BOOK_KEYS, LONG_SHORT_KEYS, selection_metrics
from signals.evaluate import evaluate_predictions, monthly_evaluation
from signals.labels import make_labels

MONTHS = pd.date_range("2016-05-31", periods=12, freq="ME")


# ============================================================================ made-up inputs
def monthly(values, name=None, start="2016-05-31") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="ME"), name=name, dtype=float)


def basket_frame(seed: int = 0, months: int = 12, empty_neutral_month: bool = True) -> pd.DataFrame:
    """BasketReturns-like frame: high beats low most months; one month the neutral basket is empty."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0.01, 0.06, months)
    frame = pd.DataFrame({"high": market + 0.01 + rng.normal(0, 0.01, months),
                          "neutral": market + rng.normal(0, 0.01, months),
                          "low": market - 0.01 + rng.normal(0, 0.01, months),
                          "universe": market}, index=pd.date_range("2016-05-31", periods=months, freq="ME"))
    if empty_neutral_month:
        frame.iloc[3, frame.columns.get_loc("neutral")] = np.nan
    return frame


@pytest.fixture(scope="module")
def market():
    return make_market(3, n_stocks=150, start="2013-01", end="2016-12")


def noisy_predictions(market, noise: float, seed: int = 0, months: int = 12) -> pd.DataFrame:
    """A predictions frame (predict_panel's shape) whose score is the oracle blurred by noise."""
    panel = market.panel
    rng = np.random.default_rng(seed)
    oracle = market.oracle_frame()
    dates = oracle.index.get_level_values(0)
    score = oracle[dates >= panel.dates[-months - 1]]
    s = (score + rng.normal(0, noise, len(score))).to_numpy()
    s = (s - s.mean()) / s.std()
    logits = np.stack([-s, np.full(len(s), 0.5), s], axis=1)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    frame = pd.DataFrame(p, index=score.index, columns=["p_down", "p_neutral", "p_up"])
    frame["pred"] = np.array(["down", "neutral", "up"])[p.argmax(axis=1)]
    return frame


def history_frame(rows: int = 12, form: str = "percentiles") -> pd.DataFrame:
    step = np.arange(1, rows + 1) * 10
    frame = pd.DataFrame({"step": step, "epoch": step / 50, "train_loss": 1.1 - 0.02 * np.arange(rows),
                          "train_acc": 0.4 + 0.01 * np.arange(rows), "val_loss": 1.12 - 0.015 * np.arange(rows),
                          "val_acc": 0.38 + 0.01 * np.arange(rows)})
    frame.loc[2, "val_loss"] = np.nan  # a step without evaluation
    spread = 0.05 + 0.002 * np.arange(rows)
    if form == "percentiles":  # what signals.train records
        for prefix in ("w_in", "b_in"):
            frame[f"{prefix}_mean"] = 0.0
            frame[f"{prefix}_std"] = spread
            for q, z in ((1, -2.33), (5, -1.64), (25, -0.67), (50, 0.0), (75, 0.67), (95, 1.64), (99, 2.33)):
                frame[f"{prefix}_p{q:02d}"] = z * spread
    elif form == "hist":
        edges = np.linspace(-0.3, 0.3, 21)
        rng = np.random.default_rng(0)
        frame["w_in_hist"] = [np.histogram(rng.normal(0, s, 2000), bins=edges)[0] for s in spread]
        frame.attrs["w_in_hist_edges"] = edges.tolist()
        frame["b_in_mean"], frame["b_in_std"] = 0.01, spread
    return frame


@pytest.fixture
def no_network(monkeypatch):
    """Record (and refuse) every way a tear sheet could reach the network; the test fails on any.

    quantstats downloads a ticker benchmark with yfinance, which talks through
    curl_cffi (libcurl), not Python sockets, and swallows download errors; so its
    download entry points are guarded as well as the socket layer.
    """
    import quantstats

    attempts = []

    def refuse(what):
        def guarded(*args, **kwargs):
            attempts.append((what, args[:2]))
            raise OSError(f"network access attempted: {what}")
        return guarded

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse(f"socket.{name}"))
    monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("socket.getaddrinfo"))
    monkeypatch.setattr(quantstats.utils, "download_returns", refuse("quantstats.utils.download_returns"))
    try:
        import yfinance
    except ImportError:
        pass
    else:
        monkeypatch.setattr(yfinance, "download", refuse("yfinance.download"))
    yield attempts
    assert attempts == [], f"network access attempted: {attempts}"


# ============================================================================ metrics
def test_long_short_on_a_hand_made_series():
    high = monthly([0.02, 0.01, -0.01, 0.03, 0.05])
    low = monthly([0.01, 0.02, -0.02, 0.00, np.nan])  # the last month has no low basket: dropped
    out = long_short(high, low)
    # excess = +1%, -1%, +1%, +3%: mean 1%, sample std sqrt(0.0008 / 3), t = 0.01 / (std / 2) = sqrt(1.5)
    assert out["n_months"] == 4
    assert out["monthly_win_rate"] == pytest.approx(0.75)
    assert out["cum_excess"] == pytest.approx(1.01 * 0.99 * 1.01 * 1.03 - 1)
    assert out["mean_excess"] == pytest.approx(0.01)
    assert out["t_stat"] == pytest.approx(math.sqrt(1.5))
    assert set(out) == set(LONG_SHORT_KEYS)


def test_long_short_degenerate_inputs():
    one = long_short(monthly([0.02]), monthly([0.01]))
    # one month is marked degenerate: no "100% win rate", no t statistic
    assert one["n_months"] == 1 and math.isnan(one["monthly_win_rate"]) and math.isnan(one["t_stat"])
    assert "only 1 month" in one["degenerate"] and one["cum_excess"] == pytest.approx(0.01)
    none = long_short(monthly([np.nan, np.nan]), monthly([0.01, 0.02]))
    assert none["n_months"] == 0 and math.isnan(none["cum_excess"]) and none["degenerate"]
    assert long_short(monthly([0.02, 0.01]), monthly([0.01, 0.02]))["degenerate"] is None


def test_degenerate_books_have_no_statistics():
    one = book_metrics(monthly([np.nan] * 11 + [0.05]), monthly([0.01] * 12))
    assert "only 1 of its 12 months" in one["degenerate"]
    assert one["cum_return"] == pytest.approx(0.05)
    assert all(math.isnan(one[k]) for k in ("sharpe", "sortino", "annual_volatility", "alpha", "beta"))
    cash = book_metrics(monthly([0.0] * 12))
    assert "never invested" in cash["degenerate"] and math.isnan(cash["sharpe"])
    assert "empty in all 12" in book_metrics(monthly([np.nan] * 12))["degenerate"]
    assert book_metrics(monthly([0.01, -0.02, 0.0]))["degenerate"] is None


def test_book_metrics_agree_with_empyrical():
    frame = basket_frame()
    out = book_metrics(frame["high"], frame["universe"])
    high, bench = frame["high"], frame["universe"]
    assert set(out) == set(BOOK_KEYS)
    assert out["n_months"] == 12 and out["n_empty_months"] == 0
    assert out["cum_return"] == pytest.approx(empyrical.cum_returns_final(high))
    assert out["cum_return"] == pytest.approx(np.prod(1 + high) - 1)
    assert out["annual_return"] == pytest.approx(empyrical.annual_return(high, period="monthly"))
    assert out["annual_volatility"] == pytest.approx(high.std(ddof=1) * math.sqrt(12))
    assert out["sharpe"] == pytest.approx(empyrical.sharpe_ratio(high, period="monthly"))
    assert out["max_drawdown"] == pytest.approx(empyrical.max_drawdown(high))
    assert out["calmar"] == pytest.approx(empyrical.calmar_ratio(high, period="monthly"))
    alpha, beta = empyrical.alpha_beta(high, bench, period="monthly")
    assert (out["alpha"], out["beta"]) == pytest.approx((alpha, beta))
    assert math.isnan(book_metrics(high)["beta"])


def test_book_metrics_count_an_empty_basket_month_as_cash():
    frame = basket_frame()
    out = book_metrics(frame["neutral"])
    assert out["n_empty_months"] == 1
    filled = frame["neutral"].fillna(0.0)
    assert out["cum_return"] == pytest.approx(np.prod(1 + filled) - 1)
    assert out["annual_volatility"] == pytest.approx(filled.std(ddof=1) * math.sqrt(12))
    never = book_metrics(monthly([np.nan] * 12))
    assert never["n_empty_months"] == 12 and math.isnan(never["cum_return"])


def test_a_traded_books_empty_months_are_those_of_its_baskets():
    frame = basket_frame()  # neutral empty in month 3
    frame.iloc[7, frame.columns.get_loc("low")] = np.nan
    nav_returns = {name: frame["universe"].rename(name) for name in ("neutral", "high", "long_short")}
    books = selection_metrics(frame, books=nav_returns)["books"]  # NAV returns: never NaN
    assert {name: m["n_empty_months"] for name, m in books.items()} == {"neutral": 1, "high": 0, "long_short": 1}


def test_nav_starts_at_one_the_month_before():
    path = nav(monthly([0.1, -0.5]))
    assert list(path.index) == list(pd.date_range("2016-04-30", periods=3, freq="ME"))
    assert path.to_numpy() == pytest.approx([1.0, 1.1, 0.55])


@pytest.mark.parametrize("bad, message", [
    (pd.DataFrame({"x": [0.1]}), "expected a pandas Series"),
    (pd.Series([0.1, 0.2]), "DatetimeIndex"),
    (pd.Series([0.1, 0.2], index=pd.DatetimeIndex(["2016-05-31", "2016-05-31"])), "duplicate date 2016-05-31"),
    (monthly([0.1, np.inf]), "infinite return at 2016-06-30"),
    (pd.Series(["a", "b"], index=MONTHS[:2]), "numeric"),
])
def test_bad_returns_give_one_clear_error(bad, message):
    with pytest.raises(ReportError, match=message):
        book_metrics(bad)


def test_prediction_metrics_reuse_signals_evaluate(market):
    panel = market.panel
    predictions = noisy_predictions(market, noise=0.01)
    monthly_stats = monthly_prediction_stats(predictions, panel, oracle=market.oracle)
    summary = prediction_metrics(predictions, panel, oracle=market.oracle)
    # the 12 decision months have an outcome; the last panel month does not
    assert len(monthly_stats) == 12 and monthly_stats.index[-1] == panel.dates[-2]
    assert (monthly_stats["n"] > 0).all()
    assert {"accuracy", "no_skill", "ic", "rank_ic", "oracle_rank_ic"} <= set(monthly_stats.columns)

    # accuracy by hand for one month
    t = 5
    date = monthly_stats.index[t]
    labels = make_labels(panel.ret, panel.listed)
    month = predictions.xs(date, level="date")
    truth = labels[panel.dates.get_loc(date), panel.codes.get_indexer(month.index)]
    ok = truth >= 0
    hits = (month["pred"].map({"down": 0, "neutral": 1, "up": 2}).to_numpy()[ok] == truth[ok])
    assert monthly_stats["accuracy"].iloc[t] == pytest.approx(hits.mean())
    assert monthly_stats["no_skill"].iloc[t] == pytest.approx(np.bincount(truth[ok]).max() / ok.sum())

    assert summary == evaluate_predictions(predictions, panel, oracle=market.oracle)  # one implementation
    pd.testing.assert_frame_equal(monthly_stats, monthly_evaluation(predictions, panel, oracle=market.oracle))
    assert summary["rank_ic_mean"] == pytest.approx(monthly_stats["rank_ic"].mean())
    assert summary["icir"] == pytest.approx(monthly_stats["ic"].mean() / monthly_stats["ic"].std(ddof=1))
    assert summary["oracle_rank_ic_mean"] == pytest.approx(monthly_stats["oracle_rank_ic"].mean())
    assert 0 < summary["ic_efficiency"] < 1.5
    assert summary["rank_ic_mean"] > 0.03  # the blurred oracle carries signal


def test_prediction_inputs_are_checked(market):
    predictions = noisy_predictions(market, noise=0.01)
    with pytest.raises(ReportError, match="missing column 'pred'"):
        prediction_metrics(predictions.drop(columns="pred"), market.panel)
    with pytest.raises(ReportError, match=r"\(date, code\) MultiIndex"):
        prediction_metrics(predictions.reset_index(), market.panel)
    with pytest.raises(ReportError, match="expected a feeds.panel.Panel"):
        prediction_metrics(predictions, market.panel.to_frame())
    with pytest.raises(ReportError, match="oracle: shape"):
        monthly_prediction_stats(predictions, market.panel, oracle=market.oracle[:-1])
    with pytest.raises(ReportError, match=r"predictions: prediction for \(.*\) is not on the panel"):
        prediction_metrics(predictions, market.panel.take(rows=slice(0, 3)))


def test_metrics_document_has_the_spec_keys_and_is_strict_json(market):
    baskets = {"class": basket_frame(0), "top_pct": basket_frame(1)}
    model = prediction_metrics(noisy_predictions(market, 0.01), market.panel, oracle=market.oracle)
    doc = metrics_document(baskets, model, books={"class": {"long_short": basket_frame(0)["high"] - 0.01}},
                           validation_accuracy=0.61, timings={"train": 12.5})
    text = json.dumps(doc, allow_nan=False)  # NaN would make this raise
    doc = json.loads(text)
    for mode in ("class", "top_pct"):
        block = doc[mode]
        for key in ("oos_accuracy", "no_skill_accuracy", "ic_mean", "rank_ic_mean", "icir"):
            assert isinstance(block[key], float), key
        for name in ("high", "neutral", "low", "universe"):
            assert set(block["baskets"][name]) == set(BOOK_KEYS)
        assert set(block["long_short"]) == set(LONG_SHORT_KEYS)
        assert block["long_short"]["cum_excess"] == pytest.approx(long_short(baskets[mode]["high"],
                                                                             baskets[mode]["low"])["cum_excess"])
    assert doc["class"]["books"]["long_short"]["n_months"] == 12 and doc["top_pct"]["books"] == {}
    assert doc["class"]["baskets"]["universe"]["beta"] is None  # no benchmark for the benchmark: null, not NaN
    assert doc["validation_accuracy"] == 0.61 and doc["timings"] == {"train": 12.5}
    assert doc["selections"] == ["class", "top_pct"]
    assert set(doc["baseline"]) == {"oos_accuracy", "no_skill_accuracy", "ic_mean", "rank_ic_mean", "icir",
                                    "ic_efficiency"}
    assert all(v is None for v in doc["baseline"].values())  # no baseline given
    assert doc["oracle"]["ic_efficiency"] == pytest.approx(model["ic_efficiency"])


def test_metrics_document_rejects_bad_baskets():
    with pytest.raises(ReportError, match="missing column 'universe'"):
        metrics_document({"class": basket_frame().drop(columns="universe")})
    with pytest.raises(ReportError, match="reserved"):
        metrics_document({"oracle": basket_frame()})


# ============================================================================ tear sheet
def _quantstats_row(page: str, label: str) -> list[str]:
    row = re.search(rf"<tr><td>{re.escape(label)}</td>((?:<td>[^<]*</td>)+)</tr>", page)
    assert row, f"no '{label}' row in the tear sheet"
    return re.findall(r"<td>([^<]*)</td>", row.group(1))


def test_tearsheet_offline_with_12_months(tmp_path, no_network):
    frame = basket_frame()
    path = write_tearsheet(frame["high"], frame["universe"], tmp_path / "tearsheet_class_high.html",
                           "Class selection: high basket")
    page = path.read_text(encoding="utf-8")
    assert "Class selection: high basket" in page
    assert "Monthly metrics (empyrical" in page
    assert not re.search(r"<link[^>]+https?://", page)  # the template's remote favicon is gone
    assert not re.search(r'<(img|script)[^>]+src="https?://', page)
    # quantstats' own table (benchmark column first, then the book) agrees with empyrical
    bench_cum, book_cum = _quantstats_row(page, "Cumulative Return")
    assert float(book_cum.rstrip("%")) / 100 == pytest.approx(empyrical.cum_returns_final(frame["high"]), abs=1e-4)
    assert float(bench_cum.rstrip("%")) / 100 == pytest.approx(empyrical.cum_returns_final(frame["universe"]),
                                                               abs=1e-4)
    _, book_sharpe = _quantstats_row(page, "Sharpe")
    assert float(book_sharpe) == pytest.approx(empyrical.sharpe_ratio(frame["high"], period="monthly"), abs=0.006)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_book_pages_name_the_benchmark_they_are_given():
    frame = basket_frame()
    books = {"class": {"baskets": frame, "books": {"high": frame["high"]}}}
    (own,) = book_pages(books, "run")
    assert own.benchmark_title == "Universe (equal weight)" and own.benchmark.equals(frame["universe"])
    index = frame["universe"] * 0.5
    (page,) = book_pages(books, "run", index, "Index sh.000300")
    assert page.benchmark_title == "Index sh.000300" and page.benchmark.equals(index)
    with pytest.raises(ValueError, match="needs its benchmark_title"):
        book_pages(books, "run", index)


def test_long_short_months_a_basket_left_empty_are_a_warning_and_in_the_headline():
    from pipeline.evaluate import _warn_uncovered_months, summary_rows

    frame = basket_frame()  # neutral empty in one month: the long/short figures do not use it
    doc = {"class": {"long_short": long_short(frame["high"], frame["low"])}}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReportWarning)
        _warn_uncovered_months(doc, {"class": {"baskets": frame}})
    frame.iloc[[2, 5], frame.columns.get_loc("low")] = np.nan
    doc = {"class": {"long_short": long_short(frame["high"], frame["low"])}}
    with pytest.warns(ReportWarning, match=r"^class selection: the long/short figures cover 10 of 12 months "
                                           r"\(the low basket was empty in 2\)$"):
        _warn_uncovered_months(doc, {"class": {"baskets": frame}})
    doc.update(selections=["class"], baseline={}, oracle={})
    doc["class"].update(oos_accuracy=0.4, no_skill_accuracy=0.35, rank_ic_mean=0.05)
    row = next(r for r in summary_rows(doc) if r[0] == "class: long/short monthly win rate")
    assert row[1] == f"{doc['class']['long_short']['monthly_win_rate']:.1%} of 10 months"


def test_tearsheet_errors(tmp_path):
    frame = basket_frame()
    with pytest.raises(ReportError, match="no month in common"):
        write_tearsheet(frame["high"], monthly([0.01] * 12, start="2010-01-31"), tmp_path / "t.html", "t")
    assert not (tmp_path / "t.html").exists()


@pytest.mark.parametrize("values, says", [([np.nan] * 12, "empty in all 12 months"),
                                          ([0.0] * 12, "never invested"),
                                          ([0.03], "only 1 of its 1 months"),
                                          ([np.nan] * 11 + [0.03], "only 1 of its 12 months")])
def test_a_degenerate_book_gets_a_page_that_says_so(tmp_path, values, says):
    path = write_tearsheet(monthly(values, name="neutral"), None, tmp_path / "t.html", "class: neutral")
    page = path.read_text(encoding="utf-8")
    assert "No statistics for this book" in page and says in page
    assert "<table" not in page and "quantstats" not in page.lower()  # no statistics table


# ============================================================================ figures
def test_training_figures_from_every_history_form():
    for form in ("percentiles", "hist"):
        history = history_frame(form=form)
        assert isinstance(training_loss_figure(history), Figure)
        assert isinstance(training_accuracy_figure(history), Figure)
        assert isinstance(input_distribution_figure(history, "w_in"), Figure)
        assert isinstance(input_distribution_figure(history, "b_in"), Figure)
    rng = np.random.default_rng(0)
    snapshots = [{"step": s, "weight": rng.normal(0, 0.1, (8, 5)), "bias": rng.normal(0, 0.1, 8)} for s in (1, 2, 3)]
    assert isinstance(input_distribution_figure(None, "w_in", snapshots=snapshots), Figure)
    with pytest.raises(ReportError, match="no input-layer statistics for 'w_in'"):
        input_distribution_figure(history_frame()[["step", "train_loss"]], "w_in")
    with pytest.raises(ReportError, match="missing column 'train_loss'"):
        training_loss_figure(pd.DataFrame({"step": [1]}))


def test_book_figures_on_edge_cases():
    frame = basket_frame()  # 12 months, neutral empty one month
    frame.loc[frame.index[5], "low"] = np.nan  # and low empty another
    for fig in (basket_nav_figure(frame, "NAV"), long_short_nav_figure(frame["high"], frame["low"], "LS"),
                long_short_excess_figure(frame["high"], frame["low"], "LS")):
        assert isinstance(fig, Figure)
        assert figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"
    excess = long_short_excess_figure(frame["high"], frame["low"], "Class")
    assert "11 months" in excess.axes[0].get_title()  # the month without a low basket is not counted
    empty = frame.assign(neutral=np.nan, low=np.nan)
    assert isinstance(basket_nav_figure(empty, "NAV"), Figure)
    assert isinstance(long_short_excess_figure(empty["high"], empty["low"], "LS"), Figure)


def test_prediction_and_factor_figures(market):
    stats = monthly_prediction_stats(noisy_predictions(market, 0.01), market.panel, oracle=market.oracle)
    base = monthly_prediction_stats(noisy_predictions(market, 0.05, seed=1), market.panel)
    stats.loc[stats.index[2], "rank_ic"] = np.nan
    assert isinstance(oos_accuracy_figure(stats, base), Figure)
    fig = rank_ic_figure(stats, base)
    assert len(fig.axes[0].patches) == 3 * len(stats)  # model, baseline, oracle bars per month
    names = [f for members in STYLES.values() for f in members]
    contribution = pd.Series(np.linspace(1, 2, len(names)), index=names)
    contribution["unstyled"] = 0.5
    assert isinstance(factor_contribution_figure(contribution, STYLES), Figure)
    assert isinstance(style_contribution_figure(contribution, STYLES), Figure)
    with pytest.raises(ReportError, match="contribution: expected a pandas Series"):
        factor_contribution_figure(contribution.to_dict(), STYLES)


def test_save_figures_writes_pngs(tmp_path):
    paths = save_figures({"nav_class": basket_nav_figure(basket_frame(), "NAV")}, tmp_path / "figures")
    assert paths["nav_class"].read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ReportError, match="not a safe file name"):
        save_figures({"../x": Figure()}, tmp_path)


# ============================================================================ summary page
def test_report_is_self_contained(tmp_path, market):
    baskets = {"class": basket_frame(0), "top_pct": basket_frame(1)}
    predictions = noisy_predictions(market, 0.01)
    stats = monthly_prediction_stats(predictions, market.panel, oracle=market.oracle)
    doc = metrics_document(baskets, prediction_metrics(predictions, market.panel, oracle=market.oracle),
                           validation_accuracy=0.6)
    figures = build_figures(baskets=baskets, prediction=stats, history=history_frame(),
                            contribution=pd.Series([3.0, 1.0], index=["bp", "mom_3m"]), styles=STYLES)
    assert {"training_loss", "training_accuracy", "input_weights", "input_biases", "oos_accuracy", "rank_ic",
            "nav_class", "long_short_nav_top_pct", "long_short_excess_class", "factor_contribution",
            "style_contribution"} <= set(figures)
    path = write_report(tmp_path / "report.html", doc, figures,
                        {"title": "Run <1>", "run": {"Data": "synthetic"}, "execution": "close",
                         "config": {"seed": 0}, "tearsheets": {"class: high": "tearsheet_class_high.html"}})
    page = path.read_text(encoding="utf-8")
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == len(figures)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert 'src="http' not in page and "<link" not in page and "<script" not in page
    assert "Run &lt;1&gt;" in page  # escaped
    assert "month-end t close to month-end t+1 close" in page  # which return the labels measure
    assert "75% over 12 months" in page and "above 9%" in page  # the study's numbers next to this run's
    ls = doc["class"]["long_short"]
    assert f"{ls['cum_excess']:.1%}" in page and f"{ls['monthly_win_rate']:.1%}" in page
    assert "Rank composite" not in page and "better baseline" not in page  # none in this document
    doc = {**doc, "composite": {"rank_ic_mean": 0.079, "ic_efficiency": 0.59},
           "lstm_margin": {"better_baseline": "composite", "rank_ic_mean": 0.023, "months": 12,
                           "months_ahead": 10, "t_stat": 3.14}}
    page = write_report(tmp_path / "again.html", doc, figures).read_text(encoding="utf-8")
    assert "0.079 / 59%" in page and "(composite): rank IC, t statistic, months ahead" in page
    assert "0.023, t 3.14, 10 of 12" in page


def test_report_rejects_unknown_execution(tmp_path):
    with pytest.raises(ReportError, match="unknown execution 'vwap'"):
        write_report(tmp_path / "r.html", {"selections": []}, {}, {"execution": "vwap"})
    assert not (tmp_path / "r.html").exists()
