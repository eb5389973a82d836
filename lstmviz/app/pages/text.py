"""The Text page: your own text, coloured by any neuron while you type (``live_text.py``).
The URL holds the view, ``/text?neuron=L2.c.90&text=...``; a text too long for a URL is kept
by the server for a while and named by a key, ``&live=...``."""

from __future__ import annotations

from dash import Input, Output, State, dcc, html, no_update

from ...core.errors import LstmvizError
from .. import live_text
from ..catalog import Catalog
from ..components import colour_legend, legend_of, scale_picker
from ..page import Page, callback
from ..view_state import changed_search, parse_query

LIVE = "typed"  # the ids of this page's typed-text box: typed-input, ...
PATH = "/text"
URL_CHARS = 1000  # longer texts are kept by the server and named by a key in the URL
EXAMPLE = 'name = "quoted \\" text"  # and a comment\nif name:\n    print(f"{name!r} done")\n'


def _layout(catalog: Catalog) -> html.Div:
    return html.Div(
        className="page",
        children=[
            html.Div(
                className="controls",
                children=[
                    dcc.Dropdown(id="typed-neuron", clearable=False, searchable=True, className="picker", placeholder="neuron"),
                    scale_picker("typed-scale"),
                    colour_legend("typed-legend"),
                ],
            ),
            html.Div(id="typed-error"),
            live_text.layout(LIVE),
        ],
    )


class TextPage(Page):
    path = PATH
    title = "Text"

    def layout(self) -> html.Div:
        return _layout(self.catalog)

    def parts(self) -> list:
        return [live_text.LiveText(self.catalog, LIVE)]

    @callback(
        Output("typed-neuron", "options"),
        Output("typed-neuron", "value"),
        Output("typed-input", "value"),
        Output("typed-text", "data"),
        Output("typed-legend-low", "children"),
        Output("typed-legend-high", "children"),
        Output("typed-legend-label", "children"),
        Output("typed-scale", "value"),
        Output("typed-error", "children"),
        Input("url", "search"),
        State("typed-text", "data"),
    )
    def url_to_view(self, search, current):
        """The neuron and the text the URL names (the box is filled only when they differ)."""
        q = parse_query(search)
        try:
            name = q.get("store") or self.catalog.default
            store = self.catalog.store(name)
            neuron = str(self.catalog.neuron(store, q.get("neuron") or self.catalog.best_neuron(name)))
            text = live_text.url_text(self.catalog, search)
            scale = self.catalog.scale(name, neuron, q.get("scale"))
        except LstmvizError as exc:
            return (no_update,) * 8 + (html.Div(str(exc), className="error"),)
        text = EXAMPLE if text is None and not current else text
        fill = no_update if text is None or text == current else text
        return self.catalog.neuron_options(name), neuron, fill, fill, *legend_of(scale), q.get("scale") or "default", None

    @callback(
        Output("url", "search", allow_duplicate=True),
        Input("typed-text", "data"),
        Input("typed-neuron", "value"),
        Input("typed-scale", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def view_to_url(self, text, neuron, scale, search):
        """What is typed and shown, in the URL: short texts in it, long ones by key."""
        if text is None:
            return no_update
        q = {k: v for k, v in parse_query(search).items() if k not in ("text", "live")}
        if neuron:
            q["neuron"] = neuron
        if scale:  # None until the page has set it from the URL
            q.pop("scale", None) if scale == "default" else q.update(scale=scale)
        if len(text) <= URL_CHARS:
            q["text"] = text
        else:
            q["live"] = self.catalog.typed.keep(text)
        return changed_search(q, search)
