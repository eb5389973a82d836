"""The Neuron page: text coloured by one neuron, its feature scores, top contexts and
histogram. The URL (``?store=...&neuron=L2.c.117&pos=1200``) holds the view, so it can be
shared and reloaded. The server sends numbers; ``assets/painter.js`` paints them."""

from __future__ import annotations

from urllib.parse import urlencode

from dash import Input, Output, State, ctx, dcc, html, no_update

from ...analysis.ablation import EFFECT_CHARS, EFFECT_CONTROLS, cached_effect, decoder_logits
from ...analysis.contexts import contexts_at
from ...analysis.summaries import SUMMARY_WIDTH
from ...core.errors import LstmvizError
from ...render.figures import EMPTY_FIGURE, histogram_figure, text_payload
from .. import live_text
from ..catalog import Catalog, SeriesPending
from ..components import colour_legend, legend_of, scale_picker
from ..jobs import progress_bar
from ..page import Page, callback, clientside
from ..view_state import changed_search, clamp_position, neighbour, parse_query

LIVE = "nlive"  # the ids of this page's typed-text box: nlive-input, ...
PATH = "/"
WINDOW = 5000  # characters painted at once


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
            html.Div(id="hover-info"),
            html.Div(id="text-panel", className="text-panel", **{"data-hover": "hover-info"}),
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
    series = neuron.rsplit(".", 1)[0]
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
    shown = {"\n": "\\n", " ": "space", "\t": "\\t"}
    chars = ", ".join(f"'{shown.get(t['char'], t['char'])}' {t['bits_lost']:+.3f}" for t in data["top_chars"])
    return html.Div(
        [
            html.P(summary),
            html.Table([head, *rows], className="scores", id="effect-table"),
            html.P(f"Characters it matters most for (bits lost, mean): {chars or 'none seen often enough'}.", className="hint"),
        ]
    )


def logits_view(table: dict | None, neuron: str, layers: int) -> html.Div:
    """The next characters a top-layer h neuron promotes and suppresses through the decoder."""
    if table is None:
        note = f"Only layer {layers}'s h feeds the decoder directly; its neurons list the characters they promote."
        return html.P(note, className="hint")
    shown = {"\n": "\\n", " ": "space", "\t": "\\t"}

    def listed(pairs) -> str:
        return ", ".join(f"'{shown.get(ch, ch)}' {w:+.3f}" for ch, w in pairs)

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
        return [live_text.LiveText(self.catalog, LIVE)]

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
        q = parse_query(search)
        triggered = {t.split(".")[0] for t in ctx.triggered_prop_ids}
        try:
            store = self.catalog.store(q.get("store"))
            if "store-pick" in triggered and store_name and store_name != (q.get("store") or self.catalog.default):
                return "?" + urlencode({"store": store_name})
            current_pos = clamp_position(store, int(q.get("pos", 0) or 0))
            # A page's first call lists every input as triggered: a button counts only when it
            # alone was pressed.
            pressed = triggered & {"prev-neuron", "next-neuron"}
            if len(pressed) == 1 and (_prev if "prev-neuron" in pressed else _next):
                current = self.catalog.neuron(store, q.get("neuron") or neuron)
                q["neuron"] = str(neighbour(store, current, -1 if "prev-neuron" in pressed else 1))
            elif "neuron-pick" in triggered and neuron and neuron != q.get("neuron"):
                q["neuron"] = neuron
            if "doc-pick" in triggered and doc_start is not None and doc_start != store.document_at(current_pos).start:
                q["pos"] = str(doc_start)
            elif "pos-input" in triggered and pos is not None and int(pos) != current_pos:
                q["pos"] = str(int(pos))
            if "scale-pick" in triggered and scale and scale != q.get("scale", "default"):
                q.pop("scale", None) if scale == "default" else q.update(scale=scale)
        except (LstmvizError, ValueError):
            return no_update  # the view callback shows what is wrong with the URL
        return changed_search(q, search)

    def view_of(self, search):
        """The store, its name, the neuron and the position a URL asks for; a bad one is an error."""
        q = parse_query(search)
        store = self.catalog.store(q.get("store"))
        name = q.get("store") or self.catalog.default
        neuron = str(self.catalog.neuron_or_wait(store, name, q.get("neuron") or self.catalog.best_neuron(name)))
        try:
            pos = clamp_position(store, int(q.get("pos", 0)))
        except ValueError:
            raise LstmvizError(f"Position {q.get('pos')!r} is not a number.") from None
        return store, name, neuron, pos

    @callback(
        Output("text-data", "data"),
        Output("neuron-error", "children"),
        Output("store-pick", "value"),
        Output("neuron-pick", "options"),
        Output("neuron-pick", "value"),
        Output("doc-pick", "options"),
        Output("doc-pick", "value"),
        Output("pos-input", "value"),
        Output("legend-low", "children"),
        Output("legend-high", "children"),
        Output("legend-label", "children"),
        Output("scale-pick", "value"),
        Output("options-of", "data"),
        Output("series-poll", "disabled"),
        Input("url", "search"),
        Input("series-poll", "n_intervals"),
        State("options-of", "data"),
    )
    def url_to_text(self, search, _tick, options_of):
        """The neuron switch: the painted window and the controls (the fast part). The
        pickers' option lists are sent only when the store changes."""
        try:
            store, name, neuron, pos = self.view_of(search)
        except SeriesPending as exc:
            return (None, html.Div([str(exc), progress_bar(exc.job)], className="hint"), *([no_update] * 11), False)
        except LstmvizError as exc:
            return (None, html.Div(str(exc), className="error"), *([no_update] * 12))
        stop = min(len(store), pos + WINDOW)
        scale_name = parse_query(search).get("scale")
        try:
            scale = self.catalog.scale(name, neuron, scale_name)
        except LstmvizError as exc:
            return (None, html.Div(str(exc), className="error"), *([no_update] * 12))
        fresh = options_of != name
        return (
            text_payload(store, neuron, pos, stop, scale),
            None,
            name,
            self.catalog.neuron_options(name) if fresh else no_update,
            neuron,
            self.catalog.document_options(name) if fresh else no_update,
            store.document_at(pos).start,
            pos,
            *legend_of(scale),
            scale_name or "default",
            name if fresh else no_update,
            True,
        )

    @callback(
        Output("details-data", "data"),
        Output("histogram", "figure"),
        Input("url", "search"),
    )
    def url_to_details(self, search):
        """What is known of the neuron over the whole store: scores, histogram, contexts."""
        try:
            store, name, neuron, _ = self.view_of(search)
        except LstmvizError:
            return no_update, no_update  # url_to_text shows the message
        figure = histogram_figure(self.catalog.summary(name, neuron)["histogram"], neuron)
        return details_data(self.catalog, store, name, neuron), figure

    @callback(
        Output("effect-logits", "children"),
        Output("effect-ablation", "children"),
        Output("effect-run", "style"),
        Output("effect-poll", "disabled"),
        Input("url", "search"),
        Input("effect-poll", "n_intervals"),
    )
    def url_to_effect(self, search, _tick):
        """The neuron's effect: its decoder logits (top layer's h) and, once measured, its
        ablation effect against random controls; a running measurement shows its progress."""
        hidden, shown = {"display": "none"}, {}
        try:
            store, name, neuron, _ = self.view_of(search)
            if not store.meta.get("model"):  # activations a user wrote: no model to run
                note = "The effect needs the model that recorded this store; this store was written without one."
                return html.P(note, className="hint"), None, hidden, True
            layers = store.meta["model"]["num_layers"]
            tagger = store.meta["model"].get("num_labels")  # a tagger's head is no next-character decoder
            top_h = neuron.startswith(f"L{layers}.h.") and not tagger
            ckpt = self.catalog.checkpoint(name) if top_h else None
            logits = logits_view(decoder_logits(ckpt.model, ckpt.vocab.chars, neuron) if top_h else None, neuron, layers)
        except LstmvizError as exc:
            return html.Div(str(exc), className="error"), None, hidden, True
        measured = cached_effect(store, neuron)
        if measured is not None:
            return logits, effect_view(measured), hidden, True
        job = self.catalog.jobs.get(f"effect:{name}:{neuron}")
        if job is not None and job.state in ("queued", "running"):
            return logits, progress_bar(job), hidden, False
        if job is not None and job.state == "failed":
            return logits, html.Div(f"The measurement failed: {job.error}", className="error"), shown, True
        note = (
            f"Not measured yet: set {neuron} to its mean on the first {EFFECT_CHARS:,} characters and compare the bits lost with "
            f"{EFFECT_CONTROLS} random neurons of the same layer and kind (a few seconds; kept in the store)."
        )
        return logits, html.P(note, className="hint"), shown, True

    @callback(
        Output("effect-poll", "disabled", allow_duplicate=True),
        Output("effect-ablation", "children", allow_duplicate=True),
        Input("effect-run", "n_clicks"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def measure_effect(self, clicks, search):
        if not clicks:
            return no_update, no_update
        try:
            _, name, neuron, _ = self.view_of(search)
            job = self.catalog.effect(name, neuron)
        except LstmvizError as exc:
            return True, html.Div(str(exc), className="error")
        return False, progress_bar(job)
