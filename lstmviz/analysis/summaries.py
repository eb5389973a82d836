"""What a neuron's page shows that depends on the neuron alone (its colour-scale statistics,
where its contexts are, its histogram), computed once per store for every h and c neuron
and cached in the store directory, as Neuronpedia and sae_vis precompute feature pages."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ..core.neurons import NeuronId
from ..core.runtime import map_threads
from ..store.cache import cached
from ..store.reader import ActivationStore
from .contexts import context_positions
from .distribution import histogram, value_stats
from .rankings import RANKED_KINDS

SUMMARIES_CACHE = "summaries-v2.json"

SUMMARY_CONTEXTS, SUMMARY_WIDTH, SUMMARY_BINS = 8, 40, 60


def neuron_summary(store: ActivationStore, neuron: str | NeuronId) -> dict:
    """What a neuron's page shows that depends on the neuron alone, JSON-ready: what its
    colour scales need (:func:`value_stats`), where its contexts are, and its histogram."""
    hist = histogram(store, neuron, SUMMARY_BINS)
    return {
        "stats": asdict(value_stats(store, neuron)),
        "contexts": context_positions(store, neuron, SUMMARY_CONTEXTS, SUMMARY_WIDTH),
        "histogram": {key: (v.tolist() if isinstance(v, np.ndarray) else v) for key, v in hist.items()},
    }


def store_summaries(store: ActivationStore, progress: bool = True) -> dict[str, dict]:
    """:func:`neuron_summary` of every h and c neuron (the ones browsed most), computed
    once per store (in parts, as ``core.runtime.map_threads`` spreads them) and cached in
    the store directory, as Neuronpedia and sae_vis precompute their feature pages: a
    neuron switch then reads them."""
    from tqdm.auto import tqdm

    def compute():
        ids = [str(n) for n in store.neuron_ids(RANKED_KINDS)]
        done = tqdm(
            map_threads(lambda n: neuron_summary(store, n), ids),
            total=len(ids),
            desc="summarising neurons",
            unit="neuron",
            disable=not progress,
        )
        return dict(zip(ids, done, strict=True))

    return cached(store, SUMMARIES_CACHE, compute)
