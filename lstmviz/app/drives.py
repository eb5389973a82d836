"""The Neuron page's "What drives it" panel: the circuit into the current unit
(``analysis/circuits.py``), two levels back. Its gates' top sources, and those sources' own
top sources, drawn as a small graph in three columns (sources' sources, sources, the unit's
gates; an edge's colour is its sign, its width its size, each node a link to its own Neuron
page), beside each gate's top sources listed, and the causal check's line.

It is summed over the positions of the unit's best binary feature (the one it ranks highest
for) where it has one, else over the whole store, and computed as a background job (the
causal check reruns the model), kept in the store's cache."""

from __future__ import annotations

import math
from collections.abc import Callable

import dash
from dash import Input, Output, State, dcc, html

from ..analysis.circuits import CHECK_CONTROLS, TOP_SOURCES, Circuit, Selection, check_line, circuit
from ..core.errors import LstmvizError
from ..core.neurons import NeuronId, parse_unit
from ..render.colours import COLOUR_STOPS
from ..store.cache import cached, read_cached
from .catalog import Catalog, NoModel
from .components import HIDDEN, message
from .jobs import Job, progress_bar
from .page import CallbackSpec, register_callback
from .view_state import ViewState, view_of

NEEDS = "read the circuit into a unit"  # what a store without a model cannot do
SECOND = 3  # edges drawn into each top source
POSITIVE, NEGATIVE = (f"rgb{COLOUR_STOPS[k][1]}" for k in (9, 1))
NODE_W, NODE_H, ROW_H, COLUMN_X = 150, 24, 32, (0, 300, 600)  # the graph's geometry, in pixels

Link = Callable[[str, str], dcc.Link]  # (store name, neuron) -> a link to its Neuron page


def layout() -> html.Div:
    return html.Div(
        id="drives",
        children=[
            html.H4("What drives it"),
            html.Div(id="drives-body"),
            html.Button("Find what drives it ▸", id="drives-run", style=HIDDEN),
            dcc.Interval(id="drives-poll", interval=1000, disabled=True),
        ],
    )


def best_feature(catalog: Catalog, name: str, neuron: str) -> str | None:
    """The binary feature the unit ranks highest for (AUROC rankings that list it), or None."""
    ranked = [s for s in catalog.scores_of(name, neuron) if s["metric"] == "auroc"]
    return min(ranked, key=lambda s: s["rank"])["feature"] if ranked else None


def _cache_name(neuron: str, feature: str | None) -> str:
    return f"drives-v1-{neuron}-{feature or 'all'}-{TOP_SOURCES}x{CHECK_CONTROLS}.json"


def _explainable(catalog: Catalog, name: str, neuron: str) -> NeuronId:
    """The unit, if the circuit can read it; else one sentence why not."""
    if not catalog.has_model(name):
        raise NoModel(name, NEEDS)
    unit = parse_unit(neuron)
    if not isinstance(unit, NeuronId):
        raise LstmvizError(
            f"{neuron} is a direction or dictionary feature: the circuit reads one unit's gates, not a mix of units."
        )
    if catalog.store(name).meta["model"].get("bidirectional"):
        raise LstmvizError("A bidirectional tagger's circuit is not read: its backward direction has no step before.")
    return unit


def drives_data(found: Circuit) -> dict:
    """What the panel shows of a circuit, as plain data (kept in the store's cache)."""
    edges = lambda unit, k: [{"gate": t.gate, "source": t.source, "contribution": t.contribution} for t in unit.top_edges(k)]  # noqa: E731
    return {
        **found.unit.to_json(found.top_k),
        "selection": found.selection,
        "edges": edges(found.unit, found.top_k),
        "sources": {name: edges(unit, SECOND) for name, unit in found.sources.items()},
        "check": None if found.check is None else found.check.to_json(),
    }


def compute(catalog: Catalog, name: str, neuron: str, feature: str | None, job: Job) -> dict:
    """The circuit of ``neuron`` over ``feature``'s positions (None: the whole store), kept."""
    store, ckpt = catalog.store(name), catalog.checkpoint(name, NEEDS)

    def work() -> dict:
        selection = Selection.of_store(store, feature)
        return drives_data(circuit(ckpt, store, neuron, selection, on_progress=job.report))

    return cached(store, _cache_name(neuron, feature), work)


def _node(text: str, name: str, x: int, y: int, link: Link, extra: str = "") -> html.Div:
    shown = link(name, text) if _is_neuron(text) else html.Span(text)
    style = {"position": "absolute", "left": x, "top": y, "width": NODE_W, "height": NODE_H}
    return html.Div([shown, html.Span(extra, className="hint")], className="drives-node", style=style)


def _is_neuron(text: str) -> bool:
    try:
        return isinstance(parse_unit(text), NeuronId)
    except LstmvizError:
        return False


def _edge(a: tuple[int, int], b: tuple[int, int], contribution: float, largest: float, title: str) -> html.Div:
    """A line from the right of node ``a`` to the left of node ``b``: a rotated bar."""
    (x1, y1), (x2, y2) = (a[0] + NODE_W, a[1] + NODE_H / 2), (b[0], b[1] + NODE_H / 2)
    width = 1 + 7 * abs(contribution) / largest
    style = {
        "position": "absolute",
        "left": x1,
        "top": y1 - width / 2,
        "width": math.hypot(x2 - x1, y2 - y1),
        "height": width,
        "background": POSITIVE if contribution >= 0 else NEGATIVE,
        "transform": f"rotate({math.atan2(y2 - y1, x2 - x1):.4f}rad)",
        "transformOrigin": "0 50%",
        "opacity": 0.8,
    }
    return html.Div(className="drives-edge", title=title, style=style)


def graph_view(data: dict, name: str, link: Link) -> html.Div:
    """The graph: the unit's gates (right), its top sources (middle), theirs (left)."""
    gates = list(data["gates"])
    first = list(dict.fromkeys(e["source"] for e in data["edges"]))
    second = list(dict.fromkeys(e["source"] for edges in data["sources"].values() for e in edges))
    place = {("gate", g): (COLUMN_X[2], (k + 1) * ROW_H) for k, g in enumerate(gates)}  # row 0: the headings
    place |= {("first", s): (COLUMN_X[1], (k + 1) * ROW_H) for k, s in enumerate(first)}
    place |= {("second", s): (COLUMN_X[0], (k + 1) * ROW_H) for k, s in enumerate(second)}
    every = [e["contribution"] for e in data["edges"]] + [e["contribution"] for v in data["sources"].values() for e in v]
    largest = max(map(abs, every), default=1.0) or 1.0
    lines = [
        _edge(place["first", e["source"]], place["gate", e["gate"]], e["contribution"], largest, _title(e, data["neuron"]))
        for e in data["edges"]
    ]
    lines += [
        _edge(place["second", e["source"]], place["first", target], e["contribution"], largest, _title(e, target))
        for target, edges in data["sources"].items()
        for e in edges
    ]
    nodes = [_node(data["neuron"], name, *place["gate", g], link, f" {g}") for g in gates]
    nodes += [_node(s, name, *place["first", s], link) for s in first]
    nodes += [_node(s, name, *place["second", s], link) for s in second]
    headings = [
        html.Div(text, className="hint", style={"position": "absolute", "left": x, "top": 0})
        for text, x in zip(("their top sources", "its top sources", "its gates"), COLUMN_X, strict=True)
    ]
    height = ROW_H * (1 + max(len(gates), len(first), len(second), 1))
    style = {"position": "relative", "height": height, "width": COLUMN_X[2] + NODE_W + 40}
    return html.Div([*headings, *lines, *nodes], id="drives-graph", className="drives-graph", style=style)


def _title(edge: dict, target: str) -> str:
    return f"{edge['source']} → {target} via {edge['gate']}: {edge['contribution']:+.3f}"


def sources_table(data: dict, name: str, link: Link) -> html.Table:
    """Each gate's mean pre-activation and its top sources (mean term each), largest first."""
    cell = lambda s: link(name, s) if _is_neuron(s) else s  # noqa: E731
    head = html.Tr([html.Th("gate"), html.Th("mean pre-activation"), html.Th("top sources (mean term)")])
    rows = [
        html.Tr(
            [
                html.Td(gate),
                html.Td(f"{data['pre_activation'][gate]:+.3f}"),
                html.Td(
                    [html.Span([cell(t["source"]), f" ({t['contribution']:+.3f}) "], className="drives-source") for t in terms]
                ),
            ],
            className="drives-gate",
            **{"data-gate": gate},
        )
        for gate, terms in data["gates"].items()
    ]
    return html.Table([head, *rows], className="scores", id="drives-table")


def drives_view(data: dict, name: str, link: Link) -> html.Div:
    where = f"over {data['selection']} ({data['positions']:,} positions)"
    parts = [
        html.Div(
            f"{data['neuron']}'s gates {where}: each source's mean term in them; edges into its top sources too.",
            className="hint",
        ),
        graph_view(data, name, link),
        sources_table(data, name, link),
    ]
    if data["check"] is not None:
        parts.append(html.Div("Causal check: " + check_line(data["check"]) + ".", id="drives-check"))
    return html.Div(parts)


class DrivesPanel:
    """The panel's callbacks on one page, whose view (``view_type``, a ViewState with ``store``
    and ``neuron`` and a ``resolve(catalog)``) names the unit."""

    def __init__(self, catalog: Catalog, view_type: type[ViewState], link: Link):
        self.catalog, self.view_type, self.link = catalog, view_type, link

    def register(self, app: dash.Dash, path: str) -> None:
        outputs = {
            "body": Output("drives-body", "children"),
            "run_style": Output("drives-run", "style"),
            "poll_off": Output("drives-poll", "disabled"),
        }
        register_callback(
            app, path, self.show, CallbackSpec(outputs, (Input("url", "search"), Input("drives-poll", "n_intervals")))
        )
        started = {
            "body": Output("drives-body", "children", allow_duplicate=True),
            "poll_off": Output("drives-poll", "disabled", allow_duplicate=True),
        }
        deps = (Input("drives-run", "n_clicks"), State("url", "search"))
        register_callback(app, path, self.run, CallbackSpec(started, deps, {"prevent_initial_call": True}))

    def _asked(self, search) -> tuple[str, str, str | None]:
        view = view_of(self.view_type, search).resolve(self.catalog)
        _explainable(self.catalog, view.store, view.neuron)
        return view.store, view.neuron, best_feature(self.catalog, view.store, view.neuron)

    def show(self, search, _tick) -> dict:
        """The circuit once computed; a running job's progress; else what Run would do."""
        try:
            name, neuron, feature = self._asked(search)
        except LstmvizError as exc:
            return {"body": message(exc), "run_style": HIDDEN, "poll_off": True}
        found = read_cached(self.catalog.store(name), _cache_name(neuron, feature))
        job = self.catalog.jobs.get(f"drives:{name}:{neuron}:{feature}")
        if found is None and job is not None and job.state == "done":  # a store that keeps no cache
            found = job.result
        if found is not None:
            return {"body": drives_view(found, name, self.link), "run_style": HIDDEN, "poll_off": True}
        if job is not None and job.state in ("queued", "running"):
            return {"body": progress_bar(job), "run_style": HIDDEN, "poll_off": False}
        if job is not None and job.state == "failed":
            return {"body": message(f"The circuit could not be read: {job.error}"), "run_style": {}, "poll_off": True}
        where = f"the positions of {feature}, the feature it ranks highest for" if feature else "the whole store"
        note = (
            f"Not read yet: split each gate of {neuron} into one term per source over {where}, two levels back, "
            f"and cut its top {TOP_SOURCES} edges beside random ones "
            "(the cuts rerun the model: up to a minute or two; kept in the store)."
        )
        return {"body": message(note, hint=True), "run_style": {}, "poll_off": True}

    def run(self, clicks, search) -> dict:
        if not clicks:
            return {}
        try:
            name, neuron, feature = self._asked(search)
            key = f"drives:{name}:{neuron}:{feature}"
            job = self.catalog.jobs.start(key, lambda job: compute(self.catalog, name, neuron, feature, job))
        except LstmvizError as exc:
            return {"poll_off": True, "body": message(exc)}
        return {"poll_off": False, "body": progress_bar(job)}
