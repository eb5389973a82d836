"""The Compare page: model A against model B on the same text (by default the shipped
model's earliest snapshot against the final model): a neuron of A beside its best match in
B, both coloured; the CKA between their layers; the cells side by side; the text coloured by
the bits B saves over A; and, across the snapshots, when the cells appear.

Recording a checkpoint and correlating every neuron pair take a while, so they run as
background jobs with a progress bar here; results stay in memory (recordings in the cache).
The URL (``/compare?a=...&b=...&neuron=L2.c.90&pos=0``) holds the view."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import numpy as np
from dash import Input, Output, State, ctx, dcc, html, no_update

from ...core.errors import LstmvizError
from ...core.neurons import NeuronId
from ...render.colours import neuron_scale, symmetric_of
from ...render.export import figure_bytes
from ...render.figures import EMPTY_FIGURE, cka_figure, emergence_figure, values_payload
from ..catalog import Catalog
from ..jobs import progress_bar
from ..page import Page, callback, clientside
from ..view_state import changed_search, parse_query

PATH = "/compare"
WINDOW = 2000
FORMATS = ("png", "svg", "pdf", "html")
OUTPUTS = 18  # values the comparison view callback sets


def _panel(key: str, title: str | None = None) -> list:
    return [
        html.H4(title, id=f"cmp-title-{key}", className="panel-title"),  # one line, so A and B align
        html.Div(id=f"cmp-hover-{key}", className="hover-line"),
        html.Div(id=f"cmp-text-{key}", className="text-panel compare-panel", **{"data-hover": f"cmp-hover-{key}"}),
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
            html.Div(className="columns", children=[html.Div(_panel("a")), html.Div(_panel("b"))]),
            html.Div(
                className="columns",
                children=[
                    dcc.Graph(id="cmp-cka", config={"displaylogo": False}, figure=EMPTY_FIGURE),
                    html.Div([html.H4("Best cell per feature"), html.Div(id="cmp-features")]),
                ],
            ),
            *_panel("loss", "Bits B saves over A on each character (red: B predicts it better)"),
            html.H3("When the cells appear (snapshots of the first store's model, first 100,000 characters)"),
            html.Div(id="cmp-emergence-progress"),
            dcc.Interval(id="cmp-emergence-poll", interval=1500, disabled=True),
            dcc.Graph(id="cmp-emergence", config={"displaylogo": False}, figure=EMPTY_FIGURE),
        ],
    )


def _pair(catalog: Catalog, q: dict) -> tuple[str, str]:
    default_a, default_b = catalog.comparisons.default_pair()
    return q.get("a") or default_a, q.get("b") or default_b


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
    q = parse_query(search)
    a, b = _pair(catalog, q)
    if which == "cka":
        job = catalog.comparisons.comparison(a, b)
        if job.state != "done":
            raise LstmvizError("The comparison is not ready yet.")
        c = job.result
        return cka_figure(c.cka, c.layers_a, c.layers_b, a, b), f"cka-{a}-vs-{b}"
    job = catalog.comparisons.emergence()
    if job is None or job.state != "done":
        raise LstmvizError("The emergence plot is not ready yet.")
    return emergence_figure(job.result), "emergence"


def _ask_to_record(what: str, cost: int, q: dict, key: str) -> html.Div:
    """What a recording will cost on disk, before it starts, and a link that starts it."""
    note = (
        f"{what}: about {cost / 1e9:.1f} GB in the cache, once (`lstmviz cache list` shows it, `lstmviz cache clear` frees it). "
    )
    return html.Div(
        [note, dcc.Link("Record and go on ▸", href=f"{PATH}?{urlencode({**q, key: 'yes'})}", id=f"cmp-go-{key}")],
        className="hint",
    )


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
        q = parse_query(search)
        shown_a, shown_b = _pair(self.catalog, q)
        if a and a != shown_a:
            q["a"] = a
            q.pop("neuron", None)  # another model: its own neurons
        elif neuron and neuron != q.get("neuron"):
            q["neuron"] = neuron
        if b and b != shown_b:
            q["b"] = b
        if pos is not None and str(int(pos)) != q.get("pos", "0"):
            q["pos"] = str(int(pos))
        return changed_search(q, search)

    @callback(
        Output("cmp-error", "children"),
        Output("cmp-a", "options"),
        Output("cmp-a", "value"),
        Output("cmp-b", "options"),
        Output("cmp-b", "value"),
        Output("cmp-progress", "children"),
        Output("cmp-poll", "disabled"),
        Output("cmp-summary", "children"),
        Output("cmp-neuron", "options"),
        Output("cmp-neuron", "value"),
        Output("cmp-pos", "value"),
        Output("cmp-title-a", "children"),
        Output("cmp-data-a", "data"),
        Output("cmp-title-b", "children"),
        Output("cmp-data-b", "data"),
        Output("cmp-cka", "figure"),
        Output("cmp-features", "children"),
        Output("cmp-data-loss", "data"),
        Input("url", "search"),
        Input("cmp-poll", "n_intervals"),
    )
    def view(self, search, _tick):
        """A against B: polls the comparison job while it runs, then draws it once."""
        q = parse_query(search)
        names = list(self.catalog.comparisons.compare_sources())
        a, b = _pair(self.catalog, q)
        try:
            if self.catalog.comparisons.comparison(a, b, start=False) is None and q.get("record") != "yes":
                cost = self.catalog.comparisons.compare_cost(a, b) if a in names and b in names else 0
                if cost:
                    ask = _ask_to_record(f"Comparing {a} with {b} first records their h and c on the text", cost, q, "record")
                    return (None, names, a, names, b, ask, True) + (no_update,) * (OUTPUTS - 7)
            job = self.catalog.comparisons.comparison(a, b)
            try:
                pos = int(q.get("pos", 0))
            except ValueError:
                raise LstmvizError(f"Position {q.get('pos')!r} is not a number.") from None
        except LstmvizError as exc:
            return (html.Div(str(exc), className="error"),) + (no_update,) * (OUTPUTS - 1)
        head = (None, names, a, names, b)
        if job.state in ("queued", "running"):
            return (*head, progress_bar(job), False) + (no_update,) * (OUTPUTS - 7)
        if job.state == "failed":
            failed = html.Div(f"The comparison failed: {job.error}", className="error")
            return (*head, failed, True) + (no_update,) * (OUTPUTS - 7)
        c = job.result
        try:
            best_string = c.features.get("in_string", {}).get("a", {}).get("neuron")
            neuron = str(NeuronId.parse(q.get("neuron") or best_string or c.ids_a[0]))
            if neuron not in c.ids_a:
                raise LstmvizError(f"{neuron} is not an h or c neuron of A ({a}).")
        except LstmvizError as exc:
            return (html.Div(str(exc), className="error"),) + (no_update,) * (OUTPUTS - 1)
        pos = int(np.clip(pos, 0, max(len(c.a) - 1, 0)))
        match = c.best_match(neuron)
        finite = c.loss_diff[np.isfinite(c.loss_diff)]
        loss_payload = None
        if finite.size:
            scale = symmetric_of(finite, "bits B saves")
            loss_payload = values_payload(c.a, c.loss_diff[pos : pos + WINDOW], "bits B saves", pos, scale)
        return (
            *head,
            None,
            True,
            _summary(c),
            c.ids_a,
            neuron,
            pos,
            f"A ({a}): {neuron}",
            _neuron_payload(c.a, neuron, pos),
            f"B ({b}): best match {match['b']}, r = {match['r']:+.3f}",
            _neuron_payload(c.b, match["b"], pos),
            cka_figure(c.cka, c.layers_a, c.layers_b, a, b),
            _features_table(c.features),
            loss_payload,
        )

    @callback(
        Output("cmp-emergence-progress", "children"),
        Output("cmp-emergence", "figure"),
        Output("cmp-emergence-poll", "disabled"),
        Input("url", "pathname"),
        Input("cmp-emergence-poll", "n_intervals"),
        Input("url", "search"),
    )
    def emergence_view(self, _pathname, _tick, search):
        q = parse_query(search)
        if (
            q.get("emergence") != "yes"
            and self.catalog.comparisons.has_snapshots()
            and self.catalog.comparisons.emergence(start=False) is None
        ):
            cost = self.catalog.comparisons.emergence_cost()
            if cost:
                what = "Following the cells through the snapshots records each one's h and c on the first 100,000 characters"
                return _ask_to_record(what, cost, q, "emergence"), no_update, True
        job = self.catalog.comparisons.emergence()
        if job is None:
            return html.P("This model has no snapshots.", className="hint"), {}, True
        if job.state in ("queued", "running"):
            return progress_bar(job), no_update, False
        if job.state == "failed":
            return html.Div(job.error, className="error"), {}, True
        return None, emergence_figure(job.result), True

    @callback(
        Output("cmp-download", "data"),
        Output("cmp-error", "children", allow_duplicate=True),
        Input("cmp-export-cka", "n_clicks"),
        Input("cmp-export-emergence", "n_clicks"),
        State("cmp-format", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def export(self, cka_clicks, emergence_clicks, fmt, search):
        if not (cka_clicks or emergence_clicks) or fmt not in FORMATS:
            return no_update, no_update
        which = "cka" if ctx.triggered_id == "cmp-export-cka" else "emergence"
        try:
            fig, name = _figure(self.catalog, search, which)
            data = self.catalog.jobs.run(f"export:{name}.{fmt}:{uuid.uuid4().hex}", lambda job: figure_bytes(fig, fmt))
        except LstmvizError as exc:
            return no_update, html.Div(str(exc), className="error")
        return dcc.send_bytes(data, f"{name}.{fmt}".replace("/", "_")), None
