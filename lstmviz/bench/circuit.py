"""``lstmviz bench circuit``: the circuit summary of one unit over a checkpoint's whole test
split (its gates' terms per source, and its top sources' own: what ``lstmviz circuit`` prints
before its causal check), beside the reference a careful user writes: every position's terms
written out with ``np.einsum`` and averaged (``references.reference_circuit``), in the same run."""

from __future__ import annotations

import statistics

import numpy as np

from ..analysis.circuits import Selection, causal_check, two_levels, unit_circuits
from ..recording.one_text import evaluation_documents
from ..recording.sources import COMPARED_KINDS, recorded
from ..text.lanes import limit_chars
from .fixtures import default_checkpoint
from .harness import at_least, at_most, result, timed
from .references import reference_circuit

NEURON = "L2.c.90"  # the shipped model's quote cell


def bench_circuit(checkpoint: str | None = None, neuron: str = NEURON, chars: int | None = None, repeats: int = 3) -> dict:
    """The summary of ``neuron`` over the first ``chars`` characters of the test split (all of
    it by default; recorded once, h and c, into the cache), median of ``repeats``; the
    reference once between our runs; the causal check once."""
    ckpt = default_checkpoint(checkpoint)
    opened = {}
    docs = limit_chars(evaluation_documents(ckpt), chars)
    recording_s = timed(lambda: opened.update(store=recorded(ckpt, docs, kinds=COMPARED_KINDS, progress=False)))
    store = opened["store"]
    n = ckpt.model.check_neuron(neuron)
    whole = Selection("the whole text", np.arange(len(store)))
    found = {}

    def summary() -> None:
        ids = ckpt.vocab.encode_array(store.text())
        found["unit"], _, found["sources"] = two_levels(ckpt, store, n, whole, ids, 5)

    ours = [timed(summary)]
    reference = {}
    reference_s = timed(lambda: reference.update(reference_circuit(ckpt, store, n, whole.positions)))
    ours += [timed(summary) for _ in range(repeats - 1)]
    one_level = timed(lambda: unit_circuits(ckpt, store, [n], whole.positions, ckpt.vocab.encode_array(store.text())))
    check_s = timed(lambda: causal_check(ckpt, store, found["unit"], whole, 5, 10, 10_000))
    unit = found["unit"]
    difference = max(float(np.abs(unit.terms[g] - reference[g]).max()) for g in unit.terms)
    cfg = ckpt.model_config
    figures = {
        "model": f"{cfg.num_layers}x{cfg.hidden_size} {cfg.cell}",
        "neuron": str(n),
        "chars": len(store),
        "seconds": round(statistics.median(ours), 3),
        "runs": [round(x, 3) for x in ours],
        "one_level_seconds": round(one_level, 3),
        "reference": "np.einsum of every position's terms per gate, then their mean (one level)",
        "reference_seconds": round(reference_s, 3),
        "ratio_vs_reference": round(reference_s / one_level, 2),
        "max_term_difference": difference,
        "check_seconds": round(check_s, 3),
        "recording_seconds": round(recording_s, 1),  # the split recorded into the cache (about 0 when it was there)
    }
    measures = "one unit's circuit (two levels) over the whole test split, beside every position's terms by np.einsum: seconds"
    return result("circuit", measures, figures, {"seconds": at_most(5), "ratio_vs_reference": at_least(1)})
