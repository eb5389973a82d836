"""The Discover page: the find-cells tables (every h and c neuron against every feature),
and range hypotheses: the neurons that are high on a selected character range or on every
match of a regex and low just outside (LSTMVis's select view, ranked automatically).

The URL (``/discover?feature=in_string&range=120:180`` or ``&regex=...``) holds the view; a
row's neuron is a link that opens it on the Neuron page."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from dash import Input, Output, State, dcc, html

from ...analysis.hypotheses import range_hypotheses, ranges_mask
from ...core.errors import LstmvizError
from ...render.figures import parse_range
from ...store.units import saved_directions
from ...text.features import regex_feature
from ..catalog import Catalog
from ..components import message, view_notes
from ..page import Page, callback, clientside
from ..view_state import ViewState, url_for, view_of
from .neuron import neuron_link

PATH = "/discover"
TOP = 25
MAX_REGEX = 200  # characters; a pattern is compiled, never evaluated as code
HYPOTHESIS_KINDS = ("h", "c")
PROBES_HELP = (
    "A linear probe reads a feature from a whole series (trained on half the documents, scored on the other half); "
    "its direction is a unit like a neuron: open it to see the text painted by it."
)
SIGNED_HELP = (
    "score: how well a neuron tracks the feature, whichever way round (AUROC for yes/no features, |Spearman's rho| "
    "for numbers; 0.5 and 0 are chance). signed: the same with its direction: an AUROC below 0.5 or a negative rho "
    "means the neuron is low where the feature is on or high."
)


@dataclass(frozen=True)
class DiscoverView(ViewState):
    """``/discover?store=...&feature=in_string&range=120:180`` (or ``&regex=...``)"""

    store: str | None = None  # the first store when not given
    feature: str | None = None  # the ranking shown; the first feature when not given
    marks: str | None = field(default=None, metadata={"key": "range"})  # characters START:END marked
    regex: str | None = None  # or every match of a regular expression marked

    def resolve(self, catalog: Catalog) -> DiscoverView:
        """The view with the store's defaults filled in; a store or feature it does not have
        gives way to the first one, said in ``problems``."""
        view, _ = self.on_store(catalog)
        features = list(catalog.rankings(view.store))
        if view.feature and view.feature not in features:
            why = f"No feature named {view.feature!r} is ranked here ({', '.join(features)}); showing {features[0]}."
            return view.corrected("feature", features[0], why)
        return view.replace(feature=view.feature or features[0])


def _layout(catalog: Catalog) -> html.Div:
    return html.Div(
        className="page",
        children=[
            html.Div(id="discover-error"),
            html.H3("Best neuron per feature"),
            html.P(SIGNED_HELP, className="hint"),
            html.Div(id="discover-summary"),
            html.Div(
                className="controls",
                children=[
                    html.H3("Ranking for feature", style={"margin": 0}),
                    dcc.Dropdown(id="discover-feature", clearable=False, className="picker"),
                ],
            ),
            html.Div(id="discover-table"),
            html.H3("Probe directions beside the best neuron"),
            html.P(PROBES_HELP, className="hint"),
            html.Div(id="discover-probes"),
            html.H3("Neurons for a selection (range hypotheses)"),
            html.P(
                "Mark characters by a range START:END (select text on the Neuron page and press "
                "'neurons for the selection') or by a regular expression. Each neuron fires above the midpoint of "
                "its mean on the marks and its mean within 10 characters around them; the best F1 comes first. "
                "For a regex (a class) precision and recall are over the whole store, for one selection (an example) "
                "over the selection and its margin.",
                className="hint",
            ),
            html.Div(
                className="controls",
                children=[
                    html.Label(["range ", dcc.Input(id="discover-range", type="text", debounce=True, style={"width": "10em"})]),
                    html.Label(
                        ["or regex ", dcc.Input(id="discover-regex", type="text", debounce=True, style={"width": "18em"})]
                    ),
                ],
            ),
            dcc.Loading(html.Div(id="discover-hypotheses")),
            html.Div(id="discover-scrolled", style={"display": "none"}),
        ],
    )


def _table(header: list[str], rows: list[list], titles: dict[str, str] | None = None) -> html.Table:
    titles = titles or {}
    return html.Table(
        [html.Tr([html.Th(h, title=titles.get(h)) for h in header]), *[html.Tr([html.Td(c) for c in row]) for row in rows]],
        className="scores",
    )


def _summary(catalog: Catalog, name: str) -> html.Table:
    rows = []
    for feature, r in catalog.rankings(name).items():
        best = r["rows"][0]
        rows.append([feature, r["metric"], neuron_link(name, best["neuron"]), f"{best['score']:.3f}", f"{best['value']:+.3f}"])
    return _table(["feature", "metric", "best neuron", "score", "signed"], rows, {"signed": SIGNED_HELP})


def _ranking(catalog: Catalog, name: str, feature: str) -> html.Table:
    r = catalog.rankings(name)[feature]
    rows = [
        [k, neuron_link(name, row["neuron"]), f"{row['score']:.3f}", f"{row['value']:+.3f}", f"{row['pearson']:+.3f}"]
        for k, row in enumerate(r["rows"][:TOP], 1)
    ]
    return _table(["rank", "neuron", f"score ({r['metric']})", "signed", "pearson"], rows, {"signed": SIGNED_HELP})


def marked_characters(store, char_range: str | None, regex: str | None) -> tuple[np.ndarray, str]:
    """The characters a range or regex marks, and a description; a bad one is an error."""
    if char_range:
        start, stop = parse_range(char_range, len(store))
        return ranges_mask(len(store), [(start, stop)]), f"characters {start}:{stop} ({stop - start})"
    if len(regex) > MAX_REGEX:
        raise LstmvizError(f"The regular expression is longer than {MAX_REGEX} characters.")
    marked = regex_feature(regex)(store.text()).astype(bool)
    if not marked.any():
        raise LstmvizError(f"The regular expression {regex!r} matches nothing in this store.")
    return marked, f"{int(marked.sum()):,} characters matching {regex!r}"


def _probes(catalog: Catalog, name: str) -> html.Div:
    """The probe directions kept in the store, per feature, beside its best neuron."""
    saved = saved_directions(catalog.store(name))
    if not saved:
        return message(
            f"No probe directions yet: lstmviz probe {catalog.store(name).path} finds one per feature and series.", hint=True
        )
    rankings = catalog.rankings(name)
    rows = []
    for direction, score in saved:
        best = rankings.get(direction.name, {}).get("rows", [])
        best_cell = [neuron_link(name, best[0]["neuron"]), f"{best[0]['score']:.3f}"] if best else ["", ""]
        rows.append([direction.name, neuron_link(name, str(direction)), "" if score is None else f"{score:.3f}", *best_cell])
    return _table(["feature", "direction", "held-out score", "best neuron", "its score"], rows)


def _hypotheses(catalog: Catalog, name: str, char_range: str | None, regex: str | None) -> html.Div:
    store = catalog.store(name)
    marked, described = marked_characters(store, char_range, regex)
    table = range_hypotheses(store, marked, kinds=HYPOTHESIS_KINDS, top=TOP)
    rows = [
        [
            neuron_link(name, r.neuron),
            r.direction,
            f"{r.contrast:.2f}",
            f"{r.threshold:+.3f}",
            f"{r.precision:.3f}",
            f"{r.recall:.3f}",
            f"{r.f1:.3f}",
            f"{100 * r.elsewhere:.1f}%",
        ]
        for r in table.itertuples()
    ]
    scope = table.scope[0] if len(table) else ""
    where = (
        "over the whole store (the marks are a class: every match)"
        if scope == "whole store"
        else "within the selection and 10 characters around it (one selection is an example, not every instance)"
    )
    header = ["neuron", "fires", "contrast (sd)", "threshold", "precision", "recall", "F1", "fires elsewhere"]
    return html.Div(
        [
            html.P(f"Marked {described}. Ranked by F1; precision and recall {where}.", id="discover-hypotheses-note"),
            _table(header, rows, {"fires elsewhere": "How often the neuron fires beyond the marks and their margin."}),
        ]
    )


class DiscoverPage(Page):
    path = PATH
    title = "Discover"

    clientside = (
        clientside(
            "lstmvizDetails",
            "scrollToHypotheses",
            Output("discover-scrolled", "children"),
            Input("discover-hypotheses", "children"),
            State("url", "search"),
        ),
    )

    def layout(self) -> html.Div:
        return _layout(self.catalog)

    @callback(
        Output("url", "search", allow_duplicate=True),
        Input("discover-feature", "value"),
        Input("discover-range", "value"),
        Input("discover-regex", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def controls_to_url(self, feature, marks, regex, search):
        view = view_of(DiscoverView, search)
        if feature:
            view = view.replace(feature=feature)
        if marks and marks != view.marks:  # a range and a regex mark in turn: the latest one counts
            view = view.replace(marks=marks, regex=None)
        if regex and regex != view.regex:
            view = view.replace(regex=regex, marks=None)
        return url_for(view, search)

    @callback(
        {
            "message": Output("discover-error", "children"),
            "summary": Output("discover-summary", "children"),
            "features": Output("discover-feature", "options"),
            "feature": Output("discover-feature", "value"),
            "ranking": Output("discover-table", "children"),
            "probes": Output("discover-probes", "children"),
            "marks": Output("discover-range", "value"),
            "regex": Output("discover-regex", "value"),
            "hypotheses": Output("discover-hypotheses", "children"),
        },
        Input("url", "search"),
    )
    def url_to_view(self, search) -> dict:
        try:
            view = view_of(DiscoverView, search).resolve(self.catalog)
            summary, ranking = _summary(self.catalog, view.store), _ranking(self.catalog, view.store, view.feature)
        except LstmvizError as exc:
            return {"message": message(exc)}
        hypotheses = message("Give a range or a regex to rank neurons for it.", hint=True)
        if view.marks or view.regex:
            try:
                hypotheses = _hypotheses(self.catalog, view.store, view.marks, view.regex)
            except LstmvizError as exc:
                hypotheses = message(exc)
        return {
            "message": view_notes(view),
            "summary": summary,
            "features": list(self.catalog.rankings(view.store)),
            "feature": view.feature,
            "ranking": ranking,
            "probes": _probes(self.catalog, view.store),
            "marks": view.marks or "",
            "regex": view.regex or "",
            "hypotheses": hypotheses,
        }
