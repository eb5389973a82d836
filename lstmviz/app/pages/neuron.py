"""The Neuron page: text coloured by one neuron, its feature scores, top contexts and
histogram. The URL (``?store=...&neuron=L2.c.117&pos=1200``) holds the view, so it can be
shared and reloaded. The server sends numbers; ``assets/painter.js`` paints them."""

from __future__ import annotations

from dataclasses import dataclass, field

from dash import Input, Output, State, ctx, dcc, html, no_update

from ...analysis.ablation import EFFECT_CHARS, EFFECT_CONTROLS, cached_effect, decoder_logits
from ...analysis.contexts import contexts_at
from ...analysis.explain.explainer import cached_explanations
from ...analysis.first_views import neuron_opening
from ...analysis.summaries import SUMMARY_WIDTH
from ...core.characters import name_of
from ...core.errors import LstmvizError, NeuronError
from ...core.neurons import NeuronId, parse_unit
from ...render.figures import EMPTY_FIGURE, histogram_figure, text_payload
from .. import drives, live_text, why
from ..catalog import EFFECT_NEEDS, Catalog, NoModel, SeriesPending
from ..components import colour_legend, legend_of, legend_outputs, message, scale_picker, text_panel, view_notes
from ..jobs import progress_bar
from ..page import Page, callback, clientside
from ..view_state import ViewState, nearest_neuron, neighbour, url_for, view_of

LIVE = "nlive"  # the ids of this page's typed-text box: nlive-input, ...
WHY = "n"  # the ids of this page's click-to-attribute panel: n-why-... (app/why.py)
PATH = "/"
WINDOW = 5000  # characters painted at once


@dataclass(frozen=True)
class NeuronView(ViewState):
    """``/?store=...&neuron=L2.c.117&pos=1200&scale=split&why=1250``"""

    store: str | None = None  # the first store when not given
    neuron: str | None = None  # the store's best in_string neuron when not given
    pos: int | None = field(default=None, metadata={"label": "position"})  # the first character painted; where
    # the neuron's feature (or its strongest values) is densest when not given
    scale: str | None = None  # the colour scale; the one chosen for the neuron when not given
    why: str | None = None  # the clicked character, explained (app/why.py reads it)
    method: str | None = None  # how: why.DEFAULT_METHOD when not given

    def resolve(self, catalog: Catalog) -> NeuronView:
        """The view with the store's defaults filled in and checked against it: a store,
        neuron or position it does not have gives way to the nearest it has, said in
        ``problems``; a gate it lacks is recorded (SeriesPending). Without a position, the
        page opens where the neuron shows what it tracks (``analysis.first_views``)."""
        view, store = self.on_store(catalog)
        best = catalog.best_neuron(view.store)
        try:
            view = view.replace(neuron=str(catalog.neuron_or_wait(store, view.store, view.neuron or best)))
        except NeuronError:
            nearest, reason = nearest_neuron(store, view.neuron, best)
            view = view.corrected("neuron", str(nearest), reason)
        if view.pos is None:
            return view.replace(pos=neuron_opening(store, view.neuron))
        return view.at_position(store)


def neuron_link(name: str, neuron: str) -> dcc.Link:
    """A neuron's id, linked to its Neuron page on store ``name``."""
    return dcc.Link(neuron, href="/" + NeuronView(store=name, neuron=neuron).search(), className="neuron-link")


def _controls(catalog: Catalog) -> html.Div:
    return html.Div(
        className="controls",
        children=[
            dcc.Dropdown(id="store-pick", options=list(catalog.stores), clearable=False, className="picker"),
            dcc.Dropdown(id="neuron-pick", clearable=False, searchable=True, className="picker", placeholder="neuron"),
            html.Button("◀ prev", id="prev-neuron"),
            html.Button("next ▶", id="next-neuron"),
            dcc.Dropdown(id="doc-pick", clearable=False, searchable=True, style={"width": "22em"}, placeholder="document"),
            html.Label(["position ", dcc.Input(id="pos-input", type="number", min=0, debounce=True, style={"width": "10em"})]),
            html.Button(
                "neurons for the selection ▸",
                id="select-to-discover",
                title="Select characters in the text, then rank the neurons that fire on them (Discover)",
            ),
            scale_picker("scale-pick"),
            colour_legend("legend"),
        ],
    )


def _layout(catalog: Catalog) -> html.Div:
    return html.Div(
        className="page",
        children=[
            _controls(catalog),
            html.Div(id="neuron-error"),
            html.Div(id="selection-message", className="hint"),
            html.Div(id="neuron-explanation"),
            *text_panel("text-panel", "hover-info"),
            why.layout(WHY, panels=("text-panel",)),
            html.Div(id="painted", style={"display": "none"}),
            dcc.Store(id="text-data"),
            dcc.Interval(id="series-poll", interval=2000, disabled=True),  # while a gate is being recorded
            dcc.Store(id="options-of"),  # the store whose neurons and documents the pickers list
            dcc.Store(id="details-data"),  # drawn into the panels below by assets/details.js
            html.Div(id="details-rendered", style={"display": "none"}),
            html.Div(
                className="columns",
                children=[
                    html.Div([html.H4("Feature scores"), html.Div(id="scores")]),
                    html.Div([dcc.Graph(id="histogram", config={"displaylogo": False}, figure=EMPTY_FIGURE)]),
                ],
            ),
            html.Details(
                [html.Summary("Try your own text with this neuron"), live_text.layout(LIVE)],
                id="neuron-live",
            ),
            html.Div(
                id="effect",
                children=[
                    html.H4("Effect"),
                    html.Div(id="effect-logits"),
                    html.Div(id="effect-ablation"),
                    html.Button("Measure the ablation effect ▸", id="effect-run", style={"display": "none"}),
                    dcc.Interval(id="effect-poll", interval=1000, disabled=True),
                ],
            ),
            drives.layout(),
            html.Div(className="columns", children=[html.Div(id="contexts-high"), html.Div(id="contexts-low")]),
            html.Div(id="contexts-samples"),
        ],
    )


def _signed(value) -> str:
    return "-" if value is None else f"{value:+.4f}"


def _spread(mean, sd) -> str:
    return "-" if mean is None else f"{mean:+.4f} ± {sd:.4f}" if sd is not None else f"{mean:+.4f}"


def effect_view(data: dict) -> html.Div:
    """A measured ablation effect (``Ablation.to_json``) as the panel shows it."""
    c = data["control"]
    neuron = data["neurons"][0]
    series = parse_unit(neuron).series
    summary = (
        f"Setting {neuron} to its mean on {data['chars']:,} characters: {data['bpc']:.4f} → {data['ablated_bpc']:.4f} "
        f"bits per character ({data['bits_lost']:+.4f}); one of {c['sets']} random {series} neurons instead: "
        f"{_spread(c['ablated_bpc_mean'] - data['bpc'] if c['ablated_bpc_mean'] is not None else None, c['ablated_bpc_sd'])} "
        f"({c['as_large']} of {c['sets']} lose as much)."
    )
    head = html.Tr([html.Th(h) for h in ("feature", "characters in", "bits lost inside", "controls", "outside", "controls")])
    rows = [
        html.Tr(
            [
                html.Td(name),
                html.Td(f"{f['chars_inside']:,}"),
                html.Td(_signed(f["inside_bits"])),
                html.Td(_spread(f["control_inside_mean"], f["control_inside_sd"])),
                html.Td(_signed(f["outside_bits"])),
                html.Td(_spread(f["control_outside_mean"], f["control_outside_sd"])),
            ]
        )
        for name, f in data["by_feature"].items()
    ]
    chars = ", ".join(f"'{name_of(t['char'])}' {t['bits_lost']:+.3f}" for t in data["top_chars"])
    return html.Div(
        [
            html.P(summary),
            html.Table([head, *rows], className="scores", id="effect-table"),
            html.P(f"Characters it matters most for (bits lost, mean): {chars or 'none seen often enough'}.", className="hint"),
        ]
    )


def no_decoder_reading(neuron: str, layers: int, tagger: bool = False) -> str:
    """Why a unit has no direct reading through the decoder, saying what the unit is."""
    n = NeuronId.parse(neuron)
    if tagger:
        return f"{n}'s model tags characters: its head predicts labels, not the next character."
    through = f"layer {layers}" if n.layer < layers else f"layer {layers}'s h"
    return (
        f"{n} is {n.described}: it reaches the prediction through {through}, "
        f"so the decoder's direct reading is for L{layers}.h units."
    )


def unit_effect_note(unit: str, store_path: str) -> str:
    """What the Effect panel says of a direction or a dictionary feature: it measures single
    neurons, and the command that ablates the unit instead."""
    what = "a probe direction" if "~" in unit else "a dictionary feature"
    return (
        f"The Effect panel measures single neurons; {unit} is {what}: count the bits lost without it with "
        f"“lstmviz ablate CHECKPOINT --neurons {unit} --store {store_path}”."
    )


def logits_view(table: dict | None, neuron: str, why_none: str = "") -> html.Div:
    """The next characters a top-layer h neuron promotes and suppresses through the decoder;
    without a ``table``, ``why_none`` (:func:`no_decoder_reading`)."""
    if table is None:
        return message(why_none, hint=True)

    def listed(pairs) -> str:
        return ", ".join(f"'{name_of(ch)}' {w:+.3f}" for ch, w in pairs)

    return html.Div(
        [
            html.P(f"Through the decoder, {neuron} promotes: {listed(table['promotes'])}"),
            html.P(f"and suppresses: {listed(table['suppresses'])}"),
        ],
        id="effect-logit-table",
    )


def _context_rows(items) -> list[list]:
    """Contexts as [value, text before, the character, text after], for assets/details.js."""
    return [[round(c.value, 3), c.text[: c.offset], c.text[c.offset], c.text[c.offset + 1 :]] for c in items]


def explanation_line(store, neuron: str) -> html.Div:
    """The unit's explanation in words with its held-out score and the candidates that came
    close, where ``lstmviz explain`` has cached them (the page never waits for the search)."""
    unit = cached_explanations(store).get(str(neuron))
    if unit is None:
        return message(f"Not explained yet: run “lstmviz explain {store.path}” to explain every unit in words.", hint=True)
    close = "; ".join(f"{c['explanation']} ({c['score']:.2f})" for c in unit["candidates"][1:4])
    return html.Div(
        [
            html.P(
                [
                    html.B(unit["explanation"]),
                    f" (held-out score {unit['score']:.2f}; shuffled text {unit['baseline_score']:+.2f})",
                ]
            ),
            html.P(f"Close: {close}", className="hint") if close else None,
        ],
        className="explanation",
    )


def details_data(catalog: Catalog, store, name: str, neuron: str) -> dict:
    """What is known of a neuron over the whole store, as plain data (scores, top and
    bottom contexts, quantile samples): the browser builds the tables from it, which is
    many times cheaper on the server than a tree of Dash components. The contexts'
    positions come from the neuron's summary (prepared at start for h and c)."""
    contexts = contexts_at(store, neuron, catalog.summary(name, neuron)["contexts"], SUMMARY_WIDTH)
    scores = catalog.scores_of(name, neuron)
    return {
        "neuron": neuron,
        "scores": [[r["feature"], r["metric"], round(r["score"], 3), round(r["value"], 3), r["rank"]] for r in scores],
        "high": {"title": "Highest activations", "rows": _context_rows(contexts["high"])},
        "low": {"title": "Lowest activations", "rows": _context_rows(contexts["low"])},
        "samples": [
            {"title": f"Samples between the {key[1:]}th percentile and the next", "rows": _context_rows(items)}
            for key, items in contexts.items()
            if key.startswith("q")
        ],
    }


class NeuronPage(Page):
    path = PATH
    title = "Neuron"
    clientside = (
        clientside(
            "lstmvizDetails",
            "renderDetails",
            Output("details-rendered", "children"),
            Input("details-data", "data"),
        ),
        clientside(
            "lstmviz",
            "paintText",
            Output("painted", "children"),
            Input("text-data", "data"),
        ),
        clientside(
            "lstmviz",
            "selectionToDiscover",
            Output("url", "pathname", allow_duplicate=True),
            Output("url", "search", allow_duplicate=True),
            Output("selection-message", "children"),
            Input("select-to-discover", "n_clicks"),
            State("url", "search"),
            prevent_initial_call=True,
        ),
    )

    def layout(self) -> html.Div:
        return _layout(self.catalog)

    def parts(self) -> list:
        return [
            live_text.LiveText(self.catalog, LIVE, NeuronView),
            drives.DrivesPanel(self.catalog, NeuronView, neuron_link),
            why.WhyPanel(self.catalog, WHY, NeuronView, self._clicked, neuron_link),
        ]

    def _clicked(self, view: NeuronView) -> why.Clicked:
        view = view.resolve(self.catalog)
        return why.Clicked.in_store(self.catalog, view.store, view.neuron, "text-panel")

    @callback(
        Output("url", "search", allow_duplicate=True),
        Input("store-pick", "value"),
        Input("neuron-pick", "value"),
        Input("prev-neuron", "n_clicks"),
        Input("next-neuron", "n_clicks"),
        Input("doc-pick", "value"),
        Input("pos-input", "value"),
        Input("scale-pick", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def controls_to_url(self, store_name, neuron, _prev, _next, doc_start, pos, scale, search):
        """Apply what the user changed; values the view itself just set change nothing."""
        triggered = {t.split(".")[0] for t in ctx.triggered_prop_ids}
        try:
            raw = view_of(NeuronView, search)
            shown = raw.resolve(self.catalog)
            asked = raw.as_shown(shown)
            view = asked
            name, store = self.catalog.named(asked.store)
            if "store-pick" in triggered and store_name and store_name != name:
                return NeuronView(store=store_name).search()
            current_pos = shown.pos
            # A page's first call lists every input as triggered: a button counts only when it
            # alone was pressed.
            pressed = triggered & {"prev-neuron", "next-neuron"}
            if len(pressed) == 1 and (_prev if "prev-neuron" in pressed else _next):
                current = self.catalog.neuron(store, asked.neuron or neuron)
                view = view.replace(neuron=str(neighbour(store, current, -1 if "prev-neuron" in pressed else 1)))
            elif "neuron-pick" in triggered and neuron and neuron != asked.neuron:
                view = view.replace(neuron=neuron)
            if "doc-pick" in triggered and doc_start is not None and doc_start != store.document_at(current_pos).start:
                view = view.replace(pos=doc_start)
            elif "pos-input" in triggered and pos is not None and int(pos) != current_pos:
                view = view.replace(pos=int(pos))
            if "scale-pick" in triggered and scale and scale != (asked.scale or "default"):
                view = view.replace(scale=None if scale == "default" else scale)
        except LstmvizError:
            return no_update  # the view callback shows what is wrong with the URL
        return no_update if view == asked else url_for(view, search)

    @callback(
        {
            "text": Output("text-data", "data"),
            "message": Output("neuron-error", "children"),
            "store": Output("store-pick", "value"),
            "neuron_options": Output("neuron-pick", "options"),
            "neuron": Output("neuron-pick", "value"),
            "document_options": Output("doc-pick", "options"),
            "document": Output("doc-pick", "value"),
            "pos": Output("pos-input", "value"),
            **legend_outputs("legend"),
            "scale": Output("scale-pick", "value"),
            "options_of": Output("options-of", "data"),
            "poll_off": Output("series-poll", "disabled"),
        },
        Input("url", "search"),
        Input("series-poll", "n_intervals"),
        State("options-of", "data"),
    )
    def url_to_text(self, search, _tick, options_of) -> dict:
        """The neuron switch: the painted window and the controls (the fast part). The
        pickers' option lists are sent only when the store changes."""
        try:
            view = view_of(NeuronView, search).resolve(self.catalog)
            store = self.catalog.store(view.store)
            scale = self.catalog.scale(view.store, view.neuron, view.scale)
        except SeriesPending as exc:
            return {"text": None, "message": message(exc, progress_bar(exc.job), hint=True), "poll_off": False}
        except LstmvizError as exc:
            return {"text": None, "message": message(exc)}
        fresh = options_of != view.store
        lists = (
            {
                "neuron_options": self.catalog.unit_options(view.store),
                "document_options": self.catalog.document_options(view.store),
                "options_of": view.store,
            }
            if fresh
            else {}
        )
        return {
            "text": text_payload(store, view.neuron, view.pos, min(len(store), view.pos + WINDOW), scale),
            "message": view_notes(view),
            "store": view.store,
            "neuron": view.neuron,
            "document": store.document_at(view.pos).start,
            "pos": view.pos,
            **legend_of(scale),
            "scale": view.scale or "default",
            "poll_off": True,
            **lists,
        }

    @callback(Output("neuron-explanation", "children"), Input("url", "search"))
    def url_to_explanation(self, search):
        try:
            view = view_of(NeuronView, search).resolve(self.catalog)
        except LstmvizError:
            return None  # url_to_text shows the message
        return explanation_line(self.catalog.store(view.store), view.neuron)

    @callback(
        {"details": Output("details-data", "data"), "histogram": Output("histogram", "figure")},
        Input("url", "search"),
    )
    def url_to_details(self, search) -> dict:
        """What is known of the neuron over the whole store: scores, histogram, contexts."""
        try:
            view = view_of(NeuronView, search).resolve(self.catalog)
        except LstmvizError:
            return {}  # url_to_text shows the message
        store, neuron = self.catalog.store(view.store), view.neuron
        return {
            "details": details_data(self.catalog, store, view.store, neuron),
            "histogram": histogram_figure(self.catalog.summary(view.store, neuron)["histogram"], neuron),
        }

    @callback(
        {
            "logits": Output("effect-logits", "children"),
            "ablation": Output("effect-ablation", "children"),
            "run_style": Output("effect-run", "style"),
            "poll_off": Output("effect-poll", "disabled"),
        },
        Input("url", "search"),
        Input("effect-poll", "n_intervals"),
    )
    def url_to_effect(self, search, _tick) -> dict:
        """The neuron's effect: its decoder logits (top layer's h) and, once measured, its
        ablation effect against random controls; a running measurement shows its progress.
        A store without a model says so instead."""
        hidden = {"display": "none"}
        try:
            view = view_of(NeuronView, search).resolve(self.catalog)
            name, neuron = view.store, view.neuron
            if not isinstance(parse_unit(neuron), NeuronId):
                note = unit_effect_note(neuron, str(self.catalog.store(name).path))
                return {"logits": None, "ablation": message(note, hint=True), "run_style": hidden, "poll_off": True}
            logits = self._logits(name, neuron)
        except LstmvizError as exc:
            return {"logits": message(exc), "ablation": None, "run_style": hidden, "poll_off": True}
        measured = cached_effect(self.catalog.store(name), neuron)
        if measured is not None:
            return {"logits": logits, "ablation": effect_view(measured), "run_style": hidden, "poll_off": True}
        job = self.catalog.jobs.get(f"effect:{name}:{neuron}")
        if job is not None and job.state in ("queued", "running"):
            return {"logits": logits, "ablation": progress_bar(job), "run_style": hidden, "poll_off": False}
        if job is not None and job.state == "failed":
            return {
                "logits": logits,
                "ablation": message(f"The measurement failed: {job.error}"),
                "run_style": {},
                "poll_off": True,
            }
        note = (
            f"Not measured yet: set {neuron} to its mean on the first {EFFECT_CHARS:,} characters and compare the bits lost with "
            f"{EFFECT_CONTROLS} random neurons of the same layer and kind (a few seconds; kept in the store)."
        )
        return {"logits": logits, "ablation": message(note, hint=True), "run_style": {}, "poll_off": True}

    def _logits(self, name: str, neuron: str) -> html.Div:
        """What a top-layer h neuron does to the next character through the decoder; for a
        store without a model, NoModel."""
        if not self.catalog.has_model(name):
            raise NoModel(name, EFFECT_NEEDS)
        model = self.catalog.store(name).meta["model"]
        layers = model["num_layers"]
        n = parse_unit(neuron)
        tagger = model.get("num_labels")  # a tagger's head predicts no character
        top_h = isinstance(n, NeuronId) and (n.layer, n.kind, n.reverse) == (layers, "h", False) and not tagger
        if not top_h:
            return logits_view(None, neuron, no_decoder_reading(neuron, layers, bool(tagger)))
        ckpt = self.catalog.checkpoint(name, EFFECT_NEEDS)
        return logits_view(decoder_logits(ckpt.model, ckpt.vocab.chars, neuron), neuron)

    @callback(
        {
            "poll_off": Output("effect-poll", "disabled", allow_duplicate=True),
            "ablation": Output("effect-ablation", "children", allow_duplicate=True),
        },
        Input("effect-run", "n_clicks"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def measure_effect(self, clicks, search) -> dict:
        if not clicks:
            return {}
        try:
            view = view_of(NeuronView, search).resolve(self.catalog)
            job = self.catalog.effect(view.store, view.neuron)
        except LstmvizError as exc:
            return {"poll_off": True, "ablation": message(exc)}
        return {"poll_off": False, "ablation": progress_bar(job)}
