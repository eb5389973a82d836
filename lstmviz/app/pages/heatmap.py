"""The Heatmap page: chosen neurons by characters in a window, as the paper's figures, with
export to PNG, SVG, PDF and standalone HTML (the same builder as ``lstmviz export``)."""

from __future__ import annotations

import re
import uuid

from dash import Input, Output, State, ctx, dcc, html, no_update

from ...core.errors import LstmvizError
from ...render.colours import neuron_scales
from ...render.export import figure_bytes
from ...render.figures import EMPTY_FIGURE, MAX_HEATMAP_NEURONS, export_width, heatmap_figure, parse_range
from ..catalog import Catalog, SeriesPending
from ..jobs import progress_bar
from ..page import Page, callback
from ..view_state import changed_search, parse_query

PATH = "/heatmap"
FORMATS = ("png", "svg", "pdf", "html")


def _view(catalog: Catalog, search: str | None):
    q = parse_query(search)
    store = catalog.store(q.get("store"))
    name = q.get("store") or catalog.default
    default = catalog.best_neuron(name)
    neurons = [n for n in q.get("neurons", default).split(",") if n]
    if len(neurons) > MAX_HEATMAP_NEURONS:  # before any of them is looked up
        raise LstmvizError(f"A heatmap shows at most {MAX_HEATMAP_NEURONS} neurons; {len(neurons)} were asked for.")
    for n in neurons:
        catalog.neuron_or_wait(store, name, n)
    start, stop = parse_range(q.get("range", "0:120"), len(store))
    scales = None if q.get("scale") == "shared" else neuron_scales(store, neurons)
    return store, name, neurons, start, stop, scales


def _layout(catalog: Catalog) -> html.Div:
    return html.Div(
        className="page",
        children=[
            html.Div(
                className="controls",
                children=[
                    dcc.Dropdown(id="hm-neurons", multi=True, searchable=True, style={"minWidth": "28em"}),
                    html.Label(["range ", dcc.Input(id="hm-range", type="text", debounce=True, style={"width": "9em"})]),
                    dcc.Checklist(id="hm-shared", options=[{"label": " one colour scale for all rows", "value": "shared"}]),
                    *[html.Button(f.upper(), id=f"hm-export-{f}") for f in FORMATS],
                ],
            ),
            html.Div(id="hm-error"),
            dcc.Interval(id="hm-poll", interval=2000, disabled=True),  # while a gate is being recorded
            dcc.Graph(id="hm-figure", config={"displaylogo": False}, figure=EMPTY_FIGURE),
            dcc.Download(id="hm-download"),
        ],
    )


class HeatmapPage(Page):
    path = PATH
    title = "Heatmap"

    def layout(self) -> html.Div:
        return _layout(self.catalog)

    @callback(
        Output("url", "search", allow_duplicate=True),
        Input("hm-neurons", "value"),
        Input("hm-range", "value"),
        Input("hm-shared", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def controls_to_url(self, neurons, char_range, shared, search):
        q = parse_query(search)
        if neurons:
            q["neurons"] = ",".join(neurons)
        if char_range:
            q["range"] = char_range
        q.pop("scale", None)
        if shared:
            q["scale"] = "shared"
        return changed_search(q, search)

    @callback(
        Output("hm-figure", "figure"),
        Output("hm-error", "children"),
        Output("hm-neurons", "options"),
        Output("hm-neurons", "value"),
        Output("hm-range", "value"),
        Output("hm-shared", "value"),
        Output("hm-poll", "disabled"),
        Input("url", "search"),
        Input("hm-poll", "n_intervals"),
    )
    def url_to_view(self, search, _tick):
        q = parse_query(search)
        asked = [n for n in q.get("neurons", "").split(",") if n] or no_update
        try:
            store, name, neurons, start, stop, scales = _view(self.catalog, search)
            fig = heatmap_figure(store, neurons, start, stop, scales)
        except SeriesPending as exc:
            note = html.Div([str(exc), progress_bar(exc.job)], className="hint")
            return EMPTY_FIGURE, note, no_update, asked, q.get("range", no_update), no_update, False
        except LstmvizError as exc:  # the inputs keep what was asked for, to be corrected
            error = html.Div(str(exc), className="error")
            return EMPTY_FIGURE, error, no_update, asked, q.get("range", no_update), no_update, True
        shared = [] if scales is not None else ["shared"]
        return fig, None, self.catalog.neuron_options(name), neurons, f"{start}:{stop}", shared, True

    @callback(
        Output("hm-download", "data"),
        Output("hm-error", "children", allow_duplicate=True),
        *[Input(f"hm-export-{f}", "n_clicks") for f in FORMATS],
        State("url", "search"),
        prevent_initial_call=True,
    )
    def export(self, *args):
        search = args[-1]
        pressed = ctx.triggered_id
        if not pressed or not any(args[:-1]):
            return no_update, no_update
        fmt = pressed.rsplit("-", 1)[1]
        try:
            store, name, neurons, start, stop, scales = _view(self.catalog, search)
            figure = heatmap_figure(store, neurons, start, stop, scales, width=export_width(stop - start))
            data = self.catalog.jobs.run(f"export:{name}.{fmt}:{uuid.uuid4().hex}", lambda job: figure_bytes(figure, fmt))
        except LstmvizError as exc:
            return no_update, html.Div(str(exc), className="error")
        filename = re.sub(r"[^\w.+-]+", "_", f"{name}-{'_'.join(neurons)}-{start}-{stop}") + f".{fmt}"
        return dcc.send_bytes(data, filename), None
