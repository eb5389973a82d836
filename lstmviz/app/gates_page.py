"""The Gates page: the saturation of every gate unit (Karpathy et al. 2015, fig. 3)."""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html, no_update

from ..errors import LstmvizError
from ..render import EMPTY_FIGURE, saturation_figure
from .catalog import Catalog, parse_query
from .jobs import progress_bar

PATH = "/gates"


def layout(catalog: Catalog) -> html.Div:
    return html.Div(
        className="page",
        children=[
            html.P("Each point is one gate unit: how often it is nearly closed (< 0.1) against nearly open (> 0.9)."),
            html.Div(id="gates-error"),
            dcc.Interval(id="gates-poll", interval=2000, disabled=True),  # while the gates are being recorded
            dcc.Graph(id="gates-figure", config={"displaylogo": False}, figure=EMPTY_FIGURE),
        ],
    )


def register(app: dash.Dash, catalog: Catalog) -> None:
    @app.callback(
        Output("gates-figure", "figure"),
        Output("gates-error", "children"),
        Output("gates-poll", "disabled"),
        Input("url", "search"),
        Input("gates-poll", "n_intervals"),
        State("url", "pathname"),
    )
    def show(search, _tick, pathname):
        if pathname != PATH:
            return no_update, no_update, True
        q = parse_query(search)
        try:
            name = q.get("store") or catalog.default
            catalog.store(name)  # validates the name
            job = catalog.all_series(name)
            if job is not None and job.state != "failed":
                note = "The dashboard started on h and c only; the gates are recorded now, once."
                return EMPTY_FIGURE, html.Div([note, progress_bar(job)], className="hint"), False
            if job is not None:
                raise LstmvizError(f"Recording the gates failed: {job.error}")
            return saturation_figure(catalog.saturation(name)), None, True
        except LstmvizError as exc:
            return {}, html.Div(str(exc), className="error"), True
