"""The Heatmap page: chosen neurons by characters in a window, as the paper's figures, with
export to PNG, SVG, PDF and standalone HTML (the same builder as ``lstmviz export``)."""

from __future__ import annotations

import uuid

import dash
from dash import Input, Output, State, ctx, dcc, html, no_update

from ..errors import LstmvizError
from ..export import figure_bytes
from ..render import EMPTY_FIGURE, MAX_HEATMAP_NEURONS, heatmap_figure, parse_range
from .catalog import Catalog, changed_search, parse_query

PATH = "/heatmap"
FORMATS = ("png", "svg", "pdf", "html")


def _view(catalog: Catalog, search: str | None):
    q = parse_query(search)
    store = catalog.store(q.get("store"))
    name = q.get("store") or store.name
    default = catalog.best_neuron(name)
    neurons = [n for n in q.get("neurons", default).split(",") if n]
    if len(neurons) > MAX_HEATMAP_NEURONS:  # before any of them is looked up
        raise LstmvizError(f"A heatmap shows at most {MAX_HEATMAP_NEURONS} neurons; {len(neurons)} were asked for.")
    for n in neurons:
        catalog.neuron(store, n)
    start, stop = parse_range(q.get("range", "0:200"), len(store))
    return store, name, neurons, start, stop


def layout(catalog: Catalog) -> html.Div:
    return html.Div(
        className="page",
        children=[
            html.Div(
                className="controls",
                children=[
                    dcc.Dropdown(id="hm-neurons", multi=True, searchable=True, style={"minWidth": "28em"}),
                    html.Label(["range ", dcc.Input(id="hm-range", type="text", debounce=True, style={"width": "9em"})]),
                    *[html.Button(f.upper(), id=f"hm-export-{f}") for f in FORMATS],
                ],
            ),
            html.Div(id="hm-error"),
            dcc.Graph(id="hm-figure", config={"displaylogo": False}, figure=EMPTY_FIGURE),
            dcc.Download(id="hm-download"),
        ],
    )


def register(app: dash.Dash, catalog: Catalog) -> None:
    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Input("hm-neurons", "value"),
        Input("hm-range", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def controls_to_url(neurons, char_range, search):
        q = parse_query(search)
        if neurons:
            q["neurons"] = ",".join(neurons)
        if char_range:
            q["range"] = char_range
        return changed_search(q, search)

    @app.callback(
        Output("hm-figure", "figure"),
        Output("hm-error", "children"),
        Output("hm-neurons", "options"),
        Output("hm-neurons", "value"),
        Output("hm-range", "value"),
        Input("url", "search"),
        State("url", "pathname"),
    )
    def url_to_view(search, pathname):
        if pathname != PATH:
            return no_update, no_update, no_update, no_update, no_update
        try:
            store, _, neurons, start, stop = _view(catalog, search)
            fig = heatmap_figure(store, neurons, start, stop)
        except LstmvizError as exc:
            return {}, html.Div(str(exc), className="error"), no_update, no_update, no_update
        return fig, None, [str(n) for n in store.neuron_ids()], neurons, f"{start}:{stop}"

    @app.callback(
        Output("hm-download", "data"),
        Output("hm-error", "children", allow_duplicate=True),
        *[Input(f"hm-export-{f}", "n_clicks") for f in FORMATS],
        State("url", "search"),
        prevent_initial_call=True,
    )
    def export(*args):
        search = args[-1]
        pressed = ctx.triggered_id
        if not pressed or not any(args[:-1]):
            return no_update, no_update
        fmt = pressed.rsplit("-", 1)[1]
        try:
            store, name, neurons, start, stop = _view(catalog, search)
            figure = heatmap_figure(store, neurons, start, stop)
            data = catalog.jobs.run(f"export:{name}.{fmt}:{uuid.uuid4().hex}", lambda job: figure_bytes(figure, fmt))
        except LstmvizError as exc:
            return no_update, html.Div(str(exc), className="error")
        filename = f"{name}-{'_'.join(neurons)}-{start}-{stop}.{fmt}".replace("/", "_")
        return dcc.send_bytes(data, filename), None
