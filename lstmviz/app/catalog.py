"""The stores a running dashboard serves, by name, with their rankings computed once.

The browser only ever names a store from this catalog; no file path from a request is read.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode

import numpy as np

from ..analysis import gate_saturation, rank_neurons
from ..errors import StoreError
from ..features import store_features
from ..render import symmetric_limit
from ..store import ActivationStore, NeuronId

RANKINGS_CACHE = "rankings-v1.json"  # written inside the store directory
RANKED_KINDS = ("h", "c")


@dataclass
class Catalog:
    stores: dict[str, ActivationStore]
    _rankings: dict[str, dict] = field(default_factory=dict)
    _limits: dict[tuple[str, str], float] = field(default_factory=dict)
    _saturation: dict[str, object] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, stores: list[ActivationStore]) -> Catalog:
        named = {}
        for s in stores:
            name = s.name
            k = 2
            while name in named:
                name, k = f"{s.name}-{k}", k + 1
            named[name] = s
        if not named:
            raise StoreError("The dashboard needs at least one store.")
        return cls(named)

    @property
    def default(self) -> str:
        return next(iter(self.stores))

    def store(self, name: str | None) -> ActivationStore:
        if name in (None, ""):
            return self.stores[self.default]
        if name not in self.stores:
            raise StoreError(f"No store named {name!r} is open here; open ones: {', '.join(self.stores)}.")
        return self.stores[name]

    def neuron(self, store: ActivationStore, text: str | None) -> NeuronId:
        n = NeuronId.parse(text or "")
        store.row_of(n)  # validates layer, kind and index against the store
        return n

    def rankings(self, name: str) -> dict:
        """{feature: {"metric", "rows": [{"neuron", "score", "value", "pearson"}]}} for h and c,
        read from the store's cache or computed once (and cached)."""
        with self._lock:
            if name in self._rankings:
                return self._rankings[name]
            store = self.store(name)
            cache = store.path / RANKINGS_CACHE
            data = None
            if cache.is_file():
                try:
                    data = json.loads(cache.read_text())
                except json.JSONDecodeError:
                    data = None
            if data is None:
                ranked = rank_neurons(store, store_features(store), RANKED_KINDS)
                data = {f: {"metric": r.metric, "rows": r.to_json()} for f, r in ranked.items()}
                try:
                    cache.write_text(json.dumps(data))
                except OSError:
                    pass  # a read-only store still works, only slower to start
            self._rankings[name] = data
            return data

    def best_neuron(self, name: str, feature: str = "in_string") -> str:
        rows = self.rankings(name).get(feature, {}).get("rows", [])
        return rows[0]["neuron"] if rows else str(self.store(name).neuron_ids()[0])

    def scores_of(self, name: str, neuron: str) -> list[dict]:
        out = []
        for feature, r in self.rankings(name).items():
            for rank, row in enumerate(r["rows"], 1):
                if row["neuron"] == neuron:
                    out.append({"feature": feature, "metric": r["metric"], "rank": rank, **row})
                    break
        return out

    def saturation(self, name: str):
        """Gate saturation table of a store, computed once."""
        if name not in self._saturation:
            self._saturation[name] = gate_saturation(self.store(name))
        return self._saturation[name]

    def limit(self, name: str, neuron: str) -> float:
        """The neuron's colour range, from its whole series (stable while scrolling)."""
        key = (name, neuron)
        if key not in self._limits:
            self._limits[key] = symmetric_limit(self.store(name).neuron(neuron)[:: max(1, len(self.store(name)) // 200_000)])
        return self._limits[key]


def neighbour(store: ActivationStore, neuron: NeuronId, step: int) -> NeuronId:
    """The previous or next neuron in store order (wrapping)."""
    row = (store.row_of(neuron) + step) % store.rows
    return store.neuron_of_row(row)


def clamp_position(store: ActivationStore, position: int) -> int:
    return int(np.clip(position, 0, max(len(store) - 1, 0)))


def parse_query(search: str | None) -> dict[str, str]:
    """The view state in a page's URL query (``?store=...&neuron=...``), first value of each."""
    return {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}


def changed_search(query: dict[str, str], search: str | None):
    """The URL query for ``query``, or Dash's ``no_update`` when the URL already says it
    (so setting controls from the URL does not loop)."""
    from dash import no_update

    new = "?" + urlencode(query)
    return no_update if new == (search or "") else new
