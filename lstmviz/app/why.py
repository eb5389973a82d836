"""Click a character, see why it is so: the characters before it get a bar by how much each
made the page's unit what it is there (``analysis.attribution``), the five that count most
are listed, and beside them the model's next-character prediction there is shared among the
units (``attribution.prediction``). One component for the Neuron, Text and Generate pages:
each page says which text a click is in (a :class:`Clicked`); the view is in the page's URL
as ``why=POS`` (and ``method=`` when not the default), two fields each page's view holds.

The browser draws the bars (``assets/why.js``) under the characters, so the activation
colours stay visible. The work runs in the dashboard's queue (``jobs.py``): a request waits
``QUICK`` seconds for it, then the panel shows its progress and polls."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import dash
import torch
from dash import Input, Output, State, dcc, html, no_update

from ..analysis.attribution import DEFAULT_WINDOW, Attribution
from ..analysis.attribution.attribute import Located, attribute_located, character_id, target_of
from ..analysis.attribution.prediction import PredictionReasons, explain_prediction
from ..core.characters import name_of
from ..core.errors import LstmvizError
from .catalog import Catalog
from .components import HIDDEN, message
from .jobs import Job, progress_bar
from .page import CallbackSpec, register_callback
from .view_state import ViewState, url_for, view_of

# Occlusion first: it is the true change, and over 1,000 positions inside strings of the
# shipped model it puts the opening quote among the quote cell's top three at 81%, gradient x
# input at 59%, integrated gradients at 45% (``lstmviz bench attribute --quality 1000``).
DEFAULT_METHOD = "occlusion"
METHODS = {"occlusion": "occlusion (exact)", "grad": "gradient × input (fast)", "ig": "integrated gradients"}
HELP = (
    f"Click a character: the characters before it (up to {DEFAULT_WINDOW}, or back to the start of the text) get a bar "
    "below them, red where they raise the unit there and blue where they lower it, taller and darker for more; click it "
    "again, or a blank, to clear. Shown first: occlusion, because it is exact (each character in turn read as no "
    "character and the model run again; under a second for 200 characters on the shipped model) and it finds a string's opening "
    "quote for the quote cell where the gradient methods mostly miss it; gradient × input is the fast estimate (~0.1 s)."
)
QUICK = 0.3  # seconds a request waits for the work before the panel shows its progress
LISTED = 5  # characters listed
UNITS_LISTED = 8  # units listed for a prediction
ACTION = "attribute a character"  # what a store without a model cannot do (NoModel)


@dataclass(frozen=True)
class Clicked:
    """The text a click on a page is in, as the model reads it."""

    store: str  # the store whose model reads it
    neuron: str  # the unit the page colours by
    panel: str  # the id of the painted panel that shows it
    length: int  # the positions a click can name: 0 to length - 1
    document: Callable[[int], tuple[int, str]]  # the document holding a position: (its first position, its text)

    @classmethod
    def in_store(cls, catalog: Catalog, name: str, neuron: str, panel: str) -> Clicked:
        """A click in store ``name``'s text: positions are the store's, the model reads each document from its start."""
        store = catalog.store(name)

        def document(pos: int) -> tuple[int, str]:
            d = store.document_at(pos)
            return d.start, store.text(d.start, d.stop)

        return cls(name, neuron, panel, len(store), document)

    @classmethod
    def in_text(cls, name: str, neuron: str, panel: str, text: str) -> Clicked:
        """A click in a text of its own (typed, generated), read from its start by store ``name``'s model."""
        return cls(name, neuron, panel, len(text), lambda pos: (0, text))


def clicked_position(why: str | None, length: int) -> tuple[int | None, str | None]:
    """The position ``why=`` names, moved inside the text (0 to ``length`` - 1), and the one
    sentence saying what was wrong with it (None when nothing was)."""
    if why is None:
        return None, None
    try:
        asked = int(why)
    except ValueError:
        return None, f"The clicked position {why!r} is not a number; click a character to see why it is what it is."
    if length == 0:
        return None, "There is no text to click in yet."
    valid = min(max(asked, 0), length - 1)
    if valid != asked:
        return valid, f"Position {asked:,} is outside the text (0-{length - 1:,}); showing why at {valid:,}."
    return valid, None


def chosen_method(method: str | None) -> tuple[str, str | None]:
    """The method ``method=`` names (the default when none), and the sentence saying it is unknown."""
    if method is None or method in METHODS:
        return method or DEFAULT_METHOD, None
    return DEFAULT_METHOD, f"There is no attribution method {method!r} (choose {', '.join(METHODS)}); showing {DEFAULT_METHOD}."


def layout(prefix: str, panels: tuple[str, ...]) -> html.Div:
    """The panel: the help line and method switch, the result and the prediction; ``panels``:
    the painted panels (ids) whose characters a click explains."""
    p = f"{prefix}-why"
    switch = [{"label": label, "value": method} for method, label in METHODS.items()]
    return html.Div(
        id=p,
        className="why",
        **{"data-why-panels": " ".join(panels)},  # read by assets/why.js
        children=[
            html.Div(
                className="controls",
                children=[
                    html.B("Why?"),
                    dcc.RadioItems(id=f"{p}-method", options=switch, value=None, inline=True, className="why-switch"),
                    html.Button("clear", id=f"{p}-clear", className="link", title="Remove the bars and the lists"),
                ],
            ),
            html.Div(HELP, id=f"{p}-help", className="hint"),
            html.Div(id=f"{p}-message"),
            html.Div(
                className="columns",
                children=[
                    html.Div(id=f"{p}-result"),
                    html.Div(
                        id=f"{p}-prediction-box",
                        style=HIDDEN,
                        children=[
                            html.Span("Explain the guess: ", className="hint"),
                            dcc.RadioItems(id=f"{p}-guess", options=[], value=None, inline=True, className="why-switch"),
                            html.Div(id=f"{p}-prediction"),
                        ],
                    ),
                ],
            ),
            dcc.Interval(id=f"{p}-poll", interval=400, disabled=True),
            dcc.Store(id=f"{p}-shade"),  # drawn on the panel by assets/why.js
            html.Div(id=f"{p}-shaded", style=HIDDEN),
        ],
    )


def _located(ckpt, clicked: Clicked, pos: int) -> tuple[Located, str]:
    """The clicked position in its document, as attribution reads it, and a key naming both."""
    start, text = clicked.document(pos)
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    at = Located(torch.from_numpy(ckpt.vocab.encode_array(text)), text, start, pos - start)
    return at, f"{clicked.store}:{digest}:{start}:{pos}"


def attribution_job(catalog: Catalog, clicked: Clicked, pos: int, method: str) -> Job:
    """The attribution of the clicked unit at ``pos`` by ``method``, in the queue (the same
    click again joins it); waited for ``QUICK`` seconds."""
    ckpt = catalog.checkpoint(clicked.store, ACTION)
    target = target_of(ckpt.model, ckpt.vocab, neuron=clicked.neuron)
    at, where = _located(ckpt, clicked, pos)

    def work(job: Job) -> Attribution:
        job.report(0.1, f"{METHODS[method]}: the {min(DEFAULT_WINDOW, at.pos + 1)} characters up to position {pos:,}")
        return attribute_located(ckpt.model, ckpt.vocab, at, target, method)

    return catalog.jobs.wait(catalog.jobs.start(f"why:{where}:{target.unit}:{method}", work), QUICK)


def prediction_job(catalog: Catalog, clicked: Clicked, pos: int, char: str | None) -> Job:
    """The next-character prediction after ``pos`` shared among the units, for ``char``
    (default: the model's likeliest), in the queue; waited for ``QUICK`` seconds."""
    ckpt = catalog.checkpoint(clicked.store, ACTION)
    ckpt.model.require_next_character("explain a next-character prediction")
    char_id = None if char is None else character_id(ckpt.vocab, char)
    at, where = _located(ckpt, clicked, pos)

    def work(job: Job) -> PredictionReasons:
        job.report(0.1, f"sharing the prediction after position {pos:,} among the units")
        return explain_prediction(ckpt.model, ckpt.vocab, at, char_id)

    return catalog.jobs.wait(catalog.jobs.start(f"why-next:{where}:{char_id}", work), QUICK)


def attribution_view(result: Attribution, prefix: str) -> html.Div:
    """One line (method, value, baseline value, completeness error) and the top characters."""
    method = f"{METHODS[result.method]}, {result.steps} steps" if result.steps else METHODS[result.method]
    line = (
        f"{result.target} at position {result.pos:,} = {result.value:+.4f}, by {method}; with the {len(result.text)} "
        f"characters from position {result.start:,} all read as the {result.baseline}: {result.baseline_value:+.4f}; "
        f"completeness error {100 * result.completeness_error:.1f}%."
    )
    head = html.Tr([html.Th(h) for h in ("character", "back", "contribution", "position")])
    rows = [
        html.Tr(
            [
                html.Td(name_of(ch), className="why-char"),
                html.Td(str(result.pos - position)),
                html.Td(f"{c:+.4f}"),
                html.Td(f"{position:,}"),
            ]
        )
        for position, ch, c in result.top(LISTED)
    ]
    return html.Div(
        [html.P(line, id=f"{prefix}-why-line"), html.Table([head, *rows], id=f"{prefix}-why-top", className="scores")]
    )


def _units(shares: list[tuple[str, float]], store: str, link) -> list:
    out = []
    for unit, share in shares[:UNITS_LISTED]:
        out += [link(store, unit), f" {share:+.3f}", "   "]
    return out


def prediction_view(reasons: PredictionReasons, store: str, actual: str | None, link, prefix: str) -> html.Div:
    """The chosen character's logit as the decoder's bias and the units' shares, each unit a
    link (``link(store, unit)``) to its page."""
    said = f" (the text has '{name_of(actual)}')" if actual is not None else ""
    parts = [
        html.P(
            f"Next character after position {reasons.pos:,}: '{name_of(reasons.char)}'{said}, probability "
            f"{math.exp(reasons.log_probability):.1%}, logit {reasons.logit:+.3f} = decoder bias {reasons.bias:+.3f} + "
            "the top layer's units, each h × its decoder weight (exact):"
        ),
        html.P(_units(reasons.direct, store, link), id=f"{prefix}-why-direct", className="why-units"),
    ]
    if reasons.lower:
        parts += [
            html.P("The lower layers' units, by gradient × activation (an estimate):"),
            html.P(_units(reasons.lower, store, link), id=f"{prefix}-why-lower", className="why-units"),
        ]
    return html.Div(parts)


def guess_options(reasons: PredictionReasons, actual: str | None) -> list[dict]:
    """The guesses a user may explain (the model's likeliest, and the text's own next
    character), each value naming the position it belongs to."""
    options = [{"label": f"'{name_of(ch)}' {p:.1%}", "value": json.dumps([reasons.pos, ch])} for ch, p in reasons.guesses]
    if actual is not None and actual not in {ch for ch, _ in reasons.guesses}:
        options.append({"label": f"'{name_of(actual)}' (the text's)", "value": json.dumps([reasons.pos, actual])})
    return options


def _guessed(guess: str | None, pos: int) -> str | None:
    """The character a guess picker's value names, if it was picked at ``pos``."""
    if not guess:
        return None
    at, char = json.loads(guess)
    return char if at == pos else None


def shade_payload(result: Attribution, clicked: Clicked) -> dict:
    """What assets/why.js draws: a contribution per character from ``start``, the clicked ``pos``."""
    values = [round(float(c), 6) for c in result.contributions]
    return {"panel": clicked.panel, "start": result.start, "pos": result.pos, "values": values, "target": result.target}


NOTHING = {"result": None, "prediction": None, "prediction_box": HIDDEN, "shade": None, "poll_off": True}


class WhyPanel:
    """The panel's callbacks on one page: ``view_type`` is the page's view (with ``why`` and
    ``method`` fields); ``source(view, *extra)`` the text a click is in (a :class:`Clicked`,
    or None while there is none), ``extra`` more inputs it reads (the generated text);
    ``link(store, unit)`` a unit's link to its page."""

    def __init__(self, catalog: Catalog, prefix: str, view_type: type[ViewState], source, link, extra: tuple = ()):
        self.catalog, self.prefix, self.view_type = catalog, prefix, view_type
        self.source, self.link, self.extra = source, link, extra

    def register(self, app: dash.Dash, path: str) -> None:
        p = f"{self.prefix}-why"
        outputs = {
            "message": Output(f"{p}-message", "children"),
            "result": Output(f"{p}-result", "children"),
            "prediction": Output(f"{p}-prediction", "children"),
            "prediction_box": Output(f"{p}-prediction-box", "style"),
            "guesses": Output(f"{p}-guess", "options"),
            "guess": Output(f"{p}-guess", "value"),
            "shade": Output(f"{p}-shade", "data"),
            "poll_off": Output(f"{p}-poll", "disabled"),
            "method": Output(f"{p}-method", "value"),
        }
        inputs = (Input("url", "search"), Input(f"{p}-poll", "n_intervals"), Input(f"{p}-guess", "value"), *self.extra)
        register_callback(app, path, self.show, CallbackSpec(outputs, inputs))
        to_url = Output("url", "search", allow_duplicate=True)
        once = {"prevent_initial_call": True}
        method = (Input(f"{p}-method", "value"), State("url", "search"))
        register_callback(app, path, self.method_to_url, CallbackSpec(to_url, method, once))
        clear = (Input(f"{p}-clear", "n_clicks"), State("url", "search"))
        register_callback(app, path, self.clear, CallbackSpec(to_url, clear, once))
        app.clientside_callback(
            dash.ClientsideFunction(namespace="lstmvizWhy", function_name="shade"),
            Output(f"{p}-shaded", "children"),
            Input(f"{p}-shade", "data"),
        )

    def method_to_url(self, method, search):
        view = view_of(self.view_type, search)
        if method is None or method == chosen_method(view.method)[0]:
            return no_update
        return url_for(view.replace(method=None if method == DEFAULT_METHOD else method), search)

    def clear(self, clicks, search):
        return url_for(view_of(self.view_type, search).replace(why=None), search) if clicks else no_update

    def show(self, search, _tick, guess, *extra) -> dict:
        """The view ``why=`` asks for: its bars and lists, or the work's progress, or what is wrong."""
        view = view_of(self.view_type, search)
        method, method_note = chosen_method(view.method)
        try:
            clicked = self.source(view, *extra)
        except LstmvizError:
            clicked = None  # the page says what is wrong with its view
        if clicked is None:
            return {**NOTHING, "message": None, "method": method}
        pos, pos_note = clicked_position(view.why, clicked.length)
        notes = " ".join(n for n in (pos_note, method_note) if n)
        shown = {"message": message(notes) if notes else None, "method": method}
        if pos is None:
            return {**NOTHING, **shown}
        try:
            job = attribution_job(self.catalog, clicked, pos, method)
        except LstmvizError as exc:
            return {**NOTHING, **shown, "message": message(exc)}
        if job.state == "failed":
            return {**NOTHING, **shown, "message": message(f"The attribution failed: {job.error}")}
        if job.state != "done":
            return {**NOTHING, **shown, "result": progress_bar(job), "poll_off": False}
        attributed = {"result": attribution_view(job.result, self.prefix), "shade": shade_payload(job.result, clicked)}
        return {**NOTHING, **shown, **attributed, **self._prediction(clicked, pos, guess)}

    def _prediction(self, clicked: Clicked, pos: int, guess: str | None) -> dict:
        """The prediction part of :meth:`show`: the guesses to pick from and the picked one's shares."""
        try:
            job = prediction_job(self.catalog, clicked, pos, _guessed(guess, pos))
        except LstmvizError as exc:
            return {"prediction": message(exc, hint=True), "prediction_box": {}, "guesses": []}
        if job.state == "failed":
            return {"prediction": message(f"Explaining the prediction failed: {job.error}"), "prediction_box": {}}
        if job.state != "done":
            return {"prediction": progress_bar(job), "prediction_box": {}, "poll_off": False}
        reasons: PredictionReasons = job.result
        start, text = clicked.document(pos)
        actual = text[pos - start + 1] if pos - start + 1 < len(text) else None
        return {
            "prediction": prediction_view(reasons, clicked.store, actual, self.link, self.prefix),
            "prediction_box": {},
            "guesses": guess_options(reasons, actual),
            "guess": json.dumps([reasons.pos, reasons.char]),
        }
