"""quantstats tear sheets of monthly books, offline and with honest monthly metrics.

:func:`write_tearsheet` wraps ``quantstats.reports.html`` for the monthly books of a
run. What it takes care of (checked on quantstats 0.0.86):

* **Monthly periods.** quantstats assumes daily data unless told: the call passes
  ``periods_per_year=12``, so CAGR, volatility, Sharpe, Sortino and Calmar in its
  table are annualised with 12 periods and agree with empyrical's
  ``period="monthly"`` (checked in ``tests/test_reports.py``).
* **Rows that still say "day".** quantstats' table keeps daily wording for
  per-period rows: with monthly data "Expected Daily", "Daily Value-at-Risk",
  "Best/Worst Day" and "Win Days" are per *month*; "3Y/5Y/10Y (ann.)" fall back to
  the whole run when it is shorter than that; drawdown "Days" are calendar days
  between month-ends (a one-month drawdown shows 1 day); its alpha is annualised
  arithmetically (x 12) where empyrical compounds it. The page therefore opens with an empyrical table (the
  numbers ``metrics.json`` holds) and a note saying how to read quantstats' table.
* **Offline.** The benchmark is passed as a Series (a ticker string would make
  quantstats download it), ``match_dates=False`` (its date matching drops leading
  months whose return is exactly 0; the two series are aligned here instead), and
  the template's external favicon link is removed, so opening the page makes no
  network request either.
* **Quiet, headless.** Matplotlib's Agg backend; missing-font messages suppressed.
"""
from __future__ import annotations

import html
import logging
import re
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from .files import atomic_path
from .inputs import ReportError, cash_filled, monthly_returns
from .metrics import book_metrics

PERIODS_PER_YEAR = 12

EMPYRICAL_ROWS = (  # (key of book_metrics, label, format)
    ("n_months", "Months", "{:.0f}"),
    ("cum_return", "Cumulative return", "{:.2%}"),
    ("annual_return", "Annual return (CAGR)", "{:.2%}"),
    ("annual_volatility", "Annual volatility", "{:.2%}"),
    ("sharpe", "Sharpe (annualised, rf 0)", "{:.2f}"),
    ("sortino", "Sortino (annualised)", "{:.2f}"),
    ("max_drawdown", "Max drawdown", "{:.2%}"),
    ("calmar", "Calmar", "{:.2f}"),
    ("alpha", "Alpha vs benchmark (annualised)", "{:.2%}"),
    ("beta", "Beta vs benchmark", "{:.2f}"),
)

MONTHLY_NOTE = (
    "This book has one return per month and quantstats was run with 12 periods a year, "
    "so its annualised figures (CAGR, volatility, Sharpe, Sortino, Calmar) are monthly-based "
    "and match the empyrical table above. Its table keeps daily wording for per-period rows: "
    "read <em>Expected Daily</em>, <em>Daily Value-at-Risk</em>, <em>Best/Worst Day</em> and "
    "<em>Win Days</em> as per <em>month</em>. <em>3Y/5Y/10Y (ann.)</em> fall back to the whole run "
    "when it is shorter than that; drawdown lengths are calendar days between month-ends (a "
    "drawdown that lasts one month shows 1 day). Its <em>Alpha</em> is annualised arithmetically "
    "(mean monthly alpha &times; 12); empyrical's above compounds it ((1 + monthly alpha)<sup>12</sup> &minus; 1)."
)


def write_tearsheet(returns: pd.Series, benchmark: pd.Series | None, path, title: str, *,
                    strategy_title: str | None = None, benchmark_title: str = "Universe (equal weight)") -> Path:
    """Write a quantstats HTML tear sheet of one monthly book.

    Parameters
    ----------
    returns : pd.Series
        Monthly returns of the book, indexed by realisation month-end. NaN months
        (an empty basket) count as months in cash (return 0).
    benchmark : pd.Series or None
        Monthly returns of the benchmark (the equal-weight universe). Aligned to
        the dates of ``returns``; a benchmark month missing for the book is dropped.
    path : str or os.PathLike
        Output file (``tearsheet_<selection>_<book>.html``); written atomically.
    title : str
        Page title.
    strategy_title : str, optional
        Column name of the book in the tables (default: the Series name, else "Strategy").
    benchmark_title : str
        Column name of the benchmark.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ReportError
        Malformed inputs, fewer than 2 months, a book that is NaN every month, or no
        month in common with the benchmark.
    """
    raw = monthly_returns(returns, "returns")
    if len(raw) < 2:
        raise ReportError(f"returns: a tear sheet needs at least 2 months, got {len(raw)}")
    if raw.isna().all():
        raise ReportError(f"returns: every month of '{raw.name}' is NaN (the book never held anything)")
    book = cash_filled(raw)
    bench = None
    if benchmark is not None:
        bench = cash_filled(monthly_returns(benchmark, "benchmark")).reindex(book.index)
        if bench.isna().all():
            raise ReportError("benchmark: no month in common with the book's returns")
        bench = bench.fillna(0.0).rename(benchmark_title)
    name = strategy_title or (str(book.name) if book.name is not None else "Strategy")
    book = book.rename(name)

    path = Path(path)
    with _quiet_matplotlib():
        if "matplotlib.pyplot" not in sys.modules:  # headless unless the caller already chose a backend
            import matplotlib

            matplotlib.use("Agg")
        import quantstats as qs  # deferred: importing it pulls in its plotting stack

        with atomic_path(path) as tmp:
            qs.reports.html(book, benchmark=bench, output=str(tmp), title=title,
                            periods_per_year=PERIODS_PER_YEAR, match_dates=False, compounded=True, rf=0.0,
                            strategy_title=name, benchmark_title=benchmark_title if bench is not None else None)
            page = tmp.read_text(encoding="utf-8")
            page = _insert_after_header(_offline(page, title), _empyrical_section(book, bench))
            tmp.write_text(page, encoding="utf-8")
    return path


def _empyrical_section(book: pd.Series, bench: pd.Series | None) -> str:
    """The empyrical metrics table and the note on reading quantstats' table, as HTML."""
    columns = {book.name: book_metrics(book, bench)}
    if bench is not None:
        columns[bench.name] = book_metrics(bench)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    rows = []
    for key, label, fmt in EMPYRICAL_ROWS:
        cells = "".join(f"<td>{_fmt(m[key], fmt)}</td>" for m in columns.values())
        rows.append(f"<tr><td>{label}</td>{cells}</tr>")
    return (
        '<div id="empyrical_metrics" style="clear:both;margin:0 0 30px">'
        "<h3>Monthly metrics (empyrical, 12 periods a year)</h3>"
        f'<table style="max-width:620px"><thead><tr><th>Metric</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        f'<p style="max-width:960px;color:#555">{MONTHLY_NOTE}</p><hr></div>'
    )


def _fmt(value, fmt: str) -> str:
    return "&ndash;" if value is None or pd.isna(value) else fmt.format(value)


def _offline(page: str, title: str) -> str:
    """Drop the template's external favicon and give the page its own <title>."""
    page = re.sub(r'<link[^>]+href="https?://[^"]*"[^>]*>\s*', "", page)
    return re.sub(r"<title>.*?</title>", f"<title>{html.escape(title)}</title>", page, count=1, flags=re.S)


def _insert_after_header(page: str, section: str) -> str:
    """Place ``section`` between the page header and the charts, else right after <body>."""
    anchor = page.find('<div id="left">')
    if anchor >= 0:
        return page[:anchor] + section + page[anchor:]
    body = re.search(r"<body[^>]*>", page)
    at = body.end() if body else 0
    return page[:at] + section + page[at:]


@contextmanager
def _quiet_matplotlib():
    """Silence missing-font chatter (quantstats asks for Arial) and quantstats' deprecation warnings."""
    logger = logging.getLogger("matplotlib.font_manager")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*(findfont|Glyph|font).*")
            # quantstats' own use of deprecated pandas / matplotlib API: not the user's to act on
            for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category)
            warnings.filterwarnings("ignore", message=r"set_ticklabels\(\) should only be used")
            yield
    finally:
        logger.setLevel(level)
