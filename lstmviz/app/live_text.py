"""Your own text, coloured while you type: a box (used by the Text page and the Neuron page)
where up to 20,000 typed or pasted characters are recorded in memory by the store's
checkpoint, with the same exact recording as a store, and painted by the current neuron on
that neuron's colour range in the store (so the typed text and the corpus compare), with the
value and the model's top-5 guesses on hover.

The browser waits until typing pauses (``assets/live.js``) before it sends the text."""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html

from ..core.errors import LstmvizError
from ..core.neurons import NeuronId
from ..render.figures import painted_payload
from ..store.units import values_on
from .catalog import Catalog
from .components import message, text_panel
from .page import CallbackSpec, clientside, register_callback, register_clientside
from .view_state import ViewState, view_of

MAX_CHARS = 20_000


def layout(prefix: str, placeholder: str = "Type or paste some text (up to 20,000 characters)") -> html.Div:
    """The box: a text area, a line for hover details, the painted text."""
    return html.Div(
        className="live-text",
        children=[
            dcc.Textarea(id=f"{prefix}-input", maxLength=MAX_CHARS, rows=6, placeholder=placeholder, className="live-input"),
            html.Div(id=f"{prefix}-message", className="hint"),
            *text_panel(f"{prefix}-panel", f"{prefix}-hover"),
            html.Div(id=f"{prefix}-painted", style={"display": "none"}),
            html.Div(id=f"{prefix}-waiting", style={"display": "none"}),
            dcc.Store(id=f"{prefix}-text"),  # the text once typing pauses
            dcc.Store(id=f"{prefix}-data"),
        ],
    )


def live_payload(catalog: Catalog, name: str, neuron: str, text: str, scale: str | None = None) -> tuple[dict, str]:
    """The painter's data for ``text`` coloured by ``neuron`` (recorded by the checkpoint of
    store ``name``) on its colour scale ``scale`` there, and a line saying what was done."""
    if len(text) > MAX_CHARS:
        raise LstmvizError(f"The text has {len(text):,} characters; the box takes at most {MAX_CHARS:,}.")
    store = catalog.store(name)
    n = catalog.neuron(store, neuron)
    recording, unknown = catalog.typed.recording(name, text, n.kind)
    values = recording.neuron(n) if isinstance(n, NeuronId) else values_on(store, n, recording)
    payload = painted_payload(
        text, values, recording.top_ids, recording.top_probs, recording.vocab_chars, str(n), 0, catalog.scale(name, str(n), scale)
    )
    note = f"{len(text):,} characters, coloured by {n} on its range in {name}."
    if unknown:
        note += f" Not in the model's vocabulary, read as unknown: {''.join(unknown)!r} ({sum(map(text.count, unknown)):,})."
    return payload, note


class LiveText:
    """The box's callbacks, for the box with ids ``{prefix}-...`` on one page: the store,
    neuron and colour scale come from the page's view (``view_type``, a ViewState with
    ``store``, ``neuron`` and ``scale``)."""

    def __init__(self, catalog: Catalog, prefix: str, view_type: type[ViewState]):
        self.catalog = catalog
        self.prefix = prefix
        self.view_type = view_type

    def register(self, app: dash.Dash, path: str) -> None:
        p = self.prefix
        outputs = {"data": Output(f"{p}-data", "data"), "message": Output(f"{p}-message", "children")}
        paint = CallbackSpec(outputs, (Input(f"{p}-text", "data"), Input("url", "search")))
        register_callback(app, path, self.paint, paint)
        register_clientside(
            app,
            [
                clientside(
                    "lstmvizLive",
                    "whenTypingPauses",
                    Output(f"{p}-waiting", "children"),
                    Input(f"{p}-input", "value"),
                    State(f"{p}-text", "id"),
                ),
                clientside("lstmviz", "paintLive", Output(f"{p}-painted", "children"), Input(f"{p}-data", "data")),
            ],
        )

    def paint(self, text, search) -> dict:
        if text is None:
            return {"data": None, "message": None}
        if not text:
            return {"data": None, "message": "Type or paste some text to see it coloured."}
        view = view_of(self.view_type, search)
        try:
            name, _ = self.catalog.named(view.store)
            payload, note = live_payload(self.catalog, name, view.neuron or self.catalog.best_neuron(name), text, view.scale)
        except LstmvizError as exc:
            return {"data": None, "message": message(exc)}
        return {"data": {**payload, "panel": f"{self.prefix}-panel"}, "message": note}
