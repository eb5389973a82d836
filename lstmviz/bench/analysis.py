"""``lstmviz bench analysis``: ranking h and c of every layer against every built-in feature,
beside the vectorised scipy reference over the same neurons (no extrapolation)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from .fixtures import bench_store
from .harness import at_least, at_most, result, timed
from .references import REFERENCE_BLOCK, reference_rankings


def bench_analysis(
    store_path: str | None = None, chars: int = 1_000_000, seed: int = 0, repeats: int = 3, units: int | None = None
) -> dict:
    """Our rankings (median of ``repeats``) and :func:`reference_rankings`, run once between
    our runs, on the store at ``store_path`` or a synthetic one of ``chars`` characters (the
    shipped model's shape, or ``units`` per layer)."""
    from ..analysis.rankings import rank_neurons
    from ..text.features import store_features

    with tempfile.TemporaryDirectory() as tmp:
        store, source = bench_store(Path(tmp), store_path, chars, units, seed)
        t0 = time.perf_counter()
        feats = store_features(store)
        feature_s = time.perf_counter() - t0
        kinds = ("h", "c")
        ours = [timed(lambda: rank_neurons(store, feats, kinds))]
        reference = timed(lambda: reference_rankings(store, feats, kinds))
        ours += [timed(lambda: rank_neurons(store, feats, kinds)) for _ in range(repeats - 1)]
        seconds = statistics.median(ours)
        figures = {
            "source": source,
            "chars": len(store),
            "neurons": len(store.neuron_ids(kinds)),
            "features": len(feats.names()),
            "seconds": round(seconds, 3),
            "runs": [round(x, 3) for x in ours],
            "feature_seconds": round(feature_s, 3),
            "reference": f"scipy.stats.rankdata(block, axis=1) + one float32 product per {REFERENCE_BLOCK} neurons, all neurons",
            "reference_seconds": round(reference, 1),
            "ratio": round(reference / seconds, 2),
        }
    measures = "h and c of every layer ranked against every built-in feature, beside a vectorised scipy reference: seconds"
    return result("analysis", measures, figures, {"ratio": at_least(3), "seconds": at_most(10)})
