"""The Generate page: text sampled from the store's checkpoint with neurons held (clamped to a
value, or ablated to 0) for the whole generation, coloured by a chosen neuron, beside the
text the same seed gives with nothing held. The URL holds the whole experiment:
``/generate?prime=...&clamp=L2.c.90:20&color=L2.c.90&seed=1&t=0.8&n=400``."""

from __future__ import annotations

from dash import Input, Output, State, dcc, html, no_update

from ...core.errors import LstmvizError
from ...core.neurons import parse_neurons
from ...model.interventions import parse_assignments
from ...model.sampling import sample
from ...render.colours import ColourScale
from ...render.figures import painted_payload
from ..catalog import Catalog
from ..components import colour_legend, legend_of
from ..page import Page, callback, clientside
from ..view_state import changed_search, parse_query

PATH = "/generate"
MAX_LENGTH = 2000  # characters per generation in the page (the command line allows 100,000)
MAX_PRIME = 2000
DEFAULTS = {"prime": "def ", "n": "400", "t": "0.8", "seed": "1"}
INPUTS = {"prime": "gen-prime", "clamp": "gen-clamp", "ablate": "gen-ablate", "color": "gen-color"}  # query key: control
INPUTS |= {"seed": "gen-seed", "t": "gen-t", "n": "gen-n"}


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
                            html.Div(id="gen-hover-held", className="hover-line"),
                            html.Div(id="gen-text-held", className="text-panel", **{"data-hover": "gen-hover-held"}),
                        ]
                    ),
                    html.Div(
                        [
                            html.H4("The same seed, nothing held", className="panel-title"),
                            html.Div(id="gen-hover-plain", className="hover-line"),
                            html.Div(id="gen-text-plain", className="text-panel", **{"data-hover": "gen-hover-plain"}),
                        ]
                    ),
                ],
            ),
            html.Div(id="gen-painted", style={"display": "none"}),
            dcc.Store(id="gen-data"),
        ],
    )


def _number(q: dict, key: str, kind, what: str):
    try:
        return kind(q.get(key) or DEFAULTS[key])
    except ValueError:
        raise LstmvizError(f"The {what} {q.get(key)!r} is not a number.") from None


def generations(catalog: Catalog, search: str | None) -> dict:
    """The experiment a URL asks for, run: {"held", "plain"}: two samples, and the settings."""
    q = parse_query(search)
    name = q.get("store") or catalog.default
    catalog.store(name)
    ckpt = catalog.checkpoint(name)
    prime = q.get("prime", DEFAULTS["prime"])
    length = _number(q, "n", int, "number of characters")
    if length > MAX_LENGTH:
        raise LstmvizError(f"The page generates at most {MAX_LENGTH:,} characters at once; use `lstmviz sample` for more.")
    if len(prime) > MAX_PRIME:
        raise LstmvizError(f"The prime is {len(prime):,} characters; the page takes at most {MAX_PRIME:,}.")
    settings = {
        "prime": prime,
        "length": length,
        "temperature": _number(q, "t", float, "temperature"),
        "seed": _number(q, "seed", int, "seed"),
    }
    clamp = parse_assignments([q["clamp"]], "hold") if q.get("clamp") else {}
    ablate = parse_neurons(q["ablate"]) if q.get("ablate") else []
    held = [*clamp, *ablate]
    color = q.get("color") or (str(held[0]) if held else catalog.best_neuron(name))
    run = catalog.main_thread.run
    return {
        "held": run(lambda: sample(ckpt, clamp=clamp, ablate=ablate, color=color, **settings)),
        "plain": run(lambda: sample(ckpt, color=color, **settings)),
        "store": name,
        "query": {"clamp": q.get("clamp", ""), "ablate": q.get("ablate", ""), "color": color, **settings},
    }


def _payload(s, scale: ColourScale) -> dict:
    return painted_payload(s.text, s.values, s.top_ids, s.top_probs, s.vocab, s.neuron, 0, scale)


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

    @callback(
        Output("url", "search", allow_duplicate=True),
        Input("gen-run", "n_clicks"),
        *[State(i, "value") for i in INPUTS.values()],
        State("url", "search"),
        prevent_initial_call=True,
    )
    def controls_to_url(self, clicks, *args):
        """The Generate button: the experiment in the controls becomes the URL."""
        *values, search = args
        if not clicks:
            return no_update
        q = parse_query(search)
        for key, value in zip(INPUTS, values, strict=True):
            if value in (None, "") and key != "prime":
                q.pop(key, None)
            else:
                q[key] = str(value or "")
        return changed_search(q, search)

    @callback(
        Output("gen-data", "data"),
        Output("gen-error", "children"),
        Output("gen-summary", "children"),
        Output("gen-title-held", "children"),
        Output("gen-legend-low", "children"),
        Output("gen-legend-high", "children"),
        Output("gen-legend-label", "children"),
        *[Output(i, "value") for i in INPUTS.values()],
        Input("url", "search"),
    )
    def url_to_view(self, search):
        try:
            run = generations(self.catalog, search)
        except LstmvizError as exc:
            return (None, html.Div(str(exc), className="error"), *([no_update] * (5 + len(INPUTS))))
        held, plain, query = run["held"], run["plain"], run["query"]
        scale = self.catalog.scale(run["store"], held.neuron)
        holding = ", ".join(
            [f"{n} at {v:g}" for n, v in held.settings["clamp"].items()] + [f"{n} at 0" for n in held.settings["ablate"]]
        )
        notes = [f"Coloured by {held.neuron}; the first {len(held.prime):,} characters are the prime."]
        if held.unknown:
            notes.append(f"The prime's {''.join(held.unknown)!r} are not in the model's vocabulary and were read as unknown.")
        title = f"Holding {holding}" if holding else "Nothing held (add a neuron to hold)"
        controls = [query[k] for k in ("prime", "clamp", "ablate", "color", "seed", "temperature", "length")]
        return (
            {"held": _payload(held, scale), "plain": _payload(plain, scale)},
            None,
            " ".join(notes),
            title,
            *legend_of(scale),
            *controls,
        )
