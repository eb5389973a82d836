"""The Gates page: the saturation of every gate unit (Karpathy et al. 2015, fig. 3)."""

from __future__ import annotations

from dash import Input, Output, dcc, html

from ...core.errors import LstmvizError
from ...render.figures import EMPTY_FIGURE, saturation_figure
from ..jobs import progress_bar
from ..page import Page, callback
from ..view_state import parse_query


class GatesPage(Page):
    path = "/gates"
    title = "Gates"

    def layout(self) -> html.Div:
        return html.Div(
            className="page",
            children=[
                html.P("Each point is one gate unit: how often it is nearly closed (< 0.1) against nearly open (> 0.9)."),
                html.Div(id="gates-error"),
                dcc.Interval(id="gates-poll", interval=2000, disabled=True),  # while the gates are being recorded
                dcc.Graph(id="gates-figure", config={"displaylogo": False}, figure=EMPTY_FIGURE),
            ],
        )

    @callback(
        Output("gates-figure", "figure"),
        Output("gates-error", "children"),
        Output("gates-poll", "disabled"),
        Input("url", "search"),
        Input("gates-poll", "n_intervals"),
    )
    def show(self, search, _tick):
        q = parse_query(search)
        try:
            name = q.get("store") or self.catalog.default
            self.catalog.store(name)  # validates the name
            job = self.catalog.all_series(name)
            if job is not None and job.state != "failed":
                note = "The dashboard started on h and c only; the gates are recorded now, once."
                return EMPTY_FIGURE, html.Div([note, progress_bar(job)], className="hint"), False
            if job is not None:
                raise LstmvizError(f"Recording the gates failed: {job.error}")
            return saturation_figure(self.catalog.saturation(name)), None, True
        except LstmvizError as exc:
            return {}, html.Div(str(exc), className="error"), True
