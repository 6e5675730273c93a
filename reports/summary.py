"""The self-contained summary page of a run: ``report.html``.

:func:`build_figures` makes every figure of the study from the run's results;
:func:`write_report` lays out a page from three data-only inputs: the
``metrics.json`` document (:func:`reports.metrics.metrics_document`), the figures, and
a ``context`` describing the run. The page embeds its figures as base64 PNG data URIs
and its CSS inline: it loads nothing from anywhere.
"""
from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import yaml
from matplotlib.figure import Figure

from . import figures as F
from .files import atomic_path
from .inputs import ReportError

WIDE_INCHES = F.WIDE[0]  # a figure this wide (or wider) spans a whole row of the page
SELECTION_LABELS = {"class": "Class selection", "top_pct": "Top-{pct} selection"}
SELECTION_BLURBS = {
    "class": "Each month-end every stock goes to the basket of its predicted class: high (up), "
             "neutral, low (down).",
    "top_pct": "Each month-end, for each class, the {pct} of stocks with the largest predicted "
               "probability of that class form its basket.",
}
EXECUTION = {
    "close": "Orders fill at the close of the signal month-end (the factor-research convention). "
             "Labels, IC and basket returns all measure the same return: month-end t close to "
             "month-end t+1 close.",
    "next_open": "Orders fill at the next open after the signal month-end. Labels and IC measure the "
                 "month-end t close to t+1 close return (the model's target); the traded books earn "
                 "the return from that next open to the t+1 close.",
}
# (figure name or prefix, section, caption)
SECTIONS = (
    ("training", "Training", (
        ("training_loss", "Training and validation loss per evaluation step."),
        ("training_accuracy", "Training and validation accuracy. The study reports 85-90% validation accuracy on "
                              "a random split of overlapping windows, which leaks neighbouring months into "
                              "validation; read it as an upper bound."),
        ("input_weights", "Distribution of the input-layer weights (factors -> first LSTM layer) during training."),
        ("input_biases", "Distribution of the input-layer biases during training."),
    )),
    ("predictions", "Out-of-sample predictions", (
        ("oos_accuracy", "Monthly accuracy of the predicted class against the realised class of the next month; "
                         "the dashed line is the accuracy of always predicting that month's most frequent class."),
        ("rank_ic", "Monthly Spearman correlation of p(up) - p(down) with the next month's return."),
    )),
    ("factor", "The score as a factor (alphalens style)", (
        ("factor_quantile_returns", "Mean forward return of each score quantile (Q1 = lowest p_up - p_down), minus "
                                    "the month's mean, over 1, 3 and 6 months."),
        ("factor_ic_histogram", "Distribution of the monthly rank IC (1 month) with its t statistic and p-value "
                                "(one-sample t test of the mean against 0)."),
        ("factor_ic_decay", "IC decay: mean rank IC against the 1, 3 and 6-month forward return; later decisions "
                            "have no 3 or 6-month outcome yet, so the horizons use fewer months. The 95% interval "
                            "uses Newey-West standard errors: neighbouring months' 3 and 6-month returns overlap."),
        ("factor_rank_autocorrelation", "Correlation of the score ranks from one month to the next: high values "
                                        "mean the ranking, and so the baskets, turn over slowly."),
        ("factor_ic_by_industry", "Mean rank IC within each industry (1 month): where the ranking works."),
    )),
    ("factors", "Factor contribution", (
        ("factor_contribution", "The study's measure: sum of |input-layer weights| per factor at the end of "
                                "training."),
        ("style_contribution", "The same, summed over the factors of each style."),
    )),
)
SELECTION_FIGURES = (
    ("nav_{mode}", "NAV of the baskets (paper returns, equal weight, no costs) and of the equal-weight universe."),
    ("long_short_nav_{mode}", "Cumulative long/short excess: long the high basket, short the low one, "
                              "rebalanced monthly: prod(1 + (high - low)) - 1."),
    ("long_short_excess_{mode}", "Monthly long/short excess (high - low)."),
)


# ============================================================================ figures
def build_figures(*, baskets: Mapping[str, pd.DataFrame] | None = None, prediction: pd.DataFrame | None = None,
                  baseline: pd.DataFrame | None = None, history: pd.DataFrame | None = None,
                  snapshots: list | None = None, contribution: pd.Series | None = None,
                  styles: Mapping[str, list[str]] | None = None, top_pct: float = 0.30,
                  factor: pd.DataFrame | None = None) -> dict[str, Figure]:
    """Make every figure of the report from what the run produced; absent inputs are skipped.

    Parameters
    ----------
    baskets : dict of str -> pd.DataFrame, optional
        Selection mode -> basket returns (``high, neutral, low, universe``).
    prediction, baseline : pd.DataFrame, optional
        :func:`reports.metrics.monthly_prediction_stats` of the model and of the baseline.
    history : pd.DataFrame, optional
        Training history (``TrainResult.history``, see :mod:`reports.figures`). The
        input-layer figures are made from its ``w_in_*`` / ``b_in_*`` statistics...
    snapshots : list of dict, optional
        ... or, better, from the input-layer arrays at each evaluation
        (``TrainResult.snapshots``), drawn as histograms over training.
    contribution : pd.Series, optional
        Factor -> sum of |input-layer weights|.
    styles : dict of str -> list of str, optional
        Style -> factors (colours and per-style totals).
    top_pct : float
        The top-pct selection's share, for titles.
    factor : pd.DataFrame, optional
        The factor table (:func:`reports.series.factor_frame`): adds the ``factor_*``
        figures of :func:`reports.factor.factor_figures`.

    Returns
    -------
    dict of str -> Figure
        Named ``training_loss, training_accuracy, input_weights, input_biases,
        oos_accuracy, rank_ic, nav_<mode>, long_short_nav_<mode>,
        long_short_excess_<mode>, factor_contribution, style_contribution``.
    """
    out: dict[str, Figure] = {}
    if history is not None:
        out["training_loss"] = F.training_loss_figure(history)
        if "train_acc" in history:
            out["training_accuracy"] = F.training_accuracy_figure(history)
    for prefix, name in (("w_in", "input_weights"), ("b_in", "input_biases")):
        if snapshots:
            out[name] = F.input_distribution_figure(None, prefix, snapshots=snapshots)
        elif history is not None and any(str(c).startswith(prefix + "_") for c in history.columns):
            out[name] = F.input_distribution_figure(history, prefix)
    if prediction is not None:
        out["oos_accuracy"] = F.oos_accuracy_figure(prediction, baseline)
        out["rank_ic"] = F.rank_ic_figure(prediction, baseline)
    for mode, frame in (baskets or {}).items():
        label = selection_label(mode, top_pct)
        out[f"nav_{mode}"] = F.basket_nav_figure(frame, f"{label}: basket NAV")
        out[f"long_short_nav_{mode}"] = F.long_short_nav_figure(frame["high"], frame["low"], f"{label}: long/short")
        out[f"long_short_excess_{mode}"] = F.long_short_excess_figure(frame["high"], frame["low"], label)
    if factor is not None:
        from .factor import factor_figures

        out.update(factor_figures(factor))
    if contribution is not None:
        out["factor_contribution"] = F.factor_contribution_figure(contribution, styles)
        out["style_contribution"] = F.style_contribution_figure(contribution, styles)
    return out


def selection_label(mode: str, top_pct: float = 0.30) -> str:
    """Human name of a selection mode (``"class"`` -> "Class selection")."""
    return SELECTION_LABELS.get(mode, str(mode)).format(pct=f"{top_pct:.0%}")


# ============================================================================ page
def write_report(path, metrics: Mapping, figures: Mapping[str, Figure], context: Mapping | None = None) -> Path:
    """Write the self-contained summary page ``report.html``.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; written atomically (a temporary file renamed into place).
    metrics : dict
        The ``metrics.json`` document (:func:`reports.metrics.metrics_document`).
    figures : dict of str -> Figure or PNG bytes
        Usually :func:`build_figures` (rendered once by :func:`reports.figures.figure_png`
        when figures/ gets the same images); placed in sections by name, unknown names under
        "Other figures".
    context : dict, optional
        What the run was. Keys (all optional):
        ``title`` (str); ``description`` (str, a paragraph);
        ``run`` (dict label -> value: config summary, data source, dates, protocol...);
        ``execution`` (``"close"`` or ``"next_open"``: states which return the labels
        measure) or ``label_return`` (str, your own statement);
        ``top_pct`` (float, default 0.30); ``config`` (dict, shown as YAML);
        ``tearsheets`` (dict label -> relative file name, linked); ``series`` (file names
        under ``series/``, linked).

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(metrics, Mapping):
        raise ReportError(f"metrics: expected the metrics.json dict, got {type(metrics).__name__}")
    context = dict(context or {})
    top_pct = float(context.get("top_pct", 0.30))
    title = str(context.get("title", "LSTM multi-factor stock selection: run report"))
    body = [f"<h1>{_e(title)}</h1>", _description(context), _headline(metrics, top_pct), _figure_sections(
        figures, metrics, top_pct), _book_tables(metrics, top_pct), _appendix(metrics, context)]
    page = _PAGE.format(title=_e(title), css=_CSS, body="\n".join(b for b in body if b))

    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return Path(path)


def _e(value) -> str:
    return html.escape(str(value))


def _pct(value, digits: int = 1) -> str:
    return "&ndash;" if value is None or pd.isna(value) else f"{value:.{digits}%}"


def _num(value, digits: int = 2) -> str:
    return "&ndash;" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def _p(value) -> str:
    """A p-value: three decimals, or '&lt; 0.001'."""
    if value is None or pd.isna(value):
        return "&ndash;"
    return "&lt; 0.001" if value < 0.001 else f"{value:.3f}"


def _get(doc: Mapping, *keys):
    for key in keys:
        if not isinstance(doc, Mapping) or key not in doc:
            return None
        doc = doc[key]
    return doc


def _description(context: Mapping) -> str:
    parts = []
    if context.get("description"):
        parts.append(f"<p>{_e(context['description'])}</p>")
    run = dict(context.get("run") or {})
    statement = context.get("label_return") or EXECUTION.get(str(context.get("execution", "")))
    if context.get("execution") and not statement:
        raise ReportError(f"context: unknown execution '{context['execution']}' (known: close, next_open)")
    if statement:
        run["Execution and label return"] = statement
    if run:
        rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in run.items())
        parts.append(f'<table class="kv">{rows}</table>')
    if not parts:
        return ""
    return '<section id="run"><h2>The run</h2>' + "".join(parts) + "</section>"


def _headline(doc: Mapping, top_pct: float) -> str:
    first = next(iter(doc.get("selections") or []), None)
    model = doc.get(first, {}) if first else {}
    folds = len(_get(doc, "walk_forward", "folds") or ())
    rows = [
        ("Validation accuracy" + (f" (mean of the {folds} walk-forward folds)" if folds else ""),
         "85&ndash;90% (random split of overlapping windows)", _pct(doc.get("validation_accuracy"))),
        ("Out-of-sample accuracy (pooled over stock-months)", "just above 50%",
         f"{_pct(model.get('oos_accuracy'))} (no skill: {_pct(model.get('no_skill_accuracy'))})"),
        ("Rank IC, mean monthly (ICIR, not annualised)", "not reported",
         f"{_num(model.get('rank_ic_mean'), 3)} ({_num(model.get('rank_icir'))})"),
    ]
    study = {"class": (("long/short monthly win rate", "75% over 12 months", "monthly_win_rate", _pct),
                       ("cumulative long/short excess", "4.5%", "cum_excess", _pct)),
             "top_pct": (("cumulative long/short excess", "above 9%", "cum_excess", _pct),
                         ("long/short monthly win rate", "above 90%", "monthly_win_rate", _pct))}
    for mode in doc.get("selections") or []:
        label = selection_label(mode, top_pct)
        ls = _get(doc, mode, "long_short") or {}
        for measure, reported, key, fmt in study.get(mode, ()):
            value = fmt(ls.get(key))
            if ls.get(key) is None and ls.get("degenerate"):
                value = f"&ndash; ({_e(ls['degenerate'])})"
            rows.append((f"{label}: {measure}", reported, value))
        n = ls.get("n_months") or 0
        rows.append((f"{label}: long/short t statistic ({n} month{'' if n == 1 else 's'})", "not reported",
                     _num(ls.get("t_stat"))))
    base, oracle = doc.get("baseline") or {}, doc.get("oracle") or {}
    rows += [
        ("Baseline (last snapshot only): out-of-sample accuracy", "&ndash;", _pct(base.get("oos_accuracy"))),
        ("Baseline: rank IC mean / IC efficiency", "&ndash;",
         f"{_num(base.get('rank_ic_mean'), 3)} / {_pct(base.get('ic_efficiency'), 0)}"),
    ]
    composite, margin = doc.get("composite") or {}, doc.get("lstm_margin") or {}
    if composite:
        rows.append(("Rank composite (factor ranks weighted by training IC): rank IC mean / IC efficiency", "&ndash;",
                     f"{_num(composite.get('rank_ic_mean'), 3)} / {_pct(composite.get('ic_efficiency'), 0)}"))
    if margin.get("months"):
        rows.append((f"Model minus the better baseline ({_e(margin['better_baseline'])}): rank IC, t statistic, "
                     "months ahead", "&ndash;",
                     f"{_num(margin.get('rank_ic_mean'), 3)}, t {_num(margin.get('t_stat'))}, "
                     f"{margin['months_ahead']} of {margin['months']}"))
    rows += [
        ("Oracle (true expected return, synthetic market): rank IC mean", "&ndash;",
         _num(oracle.get("rank_ic_mean"), 3)),
        ("Model IC efficiency (model rank IC / oracle rank IC)", "&ndash;", _pct(oracle.get("ic_efficiency"), 0)),
    ]
    body = "".join(f"<tr><td>{m}</td><td>{s}</td><td class='num'>{r}</td></tr>" for m, s, r in rows)
    return ('<section id="headline"><h2>This run vs the study</h2>'
            '<table class="grid"><thead><tr><th>Measure</th><th>Study (Guosen report)</th>'
            f'<th class="num">This run</th></tr></thead><tbody>{body}</tbody></table>'
            '<p class="note">Accuracy is the share of stock-months whose next-month class was predicted right; '
            "the no-skill reference always predicts each month's most frequent realised class. "
            "Long/short figures use the paper returns of the high and low baskets. A dash: not available "
            "in this run (no baseline, or not on the synthetic market).</p></section>")


def _img(fig: Figure | bytes, name: str) -> str:
    data = base64.b64encode(F.figure_png(fig)).decode("ascii")
    return f'<img alt="{_e(name)}" src="data:image/png;base64,{data}">'


def _figure_block(name: str, fig: Figure | bytes, caption: str) -> str:
    wide = ' class="wide"' if F.figure_width(fig) >= WIDE_INCHES else ""
    return (f'<figure id="fig-{_e(name)}"{wide}>{_img(fig, name)}'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _figure_sections(figures: Mapping[str, Figure], doc: Mapping, top_pct: float) -> str:
    placed: set[str] = set()
    sections = []

    def section(anchor, heading, entries, intro=""):
        blocks = [_figure_block(n, figures[n], c) for n, c in entries if n in figures]
        placed.update(n for n, _ in entries if n in figures)
        if blocks:
            sections.append(f'<section id="{anchor}"><h2>{_e(heading)}</h2>{intro}'
                            f'<div class="figs">{"".join(blocks)}</div></section>')

    for anchor, heading, entries in SECTIONS[:2]:
        section(anchor, heading, entries)
    section(*SECTIONS[2][:2], SECTIONS[2][2], _factor_table(doc.get("factor")))
    modes = list(doc.get("selections") or []) + sorted(
        {n.removeprefix("nav_") for n in figures if n.startswith("nav_")} - set(doc.get("selections") or []))
    for mode in modes:
        entries = [(pattern.format(mode=mode), caption) for pattern, caption in SELECTION_FIGURES]
        blurb = SELECTION_BLURBS.get(mode, "").format(pct=f"{top_pct:.0%}")
        section(f"selection-{mode}", selection_label(mode, top_pct), entries, f"<p>{_e(blurb)}</p>" if blurb else "")
    section(*SECTIONS[3])
    section("other", "Other figures", [(n, "") for n in figures if n not in placed])
    return "\n".join(sections)


def _factor_table(summary) -> str:
    """IC statistics per horizon (``metrics.json`` -> ``factor``) as a table."""
    if not isinstance(summary, Mapping) or not summary.get("rank_ic"):
        return ""
    rows = []
    for col, r in summary["rank_ic"].items():
        ic = _get(summary, "ic", col) or {}
        spread = _get(summary, "quantile_returns", col, "top_minus_bottom")
        months = col.removeprefix("fwd_").removesuffix("m")
        rows.append(f"<tr><td>{_e(months)} month{'' if months == '1' else 's'}</td>"
                    f"<td class='num'>{_num(r.get('n'), 0)}</td><td class='num'>{_num(r.get('mean'), 3)}</td>"
                    f"<td class='num'>{_num(r.get('std'), 3)}</td><td class='num'>{_num(r.get('ir'))}</td>"
                    f"<td class='num'>{_num(r.get('t_stat'))}</td><td class='num'>{_p(r.get('p_value'))}</td>"
                    f"<td class='num'>{_num(ic.get('mean'), 3)}</td><td class='num'>{_pct(spread, 2)}</td></tr>")
    auto = summary.get("rank_autocorrelation_mean")
    return ('<p>The ranking score p_up &minus; p_down of every stock-month, with its forward returns and '
            "industry, is <code>series/factor.parquet</code>; <code>reports.factor</code> computes these "
            "figures from that file alone.</p>"
            '<table class="grid"><thead><tr><th>Horizon</th><th class="num">Months</th>'
            '<th class="num">Mean rank IC</th><th class="num">Std</th><th class="num">IR</th>'
            '<th class="num">t statistic</th><th class="num">p-value</th><th class="num">Mean IC</th>'
            f'<th class="num">Top &minus; bottom quintile</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'<p class="note">Mean month-to-month rank autocorrelation of the score: {_num(auto)}. IR = mean / '
            "std of the monthly IC (not annualised); the t test is against a mean of 0.</p>")


_BOOK_COLUMNS = (("n_months", "Months", lambda v: _num(v, 0)), ("n_empty_months", "Empty", lambda v: _num(v, 0)),
                 ("cum_return", "Cumulative", _pct),
                 ("annual_return", "Annual", _pct), ("annual_volatility", "Volatility", _pct),
                 ("sharpe", "Sharpe", _num), ("max_drawdown", "Max DD", _pct), ("calmar", "Calmar", _num),
                 ("alpha", "Alpha", _pct), ("beta", "Beta", _num))


def _book_tables(doc: Mapping, top_pct: float) -> str:
    head = "".join(f'<th class="num">{label}</th>' for _, label, _ in _BOOK_COLUMNS)
    rows, ls_rows = [], []
    for mode in doc.get("selections") or []:
        label = selection_label(mode, top_pct)
        for kind, group in (("basket (paper)", "baskets"), ("traded book", "books")):
            for name, m in (_get(doc, mode, group) or {}).items():
                cells = "".join(f"<td class='num'>{fmt(m.get(key))}</td>" for key, _, fmt in _BOOK_COLUMNS)
                if m.get("degenerate"):  # counts and cumulative return only: the rest would be noise
                    cells = "".join(f"<td class='num'>{fmt(m.get(key))}</td>" for key, _, fmt in _BOOK_COLUMNS[:3])
                    cells += (f"<td class='note' colspan='{len(_BOOK_COLUMNS) - 3}'>no statistics: "
                              f"{_e(m['degenerate'])}</td>")
                rows.append(f"<tr><td>{_e(label)}</td><td>{_e(name)}</td><td>{kind}</td>{cells}</tr>")
        ls = _get(doc, mode, "long_short") or {}
        if ls.get("degenerate"):
            ls_rows.append(f"<tr><td>{_e(label)}</td><td class='num'>{_num(ls.get('n_months'), 0)}</td>"
                           f"<td class='num'>{_pct(ls.get('cum_excess'), 2)}</td>"
                           f"<td class='note' colspan='3'>{_e(ls['degenerate'])}</td></tr>")
            continue
        ls_rows.append(f"<tr><td>{_e(label)}</td><td class='num'>{_num(ls.get('n_months'), 0)}</td>"
                       f"<td class='num'>{_pct(ls.get('cum_excess'), 2)}</td>"
                       f"<td class='num'>{_pct(ls.get('mean_excess'), 2)}</td>"
                       f"<td class='num'>{_pct(ls.get('monthly_win_rate'), 0)}</td>"
                       f"<td class='num'>{_num(ls.get('t_stat'))}</td></tr>")
    if not rows:
        return ""
    return ('<section id="books"><h2>Books</h2>'
            '<p class="note">empyrical, 12 periods a year, risk-free rate 0; alpha (annualised, compounded) and '
            "beta against the equal-weight universe; a month with an empty basket (column Empty) counts as a "
            "month in cash.</p>"
            f'<table class="grid"><thead><tr><th>Selection</th><th>Book</th><th>Kind</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>'
            '<h3>Long/short (high &minus; low)</h3><table class="grid"><thead><tr><th>Selection</th><th class="num">Months</th>'
            '<th class="num">Cumulative excess</th><th class="num">Mean monthly excess</th>'
            '<th class="num">Monthly win rate</th><th class="num">t statistic</th>'
            f'</tr></thead><tbody>{"".join(ls_rows)}</tbody></table></section>')


def _appendix(doc: Mapping, context: Mapping) -> str:
    parts = []
    sheets = context.get("tearsheets") or {}
    if sheets:
        links = "".join(f'<li><a href="{_e(href)}">{_e(label)}</a></li>' for label, href in sheets.items())
        parts.append(f"<h3>Tear sheets (quantstats)</h3><ul>{links}</ul>")
    series = context.get("series") or []
    if series:
        links = ", ".join(f'<a href="series/{_e(name)}"><code>{_e(name)}</code></a>' for name in series)
        parts.append("<h3>Series files</h3><p>The series behind every figure, in <code>series/</code> "
                     f"(one <code>pandas.read_parquet</code> each; docs/reports.md says what each holds): {links}.</p>")
    timings = doc.get("timings") or {}
    if timings:
        rows = "".join(f"<tr><th>{_e(k)}</th><td class='num'>{_num(v, 1)} s</td></tr>" for k, v in timings.items())
        parts.append(f'<h3>Timings</h3><table class="kv">{rows}</table>')
    if context.get("config"):
        text = yaml.safe_dump(dict(context["config"]), sort_keys=False, allow_unicode=True)
        parts.append(f"<details><summary>Resolved configuration</summary><pre>{_e(text)}</pre></details>")
    return '<section id="appendix"><h2>Appendix</h2>' + "".join(parts) + "</section>" if parts else ""


_CSS = """
body{font:14px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;margin:0;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:24px;margin:8px 0 16px}
h2{font-size:19px;margin:36px 0 12px;padding-bottom:4px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:20px 0 8px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
table.grid{width:100%}table.grid th,table.grid td{border-bottom:1px solid #e5e5e5;padding:5px 8px;text-align:left}
table.grid td.num,table.grid th.num,table.kv td.num{text-align:right}
td.note{color:#8a5a00;font-style:italic}
table.grid thead th{background:#f0f0f0;border-bottom:2px solid #ccc}
table.kv th{text-align:left;padding:3px 16px 3px 0;vertical-align:top;white-space:nowrap;color:#555;font-weight:600}
table.kv td{padding:3px 0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px 20px}
figure{margin:0}.figs figure.wide{grid-column:1/-1}figure img{width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:12.5px;color:#555;margin-top:4px}
.note{font-size:12.5px;color:#555}
pre{background:#f5f5f5;padding:12px;overflow:auto;font-size:12px}
details{margin:12px 0}
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{css}</style></head>
<body><main>
{body}
</main></body></html>
"""
