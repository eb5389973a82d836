"""Range hypotheses (LSTMVis's select view, made automatic): the user marks character
ranges, and the neurons whose values inside differ most from just outside are listed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import StoreError
from ..store.reader import ActivationStore


def ranges_mask(length: int, ranges: list[tuple[int, int]]) -> np.ndarray:
    mask = np.zeros(length, dtype=bool)
    for a, b in ranges:
        if not 0 <= a < b <= length:
            raise StoreError(f"Character range {a}:{b} is outside the store (0:{length}) or empty.")
        mask[a:b] = True
    return mask


def _near(inside: np.ndarray, margin: int) -> np.ndarray:
    """The characters within ``margin`` of a marked span, not marked themselves."""
    n = len(inside)
    near = np.zeros(n + 1, dtype=np.int64)
    idx = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(np.int8), [0]])))
    for a, b in zip(idx[::2], idx[1::2], strict=True):
        near[max(0, a - margin)] += 1
        near[a] -= 1
        near[b] += 1
        near[min(n, b + margin)] -= 1
    outside = (np.cumsum(near[:-1]) > 0) & ~inside
    return outside if outside.any() else ~inside


def _contrasts(store: ActivationStore, local: np.ndarray, lab: np.ndarray, kinds, unit_chunk: int = 32) -> list:
    """(neuron, row, (mean inside - mean just outside) / sd) of every neuron of ``kinds``,
    over the ``local`` characters (``lab``: which of them are marked)."""
    results = []
    for s in store.series:
        if s.kind not in kinds:
            continue
        series = store.series_block(*s.key)
        for u0 in range(0, s.units, unit_chunk):  # bounded memory: a few units at a time
            block = np.asarray(series[u0 : u0 + unit_chunk][:, local], dtype=np.float32)
            contrast = (block[:, lab].mean(1) - block[:, ~lab].mean(1)) / (block.std(1) + 1e-6)
            results.extend((str(s.neuron(u0 + k)), s.row + u0 + k, float(c)) for k, c in enumerate(contrast))
    return results


def _scores(on: np.ndarray, marked: np.ndarray) -> tuple[float, float, float]:
    tp = int((on & marked).sum())
    precision, recall = tp / max(int(on.sum()), 1), tp / max(int(marked.sum()), 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def range_hypotheses(
    store: ActivationStore,
    inside: np.ndarray,
    margin: int = 10,
    kinds: tuple[str, ...] | None = None,
    top: int = 20,
    candidates: int = 200,
) -> pd.DataFrame:
    """Neurons that are high (or low) on the marked characters and the other way just outside
    them (within ``margin`` characters), best first.

    Each neuron "fires" above the midpoint of its inside and just-outside means. Where the
    marks are a class (more than one span, e.g. every match of a regex), its precision and
    recall are over the whole store; where they are one selected span, an example rather
    than a class, over the span and its margin (``scope``), since firing elsewhere is no
    error there, and ``elsewhere`` says how often it fires beyond them. The ``candidates``
    of largest contrast are ranked by F1 (the contrast alone ranks a neuron that separates
    by a little, everywhere, above one that fires on just the marks)."""
    inside = np.asarray(inside, dtype=bool)
    if inside.shape != (len(store),):
        raise StoreError("The marked characters do not match the store's length.")
    if not inside.any():
        raise StoreError("Nothing is marked: select a range or give a regex that matches.")
    outside = _near(inside, margin)
    local = np.flatnonzero(inside | outside)
    kinds = kinds or tuple(dict.fromkeys(s.kind for s in store.series))
    results = sorted(_contrasts(store, local, inside[local], kinds), key=lambda r: -abs(r[2]))[:candidates]
    spans = int(np.count_nonzero(np.diff(np.concatenate([[0], inside.astype(np.int8)])) == 1))
    scope = "whole store" if spans > 1 else "selection and margin"
    rows = []
    for neuron, row, contrast in results:
        sign = 1.0 if contrast >= 0 else -1.0
        v = np.asarray(store.activations[row], dtype=np.float32) * sign
        threshold = 0.5 * (v[inside].mean() + v[outside].mean())
        on = v > threshold
        where = slice(None) if spans > 1 else local
        precision, recall, f1 = _scores(on[where], inside[where])
        beyond = ~(inside | outside)
        rows.append(
            {
                "neuron": neuron,
                "direction": "high" if sign > 0 else "low",
                "contrast": float(abs(contrast)),
                "threshold": float(threshold * sign),
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "elsewhere": float(on[beyond].mean()) if beyond.any() else 0.0,
                "scope": scope,
            }
        )
    table = pd.DataFrame(rows).sort_values(["f1", "contrast"], ascending=False, kind="stable")
    return table.head(top).reset_index(drop=True)
