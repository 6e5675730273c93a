"""quantstats tear sheets of monthly books, offline and with honest monthly metrics.

:func:`write_tearsheet` wraps ``quantstats.reports.html`` for the monthly books of a
run, through quantstats' own options (checked on quantstats 0.0.86); the page it writes
is not edited afterwards:

* **Monthly periods.** ``periods_per_year=12``: CAGR, volatility, Sharpe, Sortino and
  Calmar are annualised with 12 periods and agree with empyrical's ``period="monthly"``
  (checked in ``tests/test_reports.py``).
* **Our own template** (``template_path``, :data:`TEMPLATE`): quantstats' template with no
  ``onload="save()"`` (it throws ``ReferenceError: save is not defined`` in a browser), no
  remote favicon, fonts that exist on Linux too (DejaVu Sans / Liberation Sans after
  Arial), without the charts that mean nothing for monthly data (*Daily Returns
  (Cumulative Sum)*, and *Rolling Beta*, which quantstats draws as 0 before its first
  full 6-month window), and with the empyrical table of ``metrics.json`` at the top.
* **A monthly metrics table.** The key-metrics table is quantstats' own
  (``qs.reports.metrics(..., periods_per_year=12)``), placed in the template without the
  rows that repeat another row under a daily name (*Expected Daily*, *Best/Worst Day*,
  *Win Days*, *Gain/Pain (1M)*), *Daily Value-at-Risk* named *Monthly Value-at-Risk*,
  *3Y/5Y/10Y (ann.)* only when the run is that long, *Risk-Adjusted Return* dropped
  (quantstats annualises it with 252 periods whatever ``periods_per_year`` says), and
  *CAGR﹪* spelled *CAGR* (the small-percent glyph is missing from common fonts).
* **Offline.** The benchmark is passed as a Series (a ticker string would make
  quantstats download it), ``match_dates=False`` (its date matching drops leading months
  whose return is exactly 0; the two series are aligned here instead).
* **Degenerate books.** A book that never invested (every month NaN or 0) or was
  invested in one month only gets a short page that says so, not statistics of one point
  (:func:`reports.metrics.degenerate_reason`).
* **Quiet, headless.** Matplotlib's Agg backend; missing-font messages suppressed.
"""
from __future__ import annotations

import html
import logging
import sys
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .files import atomic_path
from .inputs import ReportError, cash_filled, monthly_returns
from .metrics import book_metrics, degenerate_reason

PERIODS_PER_YEAR = 12
UNIVERSE = "Universe (equal weight)"  # the benchmark unless a run names an index

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

# quantstats' metric rows (names as its table prints them) for monthly data
DROP_ROWS = ("Expected Daily", "Best Day", "Worst Day", "Win Days", "Gain/Pain (1M)", "Risk-Adjusted Return")
RENAME_ROWS = {"CAGR﹪": "CAGR", "Daily Value-at-Risk": "Monthly Value-at-Risk",
               "Longest DD Days": "Longest DD (calendar days)", "Avg. Drawdown Days": "Avg. Drawdown (calendar days)"}
HORIZON_ROWS = {"1Y": 12, "3Y (ann.)": 36, "5Y (ann.)": 60, "10Y (ann.)": 120}  # shown only with this many months

MONTHLY_NOTE = (
    "One return per month; quantstats was run with 12 periods a year, so its annualised figures "
    "(CAGR, volatility, Sharpe, Sortino, Calmar) are monthly-based and match the empyrical table. "
    "Its rows that repeat a monthly row under a daily name are left out, and <em>Risk-Adjusted "
    "Return</em> too (quantstats annualises it with 252 periods). Drawdown lengths are calendar days "
    "between month-ends. Its <em>Alpha</em> is annualised arithmetically (mean monthly alpha &times; 12); "
    "empyrical's compounds it ((1 + monthly alpha)<sup>12</sup> &minus; 1)."
)

# quantstats 0.0.86's report.html, with the changes listed in the module docstring.
TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@@page_title@@</title>
<style>
body{-webkit-font-smoothing:antialiased;margin:30px;background:#fff;color:#000}
body,p,table,td,th{font:13px/1.4 Arial,"Liberation Sans","DejaVu Sans",Helvetica,sans-serif}
.container{max-width:960px;margin:auto}img,svg{width:100%}h1,h2,h3,h4{font-weight:400;margin:0}
h1 dt{display:inline;margin-left:10px;font-size:14px}h3{margin-bottom:10px;font-weight:700}h4{color:grey}
h4 a{color:#09c;text-decoration:none}hr{margin:25px 0 40px;height:0;border:0;border-top:1px solid #ccc}
#left{width:620px;margin-right:18px;margin-top:-1.2rem;float:left}#right{width:320px;float:right}
#left svg{margin:-1.5rem 0}#monthly_heatmap{overflow:hidden}#monthly_heatmap svg{margin:-1.5rem 0}
table{margin:0 0 40px;border:0;border-spacing:0;width:100%}
table td,table th{text-align:right;padding:4px 5px 3px 5px;font-variant-numeric:tabular-nums}
table th{text-align:right;padding:6px 5px 5px 5px}
table td:first-of-type,table th:first-of-type{text-align:left;padding-left:2px}
table td:last-of-type,table th:last-of-type{text-align:right;padding-right:2px}
td hr{margin:5px 0}table th{font-weight:400}table thead th{font-weight:700;background:#eee}
#eoy table td:after{content:"%"}
#eoy table td:first-of-type:after,#eoy table td:last-of-type:after,#eoy table td:nth-of-type(4):after{content:""}
#eoy table th{text-align:right}#eoy table th:first-of-type{text-align:left}
#ddinfo table td:nth-of-type(3):after{content:"%"}#ddinfo table th{text-align:right}
#ddinfo table td:first-of-type,#ddinfo table td:nth-of-type(2),#ddinfo table th:first-of-type,
#ddinfo table th:nth-of-type(2){text-align:left}
#empyrical_metrics{clear:both;margin:0 0 30px}#empyrical_metrics table{max-width:620px}
#empyrical_metrics p{max-width:960px;color:#555}
@media print{hr{margin:25px 0}body{margin:0}.container{max-width:100%;margin:0}#left{width:55%;margin:0}
#left svg{margin:0 0 -10%}#right{margin:0;width:45%}}
</style>
</head>
<body>
<div class="container">
<h1>{{title}} <dt>{{date_range}}{{matched_dates}}</dt></h1>
<h4>{{params}} Generated by <a href="http://quantstats.io" target="quantstats">QuantStats</a> (v. {{v}})</h4>
<hr>
@@empyrical@@
<div id="left">
<div>{{returns}}</div>
<div id="log_returns">{{log_returns}}</div>
<div id="vol_returns">{{vol_returns}}</div>
<div id="eoy_returns">{{eoy_returns}}</div>
<div id="monthly_dist">{{monthly_dist}}</div>
<div id="rolling_vol">{{rolling_vol}}</div>
<div id="rolling_sharpe">{{rolling_sharpe}}</div>
<div id="rolling_sortino">{{rolling_sortino}}</div>
<div id="dd_periods">{{dd_periods}}</div>
<div id="dd_plot">{{dd_plot}}</div>
<div id="monthly_heatmap">{{monthly_heatmap}}</div>
<div id="returns_dist">{{returns_dist}}</div>
</div>
<div id="right">
<h3>Key Performance Metrics</h3>
@@metrics@@
<div id="eoy">{{eoy_title}}
{{eoy_table}}</div>
<div id="ddinfo">
<h3>Worst 10 Drawdowns</h3>
{{dd_info}}
</div>
</div>
</div>
</body>
</html>
"""

_NOTICE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font:14px/1.5 Arial,"Liberation Sans","DejaVu Sans",sans-serif;margin:30px;color:#222}}
.container{{max-width:760px;margin:auto}}p.reason{{font-size:16px;padding:12px 16px;background:#fff4e5;
border-left:4px solid #f0a020}}</style></head>
<body><div class="container"><h1>{title}</h1>
<p class="reason">No statistics for this book: {reason}.</p>
<p>Statistics of a book that never invested, or that was invested in a single month, would only
describe cash or one data point (a 100% win rate, a Sharpe ratio from one month). The book's monthly
returns are in <code>series/returns.parquet</code>.</p></div></body></html>
"""


def write_tearsheet(returns: pd.Series, benchmark: pd.Series | None, path, title: str, *,
                    strategy_title: str | None = None, benchmark_title: str = UNIVERSE) -> Path:
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
        ``path``. A degenerate book (never invested, or invested in one month only: see
        :func:`reports.metrics.degenerate_reason`) gets a page that says so instead of
        statistics.

    Raises
    ------
    ReportError
        Malformed inputs, or no month in common with the benchmark.
    """
    raw = monthly_returns(returns, "returns")
    path = Path(path)
    reason = degenerate_reason(raw)
    if reason:
        with atomic_path(path) as tmp:
            tmp.write_text(_NOTICE.format(title=html.escape(title), reason=html.escape(reason)), encoding="utf-8")
        return path
    book = cash_filled(raw)
    bench = None
    if benchmark is not None:
        bench = cash_filled(monthly_returns(benchmark, "benchmark")).reindex(book.index)
        if bench.isna().all():
            raise ReportError("benchmark: no month in common with the book's returns")
        bench = bench.fillna(0.0).rename(benchmark_title)
    name = strategy_title or (str(book.name) if book.name is not None else "Strategy")
    book = book.rename(name)

    with _quiet_matplotlib():
        if "matplotlib.pyplot" not in sys.modules:  # headless unless the caller already chose a backend
            import matplotlib

            matplotlib.use("Agg")
        import quantstats as qs  # deferred: importing it pulls in its plotting stack

        template = (TEMPLATE.replace("@@page_title@@", html.escape(title))
                    .replace("@@empyrical@@", _empyrical_section(book, bench))
                    .replace("@@metrics@@", _metrics_table(qs, book, bench, name, benchmark_title)))
        with atomic_path(path) as tmp, tempfile.TemporaryDirectory() as folder:
            template_path = Path(folder) / "tearsheet_template.html"
            template_path.write_text(template, encoding="utf-8")
            qs.reports.html(book, benchmark=bench, output=str(tmp), title=title, template_path=str(template_path),
                            periods_per_year=PERIODS_PER_YEAR, match_dates=False, compounded=True, rf=0.0,
                            strategy_title=name, benchmark_title=benchmark_title if bench is not None else None)
    return path


@dataclass(frozen=True)
class BookPage:
    """One traded book's tear sheet, to be written as :attr:`file` in a run directory.

    Attributes
    ----------
    selection, book : str
        Which book of the run.
    title : str
        Page title.
    reason : str
        Why the book gets no statistics (a degenerate book: :func:`reports.metrics.degenerate_reason`), or "".
    returns, benchmark : pd.Series
        The book's monthly returns and the benchmark's over the same months.
    benchmark_title : str
        What the benchmark is, as the page names it.
    """

    selection: str
    book: str
    title: str
    reason: str
    returns: pd.Series = field(repr=False)
    benchmark: pd.Series | None = field(repr=False)
    benchmark_title: str = UNIVERSE

    @property
    def file(self) -> str:
        return f"tearsheet_{self.selection}_{self.book}.html"

    @property
    def note(self) -> str:
        return f" (no statistics: {self.reason})" if self.reason else ""

    @property
    def label(self) -> str:
        """The report's link text: ``"<selection> / <book>"`` and the note of a degenerate book."""
        return f"{self.selection} / {self.book}{self.note}"

    def write(self, directory) -> Path:
        """Write the page into ``directory`` (see :func:`write_tearsheet`)."""
        return write_tearsheet(self.returns, self.benchmark, Path(directory) / self.file, self.title,
                               benchmark_title=self.benchmark_title)


def book_pages(books, run_name: str, benchmark: pd.Series | None = None,
               benchmark_title: str | None = None) -> list[BookPage]:
    """The tear sheets of every traded book of a run, in the run's order (not yet written).

    Parameters
    ----------
    books : dict
        Selection -> ``{"baskets": frame, "books": {book: monthly returns}}``.
    run_name : str
        Start of each page's title.
    benchmark : pd.Series, optional
        Monthly benchmark returns (default: each selection's equal-weight universe).
    benchmark_title : str, optional
        What ``benchmark`` is (e.g. its index code); required with ``benchmark``, so that an
        index is never shown under the universe's name.
    """
    if benchmark is not None and not benchmark_title:
        raise ValueError("book_pages: a benchmark needs its benchmark_title")
    title = benchmark_title if benchmark is not None else UNIVERSE
    pages = []
    for mode, block in books.items():
        bench = benchmark if benchmark is not None else block["baskets"]["universe"]
        for book, returns in (block.get("books") or {}).items():
            pages.append(BookPage(mode, book, f"{run_name}: {mode} selection, {book} book",
                                  degenerate_reason(returns), returns, bench.reindex(returns.index), title))
    return pages


def write_book_tearsheets(books, directory, run_name: str, benchmark: pd.Series | None = None,
                          log=None, benchmark_title: str | None = None) -> dict[str, str]:
    """Write a tear sheet for every traded book of a run (:func:`book_pages`), one after another.

    Parameters
    ----------
    books, run_name, benchmark, benchmark_title :
        As :func:`book_pages`.
    directory : path
        Where the pages go.
    log : callable, optional
        Called with one progress line per page.

    Returns
    -------
    dict of str -> str
        :attr:`BookPage.label` -> file name, for the report's links.
    """
    out = {}
    for page in book_pages(books, run_name, benchmark, benchmark_title):
        page.write(directory)
        out[page.label] = page.file
        if log is not None:
            log(f"outputs: {page.file}{page.note}")
    return out


def monthly_metrics_table(qs, book: pd.Series, bench: pd.Series | None, name: str,
                          benchmark_title: str | None) -> pd.DataFrame:
    """quantstats' key-metrics table (``qs.reports.metrics``, 12 periods) with the monthly rows only."""
    table = qs.reports.metrics(book, benchmark=bench, rf=0.0, display=False, mode="full", sep=True,
                               compounded=True, periods_per_year=PERIODS_PER_YEAR, prepare_returns=False,
                               match_dates=False, strategy_title=name, internal="True",
                               benchmark_title=benchmark_title if bench is not None else None)
    table = table.iloc[2:]  # Start/End Period: in the page header already
    keep = [not (label in DROP_ROWS or len(book) < HORIZON_ROWS.get(label, 0)) for label in table.index]
    table = table[keep].rename(index=RENAME_ROWS)
    # separator rows (blank labels) never twice in a row
    blank = pd.Series([not str(label).strip() for label in table.index])
    table = table[~(blank & blank.shift(fill_value=True)).to_numpy()]
    return table


def _metrics_table(qs, book, bench, name, benchmark_title) -> str:
    table = monthly_metrics_table(qs, book, bench, name, benchmark_title)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = []
    for label, values in table.iterrows():
        if not str(label).strip():
            rows.append(f'<tr><td colspan="{len(table.columns) + 1}"><hr></td></tr>')
            continue
        cells = "".join(f"<td>{html.escape(str(v))}</td>" for v in values)
        rows.append(f"<tr><td>{html.escape(str(label))}</td>{cells}</tr>")
    return f"<table><thead><tr><th>Metric</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


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
        '<div id="empyrical_metrics">'
        "<h3>Monthly metrics (empyrical, 12 periods a year)</h3>"
        f"<table><thead><tr><th>Metric</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        f"<p>{MONTHLY_NOTE}</p><hr></div>"
    )


def _fmt(value, fmt: str) -> str:
    return "&ndash;" if value is None or pd.isna(value) else fmt.format(value)


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
