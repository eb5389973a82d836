"""A static report of a store: the best cells of each feature and one page per cell (its
feature scores, top contexts, histogram and a heatmap), frozen into a folder, as a
Neuronpedia page frozen to disk. Every asset is inside the folder (plotly.js included), so
it opens from ``file://`` with no server and no request leaving it.

Layout::

    index.html                 the best cells of each feature, linking to their pages
    neurons/L2.c.90.html       one page per listed cell
    assets/plotly.min.js       plotly's bundle, copied once from the installed package
    assets/report.css
"""

from __future__ import annotations

import os
import shutil
from html import escape
from pathlib import Path
from urllib.parse import quote

import plotly
import plotly.io as pio

from ..analysis.contexts import Context, contexts_at
from ..analysis.explain.explainer import explain
from ..analysis.rankings import signed_reading, store_rankings
from ..analysis.summaries import SUMMARY_WIDTH, neuron_summary
from ..core.atomic import temporary_name
from ..core.errors import LstmvizError
from ..core.options import TOP
from ..render.colours import neuron_scale
from ..store.reader import ActivationStore
from .colours import ColourScale
from .figures import coloured_html, heatmap_figure, histogram_figure

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
HEATMAP_SPAN = 60  # characters each side of the top activation in the heatmap
CSS = """body { font-family: system-ui, sans-serif; margin: 1em 1.5em; color: #222; background: #fafafa; }
table { border-collapse: collapse; font-size: 13px; margin-bottom: 1em; }
td, th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; }
.context { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; white-space: pre; margin: 2px 0; }
.context .value { display: inline-block; width: 5em; color: #555; }
.context .mark { outline: 2px solid #000; }
.figure { overflow-x: auto; }
a.neuron-link { font-family: ui-monospace, monospace; }
"""
# The contexts' groups as the dashboard's Neuron page titles them (app/neuron_page.py).
GROUP_TITLES = {"high": "Highest activations", "low": "Lowest activations"}


def write_report(store: ActivationStore, out: str | Path, features: list[str] | None = None, top: int = 3) -> Path:
    """Write the report of ``store`` into the folder ``out`` (new, or empty) and return it:
    for each of ``features`` (default: all built-in ones) its ``top`` best h and c cells."""
    out = Path(out)
    TOP.check(top)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LstmvizError(f"Cannot write the report to {out}: it exists and is not an empty folder.")
    rankings = store_rankings(store)
    features = _checked_features(rankings, features)
    best = {f: rankings[f]["rows"][:top] for f in features}
    neurons = list(dict.fromkeys(row["neuron"] for rows in best.values() for row in rows))
    # Built beside ``out`` and renamed into place: a failure leaves no half-written report
    # (which would also block the next attempt, since ``out`` must be empty).
    tmp = temporary_name(out, "report")
    try:
        (tmp / "assets").mkdir(parents=True)
        (tmp / "neurons").mkdir()
        shutil.copyfile(PLOTLY_JS, tmp / "assets" / "plotly.min.js")
        (tmp / "assets" / "report.css").write_text(CSS, encoding="utf-8")
        (tmp / "index.html").write_text(_index_page(store, best, rankings), encoding="utf-8")
        for neuron in neurons:
            (tmp / "neurons" / f"{neuron}.html").write_text(_neuron_page(store, neuron, rankings), encoding="utf-8")
        os.replace(tmp, out)  # replaces an empty folder too
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _checked_features(rankings: dict, features: list[str] | None) -> list[str]:
    if features is None:
        return list(rankings)
    if not features:
        raise LstmvizError(f"Name at least one feature for the report; this store has: {', '.join(rankings)}.")
    unknown = [f for f in features if f not in rankings]
    if unknown:
        raise LstmvizError(f"Unknown feature {', '.join(map(repr, unknown))}; this store has: {', '.join(rankings)}.")
    return list(dict.fromkeys(features))


def _page(title: str, body: str, root: str, plotly: bool) -> str:
    """A whole page; ``root`` is the relative way up to the report folder ("" or "../"),
    ``plotly`` whether it has figures (the bundle is 4.8 MB: the index does without)."""
    script = f'<script src="{root}assets/plotly.min.js"></script>' if plotly else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}assets/report.css">
{script}
</head><body>
{body}
</body></html>
"""


def _link(neuron: str) -> str:
    """A link from the index to a neuron's page."""
    return f'<a class="neuron-link" href="neurons/{escape(quote(neuron))}.html">{escape(neuron)}</a>'


def _index_page(store: ActivationStore, best: dict[str, list[dict]], rankings: dict) -> str:
    sections = []
    for feature, rows in best.items():
        metric = rankings[feature]["metric"]
        cells = "".join(
            f"<tr><td>{rank}</td><td>{_link(r['neuron'])}</td><td>{escape(metric)}</td><td>{r['score']:.3f}</td>"
            f"<td>{signed_reading(metric, r['value'])}</td></tr>"
            for rank, r in enumerate(rows, 1)
        )
        sections.append(
            f'<section class="feature" data-feature="{escape(feature)}"><h2>{escape(feature)}</h2>'
            f"<table><tr><th>rank</th><th>cell</th><th>metric</th><th>score</th><th>value</th></tr>{cells}</table></section>"
        )
    intro = (
        f"<h1>{escape(store.name)}</h1><p>{len(store):,} characters. The best cells of each feature: AUROC for binary "
        "features, Spearman's rho for numeric ones; the score is the strength either way, the value says which way "
        "(an AUROC as high or low inside the feature, a rho with its sign).</p>"
    )
    return _page(f"{store.name}: report", intro + "".join(sections), "", plotly=False)


def _scores_table(rankings: dict, neuron: str) -> str:
    """The neuron's score and rank against every feature (as the dashboard's Neuron page)."""
    rows = []
    for feature, ranking in rankings.items():
        for rank, r in enumerate(ranking["rows"], 1):
            if r["neuron"] == neuron:
                rows.append(
                    f"<tr><td>{escape(feature)}</td><td>{escape(ranking['metric'])}</td><td>{r['score']:.3f}</td>"
                    f"<td>{signed_reading(ranking['metric'], r['value'])}</td><td>{rank} of {len(ranking['rows'])}</td></tr>"
                )
                break
    head = "<tr><th>feature</th><th>metric</th><th>score</th><th>value</th><th>rank</th></tr>"
    return f'<table class="scores">{head}{"".join(rows)}</table>'


def _coloured(context: Context, scale: ColourScale) -> str:
    """One context, each character a span on the colour of its value; its own one marked."""
    first = context.position - context.offset  # the store position of the text's first character
    spans = coloured_html(context.text, context.values, scale, mark=context.offset, first=first)
    return f'<div class="context"><span class="value">{context.value:+.3f}</span>{spans}</div>'


def _contexts(store: ActivationStore, neuron: str, positions: dict[str, list[int]], scale: ColourScale) -> str:
    parts = []
    for group, items in contexts_at(store, neuron, positions, SUMMARY_WIDTH).items():
        title = GROUP_TITLES.get(group, f"Samples between the {group[1:]}th percentile and the next")
        rows = "".join(_coloured(c, scale) for c in items)
        parts.append(f'<section class="contexts" data-group="{escape(group)}"><h3>{escape(title)}</h3>{rows}</section>')
    return "".join(parts)


def _figure(fig, div_id: str) -> str:
    return f'<div class="figure">{pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id)}</div>'


def _heatmap(store: ActivationStore, neuron: str, position: int):
    """The neuron over the text around ``position``, within its document."""
    doc = store.document_at(position)
    start, stop = max(doc.start, position - HEATMAP_SPAN), min(doc.stop, position + HEATMAP_SPAN + 1)
    return heatmap_figure(store, [neuron], start, stop, [neuron_scale(store, neuron)], width=1100)


def _explanation(store: ActivationStore, neuron: str) -> str:
    """The unit's explanation in words and its held-out score (computed once, cached in the store)."""
    try:
        unit = explain(store, neuron).units[0]
    except LstmvizError as exc:
        return f'<p class="explanation">No explanation: {escape(str(exc))}</p>'
    return (
        f'<p class="explanation">Explanation: <b>{escape(unit.explanation)}</b> '
        f"(held-out score {unit.score:.2f}; on shuffled text {unit.baseline_score:+.2f})</p>"
    )


def _neuron_page(store: ActivationStore, neuron: str, rankings: dict) -> str:
    summary = neuron_summary(store, neuron)
    scale = neuron_scale(store, neuron)
    low, high = scale.ends()
    body = (
        f'<p><a href="../index.html">← all features</a></p><h1>{escape(neuron)}</h1>'
        f"<p>{escape(store.name)}; colours: {escape(scale.label)}, blue {low}, white {scale.centre:+.2f}, red {high}.</p>"
        f"{_explanation(store, neuron)}"
        f"<h2>Feature scores</h2>{_scores_table(rankings, neuron)}"
        f"<h2>Activations</h2>{_figure(histogram_figure(summary['histogram'], neuron), 'histogram')}"
        f"<h2>Around its top activation</h2>{_figure(_heatmap(store, neuron, summary['contexts']['high'][0]), 'heatmap')}"
        f"<h2>Contexts</h2>{_contexts(store, neuron, summary['contexts'], scale)}"
    )
    return _page(f"{neuron}: {store.name}", body, "../", plotly=True)
