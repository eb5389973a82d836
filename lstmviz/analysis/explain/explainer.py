"""``lstmviz explain``: every unit of a store explained, cached in the store directory one
file a kind of series (and set of user features), so each is explained once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from ...core.errors import StoreError
from ...core.neurons import parse_neurons
from ...store.cache import cached, read_cached
from ...store.open import open_store
from ...store.reader import ActivationStore
from ...text.features import regex_feature
from .results import Explanations, UnitExplanation
from .search import explain_series, prepare

EXPLAINED_KINDS = ("h", "c")  # explained unless asked otherwise (the gates with kinds)
CACHE_VERSION = 1
Progress = Callable[[int, int], None]  # (units explained, units to explain)


def cache_name(kind: str, features: dict[str, str] | None = None) -> str:
    """The cache of one kind's explanations (with the user's regex features, a file of their own)."""
    key = "" if not features else "-" + hashlib.sha1(json.dumps(sorted(features.items())).encode()).hexdigest()[:10]
    return f"explanations-v{CACHE_VERSION}-{kind}{key}.json"


def _kinds(store: ActivationStore, kinds: tuple[str, ...] | None) -> tuple[str, ...]:
    have = list(dict.fromkeys(s.kind for s in store.series))
    if kinds is None:
        return tuple(k for k in EXPLAINED_KINDS if k in have)
    missing = [k for k in kinds if k not in have]
    if missing:
        raise StoreError(f"This store has no series of kind {', '.join(missing)}; it has {', '.join(have)}.")
    return tuple(kinds)


def _explain_kinds(
    store: ActivationStore, kinds: tuple[str, ...], features: dict[str, str] | None, on_progress: Progress | None = None
) -> dict[str, list]:
    """Each kind's units explained, as cached JSON: the cached kinds read, the others computed together."""
    found = {k: read_cached(store, cache_name(k, features)) for k in kinds}
    missing = [k for k, data in found.items() if data is None]
    if missing:
        extra = {name: regex_feature(pattern) for name, pattern in (features or {}).items()}
        prep = prepare(store.text(), [(d.name, d.start, d.stop) for d in store.documents], extra)
        total, done = sum(len(store.neuron_ids((k,))) for k in missing), 0

        def read(names: list[str]):
            nonlocal done
            if on_progress is not None:
                on_progress(done, total)
            done += len(names)
            return store.window(names)

        for kind in missing:
            names = [str(n) for n in store.neuron_ids((kind,))]
            units = explain_series(prep, names, read)
            found[kind] = cached(store, cache_name(kind, features), lambda units=units: [u.to_json() for u in units])
    return found


def explain(
    store: ActivationStore | str | Path,
    neurons: str | list | None = None,
    kinds: tuple[str, ...] | None = None,
    features: dict[str, str] | None = None,
    on_progress: Progress | None = None,
) -> Explanations:
    """Every unit of ``kinds`` (default h and c) of ``store`` explained in words and scored on
    held-out documents; ``neurons`` keeps only those (their kinds explained); ``features``
    (name -> regex) adds the user's hypotheses to the grammar; ``on_progress(done, total)``
    hears of the units explained so far, where any are computed."""
    if not isinstance(store, ActivationStore):
        store = open_store(store)
    if len(store) == 0:
        raise StoreError("This store is empty: it has no characters to explain units on.")
    chosen = None
    if neurons is not None:
        chosen = [str(n) for n in parse_neurons(neurons)]
        for n in chosen:
            store.row_of(n)  # an unknown unit is one sentence, before anything is computed
        kinds = tuple(dict.fromkeys(n.split(".")[1] for n in chosen))
    found = _explain_kinds(store, _kinds(store, kinds), features, on_progress)
    units = {u["neuron"]: UnitExplanation.from_json(u) for data in found.values() for u in data}
    order = chosen or [str(n) for n in store.neuron_ids() if str(n) in units]
    return Explanations(store.name, [units[n] for n in order])


def cached_explanations(store: ActivationStore) -> dict[str, dict]:
    """The explanations already cached for ``store`` (h and c, no user features), by unit:
    nothing is computed."""
    out = {}
    for kind in EXPLAINED_KINDS:
        for u in read_cached(store, cache_name(kind)) or []:
            out[u["neuron"]] = u
    return out


def with_explanations(found_cells: dict, store: ActivationStore) -> dict:
    """``find-cells --json`` with each listed unit's cached explanation and score beside it."""
    known = cached_explanations(store)
    for rows in found_cells.get("features", {}).values():
        for row in rows:
            if row["neuron"] in known:
                row["explanation"] = known[row["neuron"]]["explanation"]
                row["explanation_score"] = known[row["neuron"]]["score"]
    return found_cells
