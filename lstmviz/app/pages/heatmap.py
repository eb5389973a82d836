"""The Heatmap page: chosen neurons by characters in a window, as the paper's figures, with
export to PNG, SVG, PDF and standalone HTML (the same builder as ``lstmviz export``)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from dash import Input, Output, State, ctx, dcc, html

from ...analysis.first_views import first_views
from ...core.errors import LstmvizError
from ...render.colours import neuron_scales
from ...render.export import figure_bytes
from ...render.figures import EMPTY_FIGURE, MAX_HEATMAP_NEURONS, export_width, heatmap_figure, parse_range
from ..catalog import Catalog, SeriesPending
from ..components import message, view_notes
from ..jobs import progress_bar
from ..page import Page, callback
from ..view_state import ViewState, url_for, view_of

PATH = "/heatmap"
FORMATS = ("png", "svg", "pdf", "html")
DEFAULT_RANGE = "0:120"


@dataclass(frozen=True)
class HeatmapView(ViewState):
    """``/heatmap?store=...&neurons=L1.h.0,L2.c.3&range=0:300&scale=shared``"""

    store: str | None = None  # the first store when not given
    neurons: tuple[str, ...] = ()  # the rows; the best cell of each feature when none is given
    marks: str | None = field(default=None, metadata={"key": "range"})  # the characters START:END shown; without
    # neurons or range, a window where the features change (``analysis.first_views``)
    scale: str | None = None  # "shared": one colour scale for every row; else each row its own

    def resolve(self, catalog: Catalog) -> HeatmapView:
        """The view with the store's defaults filled in and checked against it: too many
        neurons, one the store does not have, or a range outside it is an error; a gate it
        lacks is recorded (SeriesPending). A store not open gives way to the first, said in
        ``problems``."""
        self.check()
        view, store = self.on_store(catalog)
        opening = first_views(store)["heatmap"]
        neurons = view.neurons or tuple(opening["neurons"][:MAX_HEATMAP_NEURONS]) or (catalog.best_neuron(view.store),)
        if len(neurons) > MAX_HEATMAP_NEURONS:  # before any of them is looked up
            raise LstmvizError(f"A heatmap shows at most {MAX_HEATMAP_NEURONS} neurons; {len(neurons)} were asked for.")
        neurons = tuple(str(catalog.neuron_or_wait(store, view.store, n)) for n in neurons)
        marks = view.marks or (DEFAULT_RANGE if view.neurons else f"{opening['start']}:{opening['stop']}")
        start, stop = parse_range(marks, len(store))
        return view.replace(neurons=neurons, marks=f"{start}:{stop}")


def _view(catalog: Catalog, search: str | None) -> tuple[HeatmapView, object, int, int, list | None]:
    """The heatmap a URL asks for: its view, resolved, the store, the range, and the rows'
    colour scales (None: one for all)."""
    view = view_of(HeatmapView, search).resolve(catalog)
    store = catalog.store(view.store)
    start, stop = parse_range(view.marks, len(store))
    scales = None if view.scale == "shared" else neuron_scales(store, list(view.neurons))
    return view, store, start, stop, scales


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
    def controls_to_url(self, neurons, marks, shared, search):
        view = view_of(HeatmapView, search)
        if neurons:
            view = view.replace(neurons=tuple(neurons))
        if marks:
            view = view.replace(marks=marks)
        return url_for(view.replace(scale="shared" if shared else None), search)

    @callback(
        {
            "figure": Output("hm-figure", "figure"),
            "message": Output("hm-error", "children"),
            "neuron_options": Output("hm-neurons", "options"),
            "neurons": Output("hm-neurons", "value"),
            "marks": Output("hm-range", "value"),
            "shared": Output("hm-shared", "value"),
            "poll_off": Output("hm-poll", "disabled"),
        },
        Input("url", "search"),
        Input("hm-poll", "n_intervals"),
    )
    def url_to_view(self, search, _tick) -> dict:
        asked = view_of(HeatmapView, search)
        kept = {"neurons": list(asked.neurons)} if asked.neurons else {}  # the inputs keep what was asked for, to be corrected
        kept |= {"marks": asked.marks} if asked.marks else {}
        try:
            view, store, start, stop, scales = _view(self.catalog, search)
            figure = heatmap_figure(store, list(view.neurons), start, stop, scales, name=view.store)
        except SeriesPending as exc:
            return {"figure": EMPTY_FIGURE, "message": message(exc, progress_bar(exc.job), hint=True), **kept, "poll_off": False}
        except LstmvizError as exc:
            return {"figure": EMPTY_FIGURE, "message": message(exc), **kept, "poll_off": True}
        return {
            "figure": figure,
            "message": view_notes(view),
            "neuron_options": self.catalog.unit_options(view.store),
            "neurons": list(view.neurons),
            "marks": view.marks,
            "shared": [] if scales is not None else ["shared"],
            "poll_off": True,
        }

    @callback(
        {"download": Output("hm-download", "data"), "message": Output("hm-error", "children", allow_duplicate=True)},
        *[Input(f"hm-export-{f}", "n_clicks") for f in FORMATS],
        State("url", "search"),
        prevent_initial_call=True,
    )
    def export(self, *args) -> dict:
        search = args[-1]
        pressed = ctx.triggered_id
        if not pressed or not any(args[:-1]):
            return {}
        fmt = pressed.rsplit("-", 1)[1]
        try:
            view, store, start, stop, scales = _view(self.catalog, search)
            figure = heatmap_figure(
                store, list(view.neurons), start, stop, scales, width=export_width(stop - start), name=view.store
            )
            data = self.catalog.jobs.run(f"export:{view.store}.{fmt}:{uuid.uuid4().hex}", lambda job: figure_bytes(figure, fmt))
        except LstmvizError as exc:
            return {"message": message(exc)}
        filename = re.sub(r"[^\w.+-]+", "_", f"{view.store}-{'_'.join(view.neurons)}-{start}-{stop}") + f".{fmt}"
        return {"download": dcc.send_bytes(data, filename), "message": None}
