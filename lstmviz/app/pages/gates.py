"""The Gates page: the saturation of every gate unit (Karpathy et al. 2015, fig. 3)."""

from __future__ import annotations

from dataclasses import dataclass

from dash import Input, Output, dcc, html

from ...analysis.saturation import GATE_KINDS
from ...core.errors import LstmvizError
from ...render.figures import EMPTY_FIGURE, saturation_figure
from ..catalog import Catalog, NoModel
from ..components import HIDDEN, ask_to_record, message, view_notes
from ..jobs import progress_bar
from ..page import Page, callback
from ..view_state import ViewState, view_of


@dataclass(frozen=True)
class GatesView(ViewState):
    """``/gates?store=...``, and ``record=yes`` once the user has agreed to what recording the
    gates costs (a dashboard started on h and c only)."""

    store: str | None = None  # the first store when not given
    record: bool = False  # record every series of the store's model (into the cache) when it lacks the gates

    def resolve(self, catalog: Catalog) -> GatesView:
        return self.on_store(catalog)[0]


PATH = "/gates"


class GatesPage(Page):
    path = PATH
    title = "Gates"

    def layout(self) -> html.Div:
        return html.Div(
            className="page",
            children=[
                html.P("Each point is one gate unit: how often it is nearly closed (< 0.1) against nearly open (> 0.9)."),
                html.Div(id="gates-error"),
                dcc.Interval(id="gates-poll", interval=2000, disabled=True),  # while the gates are being recorded
                dcc.Graph(id="gates-figure", config={"displaylogo": False}, figure=EMPTY_FIGURE, style=HIDDEN),
            ],
        )

    @callback(
        {
            "figure": Output("gates-figure", "figure"),
            "figure_style": Output("gates-figure", "style"),  # hidden until there are gates to draw
            "message": Output("gates-error", "children"),
            "poll_off": Output("gates-poll", "disabled"),
        },
        Input("url", "search"),
        Input("gates-poll", "n_intervals"),
    )
    def url_to_view(self, search, _tick) -> dict:
        try:
            view = view_of(GatesView, search).resolve(self.catalog)
            name = view.store
            started = " and ".join(dict.fromkeys(s.kind for s in self.catalog.store(name).series))  # "h and c", a GRU's "h"
            if self.catalog.unrecorded_kinds(name) and not view.record and self.catalog.all_series_job(name) is None:
                what = f"This page needs the gates, and the dashboard started on {started} only. Recording them"
                agreed = PATH + view.replace(record=True).search()
                asked = ask_to_record(what, self.catalog.all_series_cost(name), agreed, "gates-go")
                return {"figure": EMPTY_FIGURE, "figure_style": HIDDEN, "message": asked, "poll_off": True}
            job = self.catalog.all_series(name)
            if job is not None and job.state != "failed":
                note = f"The dashboard started on {started} only; the gates are recorded now, once."
                progress = message(note, progress_bar(job), hint=True)
                return {"figure": EMPTY_FIGURE, "figure_style": HIDDEN, "message": progress, "poll_off": False}
            if job is not None:
                raise LstmvizError(f"Recording the gates failed: {job.error}")
            if not self.catalog.has_model(name) and not any(s.kind in GATE_KINDS for s in self.catalog.store(name).series):
                raise NoModel(name, "record its gates")
            figure = saturation_figure(self.catalog.saturation(name))
            return {"figure": figure, "figure_style": {}, "message": view_notes(view), "poll_off": True}
        except LstmvizError as exc:
            return {"figure": EMPTY_FIGURE, "figure_style": HIDDEN, "message": message(exc), "poll_off": True}
