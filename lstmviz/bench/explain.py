"""``lstmviz bench explain``: every h and c unit of the shipped model explained and scored
over its whole test split (target: 5 minutes on 2 cores), and the search the Units page
runs over the explanations (target: 100 ms)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from .fixtures import default_checkpoint, synthetic_store
from .harness import at_most, result, timed

QUERIES = ("digit", "after import", "column", "inside a comment", "the character itself", "")


def _store(store_path: str | None, chars: int | None, units: int | None, tmp: Path):
    """The store to explain, and what it is."""
    from ..analysis.rankings import RANKED_KINDS
    from ..recording.one_text import evaluation_documents
    from ..recording.sources import recorded
    from ..store.open import open_store

    if store_path:
        return open_store(store_path), f"store {store_path}"
    if chars:
        return synthetic_store(tmp / "bench.store", chars, units=units)
    ckpt = default_checkpoint(None)
    return recorded(ckpt, evaluation_documents(ckpt), kinds=RANKED_KINDS, progress=False), f"{ckpt.name}'s test split"


def bench_explain(store_path: str | None = None, chars: int | None = None, units: int | None = None, repeats: int = 5) -> dict:
    """Seconds to explain and score every h and c unit of the store at ``store_path``, or of
    a synthetic one of ``chars`` characters (``units`` per layer), else of the shipped
    model's test split (computed, not read from a cache); then milliseconds per search."""
    from ..analysis.explain.explainer import EXPLAINED_KINDS
    from ..analysis.explain.results import Explanations
    from ..analysis.explain.search import explain_series, prepare

    with tempfile.TemporaryDirectory() as tmp:
        store, source = _store(store_path, chars, units, Path(tmp))
        names = [str(n) for n in store.neuron_ids(EXPLAINED_KINDS)]
        t0 = time.perf_counter()
        prep = prepare(store.text(), [(d.name, d.start, d.stop) for d in store.documents])
        prepare_s = time.perf_counter() - t0
        found = Explanations(store.name, explain_series(prep, names, store.window))
        seconds = time.perf_counter() - t0
        search_ms = [1000 * statistics.median(timed(lambda q=q: found.search(q)) for _ in range(repeats)) for q in QUERIES]
        counts = found.counts()
        figures = {
            "source": source,
            "chars": len(store),
            "units": len(names),
            "forms": len(prep.forms) + len(prep.tables),
            "seconds": round(seconds, 2),
            "prepare_seconds": round(prepare_s, 2),
            "at_least_0.5": counts["at_least_0.5"],
            "at_least_0.8": counts["at_least_0.8"],
            "median_score": round(statistics.median(u.score for u in found.units), 3) if found.units else None,
            "queries": " | ".join(repr(q) for q in QUERIES),
            "search_ms": round(max(search_ms), 3),
        }
    measures = (
        "every h and c unit explained and scored on held-out documents: seconds; the Units page's search: ms (slowest query)"
    )
    return result("explain", measures, figures, {"seconds": at_most(300), "search_ms": at_most(100)})
