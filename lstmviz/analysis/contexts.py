"""Where a neuron fires: the text around its highest, lowest and quantile-sampled values,
each context within its document and apart from the others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import StoreError
from ..core.neurons import UnitId, parse_unit
from ..store.reader import ActivationStore
from .distribution import keyed_series, neuron_values


@dataclass
class Context:
    position: int
    value: float
    text: str  # the context window
    offset: int  # index of the character at ``position`` within ``text``
    values: np.ndarray  # the neuron over the window


def _context(store: ActivationStore, values: np.ndarray, position: int, width: int) -> Context:
    doc = store.document_at(position)
    lo, hi = max(doc.start, position - width), min(doc.stop, position + width + 1)
    return Context(position, float(values[position]), store.text(lo, hi), position - lo, values[lo:hi].astype(np.float32))


def _spread(order: np.ndarray, k: int, width: int) -> list[int]:
    """The first ``k`` positions of ``order`` more than ``width`` apart (non-overlapping)."""
    chosen: list[int] = []
    for p in order:
        if all(abs(int(p) - q) > width for q in chosen):
            chosen.append(int(p))
            if len(chosen) == k:
                break
    return chosen


def context_positions(
    store: ActivationStore, neuron: str | UnitId, k: int = 10, width: int = 40, quantile_bins: int = 4, seed: int = 0
) -> dict[str, list[int]]:
    """Where a neuron's contexts are: the positions of its k highest and k lowest
    activations (``width`` characters apart, so their contexts do not overlap), and a few
    from each of ``quantile_bins`` lower quantile ranges (keys ``q80``, ``q60``, ...:
    samples between that quantile and the one above)."""
    if len(store) == 0:
        raise StoreError("The store is empty.")
    _, keys, dist = keyed_series(store, str(parse_unit(neuron)))
    n = len(keys)
    pool = min(n, max(k * 64, 1024))  # enough candidates that k of them do not overlap
    high = np.flatnonzero(keys >= dist.top_key(pool))
    high = high[np.argsort(-keys[high].astype(np.int32), kind="stable")]
    low = np.flatnonzero(keys <= dist.bottom_key(pool))
    low = low[np.argsort(keys[low], kind="stable")]
    out = {"high": _spread(high, k, width), "low": _spread(low, k, width)}
    rng = np.random.default_rng(seed)
    per_bin = max(k // 2, 1)
    candidates = rng.choice(n, size=min(n, 32 * per_bin * (quantile_bins + 1)), replace=False)
    picked = keys[candidates]
    edges = dist.quantile_keys(np.linspace(0, 1, quantile_bins + 2)[1:-1])[::-1]
    upper = 65536
    for q, lower in enumerate(edges):
        members = candidates[(picked >= lower) & (picked < upper)]
        out[f"q{(quantile_bins - q) * 100 // (quantile_bins + 1)}"] = _spread(members, per_bin, width)
        upper = lower
    return out


def contexts_at(store: ActivationStore, neuron: str | UnitId, positions: dict[str, list[int]], width: int = 40):
    """The contexts (``width`` characters each side, within the document) of a neuron at
    ``positions`` ({group: [position]}), as {group: [Context]}."""
    values = neuron_values(store, neuron)
    return {group: [_context(store, values, p, width) for p in ps] for group, ps in positions.items()}


def top_contexts(
    store: ActivationStore, neuron: str | UnitId, k: int = 10, width: int = 40, quantile_bins: int = 4, seed: int = 0
) -> dict[str, list[Context]]:
    """The contexts of a neuron's highest, lowest and quantile-sampled activations (see
    :func:`context_positions`)."""
    return contexts_at(store, neuron, context_positions(store, neuron, k, width, quantile_bins, seed), width)
