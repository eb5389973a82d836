"""The dashboard: ``create_app(stores)`` builds a Dash app over already-open stores, and
``serve`` runs it under waitress (a production WSGI server with threads)."""

from __future__ import annotations

import hmac
import socket
import threading
from pathlib import Path

import dash
from dash import Input, Output, dcc, html

from ..core.errors import LstmvizError
from ..core.runtime import one_thread_here
from ..store.reader import ActivationStore
from .catalog import Catalog
from .components import message
from .pages.compare import ComparePage
from .pages.discover import DiscoverPage
from .pages.gates import GatesPage
from .pages.generate import GeneratePage
from .pages.heatmap import HeatmapPage
from .pages.model import ModelPage
from .pages.neuron import NeuronPage
from .pages.text import TextPage
from .pages.units import UnitsPage

ASSETS = Path(__file__).resolve().parents[1] / "assets"  # package data: the painter, in a wheel too
PAGES = (
    NeuronPage,
    UnitsPage,
    DiscoverPage,
    HeatmapPage,
    GatesPage,
    ModelPage,
    ComparePage,
    GeneratePage,
    TextPage,
)  # in the top bar


def create_app(stores: list[ActivationStore], names: list[str | None] | None = None) -> dash.Dash:
    """The dashboard on ``stores``, each shown (and named in URLs) by its ``names`` entry, or
    by its directory's name."""
    catalog = Catalog.of(stores, names)
    pages = {page.path: page(catalog) for page in PAGES}
    app = dash.Dash(__name__, assets_folder=str(ASSETS), title="lstmviz", suppress_callback_exceptions=True)
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh=False),
            html.Div(
                className="topbar",
                children=[html.Span("lstmviz", className="brand")]
                + [dcc.Link(page.title, href=path) for path, page in pages.items()]
                + [html.Span(", ".join(f"{n} ({len(s):,} chars)" for n, s in catalog.stores.items()))],
            ),
            html.Div(id="page-content"),
        ]
    )

    @app.callback(Output("page-content", "children"), Input("url", "pathname"))
    def route(pathname):
        page = pages.get(pathname or "/")
        if page is None:
            return html.Div(className="page", children=message(f"No page at {pathname}."))
        return page.layout()

    for page in pages.values():
        page.register(app)
    app.server.before_request(one_thread_here)  # request threads make no OpenMP team (core/runtime.py)
    app.catalog = catalog
    return app


LOOPBACK = ("127.0.0.1", "localhost", "::1")
TOKEN_COOKIE = "lstmviz_token"


def check_serving(host: str, port: int, debug: bool) -> None:
    """Refuse, before any work, what cannot or must not be served: debug mode on any address
    but loopback (Dash's debugger runs code sent to it), a port out of range or in use."""
    if debug and host not in LOOPBACK:
        raise LstmvizError(
            f"--debug serves a debugger that runs code sent to it, so it is only allowed on loopback "
            f"({', '.join(LOOPBACK)}), not on {host}."
        )
    if not 1 <= port <= 65535:
        raise LstmvizError(f"--port must be between 1 and 65535, not {port}.")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
    except OSError as exc:
        raise LstmvizError(f"Cannot serve on {host}:{port}: {exc.strerror or exc}; choose another --port or --host.") from None


def require_token(app: dash.Dash, token: str) -> None:
    """Refuse every request without ``token`` (in the URL as ``?token=``, then kept in a
    cookie, or as an ``Authorization: token ...`` header), as Jupyter does."""
    from flask import request

    def given() -> str:
        header = request.headers.get("Authorization", "")
        return request.args.get("token") or request.cookies.get(TOKEN_COOKIE) or header.removeprefix("token ").strip()

    @app.server.before_request
    def check():
        if not hmac.compare_digest(given().encode(), token.encode()):
            return "This dashboard needs its token: open the URL that “lstmviz serve” printed.", 403
        return None

    @app.server.after_request
    def remember(response):
        if request.args.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        return response


def serve(
    app: dash.Dash, host: str = "127.0.0.1", port: int = 8050, debug: bool = False, threads: int = 8, token: str | None = None
) -> None:
    """Serve ``app``; on an address other than loopback, only to requests with ``token``."""
    check_serving(host, port, debug)
    if token:
        require_token(app, token)
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    from waitress import create_server

    server = create_server(app.server, host=host, port=port, threads=threads)
    stop = threading.Event()
    web = threading.Thread(target=lambda: (server.run(), stop.set()), name="lstmviz-web", daemon=True)
    web.start()
    try:
        app.catalog.main_thread.serve(stop)  # the model's work for requests runs here (core/runtime.py)
    finally:
        stop.set()
        server.close()
