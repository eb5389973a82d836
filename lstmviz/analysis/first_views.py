"""Where a first view of a store should open so that it shows a finding, not a wall of
imports: a neuron's page at the stretch where the feature it tracks is densest (the quote
cell among many short strings), or, for a neuron that tracks no yes/no feature, where its
strongest values are densest; the heatmap on the best cell of each feature over a window
where those features change. Each view starts at the beginning of a line.

What depends on the store alone (the features' stretches, the heatmap's window) is
computed once and cached in the store directory."""

from __future__ import annotations

import numpy as np

from ..core.neurons import NeuronId
from ..store.cache import cached
from ..store.reader import ActivationStore
from .rankings import store_rankings

FIRST_VIEWS_CACHE = "first-views-v1.json"
NEURON_SPAN = 1500  # characters of the Neuron page's first screen, about
HEATMAP_SPAN = 160  # characters of the heatmap's first view
TRACKS = 0.75  # an AUROC (folded) from which a neuron is said to track a feature
STRONGEST = 0.01  # a neuron's strongest values: the top 1% by distance from the median


def line_starts(text: str) -> np.ndarray:
    """The position of the first character of each line of ``text``."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    return np.r_[0, np.flatnonzero(codes[:-1] == ord("\n")) + 1]


def densest_stretch(marks: np.ndarray, lines: np.ndarray, span: int) -> int:
    """The start of the line from which the next ``span`` characters hold the most
    beginnings of runs of ``marks`` (many short strings rather than one long docstring),
    among the lines where a run begins (so the view opens on one); the first such, and 0
    when nothing is marked. ``lines``: each line's start (:func:`line_starts`)."""
    marks = np.asarray(marks, dtype=bool)
    is_begin = marks & ~np.r_[False, marks[:-1]]
    if not is_begin.any():
        return 0
    begins = np.cumsum(np.r_[0, is_begin])  # begins[i]: runs begun before i
    starts = np.unique(lines[np.searchsorted(lines, np.flatnonzero(is_begin), side="right") - 1])
    counts = begins[np.minimum(starts + span, len(marks))] - begins[starts]
    return int(starts[np.argmax(counts)])


def changing_window(tracks: list[np.ndarray], starts: np.ndarray, span: int) -> int:
    """Of the candidate ``starts``, the one whose next ``span`` characters see the most of
    ``tracks`` change value (a string, a comment and an indented block in one window), the
    most changes of the yes/no ones breaking ties; the first such."""
    n = len(tracks[0]) if tracks else 0
    ends = np.minimum(starts + span, n)
    changing = np.zeros(len(starts))
    changes = np.zeros(len(starts))
    for track in tracks:
        changed = np.cumsum(np.r_[0, 0, track[1:] != track[:-1]])  # changed[i]: changes at positions before i
        count = changed[ends] - changed[np.minimum(starts + 1, n)]
        changing += count > 0
        if np.isin(track, (0, 1)).all():
            changes += count
    score = changing * (span + 1) + changes  # features that change first, then how often
    return int(starts[np.argmax(score)]) if len(starts) else 0


def first_views(store: ActivationStore) -> dict:
    """What the first views of ``store`` open on, JSON-ready and cached in the store:
    ``{"stretches": {feature: position}, "heatmap": {"neurons": [...], "start", "stop"}}``,
    the neurons being each ranked feature's best cell."""
    from ..text.features import store_features

    def compute() -> dict:
        rankings = store_rankings(store)
        features = store_features(store, names=list(rankings))
        starts = line_starts(store.text())
        stretches = {name: densest_stretch(features[name], starts, NEURON_SPAN) for name in rankings if features.is_binary(name)}
        start = changing_window([features[name] for name in rankings], starts, HEATMAP_SPAN)
        best = list(dict.fromkeys(r["rows"][0]["neuron"] for r in rankings.values() if r["rows"]))
        heatmap = {"neurons": best, "start": start, "stop": min(start + HEATMAP_SPAN, len(store))}
        return {"stretches": stretches, "heatmap": heatmap}

    return cached(store, FIRST_VIEWS_CACHE, compute)


def tracked_feature(rankings: dict, neuron: str) -> str | None:
    """The yes/no feature ``neuron`` tells apart best (its AUROC furthest from 0.5), when
    it does so at least as well as ``TRACKS``; else None."""
    scores = {
        feature: next((row["score"] for row in ranking["rows"] if row["neuron"] == neuron), 0.0)
        for feature, ranking in rankings.items()
        if ranking["metric"] == "auroc"
    }
    best = max(scores, key=scores.get, default=None)
    return best if best is not None and scores[best] >= TRACKS else None


def neuron_opening(store: ActivationStore, neuron: str | NeuronId) -> int:
    """Where the Neuron page of ``neuron`` opens: the densest stretch of the yes/no feature
    it tracks (:func:`tracked_feature`), else where its strongest values are densest."""
    views = first_views(store)
    feature = tracked_feature(store_rankings(store), str(neuron))
    if feature in views["stretches"]:
        return views["stretches"][feature]
    values = store.neuron(neuron).astype(np.float64)
    distance = np.abs(values - np.median(values))
    strongest = (distance >= np.quantile(distance, 1 - STRONGEST)) & (distance > 0)
    return densest_stretch(strongest, line_starts(store.text()), NEURON_SPAN)
