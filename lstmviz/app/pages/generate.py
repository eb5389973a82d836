"""The Generate page: text sampled from the store's checkpoint with neurons held (clamped to a
value, or ablated to 0) for the whole generation, coloured by a chosen neuron, beside the
text the same seed gives with nothing held (one pane while nothing is held). The URL holds
the whole experiment:
``/generate?prime=...&clamp=L2.c.90:20&color=L2.c.90&seed=1&t=0.8&n=400``."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields

from dash import Input, Output, State, dcc, html, no_update

from ...core.errors import LstmvizError
from ...core.neurons import parse_neurons
from ...model.interventions import parse_assignments
from ...model.sampling import sample
from ...render.colours import ColourScale
from ...render.figures import painted_payload
from .. import why
from ..catalog import Catalog
from ..components import HIDDEN, colour_legend, legend_of, legend_outputs, message, text_panel
from ..page import Page, callback, clientside
from ..view_state import ViewState, url_for, view_of
from .neuron import neuron_link

PATH = "/generate"
MAX_LENGTH = 2000  # characters per generation in the page (the command line allows 100,000)
MAX_PRIME = 2000
WHY = "g"  # the ids of this page's click-to-attribute panel: g-why-... (app/why.py)


@dataclass(frozen=True)
class GenerateView(ViewState):
    """The experiment as typed in the controls (``/generate?prime=...&clamp=L2.c.90:20&color=L2.c.90&seed=1&t=0.8&n=400``):
    each field is the control's text, read when the experiment runs (:func:`generations`)."""

    store: str | None = None  # the first store when not given
    prime: str = "def "  # the text the generation starts from
    clamp: str | None = None  # neurons held at a value: "L2.c.90:20, L1.c.5:-1"
    ablate: str | None = None  # neurons held at 0: "L1.c.5, ..."
    color: str | None = None  # the neuron colouring the text; the best in_string one not held when not given
    seed: str = "1"
    temperature: str = field(default="0.8", metadata={"key": "t"})
    length: str = field(default="400", metadata={"key": "n"})  # characters generated after the prime
    why: str | None = None  # the clicked character of the text generated with nothing held, explained (app/why.py)
    method: str | None = None  # how: why.DEFAULT_METHOD when not given


CONTROLS = {  # the view's fields and the controls that hold them
    "prime": "gen-prime",
    "clamp": "gen-clamp",
    "ablate": "gen-ablate",
    "color": "gen-color",
    "seed": "gen-seed",
    "temperature": "gen-t",
    "length": "gen-n",
}


def _layout(catalog: Catalog) -> html.Div:
    field = {"type": "text"}
    held = {"style": {"width": "11em"}, **field}
    return html.Div(
        className="page",
        children=[
            html.Div(
                className="controls",
                children=[
                    html.Label(
                        ["prime ", dcc.Textarea(id="gen-prime", rows=2, style={"width": "18em", "verticalAlign": "middle"})]
                    ),
                    html.Label(["hold ", dcc.Input(id="gen-clamp", placeholder="L2.c.90:20, ...", **held)]),
                    html.Label(["ablate ", dcc.Input(id="gen-ablate", placeholder="L1.c.5, ...", **held)]),
                    html.Label(["colour by ", dcc.Input(id="gen-color", placeholder="neuron", style={"width": "8em"}, **field)]),
                    html.Label(["seed ", dcc.Input(id="gen-seed", style={"width": "4em"}, **field)]),
                    html.Label(["temperature ", dcc.Input(id="gen-t", style={"width": "4em"}, **field)]),
                    html.Label(["characters ", dcc.Input(id="gen-n", style={"width": "5em"}, **field)]),
                    html.Button("Generate ▶", id="gen-run"),
                    colour_legend("gen-legend"),
                ],
            ),
            html.Div(id="gen-error"),
            html.P(id="gen-summary", className="hint"),
            html.Div(
                className="columns",
                children=[
                    html.Div(
                        [
                            html.H4(id="gen-title-held", className="panel-title"),
                            *text_panel("gen-text-held", "gen-hover-held"),
                        ]
                    ),
                    html.Div(
                        id="gen-plain-column",
                        style=HIDDEN,  # shown beside a held generation only: with nothing held it is the same text
                        children=[
                            html.H4("The same seed, nothing held", className="panel-title"),
                            *text_panel("gen-text-plain", "gen-hover-plain"),
                        ],
                    ),
                ],
            ),
            why.layout(WHY, panels=("gen-text-held", "gen-text-plain")),
            html.Div(id="gen-painted", style={"display": "none"}),
            dcc.Store(id="gen-data"),
        ],
    )


def _number(text: str, kind, what: str):
    try:
        return kind(text)
    except ValueError:
        raise LstmvizError(f"The {what} {text!r} is not a number.") from None


def colour_neuron(catalog: Catalog, name: str, held: list) -> str:
    """The neuron to colour by when none is asked for: a held one paints a constant colour, so
    the store's best in_string cell that is not held (or its first neuron not held)."""
    held_ids = {str(n) for n in held}
    ranked = [row["neuron"] for row in catalog.rankings(name).get("in_string", {}).get("rows", [])]
    candidates = [*ranked, *(str(n) for n in catalog.store(name).neuron_ids())]
    return next((n for n in candidates if n not in held_ids), candidates[0])


def generations(catalog: Catalog, view: GenerateView) -> dict:
    """The experiment a view asks for, run: {"held", "plain"}: the sample with the neurons held
    and the same seed's with nothing held (None when nothing is held: the same text), and the
    settings."""
    view.check()
    name, _ = catalog.named(view.store)
    ckpt = catalog.checkpoint(name, "generate text")
    length = _number(view.length, int, "number of characters")
    if length > MAX_LENGTH:
        raise LstmvizError(f"The page generates at most {MAX_LENGTH:,} characters at once; use “lstmviz sample” for more.")
    if len(view.prime) > MAX_PRIME:
        raise LstmvizError(f"The prime is {len(view.prime):,} characters; the page takes at most {MAX_PRIME:,}.")
    settings = {
        "prime": view.prime,
        "length": length,
        "temperature": _number(view.temperature, float, "temperature"),
        "seed": _number(view.seed, int, "seed"),
    }
    clamp = parse_assignments([view.clamp], "hold") if view.clamp else {}
    ablate = parse_neurons(view.ablate) if view.ablate else []
    held = [*clamp, *ablate]
    color = view.color or colour_neuron(catalog, name, held)
    run = catalog.main_thread.run
    return {
        "held": run(lambda: sample(ckpt, clamp=clamp, ablate=ablate, color=color, **settings)),
        "plain": run(lambda: sample(ckpt, color=color, **settings)) if held else None,
        "store": name,
        "view": view.replace(color=color),
    }


def _payload(s, scale: ColourScale, clickable: bool = True) -> dict | None:
    """The painter's data for sample ``s``; ``clickable``: whether a click on it is explained
    (app/why.py reads the model as trained, so not a text generated with neurons held)."""
    payload = s and painted_payload(s.text, s.values, s.top_ids, s.top_probs, s.vocab, s.neuron, 0, scale)
    return payload and {**payload, "clickable": clickable}


def clicked_in(catalog: Catalog, view: GenerateView, data: dict | None) -> why.Clicked | None:
    """The generated text a click is explained in: the one generated with nothing held."""
    if not data or not data.get("held"):
        return None
    panel = "gen-text-plain" if data.get("plain") else "gen-text-held"
    payload = data["plain"] or data["held"]
    return why.Clicked.in_text(catalog.named(view.store)[0], payload["label"], panel, payload["text"])


def _notes(held) -> list[str]:
    """The summary's sentences: what colours the text, and why it is constant when held."""
    settings = held.settings
    notes = [f"Coloured by {held.neuron}; the first {len(held.prime):,} characters are the prime."]
    value = settings["clamp"].get(held.neuron, 0 if held.neuron in settings["ablate"] else None)
    if value is not None:
        notes.append(
            f"{held.neuron} is held at {value:g}, so it colours the held text one constant colour; "
            "colour by another neuron to see what holding it changes."
        )
    if settings["clamp"] or settings["ablate"]:
        notes.append("Why? reads the model as trained: click a character of the text with nothing held.")
    if held.unknown:
        notes.append(f"The prime's {''.join(held.unknown)!r} are not in the model's vocabulary and were read as unknown.")
    return notes


class GeneratePage(Page):
    path = PATH
    title = "Generate"
    clientside = (
        clientside(
            "lstmviz",
            "paintGenerated",
            Output("gen-painted", "children"),
            Input("gen-data", "data"),
        ),
    )

    def layout(self) -> html.Div:
        return _layout(self.catalog)

    def parts(self) -> list:
        source = functools.partial(clicked_in, self.catalog)
        return [why.WhyPanel(self.catalog, WHY, GenerateView, source, neuron_link, extra=(Input("gen-data", "data"),))]

    @callback(
        Output("url", "search", allow_duplicate=True),
        Input("gen-run", "n_clicks"),
        *[State(control, "value") for control in CONTROLS.values()],
        State("url", "search"),
        prevent_initial_call=True,
    )
    def controls_to_url(self, clicks, *args):
        """The Generate button: the experiment in the controls becomes the URL (an empty
        control: its default)."""
        *values, search = args
        if not clicks:
            return no_update
        defaults = {f.name: f.default for f in fields(GenerateView)}
        typed = {
            name: defaults[name] if value in (None, "") else str(value) for name, value in zip(CONTROLS, values, strict=True)
        }
        shown = view_of(GenerateView, search)
        view = shown.replace(**typed)
        return url_for(view if view == shown else view.replace(why=None), search)  # a new text: no click in it yet

    @callback(
        {
            "data": Output("gen-data", "data"),
            "message": Output("gen-error", "children"),
            "summary": Output("gen-summary", "children"),
            "title": Output("gen-title-held", "children"),
            "plain_column": Output("gen-plain-column", "style"),
            **legend_outputs("gen-legend"),
            **{name: Output(control, "value") for name, control in CONTROLS.items()},
        },
        Input("url", "search"),
    )
    def url_to_view(self, search) -> dict:
        try:
            run = generations(self.catalog, view_of(GenerateView, search))
        except LstmvizError as exc:
            return {"data": None, "message": message(exc)}
        held, plain, view = run["held"], run["plain"], run["view"]
        scale = self.catalog.scale(run["store"], held.neuron)
        holding = ", ".join(
            [f"{n} at {v:g}" for n, v in held.settings["clamp"].items()] + [f"{n} at 0" for n in held.settings["ablate"]]
        )
        return {
            "data": {"held": _payload(held, scale, clickable=plain is None), "plain": _payload(plain, scale)},
            "message": None,
            "summary": " ".join(_notes(held)),
            "title": f"Holding {holding}" if holding else "Nothing held (hold a neuron to see this seed's text beside it)",
            "plain_column": {} if plain else HIDDEN,
            **legend_of(scale),
            **{name: getattr(view, name) or "" for name in CONTROLS},
        }
