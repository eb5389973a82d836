"""The Model page: the recorded checkpoint's training curves, its bits per character on the
store beside the n-gram baseline's, and the error analysis of Karpathy et al. (2015, sec. 5):
the text coloured by the bits the recurrent model saves over the n-gram on each character.

The n-gram is trained on the checkpoint's whole training split, so it runs as a background
job the first time (progress shown in the page) and is cached in the store directory."""

from __future__ import annotations

import json
from pathlib import Path

from dash import Input, Output, State, dcc, html, no_update

from ...analysis.evaluate import store_bpc
from ...core.characters import name_of
from ...core.errors import LstmvizError
from ...model.checkpoint import HISTORY_FILE
from ...render.colours import symmetric_of
from ...render.figures import EMPTY_FIGURE, training_figure, values_payload
from ..catalog import Catalog
from ..jobs import progress_bar
from ..page import Page, callback, clientside
from ..view_state import changed_search, clamp_position, parse_query

PATH = "/model"
WINDOW = 3000
SHOWN_CHARS = 12  # characters at each end of the by-character table


def _layout(catalog: Catalog) -> html.Div:
    return html.Div(
        className="page",
        children=[
            html.Div(id="model-error"),
            html.Div(id="model-summary"),
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
                        ["position ", dcc.Input(id="model-pos", type="number", min=0, debounce=True, style={"width": "10em"})]
                    )
                ],
            ),
            html.Div(id="model-hover"),
            html.Div(id="model-text-panel", className="text-panel", **{"data-hover": "model-hover"}),
            html.Div(id="model-painted", style={"display": "none"}),
            dcc.Store(id="model-text-data"),
        ],
    )


def _history(store) -> dict:
    path = Path(store.checkpoint.get("path", "")) / HISTORY_FILE
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
        q = parse_query(search)
        if pos is None or str(pos) == q.get("pos", "0"):
            return no_update
        q["pos"] = str(int(pos))
        return changed_search(q, search)

    @callback(
        Output("model-error", "children"),
        Output("model-summary", "children"),
        Output("model-curves", "figure"),
        Output("model-progress", "children"),
        Output("model-poll", "disabled"),
        Output("model-bpc", "children"),
        Output("model-best-chars", "children"),
        Output("model-worst-chars", "children"),
        Output("model-text-data", "data"),
        Output("model-pos", "value"),
        Input("url", "search"),
        Input("model-poll", "n_intervals"),
    )
    def view(self, search, _tick):
        q = parse_query(search)
        try:
            name = q.get("store") or self.catalog.default
            store = self.catalog.store(name)
            try:
                pos = clamp_position(store, int(q.get("pos", 0)))
            except ValueError:
                raise LstmvizError(f"Position {q.get('pos')!r} is not a number.") from None
        except LstmvizError as exc:
            return (html.Div(str(exc), className="error"),) + (no_update,) * 9
        bpc = self.catalog.once(("bpc", name), lambda: store_bpc(store))  # the page polls: read once
        history = self.catalog.once(("history", name), lambda: _history(store))
        job = self.catalog.model_errors(name)
        reference = {"model on this store": bpc}
        if job.state != "done":  # the n-gram comparison is queued, running or failed
            running = job.state in ("queued", "running")
            note = progress_bar(job) if running else html.Div(f"The n-gram comparison failed: {job.error}", className="error")
            model_bpc = html.P(f"Model: {bpc:.4f} bits per character.")
            curves = training_figure(history, reference)
            return None, _summary(store), curves, note, not running, model_bpc, None, None, None, pos
        base = job.result["baseline"]
        reference[f"{base['order']}-gram on this store"] = base["bpc"]
        table, advantage = job.result["table"], job.result["advantage"]
        stop = min(len(store), pos + WINDOW)
        payload = values_payload(
            store, advantage[pos:stop], "bits saved", pos, symmetric_of(advantage, "bits saved over the n-gram")
        )
        return (
            None,
            _summary(store),
            training_figure(history, reference),
            None,
            True,
            _bpc_table(bpc, base),
            _char_table(table[:SHOWN_CHARS], "Where the model beats the n-gram most"),
            _char_table(table[::-1][:SHOWN_CHARS], "Where the n-gram does better"),
            payload,
            pos,
        )
