"""The Compare page: model A against model B on the same text (by default the shipped
model's earliest snapshot against the final model): a neuron of A beside its best match in
B, both coloured; the CKA between their layers; the cells side by side; the text coloured by
the bits B saves over A; and, across the snapshots, when the cells appear.

Recording a checkpoint and correlating every neuron pair take a while, so they run as
background jobs with a progress bar here; results stay in memory (recordings in the cache).
The URL (``/compare?a=...&b=...&neuron=L2.c.90&pos=0``) holds the view."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np
from dash import Input, Output, State, ctx, dcc, html

from ...core.errors import LstmvizError
from ...core.neurons import NeuronId, parse_unit
from ...render.colours import neuron_scale, symmetric_of
from ...render.export import figure_bytes
from ...render.figures import EMPTY_FIGURE, cka_figure, emergence_figure, values_payload
from ..catalog import Catalog, NoModel
from ..components import HIDDEN, ask_to_record, message, text_panel
from ..jobs import progress_bar
from ..page import Page, callback, clientside
from ..view_state import ViewState, url_for, view_of

PATH = "/compare"
WINDOW = 2000
FORMATS = ("png", "svg", "pdf", "html")


@dataclass(frozen=True)
class CompareView(ViewState):
    """``/compare?a=...&b=...&neuron=L2.c.90&pos=0``, and ``record=yes`` / ``emergence=yes``
    once the user has agreed to what recording them costs."""

    a: str | None = None  # model A; the first store's earliest snapshot when not given
    b: str | None = None  # model B; the first store when not given
    neuron: str | None = None  # a unit of A (a neuron, a direction, a dictionary feature); its best in_string cell when not given
    pos: int = field(default=0, metadata={"label": "position"})  # the first character shown
    record: bool = False  # record A and B (into the cache) when they are not yet
    emergence: bool = False  # record the snapshots for the emergence plot

    def pair(self, catalog: Catalog) -> tuple[str, str]:
        """A and B, the defaults filled in."""
        default_a, default_b = catalog.comparisons.default_pair()
        return self.a or default_a, self.b or default_b

    def resolve(self, catalog: Catalog) -> CompareView:
        """The view with A and B filled in (whether they exist is the comparison's to say)."""
        a, b = self.check().pair(catalog)
        return self.replace(a=a, b=b)


def _panel(key: str, title: str | None = None) -> list:
    return [
        html.H4(title, id=f"cmp-title-{key}", className="panel-title"),  # one line, so A and B align
        *text_panel(f"cmp-text-{key}", f"cmp-hover-{key}", className="text-panel compare-panel"),
        html.Div(id=f"cmp-painted-{key}", style={"display": "none"}),
        dcc.Store(id=f"cmp-data-{key}"),
    ]


def _layout(catalog: Catalog) -> html.Div:
    return html.Div(
        className="page",
        children=[
            html.Div(
                className="controls",
                children=[
                    html.Label(["A ", dcc.Dropdown(id="cmp-a", clearable=False, className="picker")]),
                    html.Label(["B ", dcc.Dropdown(id="cmp-b", clearable=False, className="picker")]),
                    html.Label(["neuron of A ", dcc.Dropdown(id="cmp-neuron", clearable=False, className="picker")]),
                    html.Label(
                        ["position ", dcc.Input(id="cmp-pos", type="number", min=0, debounce=True, style={"width": "9em"})]
                    ),
                    dcc.Dropdown(id="cmp-format", options=list(FORMATS), value="png", clearable=False, style={"width": "6em"}),
                    html.Button("export CKA", id="cmp-export-cka"),
                    html.Button("export emergence", id="cmp-export-emergence"),
                    dcc.Download(id="cmp-download"),
                ],
            ),
            html.Div(id="cmp-error"),
            html.Div(id="cmp-progress"),
            dcc.Interval(id="cmp-poll", interval=1000, disabled=True),
            html.Div(id="cmp-summary"),
            html.Div(id="cmp-drawn", style=HIDDEN, children=_comparison_parts()),  # shown once the comparison is drawn
            html.H3("When the cells appear (snapshots of the first store's model, first 100,000 characters)"),
            html.Div(id="cmp-emergence-progress"),
            dcc.Interval(id="cmp-emergence-poll", interval=1500, disabled=True),
            dcc.Graph(id="cmp-emergence", config={"displaylogo": False}, figure=EMPTY_FIGURE, style=HIDDEN),
        ],
    )


def _comparison_parts() -> list:
    """The finished comparison's parts: the two panels, the CKA, the features, the loss."""
    return [
        html.Div(className="columns", children=[html.Div(_panel("a")), html.Div(_panel("b"))]),
        html.Div(
            className="columns",
            children=[
                dcc.Graph(id="cmp-cka", config={"displaylogo": False}, figure=EMPTY_FIGURE),
                html.Div([html.H4("Best cell per feature"), html.Div(id="cmp-features")]),
            ],
        ),
        *_panel("loss", "Bits B saves over A on each character (red: B predicts it better)"),
    ]


def _features_table(features: dict) -> html.Table:
    head = html.Tr([html.Th(h) for h in ("feature", "metric", "A neuron", "A score", "B neuron", "B score")])
    rows = [
        html.Tr(
            [
                html.Td(name),
                html.Td(f["metric"]),
                html.Td(f["a"]["neuron"]),
                html.Td(f"{f['a']['score']:.3f}"),
                html.Td(f["b"]["neuron"]),
                html.Td(f"{f['b']['score']:.3f}"),
            ]
        )
        for name, f in features.items()
    ]
    return html.Table([head, *rows], className="scores")


def _summary(c) -> html.P:
    loss = c.loss_summary
    parts = [f"On {len(c.a):,} characters."]
    if loss["chars"]:
        parts.append(
            f"Bits per character: A {loss['bpc_a']:.4f}, B {loss['bpc_b']:.4f}; "
            f"B predicts {100 * loss['b_better_fraction']:.1f}% of characters better."
        )
    parts.append(f"One-to-one assignment of neurons (Hungarian): mean |r| = {c.assignment_mean_r:.3f}.")
    left_out = len(c.a) - c.dropped["compared_chars"]
    if left_out:
        parts.append(f"Left out {left_out:,} characters a model cannot read.")
    return html.P(" ".join(parts))


def _neuron_payload(store, neuron: str, start: int) -> dict:
    values = store.neuron(neuron, start, min(len(store), start + WINDOW))
    return values_payload(store, values, neuron, start, neuron_scale(store, neuron))


def _figure(catalog: Catalog, search: str | None, which: str):
    a, b = view_of(CompareView, search).pair(catalog)
    if which == "cka":
        job = catalog.comparisons.comparison(a, b)  # read only: an export never records
        if job is None or job.state != "done":
            raise LstmvizError("The comparison is not ready yet.")
        c = job.result
        return cka_figure(c.cka, c.layers_a, c.layers_b, a, b), f"cka-{a}-vs-{b}"
    job = catalog.comparisons.emergence()
    if job is None or job.state != "done":
        raise LstmvizError("The emergence plot is not ready yet.")
    return emergence_figure(job.result), "emergence"


def _ask_to_record(what: str, cost: int, view: CompareView, agreed: str) -> html.Div:
    """:func:`ask_to_record`, its link the view with the flag ``agreed`` set."""
    return ask_to_record(what, cost, PATH + view.replace(**{agreed: True}).search(), f"cmp-go-{agreed}")


def _drawn(c, view: CompareView) -> dict:
    """A finished comparison ``c`` as the page draws it: the neuron of A the view names beside
    its best match in B, from the view's position; the CKA, the features, the loss."""
    best_string = c.features.get("in_string", {}).get("a", {}).get("neuron")
    unit = parse_unit(view.neuron or best_string or c.ids_a[0])
    neuron = str(unit)
    if isinstance(unit, NeuronId) and neuron not in c.ids_a:
        raise LstmvizError(f"{neuron} is not an h or c neuron of A ({view.a}).")
    pos = int(np.clip(view.pos, 0, max(len(c.a) - 1, 0)))
    match = c.best_match(neuron) if isinstance(unit, NeuronId) else c.unit_match(neuron)
    finite = c.loss_diff[np.isfinite(c.loss_diff)]
    loss_payload = None
    if finite.size:
        scale = symmetric_of(finite, "bits B saves")
        loss_payload = values_payload(c.a, c.loss_diff[pos : pos + WINDOW], "bits B saves", pos, scale)
    return {
        "summary": _summary(c),
        "neuron_options": c.ids_a if neuron in c.ids_a else [*c.ids_a, neuron],
        "neuron": neuron,
        "pos": pos,
        "title_a": f"A ({view.a}): {neuron}",
        "data_a": _neuron_payload(c.a, neuron, pos),
        "title_b": f"B ({view.b}): best match {match['b']}, r = {match['r']:+.3f}",
        "data_b": _neuron_payload(c.b, match["b"], pos),
        "cka": cka_figure(c.cka, c.layers_a, c.layers_b, view.a, view.b),
        "features": _features_table(c.features),
        "data_loss": loss_payload,
    }


class ComparePage(Page):
    path = PATH
    title = "Compare"

    clientside = tuple(
        clientside("lstmviz", function, Output(f"cmp-painted-{key}", "children"), Input(f"cmp-data-{key}", "data"))
        for key, function in (("a", "paintCompareA"), ("b", "paintCompareB"), ("loss", "paintCompareLoss"))
    )

    def layout(self) -> html.Div:
        return _layout(self.catalog)

    @callback(
        Output("url", "search", allow_duplicate=True),
        Input("cmp-a", "value"),
        Input("cmp-b", "value"),
        Input("cmp-neuron", "value"),
        Input("cmp-pos", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def controls_to_url(self, a, b, neuron, pos, search):
        view = view_of(CompareView, search)
        shown_a, shown_b = view.pair(self.catalog)
        # Another model has its own neurons, and its own cost to agree to before it is recorded.
        if a and a != shown_a:
            view = view.replace(a=a, neuron=None, record=False)
        elif neuron and neuron != view.neuron:
            view = view.replace(neuron=neuron)
        if b and b != shown_b:
            view = view.replace(b=b, record=False)
        if pos is not None:
            view = view.replace(pos=int(pos))
        return url_for(view, search)

    @callback(
        {
            "message": Output("cmp-error", "children"),
            "a_options": Output("cmp-a", "options"),
            "a": Output("cmp-a", "value"),
            "b_options": Output("cmp-b", "options"),
            "b": Output("cmp-b", "value"),
            "progress": Output("cmp-progress", "children"),
            "poll_off": Output("cmp-poll", "disabled"),
            "summary": Output("cmp-summary", "children"),
            "neuron_options": Output("cmp-neuron", "options"),
            "neuron": Output("cmp-neuron", "value"),
            "pos": Output("cmp-pos", "value"),
            "title_a": Output("cmp-title-a", "children"),
            "data_a": Output("cmp-data-a", "data"),
            "title_b": Output("cmp-title-b", "children"),
            "data_b": Output("cmp-data-b", "data"),
            "cka": Output("cmp-cka", "figure"),
            "features": Output("cmp-features", "children"),
            "data_loss": Output("cmp-data-loss", "data"),
            "drawn_style": Output("cmp-drawn", "style"),
        },
        Input("url", "search"),
        Input("cmp-poll", "n_intervals"),
    )
    def url_to_view(self, search, _tick) -> dict:
        """A against B: polls the comparison job while it runs, then draws it once."""
        comparisons = self.catalog.comparisons
        names = list(comparisons.compare_sources())
        asked = view_of(CompareView, search)
        try:
            view = asked.resolve(self.catalog)
            pickers = {"message": None, "a_options": names, "a": view.a, "b_options": names, "b": view.b, "drawn_style": HIDDEN}
            job = comparisons.comparison(view.a, view.b, record=view.record)
            if job is None:  # it would record first: say what that costs, and wait for the click
                what = f"Comparing {view.a} with {view.b} first records their h and c on the text"
                cost = comparisons.compare_cost(view.a, view.b)
                return {**pickers, "progress": _ask_to_record(what, cost, asked, "record"), "poll_off": True}
        except LstmvizError as exc:
            return {"message": message(exc)}
        if job.state in ("queued", "running"):
            return {**pickers, "progress": progress_bar(job), "poll_off": False}
        if job.state == "failed":
            return {**pickers, "progress": message(f"The comparison failed: {job.error}"), "poll_off": True}
        try:
            drawn = _drawn(job.result, view)
        except LstmvizError as exc:
            return {"message": message(exc)}
        return {**pickers, "progress": None, "poll_off": True, **drawn, "drawn_style": {}}

    @callback(
        {
            "progress": Output("cmp-emergence-progress", "children"),
            "figure": Output("cmp-emergence", "figure"),
            "figure_style": Output("cmp-emergence", "style"),  # hidden until the emergence is drawn
            "poll_off": Output("cmp-emergence-poll", "disabled"),
        },
        Input("url", "pathname"),
        Input("cmp-emergence-poll", "n_intervals"),
        Input("url", "search"),
    )
    def emergence_view(self, _pathname, _tick, search) -> dict:
        view = view_of(CompareView, search)
        comparisons = self.catalog.comparisons
        first = self.catalog.default
        if not self.catalog.has_model(first):
            missing = NoModel(first, "follow its cells through training snapshots")
            return {"progress": message(missing), "figure": EMPTY_FIGURE, "poll_off": True}
        if not comparisons.has_snapshots():
            return {"progress": message("This model has no snapshots.", hint=True), "figure_style": HIDDEN, "poll_off": True}
        job = comparisons.emergence(record=view.emergence)
        if job is None:  # it would record first: say what that costs, and wait for the click
            what = "Following the cells through the snapshots records each one's h and c on the first 100,000 characters"
            return {"progress": _ask_to_record(what, comparisons.emergence_cost(), view, "emergence"), "poll_off": True}
        if job.state in ("queued", "running"):
            return {"progress": progress_bar(job), "poll_off": False}
        if job.state == "failed":
            return {"progress": message(job.error), "figure_style": HIDDEN, "poll_off": True}
        return {"progress": None, "figure": emergence_figure(job.result), "figure_style": {}, "poll_off": True}

    @callback(
        {"download": Output("cmp-download", "data"), "message": Output("cmp-error", "children", allow_duplicate=True)},
        Input("cmp-export-cka", "n_clicks"),
        Input("cmp-export-emergence", "n_clicks"),
        State("cmp-format", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def export(self, cka_clicks, emergence_clicks, fmt, search) -> dict:
        if not (cka_clicks or emergence_clicks) or fmt not in FORMATS:
            return {}
        which = "cka" if ctx.triggered_id == "cmp-export-cka" else "emergence"
        try:
            fig, name = _figure(self.catalog, search, which)
            data = self.catalog.jobs.run(f"export:{name}.{fmt}:{uuid.uuid4().hex}", lambda job: figure_bytes(fig, fmt))
        except LstmvizError as exc:
            return {"message": message(exc)}
        return {"download": dcc.send_bytes(data, f"{name}.{fmt}".replace("/", "_")), "message": None}
