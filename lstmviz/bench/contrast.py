"""How plainly a cell shows as painted: for the best cells of each binary feature, the colour
contrast between the characters inside the feature and those outside, under every colour
scale (``lstmviz bench contrast``). It is how the default scale was chosen (see
``colours.py``) and the figure in the README."""

from __future__ import annotations

import numpy as np

from ..analysis.distribution import neuron_values, value_stats
from ..analysis.rankings import RANKED_KINDS, store_rankings
from ..render.colours import SCALES, contrast, default_scale, scale_for
from ..store.reader import ActivationStore
from ..text.features import store_features
from .fixtures import default_checkpoint
from .harness import result

BEFORE = "symmetric"  # the scale every neuron was painted on before per-neuron scales


def contrast_rows(store: ActivationStore, top: int = 3) -> list[dict]:
    """One row per (binary feature, one of its ``top`` best h or c cells): the contrast
    (Delta E of the mean colours inside and outside) under each scale and the default."""
    feats = store_features(store)
    rankings = store_rankings(store)
    rows = []
    for feature in (name for name in feats.names() if feats.is_binary(name) and name in rankings):
        inside = np.asarray(feats[feature], dtype=bool)
        for entry in rankings[feature]["rows"][:top]:
            neuron = entry["neuron"]
            values = neuron_values(store, neuron).astype(np.float32)
            stats = value_stats(store, neuron)
            by_scale = {name: round(contrast(scale_for(neuron, stats, name), values, inside), 1) for name in SCALES}
            rows.append(
                {
                    "feature": feature,
                    "neuron": neuron,
                    "score": round(entry["score"], 3),
                    "default": default_scale(neuron, stats),
                    **by_scale,
                }
            )
    return rows


def bench_contrast(checkpoint: str | None = None, top: int = 3) -> dict:
    """:func:`contrast_rows` on the checkpoint's test split (h and c recorded, from the cache)."""
    from ..analysis.evaluate import evaluation_documents
    from ..recording.sources import recorded

    ckpt = default_checkpoint(checkpoint)
    store = recorded(ckpt, evaluation_documents(ckpt), kinds=RANKED_KINDS)
    rows = contrast_rows(store, top)
    best = [r for r in rows if r["neuron"] == next(x["neuron"] for x in rows if x["feature"] == r["feature"])]
    figures = {
        "store": store.name,
        "cells": rows,
        "best_cells_before": {r["feature"]: r[BEFORE] for r in best},
        "best_cells_default": {r["feature"]: r[r["default"]] for r in best},
        "mean_before": round(float(np.mean([r[BEFORE] for r in rows])), 1),
        "mean_default": round(float(np.mean([r[r["default"]] for r in rows])), 1),
        "unit": "CIELAB Delta E between the mean colours inside and outside the feature",
    }
    measures = f"how plainly the {top} best cells of each binary feature show as painted, under every colour scale"
    return result("contrast", measures, figures)
