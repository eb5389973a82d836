"""A dictionary's features over a store's text, as a neuron's values are: feature k's value at
a character is f_k(x) of that character's series x (``model/sparse_dictionary.py``).

Over the whole text the features are kept sparse (:class:`FeatureCodes`: the k active ones per
character, their values in float16, as the store keeps values), and a block of features is
made dense only when asked for (rankings read features as they read neurons, in blocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from ..core.errors import LstmvizError
from ..model.sparse_dictionary import SparseDictionary
from .dictionary_training import READ_BLOCK, character_major, series_of


def _series(store, dictionary: SparseDictionary) -> np.ndarray:
    layer, kind = dictionary.series[1:].split(".")
    return series_of(store, int(layer), kind)


def check_feature(dictionary: SparseDictionary, feature: int) -> int:
    if not 0 <= int(feature) < dictionary.size:
        raise LstmvizError(
            f"No feature {feature} in this dictionary of {dictionary.series}: it has features 0-{dictionary.size - 1}."
        )
    return int(feature)


@torch.no_grad()
def feature_values(store, dictionary: SparseDictionary, feature: int, start: int | None = None, stop: int | None = None):
    """Feature ``feature``'s values over characters [start, stop) of ``store``: [chars] float32,
    as ``store.neuron`` gives a neuron's."""
    feature = check_feature(dictionary, feature)
    start, stop = start or 0, len(store) if stop is None else stop
    block = _series(store, dictionary)[:, start:stop]
    x = torch.from_numpy(np.asarray(block, dtype=np.float32).T.copy())
    values, indices = dictionary.top_k(x)
    return (values * (indices == feature)).sum(-1).numpy()


@dataclass
class FeatureCodes:
    """Every character's active features: ``indices`` [chars, k] and ``values`` [chars, k]
    float16 (0 where fewer than k are active)."""

    indices: np.ndarray
    values: np.ndarray
    size: int  # features in the dictionary

    def __len__(self) -> int:
        return len(self.indices)

    @cached_property
    def _by_feature(self) -> tuple[np.ndarray, np.ndarray]:
        """The active entries sorted by feature: (order into the flat arrays, each feature's start)."""
        flat = self.indices.reshape(-1)
        order = np.argsort(flat, kind="stable")
        starts = np.searchsorted(flat[order], np.arange(self.size + 1))
        return order, starts

    def dense(self, first: int, stop: int) -> np.ndarray:
        """Features [first, stop) over every character: [features, chars] float16."""
        order, starts = self._by_feature
        k = self.indices.shape[1]
        out = np.zeros((stop - first, len(self)), dtype=np.float16)
        for f in range(first, stop):
            entries = order[starts[f] : starts[f + 1]]
            out[f - first, entries // k] = self.values.reshape(-1)[entries]
        return out

    def fired(self, rows: np.ndarray | None = None) -> np.ndarray:
        """[features]: on how many characters (of ``rows``, default all) each is active."""
        indices, values = (self.indices, self.values) if rows is None else (self.indices[rows], self.values[rows])
        return np.bincount(indices[values > 0], minlength=self.size)


@torch.no_grad()
def feature_codes(store, dictionary: SparseDictionary) -> FeatureCodes:
    """The dictionary's active features at every character of ``store``, read in blocks."""
    series = _series(store, dictionary)
    chars = series.shape[1]
    index_type = np.int16 if dictionary.size <= np.iinfo(np.int16).max else np.int32
    indices = np.empty((chars, dictionary.k), dtype=index_type)
    values = np.empty((chars, dictionary.k), dtype=np.float16)
    for start in range(0, chars, READ_BLOCK):
        x = torch.from_numpy(character_major(series[:, start : start + READ_BLOCK]).astype(np.float32))
        v, i = dictionary.top_k(x)
        indices[start : start + len(x)], values[start : start + len(x)] = i.numpy(), v.numpy()
    return FeatureCodes(indices, values, dictionary.size)
