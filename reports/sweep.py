"""The summary of a sweep (:mod:`pipeline.sweep`): ``sweep.csv``, one row per point, and
``sweep.html``, mean ± std per setting with the baselines as rows (the layout of qlib's
benchmark tables).

Columns of ``sweep.csv``: ``point`` (``key=value,...``), ``status`` (done, skipped: complete
already, failed), ``error`` (one line), ``warnings`` (those the point's run raised, joined by
`` | ``), ``model`` (e.g. ``LSTM 2x64``), ``setting`` (the
point's values of the axes that are not replicates), ``replicate`` (those of the replicate
axes), one column per axis, ``directory`` (the point's run directory), ``elapsed_s`` (wall time
of the point here, empty when skipped), ``cached`` (models loaded from the cache); then the
out-of-sample figures of the trained network: ``ic``, ``icir``, ``rank_ic``, ``rank_icir``,
``ic_efficiency``; the same with ``logistic_`` and ``composite_`` for the two baselines;
``<selection>_ls_excess`` and ``<selection>_win_rate`` (cumulative long/short excess and
monthly win rate of each traded selection); ``time_<stage>`` (the run's ``metrics.json`` timings).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import pandas as pd

from .files import atomic_path
from .summary import _CSS, _PAGE, _e

# Figures of a model: CSV column suffix -> (key in the model's block of metrics.json, table
# heading); the logistic baseline has no rank_icir (a dash in the table).
FIGURES = {"ic": ("ic_mean", "IC"), "icir": ("icir", "ICIR"), "rank_ic": ("rank_ic_mean", "Rank IC"),
           "rank_icir": ("rank_icir", "Rank ICIR"), "ic_efficiency": ("ic_efficiency", "IC efficiency")}
# Baselines: CSV column prefix -> (metrics.json key, row label).
BASELINES = {"logistic_": ("baseline", "logistic, last snapshot"), "composite_": ("composite", "linear rank composite")}
PERCENT = ("ls_excess", "win_rate")  # shown as percentages
EVERY_SETTING = "every setting"


def point_metrics(doc: Mapping) -> dict:
    """The flat figures of one run's ``metrics.json`` (the columns after ``cached``)."""
    out = {}
    blocks = {"": doc[doc["selections"][0]]} | {prefix: doc.get(key) or {} for prefix, (key, _) in BASELINES.items()}
    for prefix, block in blocks.items():
        out.update({prefix + column: block.get(key) for column, (key, _) in FIGURES.items()})
    for selection in doc["selections"]:
        long_short = doc[selection].get("long_short") or {}
        out[f"{selection}_ls_excess"] = long_short.get("cum_excess")
        out[f"{selection}_win_rate"] = long_short.get("monthly_win_rate")
    out.update({f"time_{stage}": seconds for stage, seconds in (doc.get("timings") or {}).items()})
    return out


def _cell(values: pd.Series, percent: bool) -> str:
    """``mean ± std`` of the points that have the figure; ``(n=k)`` when some lack it (e.g. a
    degenerate long/short book)."""
    present = pd.to_numeric(values, errors="coerce").dropna()
    if present.empty:
        return "–"
    fmt = ".1%" if percent else ".3f"
    mean, std = present.mean(), present.std(ddof=1)
    text = f"{mean:{fmt}}" if pd.isna(std) else f"{mean:{fmt}} ± {std:{fmt}}"
    return text if len(present) == len(values) else f"{text} (n={len(present)})"


def _row(model: str, setting: str, group: pd.DataFrame, prefix: str, selections: Sequence[str]) -> dict:
    row = {"model": model, "setting": setting or "base config", "n": str(len(group))}
    row.update({heading: _cell(group[prefix + column], False) if prefix + column in group else "–"
                for column, (_, heading) in FIGURES.items()})
    for selection in selections:  # only the network is traded; the baselines' cells are dashes
        for key, heading in zip(PERCENT, ("L/S excess", "win rate")):
            column = f"{selection}_{key}"
            row[f"{selection} {heading}"] = _cell(group[column], True) if not prefix and column in group else "–"
    return row


def summary_table(points: pd.DataFrame, selections: Sequence[str]) -> pd.DataFrame:
    """Mean ± std (sample std over the replicates) per setting, as text cells.

    One row per setting for the trained network, then the baselines: one row each when no
    setting changes their figures (e.g. a sweep of ``model.hidden``: they are trained on the
    same samples at every setting), else one per setting. Failed points are left out; ``n``
    counts the points that ran.
    """
    finished = points[points["status"] != "failed"] if "status" in points else points.iloc[:0]
    rows = []
    groups = dict(tuple(finished.groupby("setting", sort=False))) if len(finished) else {}
    for setting, group in groups.items():
        rows.append(_row(group["model"].iloc[0], setting, group, "", selections))
    for prefix, (_, label) in BASELINES.items():
        columns = [prefix + key for key in FIGURES if prefix + key in finished]
        by_replicate = [g.sort_values("replicate")[["replicate", *columns]].reset_index(drop=True)
                        for g in groups.values()]
        if len(groups) > 1 and all(frame.equals(by_replicate[0]) for frame in by_replicate):
            rows.append(_row(label, EVERY_SETTING, next(iter(groups.values())), prefix, selections))
        else:
            rows.extend(_row(label, setting, group, prefix, selections) for setting, group in groups.items())
    headings = ["model", "setting", "n", *(heading for _, heading in FIGURES.values()),
                *(f"{s} {h}" for s in selections for h in ("L/S excess", "win rate"))]
    return pd.DataFrame(rows, columns=headings)


def markdown_table(table: pd.DataFrame) -> str:
    """The summary as a Markdown table (printed at the end of a sweep; pasted into docs)."""
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    numeric = [c not in ("model", "setting") for c in table.columns]
    rule = "|" + "|".join("---:" if right else "---" for right in numeric) + "|"
    return "\n".join([line(table.columns), rule, *(line(row) for row in table.itertuples(index=False))])


def write_sweep_csv(path, points: pd.DataFrame):
    """Write ``sweep.csv`` atomically."""
    with atomic_path(path) as tmp:
        points.to_csv(tmp, index=False, float_format="%.6g")
    return path


def write_sweep_html(path, points: pd.DataFrame, table: pd.DataFrame, context: Mapping):
    """Write ``sweep.html`` atomically: the summary table, what was swept, failed points, and
    every point with a link to its run report.

    ``context`` keys: ``name``, ``config`` (the sweep file), ``axes`` (dict), ``replicates``
    (list), ``executor`` (text), ``wall_s``, ``points`` (the number of points of the grid).
    """
    counts = points["status"].value_counts() if "status" in points else pd.Series(dtype=int)
    axes = "; ".join(f"<code>{_e(k)}</code>: {_e(v)}" for k, v in dict(context.get("axes") or {}).items())
    replicates = ", ".join(f"<code>{_e(k)}</code>" for k in context.get("replicates") or []) or "none"
    done = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in ("done", "skipped", "failed"))
    intro = (f"<p>{int(context.get('points', len(points)))} points of <code>{_e(context.get('config', ''))}</code> "
             f"(axes {axes}): {done}, {_e(context.get('executor', ''))}, {float(context.get('wall_s', 0)):.0f} s "
             f"wall, {time.strftime('%Y-%m-%d %H:%M')}.</p>"
             f"<p>Each cell is the mean ± sample standard deviation over the replicate axes ({replicates}) of "
             "one out-of-sample figure per point; <em>n</em> points per row. IC: mean monthly Pearson correlation "
             "of the score p_up − p_down with the next-month return; rank IC: the Spearman one; ICIR: mean ÷ "
             "standard deviation of the monthly ICs; IC efficiency: rank IC ÷ the synthetic market's oracle "
             "rank IC over the same months; L/S excess and win rate: cumulative long/short excess return and "
             "monthly win rate of the traded selection. The baselines are trained on the very same samples of "
             f"each point; they have one row '{EVERY_SETTING}' when no setting changes their figures.</p>")
    head = "".join(f"<th{' class=num' if c not in ('model', 'setting') else ''}>{_e(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td{' class=num' if c not in ('model', 'setting') else ''}>{_e(v)}</td>"
                                    for c, v in zip(table.columns, row)) + "</tr>"
                   for row in table.itertuples(index=False))
    parts = [f"<h1>Sweep {_e(context.get('name', ''))}</h1>", intro,
             f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>']
    failed = points[points["status"] == "failed"] if "status" in points else points.iloc[:0]
    if len(failed):
        items = "".join(f"<li><code>{_e(r.point)}</code>: {_e(r.error)}</li>" for r in failed.itertuples())
        parts.append(f"<h2>Failed points</h2><ul>{items}</ul>")
    warned = points[points["warnings"].fillna("") != ""] if "warnings" in points else points.iloc[:0]
    if len(warned):
        items = "".join(f"<li><code>{_e(r.point)}</code>: {_e(r.warnings)}</li>" for r in warned.itertuples())
        parts.append(f"<h2>Warnings</h2><p>What the points' runs warned about (each in its run.log "
                     f"too).</p><ul>{items}</ul>")
    parts.append(_points_table(points))
    page = _PAGE.format(title=_e(f"Sweep {context.get('name', '')}"), css=_CSS, body="\n".join(parts))
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def _points_table(points: pd.DataFrame) -> str:
    def num(value, fmt):
        return "–" if value is None or pd.isna(value) else format(value, fmt)

    rows = "".join(
        f"<tr><td><a href='{_e(r.directory)}/report.html'><code>{_e(r.point)}</code></a></td><td>{_e(r.status)}</td>"
        f"<td class=num>{num(getattr(r, 'rank_ic', None), '.3f')}</td>"
        f"<td class=num>{num(getattr(r, 'ic_efficiency', None), '.2f')}</td>"
        f"<td class=num>{num(r.elapsed_s, '.1f')}</td></tr>"
        for r in points.itertuples())
    return ("<h2>Points</h2><p>One ordinary run each (its report linked); every figure in <a href='sweep.csv'>"
            "<code>sweep.csv</code></a>.</p><table class='grid'><thead><tr><th>point</th><th>status</th>"
            "<th class=num>rank IC</th><th class=num>IC efficiency</th><th class=num>seconds here</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")
