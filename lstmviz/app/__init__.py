"""The dashboard: ``create_app(stores)`` builds a Dash app over already-open stores, and
``serve`` runs it under waitress (a production WSGI server with threads)."""

from __future__ import annotations

from pathlib import Path

import dash
from dash import Input, Output, dcc, html

from ..analysis import keep_torch_threads
from ..errors import LstmvizError
from ..store import ActivationStore
from . import compare_page, discover_page, gates_page, generate_page, heatmap_page, model_page, neuron_page
from .catalog import Catalog

ASSETS = Path(__file__).resolve().parents[2] / "assets"
PAGES = {
    neuron_page.PATH: ("Neuron", neuron_page),
    discover_page.PATH: ("Discover", discover_page),
    heatmap_page.PATH: ("Heatmap", heatmap_page),
    gates_page.PATH: ("Gates", gates_page),
    model_page.PATH: ("Model", model_page),
    compare_page.PATH: ("Compare", compare_page),
    generate_page.PATH: ("Generate", generate_page),
}


def create_app(stores: list[ActivationStore]) -> dash.Dash:
    catalog = Catalog.of(stores)
    app = dash.Dash(__name__, assets_folder=str(ASSETS), title="lstmviz", suppress_callback_exceptions=True)
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh=False),
            html.Div(
                className="topbar",
                children=[html.Span("lstmviz", className="brand")]
                + [dcc.Link(title, href=path) for path, (title, _) in PAGES.items()]
                + [html.Span(", ".join(f"{n} ({len(s):,} chars)" for n, s in catalog.stores.items()))],
            ),
            html.Div(id="page-content"),
        ]
    )

    @app.callback(Output("page-content", "children"), Input("url", "pathname"))
    def route(pathname):
        page = PAGES.get(pathname or "/")
        if page is None:
            return html.Div(className="page", children=html.Div(f"No page at {pathname}.", className="error"))
        return page[1].layout(catalog)

    for _, module in PAGES.values():
        module.register(app, catalog)
    app.catalog = catalog
    return app


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_serving(host: str, debug: bool) -> None:
    """Refuse debug mode on any address but loopback: Dash's debugger runs code sent to it."""
    if debug and host not in LOOPBACK:
        raise LstmvizError(
            f"--debug serves a debugger that runs code sent to it, so it is only allowed on loopback "
            f"({', '.join(LOOPBACK)}), not on {host}."
        )


def serve(app: dash.Dash, host: str = "127.0.0.1", port: int = 8050, debug: bool = False, threads: int = 8) -> None:
    check_serving(host, debug)
    keep_torch_threads()  # requests run side by side from here: no process-wide setting changes
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    from waitress import serve as waitress_serve

    waitress_serve(app.server, host=host, port=port, threads=threads)
