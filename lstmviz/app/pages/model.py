"""The Model page: the store's best cell per feature beside those of the other stores open
here (the code model's quote cell beside the prose model's line cell), the recorded
checkpoint's training curves, its bits per character on the store beside the n-gram
baseline's, and the error analysis of Karpathy et al. (2015, sec. 5): the text coloured by
the bits the recurrent model saves over the n-gram on each character.

The n-gram is trained on the checkpoint's whole training split, so it runs as a background
job the first time (progress shown in the page) and is cached in the store directory."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from dash import Input, Output, State, dcc, html

from ...analysis.evaluate import store_bpc
from ...analysis.rankings import signed_reading
from ...core.characters import name_of
from ...core.errors import LstmvizError
from ...model.checkpoint import HISTORY_FILE, recorded_path
from ...render.colours import symmetric_of
from ...render.figures import EMPTY_FIGURE, training_figure, values_payload
from ..catalog import Catalog, NoModel
from ..components import HIDDEN, colour_legend, legend_of, legend_outputs, message, text_panel, view_notes
from ..jobs import progress_bar
from ..page import Page, callback, clientside
from ..view_state import ViewState, url_for, view_of
from .neuron import neuron_link

PATH = "/model"
WINDOW = 3000
SHOWN_CHARS = 12  # characters at each end of the by-character table


@dataclass(frozen=True)
class ModelView(ViewState):
    """``/model?store=...&pos=1200``"""

    store: str | None = None  # the first store when not given
    pos: int = field(default=0, metadata={"label": "position"})  # the first character of the bits-saved text

    def resolve(self, catalog: Catalog) -> ModelView:
        view, store = self.on_store(catalog)
        return view.at_position(store)


def _layout(catalog: Catalog) -> html.Div:
    return html.Div(
        className="page",
        children=[
            html.Div(id="model-error"),
            html.Div(id="model-summary"),
            html.H3("Best cells"),
            html.P(
                "Each feature's best h or c neuron in this store and in the others open here "
                "(AUROC for yes/no features, Spearman's rho for numbers; find-cells ranks them all).",
                className="hint",
            ),
            html.Div(id="model-cells"),
            html.Div(  # what needs the checkpoint: hidden for a store written without one
                id="model-of-checkpoint",
                children=[
                    dcc.Graph(id="model-curves", config={"displaylogo": False}, figure=EMPTY_FIGURE),
                    html.H3("Against the n-gram baseline"),
                    html.Div(id="model-progress"),
                    dcc.Interval(id="model-poll", interval=1000, disabled=True),
                    html.Div(id="model-bpc"),
                    html.Div(
                        className="columns",
                        children=[html.Div(id="model-best-chars"), html.Div(id="model-worst-chars")],
                    ),
                    html.H3("Bits saved over the n-gram, per character"),
                    html.P(
                        "Red: the recurrent model gave the character more probability than the n-gram "
                        "(log2 ratio, bits); blue: the n-gram did better.",
                        className="hint",
                    ),
                    html.Div(
                        className="controls",
                        children=[
                            html.Label(
                                [
                                    "position ",
                                    dcc.Input(id="model-pos", type="number", min=0, debounce=True, style={"width": "10em"}),
                                ]
                            ),
                            html.Div(id="model-legend-box", style=HIDDEN, children=colour_legend("model-legend")),
                        ],
                    ),
                    *text_panel("model-text-panel", "model-hover"),
                    html.Div(id="model-painted", style={"display": "none"}),
                    dcc.Store(id="model-text-data"),
                ],
            ),
        ],
    )


def _history(store) -> dict:
    if not store.checkpoint.get("path"):
        return {}
    path = recorded_path(store.checkpoint) / HISTORY_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _summary(store) -> html.P:
    m = store.meta["model"]
    return html.P(
        f"{store.checkpoint.get('id', '?')}: a {m['num_layers']}-layer {m['cell'].upper()} "
        f"with {m['hidden_size']} units per layer, "
        f"{m['vocab_size']} characters; recorded on {len(store):,} characters in {len(store.documents)} documents ({store.name})."
    )


def _activations_summary(store) -> html.P:
    """What a store written without a model holds."""
    series = ", ".join(f"{s.neuron(0).series} ({s.units} units)" for s in store.series)
    return html.P(f"{store.name}: {len(store):,} characters in {len(store.documents)} documents; activations of {series}.")


def best_cells(catalog: Catalog, name: str) -> html.Table:
    """Each feature's best cell in store ``name``, then in every other open store, side by
    side; a feature a store's text lacks (or that was not ranked) shows a dash."""
    names = [name, *(n for n in catalog.stores if n != name)]
    rankings = {n: catalog.rankings(n) for n in names}
    features = list(dict.fromkeys(f for n in names for f in rankings[n]))

    def cell(store: str, feature: str) -> list | str:
        ranking = rankings[store].get(feature)
        if not ranking or not ranking["rows"]:
            return "-"
        best = ranking["rows"][0]
        return [neuron_link(store, best["neuron"]), f" {signed_reading(ranking['metric'], best['value'])}"]

    head = html.Tr([html.Th("feature"), *(html.Th(n) for n in names)])
    rows = [html.Tr([html.Td(f), *(html.Td(cell(n, f)) for n in names)]) for f in features]
    return html.Table([head, *rows], className="scores", id="model-cells-table")


def _char_table(rows: list[dict], title: str) -> html.Div:
    body = [
        html.Tr(
            [
                html.Td(name_of(r["char"])),
                html.Td(f"{r['count']:,}"),
                html.Td(f"{r['advantage']:+.3f}"),
                html.Td(f"{r['lstm_bits']:.3f}"),
                html.Td(f"{r['ngram_bits']:.3f}"),
            ]
        )
        for r in rows
    ]
    head = html.Tr([html.Th(h) for h in ("char", "count", "bits saved", "model bits", "n-gram bits")])
    return html.Div([html.H4(title), html.Table([head, *body], className="scores")])


def _bpc_table(bpc: float, base: dict) -> html.Table:
    return html.Table(
        [
            html.Tr([html.Th(h) for h in ("model", "bits per character")]),
            html.Tr([html.Td("recurrent model (recorded)"), html.Td(f"{bpc:.4f}")]),
            html.Tr([html.Td(f"{base['name']}, order {base['order']} (best of 1-20)"), html.Td(f"{base['bpc']:.4f}")]),
            html.Tr([html.Td("model below the n-gram"), html.Td(f"{100 * (1 - bpc / base['bpc']):.1f}%")]),
        ],
        className="scores",
    )


class ModelPage(Page):
    path = PATH
    title = "Model"
    clientside = (
        clientside(
            "lstmviz",
            "paintModelText",
            Output("model-painted", "children"),
            Input("model-text-data", "data"),
        ),
    )

    def layout(self) -> html.Div:
        return _layout(self.catalog)

    @callback(
        Output("url", "search", allow_duplicate=True),
        Input("model-pos", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def position_to_url(self, pos, search):
        view = view_of(ModelView, search)
        return url_for(view if pos is None else view.replace(pos=int(pos)), search)

    @callback(
        {
            "message": Output("model-error", "children"),
            "summary": Output("model-summary", "children"),
            "curves": Output("model-curves", "figure"),
            "progress": Output("model-progress", "children"),
            "poll_off": Output("model-poll", "disabled"),
            "bpc": Output("model-bpc", "children"),
            "best_chars": Output("model-best-chars", "children"),
            "worst_chars": Output("model-worst-chars", "children"),
            "text": Output("model-text-data", "data"),
            "pos": Output("model-pos", "value"),
            "checkpoint_style": Output("model-of-checkpoint", "style"),
            "cells": Output("model-cells", "children"),
            "legend_style": Output("model-legend-box", "style"),  # shown with the painted text
            **legend_outputs("model-legend"),
        },
        Input("url", "search"),
        Input("model-poll", "n_intervals"),
    )
    def url_to_view(self, search, _tick) -> dict:
        try:
            view = view_of(ModelView, search).resolve(self.catalog)
        except LstmvizError as exc:
            return {"message": message(exc)}
        name, store = self.catalog.named(view.store)
        # empty until the n-gram is done
        until_done = {**dict.fromkeys(("progress", "bpc", "best_chars", "worst_chars", "text")), "legend_style": HIDDEN}
        cells = self.catalog.once(("best cells", name), lambda: best_cells(self.catalog, name))  # the page polls: build once
        if not self.catalog.has_model(name):
            missing = NoModel(name, "draw its training curves or compare its model with the n-gram baseline")
            shown = {"message": message(missing), "summary": _activations_summary(store), "pos": view.pos, "cells": cells}
            return {**shown, **until_done, "curves": EMPTY_FIGURE, "poll_off": True, "checkpoint_style": {"display": "none"}}
        bpc = self.catalog.once(("bpc", name), lambda: store_bpc(store))  # the page polls: read once
        history = self.catalog.once(("history", name), lambda: _history(store))
        job = self.catalog.model_errors(name)
        reference = {"model on this store": bpc}
        shown = {"message": view_notes(view), "summary": _summary(store), "pos": view.pos, "checkpoint_style": {}, "cells": cells}
        if job.state != "done":  # the n-gram comparison is queued, running or failed
            running = job.state in ("queued", "running")
            note = progress_bar(job) if running else message(f"The n-gram comparison failed: {job.error}")
            model_bpc = html.P(f"Model: {bpc:.4f} bits per character.")
            curves = training_figure(history, reference)
            return {**shown, **until_done, "curves": curves, "progress": note, "poll_off": not running, "bpc": model_bpc}
        base = job.result["baseline"]
        reference[f"{base['order']}-gram on this store"] = base["bpc"]
        table, advantage = job.result["table"], job.result["advantage"]
        stop = min(len(store), view.pos + WINDOW)
        scale = symmetric_of(advantage, "bits saved over the n-gram")
        return {
            **shown,
            "curves": training_figure(history, reference),
            "progress": None,
            "poll_off": True,
            "bpc": _bpc_table(bpc, base),
            "best_chars": _char_table(table[:SHOWN_CHARS], "Where the model beats the n-gram most"),
            "worst_chars": _char_table(table[::-1][:SHOWN_CHARS], "Where the n-gram does better"),
            "text": values_payload(store, advantage[view.pos : stop], "bits saved", view.pos, scale),
            **_legend(scale),
        }


def _legend(scale) -> dict:
    """The painted text's legend: the scale's ends, each with the side it means."""
    legend = legend_of(scale)
    return {
        **legend,
        "legend_low": f"{legend['legend_low']} (the n-gram better)",
        "legend_high": f"{legend['legend_high']} (the model better)",
        "legend_style": {},
    }
