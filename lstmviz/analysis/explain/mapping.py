"""How a form simulates a unit: its values cut into at most ``LEVELS`` levels (each distinct
value where there are few, quantiles of the fitted characters where there are many), and a
monotone map from level to activation, fitted by least squares (pool adjacent violators),
rising or falling, whichever fits better."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVELS = 32


def level_edges(sample: np.ndarray) -> np.ndarray:
    """Where the levels of a form's values begin, from its values on the fitted characters."""
    distinct = np.unique(sample)
    if len(distinct) <= LEVELS:
        return distinct[1:].astype(np.float32)
    return np.unique(np.quantile(sample, np.linspace(0, 1, LEVELS + 1)[1:-1])).astype(np.float32)


def level_codes(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each value's level, 0 to ``len(edges)``."""
    return np.searchsorted(edges, values, side="right").astype(np.uint8)


def _pool_adjacent(means: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The rising sequence closest to ``means`` in weighted least squares."""
    blocks: list[list[float]] = []  # [mean, weight, length]
    for m, w in zip(means, weights, strict=True):
        blocks.append([m, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([np.full(n, m) for m, _, n in blocks])


@dataclass
class MonotoneMap:
    """From level to simulated activation."""

    values: np.ndarray  # [levels]
    rising: bool

    def simulate(self, codes: np.ndarray) -> np.ndarray:
        return self.values[codes]

    def to_json(self) -> dict:
        return {"levels": [round(float(v), 5) for v in self.values], "rising": bool(self.rising)}


def fit_table(codes: np.ndarray, actual: np.ndarray, levels: int) -> MonotoneMap:
    """Each level's mean (a linear map of the levels one-hot; a level never seen: the overall mean)."""
    counts = np.bincount(codes, minlength=levels).astype(np.float64)
    sums = np.bincount(codes, weights=actual, minlength=levels)
    overall = float(actual.mean()) if len(actual) else 0.0
    return MonotoneMap(np.where(counts > 0, sums / np.maximum(counts, 1), overall), True)


def fit_map(codes: np.ndarray, actual: np.ndarray, levels: int) -> MonotoneMap:
    """The monotone map from ``codes`` to ``actual`` of least squares; a level never seen
    takes its nearest seen neighbour's value."""
    counts = np.bincount(codes, minlength=levels).astype(np.float64)
    sums = np.bincount(codes, weights=actual, minlength=levels)
    seen = counts > 0
    if not seen.any():
        return MonotoneMap(np.zeros(levels), True)
    means, weights = sums[seen] / counts[seen], counts[seen]
    rising = _pool_adjacent(means, weights)
    falling = -_pool_adjacent(-means, weights)
    up = float((weights * (rising - means) ** 2).sum()) <= float((weights * (falling - means) ** 2).sum())
    fitted = rising if up else falling
    positions = np.flatnonzero(seen)
    nearest = np.clip(np.searchsorted(positions, np.arange(levels)), 0, len(positions) - 1)
    lower = np.clip(nearest - 1, 0, len(positions) - 1)
    closer = np.where(
        np.abs(positions[lower] - np.arange(levels)) < np.abs(positions[nearest] - np.arange(levels)), lower, nearest
    )
    return MonotoneMap(fitted[closer], up)
