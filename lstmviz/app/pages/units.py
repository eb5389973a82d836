"""The Units page: every unit of a store with its explanation in words, its held-out score
and the same explanation's score on shuffled text, in a grid sorted and filtered in the
browser (Dash AG Grid), and a search box over the explanations (``/units?q=digit``),
best-scored first; each unit links to its Neuron page.

The explanations are read from the store's cache (``lstmviz explain``); where there are
none, a button computes them as a background job, its progress shown in the page."""

from __future__ import annotations

from dataclasses import dataclass

import dash
import dash_ag_grid as dag
from dash import Input, Output, State, dcc, html

from ...analysis.explain.explainer import cached_explanations, explain
from ...analysis.explain.results import Explanations, UnitExplanation
from ...core.errors import LstmvizError
from ..catalog import Catalog
from ..components import message, view_notes
from ..jobs import Job, progress_bar
from ..page import Page, callback
from ..view_state import ViewState, url_for, view_of
from .neuron import NeuronView

PATH = "/units"
HIDDEN = {"display": "none"}
COLUMNS = [
    {"field": "unit", "cellRenderer": "markdown", "width": 140},
    {"field": "explanation", "flex": 1, "filter": "agTextColumnFilter"},
    {"field": "score", "headerName": "held-out score", "width": 160, "filter": "agNumberColumnFilter"},
    {"field": "baseline", "headerName": "shuffled text", "width": 160, "filter": "agNumberColumnFilter"},
]


@dataclass(frozen=True)
class UnitsView(ViewState):
    """``/units?store=...&q=digit``"""

    store: str | None = None  # the first store when not given
    q: str = ""  # the search: the words every listed explanation holds

    def resolve(self, catalog: Catalog) -> UnitsView:
        return self.on_store(catalog)[0]


class _NotExplained(Exception):
    """The store has no cached explanations yet (so nothing is kept in the catalog)."""


def _layout() -> html.Div:
    return html.Div(
        className="page",
        children=[
            html.Div(id="units-error"),
            html.Div(
                className="controls",
                children=[
                    dcc.Input(
                        id="units-q", type="text", debounce=True, placeholder="search: digit, after import, column", size="40"
                    )
                ],
            ),
            html.Div(
                id="units-ask",
                style=HIDDEN,
                children=[html.P(id="units-none"), html.Button("Explain every unit", id="units-explain")],
            ),
            html.Div(id="units-progress"),
            dcc.Interval(id="units-poll", interval=1000, disabled=True),
            html.P(id="units-summary", className="hint"),
            html.Div(
                id="units-grid-box",
                style=HIDDEN,
                children=dag.AgGrid(
                    id="units-grid",
                    columnDefs=COLUMNS,
                    rowData=[],
                    defaultColDef={"sortable": True, "filter": True, "resizable": True},
                    style={"height": "70vh"},
                ),
            ),
        ],
    )


def unit_rows(found: Explanations, name: str, query: str) -> list[dict]:
    """The grid's rows: the units whose explanation matches ``query``, best-scored first, each
    linked to its Neuron page on store ``name``."""

    def row(u: UnitExplanation) -> dict:
        href = "/" + NeuronView(store=name, neuron=u.neuron).search()
        return {
            "unit": f"[{u.neuron}]({href})",
            "explanation": u.explanation,
            "score": round(u.score, 3),
            "baseline": round(u.baseline_score, 3),
        }

    return [row(u) for u in found.search(query)]


def _summary(found: Explanations, shown: int, query: str) -> str:
    c = found.counts()
    head = f"{c['units']:,} units; held-out score at least 0.5: {c['at_least_0.5']:,}, at least 0.8: {c['at_least_0.8']:,}."
    return f"{head} {shown:,} match {query!r}." if query.strip() else head


class UnitsPage(Page):
    path = PATH
    title = "Units"

    def layout(self) -> html.Div:
        return _layout()

    def explanations(self, name: str) -> Explanations | None:
        """The store's explanations: its cache, read once (searches then answer from memory),
        or what the page's job computed where the store keeps no cache; None before either."""
        store = self.catalog.store(name)

        def read() -> Explanations:
            units = cached_explanations(store)
            if not units:
                raise _NotExplained
            ordered = sorted(units.values(), key=lambda u: store.row_of(u["neuron"]))
            return Explanations(store.name, [UnitExplanation.from_json(u) for u in ordered])

        try:
            return self.catalog.once(("explanations", name), read)
        except _NotExplained:
            job = self.catalog.jobs.get(f"explain:{name}")
            return job.result if job is not None and job.state == "done" else None

    def explain_job(self, name: str) -> Job:
        store = self.catalog.store(name)

        def work(job: Job) -> Explanations:
            job.report(0.0, f"explaining every unit of {name}")
            return explain(
                store, on_progress=lambda done, total: job.report(done / max(total, 1), f"explained {done:,} of {total:,} units")
            )

        return self.catalog.jobs.start(f"explain:{name}", work)

    def _not_explained(self, name: str) -> dict:
        """The page before the store's units are explained: a sentence and the button, or the job's progress."""
        job = self.catalog.jobs.get(f"explain:{name}")
        hidden = {"grid_style": HIDDEN, "rows": [], "summary": None}
        if job is not None and job.state in ("queued", "running"):
            return {**hidden, "ask_style": HIDDEN, "progress": progress_bar(job), "poll_off": False}
        failed = message(f"Explaining the units failed: {job.error}") if job is not None else None
        none = f"The units of {name} are not explained yet: explain them here, once (the store keeps them)."
        return {**hidden, "ask_style": {}, "none": none, "progress": failed, "poll_off": True}

    @callback(
        Output("url", "search", allow_duplicate=True),
        Input("units-q", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def query_to_url(self, query, search):
        return url_for(view_of(UnitsView, search).replace(q=(query or "").strip()), search)

    @callback(
        {
            "message": Output("units-error", "children"),
            "q": Output("units-q", "value"),
            "ask_style": Output("units-ask", "style"),
            "none": Output("units-none", "children"),
            "progress": Output("units-progress", "children"),
            "poll_off": Output("units-poll", "disabled"),
            "summary": Output("units-summary", "children"),
            "grid_style": Output("units-grid-box", "style"),
            "rows": Output("units-grid", "rowData"),
        },
        Input("url", "search"),
        Input("units-poll", "n_intervals"),
        Input("units-explain", "n_clicks"),
    )
    def url_to_view(self, search, _tick, _clicks) -> dict:
        try:
            view = view_of(UnitsView, search).resolve(self.catalog)
            name = self.catalog.named(view.store)[0]
            if dash.ctx.triggered_id == "units-explain":
                self.explain_job(name)
        except LstmvizError as exc:
            return {"message": message(exc)}
        shown = {"message": view_notes(view), "q": view.q}
        found = self.explanations(name)
        if found is None:
            return {**shown, **self._not_explained(name)}
        rows = unit_rows(found, name, view.q)
        shown |= {"ask_style": HIDDEN, "progress": None, "poll_off": True, "grid_style": {}, "rows": rows}
        return {**shown, "summary": _summary(found, len(rows), view.q)}
