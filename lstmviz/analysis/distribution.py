"""One neuron's values as a distribution: float16 has at most 65,536 distinct values, so a
neuron's whole series is described exactly by how often each occurs (:class:`Distribution`,
one counting pass, no sort). From it: quantiles, the histogram, and what the colour scales
need (:func:`value_stats`)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..core.neurons import UnitId, parse_unit
from ..store.reader import ActivationStore

# Order-preserving keys of float16 bit patterns (b -> b ^ 0x8000 for positive, ~b for
# negative), and the value of each key; NaN keys are never counted.

KEYS = np.arange(65536, dtype=np.uint16)


KEY_VALUES = np.where(KEYS >= 0x8000, KEYS ^ 0x8000, KEYS ^ 0xFFFF).astype(np.uint16).view(np.float16).astype(np.float64)


KEY_FINITE = np.isfinite(KEY_VALUES)


KEY_FINITE_VALUES = np.where(KEY_FINITE, KEY_VALUES, 0.0)


def value_keys(series: np.ndarray) -> np.ndarray:
    """float16 values as uint16 keys in value order (``a < b`` implies ``key(a) < key(b)``;
    -0 sits just below +0): comparing keys is many times faster than comparing float16 in
    numpy, and they are a few integer operations away from the stored bits."""
    bits = np.ascontiguousarray(series, dtype=np.float16).view(np.uint16)
    return bits ^ ((bits >> 15) * np.uint16(0x7FFF) | np.uint16(0x8000))


@dataclass
class Distribution:
    """A float16 series' exact distribution: how often each of the 65,536 float16 values
    occurs, by value key (see :func:`value_keys`). Built by counting (no sort), so
    quantiles, thresholds and histograms of a million values cost a millisecond or two."""

    counts: np.ndarray  # [65536] int64, per key; NaN and inf left out

    @classmethod
    def of(cls, keys: np.ndarray) -> Distribution:
        import torch  # here: reading a store and painting it need no torch

        # torch's bincount: twice numpy's speed on 32-bit keys, and it releases the GIL
        counts = torch.bincount(torch.from_numpy(keys.astype(np.int32)), minlength=65536).numpy().astype(np.int64)
        counts[~KEY_FINITE] = 0
        return cls(counts)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q) -> np.ndarray:
        """As ``numpy.quantile`` (linear interpolation between order statistics)."""
        pos = np.asarray(q, dtype=np.float64) * (self.n - 1)
        lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
        cum = np.cumsum(self.counts)
        v_lo = KEY_VALUES[np.searchsorted(cum, lo, side="right")]
        v_hi = KEY_VALUES[np.searchsorted(cum, hi, side="right")]
        return v_lo + (v_hi - v_lo) * (pos - lo)

    def abs_quantile(self, q: float) -> float:
        """As ``numpy.quantile`` of the absolute values (the key of -v mirrors that of v
        around the middle, so the negative half folds onto the positive one)."""
        folded = np.zeros_like(self.counts)
        folded[0x8000:] = self.counts[0x8000:] + self.counts[0x7FFF::-1]
        return float(Distribution(folded).quantile(q))

    def deviation_quantile(self, centre: float, q: float) -> float:
        """As ``numpy.quantile`` of ``|value - centre|``."""
        present = np.flatnonzero(self.counts)
        dev = np.abs(KEY_VALUES[present] - centre)
        order = np.argsort(dev, kind="stable")
        pos = q * (self.n - 1)
        cum = np.cumsum(self.counts[present][order])
        lo, hi = (int(np.searchsorted(cum, r, side="right")) for r in (math.floor(pos), math.ceil(pos)))
        return float(dev[order][lo] + (dev[order][hi] - dev[order][lo]) * (pos - math.floor(pos)))

    def quantile_keys(self, q) -> np.ndarray:
        """The keys of the order statistics at quantiles ``q`` (the lower one)."""
        ranks = np.floor(np.asarray(q, dtype=np.float64) * (self.n - 1)).astype(np.int64)
        return np.searchsorted(np.cumsum(self.counts), ranks, side="right")

    def top_key(self, k: int) -> int:
        """The largest key c with at least ``k`` values of key >= c."""
        from_top = np.cumsum(self.counts[::-1])
        return 65535 - min(int(np.searchsorted(from_top, k)), 65535)

    def bottom_key(self, k: int) -> int:
        """The smallest key c with at least ``k`` values of key <= c."""
        return min(int(np.searchsorted(np.cumsum(self.counts), k)), 65535)

    def histogram(self, bins: int) -> tuple[np.ndarray, np.ndarray]:
        present = np.flatnonzero(self.counts)
        lo, hi = (KEY_VALUES[present[0]], KEY_VALUES[present[-1]]) if len(present) else (0.0, 1.0)
        return np.histogram(KEY_VALUES[present], bins=bins, range=(lo, hi if hi > lo else lo + 1), weights=self.counts[present])

    def mean(self) -> float:
        present = np.flatnonzero(self.counts)
        return float((KEY_VALUES[present] * self.counts[present]).sum() / max(self.n, 1))

    def std(self) -> float:
        present = np.flatnonzero(self.counts)
        dev = (KEY_VALUES[present] - self.mean()) ** 2
        return float(np.sqrt((dev * self.counts[present]).sum() / max(self.n, 1)))


@dataclass(frozen=True)
class ValueStats:
    """What a scale needs to know of a neuron's whole series (see :func:`value_stats`)."""

    q01: float
    median: float
    q99: float
    abs99: float
    dev99: float  # 99th percentile of |value - median|


def stats_of(values) -> ValueStats:
    """:class:`ValueStats` of ``values`` themselves: for a series with no store behind it."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return ValueStats(0.0, 0.0, 0.0, 1.0, 1.0)
    q01, median, q99 = np.percentile(v, [1, 50, 99])
    abs99, dev99 = np.percentile(np.abs(v), 99), np.percentile(np.abs(v - median), 99)
    return ValueStats(float(q01), float(median), float(q99), float(abs99), float(dev99))


def neuron_values(store: ActivationStore, neuron: str | UnitId) -> np.ndarray:
    """One unit's whole series as stored (float16): a neuron's is one contiguous read, a
    direction's or dictionary feature's is derived once and kept (``store/units.py``)."""
    return store.unit_series(neuron)


@functools.lru_cache(maxsize=8)
def keyed_series(store: ActivationStore, neuron: str) -> tuple[np.ndarray, np.ndarray, Distribution]:
    """A neuron's series, its value keys and its distribution: shared by the views of one
    neuron (contexts, histogram) that are asked for together."""
    values = neuron_values(store, neuron)
    keys = value_keys(values)
    return values, keys, Distribution.of(keys)


def value_stats(store: ActivationStore, neuron: str | UnitId) -> ValueStats:
    """What the colour scales need of a neuron's whole series (so the colours stay put while
    scrolling): its 1st, 50th and 99th percentiles, and the 99th of |value| and of the
    distance from the median."""
    dist = keyed_series(store, str(parse_unit(neuron)))[2]
    q01, median, q99 = (float(v) for v in dist.quantile([0.01, 0.5, 0.99]))
    return ValueStats(q01, median, q99, dist.abs_quantile(0.99), dist.deviation_quantile(median, 0.99))


def histogram(store: ActivationStore, neuron: str | UnitId, bins: int = 60) -> dict:
    dist = keyed_series(store, str(parse_unit(neuron)))[2]
    counts, edges = dist.histogram(bins)
    density = counts / max(counts.sum(), 1) / np.diff(edges)
    return {"counts": counts, "edges": edges, "density": density, "mean": dist.mean(), "std": dist.std()}
