"""The Text page: your own text, coloured by any neuron while you type (``live_text.py``).
The URL holds the view, ``/text?neuron=L2.c.90&text=...``; a text too long for a URL is kept
by the server for a while and named by a key, ``&live=...``."""

from __future__ import annotations

from dataclasses import dataclass, field

from dash import Input, Output, State, dcc, html, no_update

from ...core.errors import LstmvizError
from .. import live_text, why
from ..catalog import Catalog
from ..components import colour_legend, legend_of, legend_outputs, message, scale_picker, view_notes
from ..page import Page, callback
from ..view_state import ViewState, nearest_neuron, url_for, view_of
from .neuron import neuron_link

LIVE = "typed"  # the ids of this page's typed-text box: typed-input, ...
WHY = "t"  # the ids of this page's click-to-attribute panel: t-why-... (app/why.py)
PATH = "/text"
URL_CHARS = 1000  # longer texts are kept by the server and named by a key in the URL
EXAMPLE = 'name = "quoted \\" text"  # and a comment\nif name:\n    print(f"{name!r} done")\n'


@dataclass(frozen=True)
class TextView(ViewState):
    """``/text?store=...&neuron=L2.c.90&text=...`` (or ``&live=KEY`` for a long text)"""

    store: str | None = None  # the first store when not given
    neuron: str | None = None  # the store's best in_string neuron when not given
    scale: str | None = None  # the colour scale; the one chosen for the neuron when not given
    text: str | None = None  # the typed text, when short enough for a URL
    kept: str | None = field(default=None, metadata={"key": "live"})  # else its key on the server (TypedTexts.keep)
    why: str | None = None  # the clicked character, explained (app/why.py reads it)
    method: str | None = None  # how: why.DEFAULT_METHOD when not given

    def resolve(self, catalog: Catalog) -> TextView:
        """The view with the store's defaults filled in and checked against it (a store or
        neuron it lacks gives way to the nearest, said in ``problems``), and the text a key
        names read back (a key the server no longer keeps is an error)."""
        view, store = self.on_store(catalog)
        best = catalog.best_neuron(view.store)
        neuron, why = nearest_neuron(store, view.neuron or best, best)
        if why:
            view = view.corrected("neuron", str(neuron), why)
        text = self.text
        if self.kept is not None:
            text = catalog.typed.kept(self.kept)
            if text is None:
                raise LstmvizError("That text is no longer kept by the server (it keeps the latest ones); paste it again.")
        return view.replace(neuron=str(neuron), text=text)

    def with_text(self, catalog: Catalog, text: str) -> TextView:
        """This view holding ``text``: in the URL when short, else kept by the server under a key."""
        if len(text) <= URL_CHARS:
            return self.replace(text=text, kept=None)
        return self.replace(text=None, kept=catalog.typed.keep(text))


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
            why.layout(WHY, panels=(f"{LIVE}-panel",)),
        ],
    )


class TextPage(Page):
    path = PATH
    title = "Text"

    def layout(self) -> html.Div:
        return _layout(self.catalog)

    def parts(self) -> list:
        return [
            live_text.LiveText(self.catalog, LIVE, TextView),
            why.WhyPanel(self.catalog, WHY, TextView, self._clicked, neuron_link),
        ]

    def _clicked(self, view: TextView) -> why.Clicked | None:
        view = view.resolve(self.catalog)
        return None if view.text is None else why.Clicked.in_text(view.store, view.neuron, f"{LIVE}-panel", view.text)

    @callback(
        {
            "neuron_options": Output("typed-neuron", "options"),
            "neuron": Output("typed-neuron", "value"),
            "box": Output("typed-input", "value"),
            "text": Output("typed-text", "data"),
            **legend_outputs("typed-legend"),
            "scale": Output("typed-scale", "value"),
            "message": Output("typed-error", "children"),
        },
        Input("url", "search"),
        State("typed-text", "data"),
    )
    def url_to_view(self, search, current) -> dict:
        """The neuron and the text the URL names (the box is filled only when they differ)."""
        try:
            view = view_of(TextView, search).resolve(self.catalog)
            scale = self.catalog.scale(view.store, view.neuron, view.scale)
        except LstmvizError as exc:
            return {"message": message(exc)}
        text = EXAMPLE if view.text is None and not current else view.text
        fill = {} if text is None or text == current else {"box": text, "text": text}
        return {
            "neuron_options": self.catalog.unit_options(view.store),
            "neuron": view.neuron,
            **fill,
            **legend_of(scale),
            "scale": view.scale or "default",
            "message": view_notes(view),
        }

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
        shown = view_of(TextView, search)
        view = shown.with_text(self.catalog, text)
        if (view.text, view.kept) != (shown.text, shown.kept):
            view = view.replace(why=None)  # a click in the text before it changed
        if neuron:
            view = view.replace(neuron=neuron)
        if scale:  # None until the page has set it from the URL
            view = view.replace(scale=None if scale == "default" else scale)
        return url_for(view, search)
