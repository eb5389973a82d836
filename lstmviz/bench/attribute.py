"""``lstmviz bench attribute``: attribution through time on the shipped model for one
position inside a string (layer 2's quote cell, a window of 200 characters): gradient x
input, integrated gradients at 32 path points (the issue's figure) beside Captum's
``LayerIntegratedGradients`` at as many steps on the same model and input, ours again at
its default points (with the completeness error each reaches), and exact occlusion of
every character of the window. Every method starts from the state the text
before the window leaves, computed once (its time is its own figure)."""

from __future__ import annotations

import re
import statistics
import time

from ..analysis.attribution.attribute import DEFAULT_STEPS, attribute_located, locate, state_before, target_of
from ..core.errors import LstmvizError
from ..recording.one_text import evaluation_documents
from .fixtures import default_checkpoint
from .harness import at_most, result
from .references import captum_layer_integrated_gradients

UNIT = 90  # L2.c.90, the shipped model's quote cell
COMPARED_STEPS = 32  # integrated gradients' path points where ours and Captum's are timed side by side
INTO_STRING = 13  # characters after the opening quote


def string_position(docs, window: int) -> int:
    """A position ``INTO_STRING`` characters into the first single-line string at least a
    window into its document (else the last character of the first document long enough)."""
    start = 0
    for d in docs:
        for m in re.finditer("'[^'\\n]{" + str(INTO_STRING + 1) + ",}'", d.text):
            if m.start() >= window:
                return start + m.start() + INTO_STRING
        start += len(d.text)
    start = 0
    for d in docs:
        if len(d.text) > window:
            return start + len(d.text) - 1
        start += len(d.text)
    raise LstmvizError(f"bench attribute needs a test document longer than the window ({window} characters).")


def _median_seconds(fn, repeats: int):
    seconds, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds), out


def bench_attribute(checkpoint: str | None = None, window: int = 200, repeats: int = 3, unit: int = UNIT) -> dict:
    """Medians of ``repeats`` runs of each method, alternating with Captum's."""
    ckpt = default_checkpoint(checkpoint)
    model, vocab, cfg = ckpt.model, ckpt.vocab, ckpt.model_config
    if cfg.cell != "lstm" or cfg.bidirectional:
        raise LstmvizError("bench attribute compares with Captum on an LSTM's c: it needs a unidirectional LSTM checkpoint.")
    docs = evaluation_documents(ckpt)
    at = locate(docs, string_position(docs, window), vocab)
    target = target_of(model, vocab, f"L{cfg.num_layers}.c.{unit}")
    first = max(0, at.pos - window + 1)
    prefix_s, state = _median_seconds(lambda: state_before(model, at.ids[:first]), repeats)
    state = state if state is not None else model.initial_state(1)

    def ours(method: str, steps: int | None = None):
        return attribute_located(model, vocab, at, target, method, window, steps=steps, state=state)

    grad_s, _ = _median_seconds(lambda: ours("grad"), repeats)
    ig_runs, captum_runs = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ig = ours("ig", COMPARED_STEPS)
        ig_runs.append(time.perf_counter() - t0)
        captum_runs.append(captum_layer_integrated_gradients(ckpt, at.ids[first : at.pos + 1], state, unit, COMPARED_STEPS))
    default_s, ig_default = _median_seconds(lambda: ours("ig"), repeats)
    occlusion_s, occluded = _median_seconds(lambda: ours("occlusion"), repeats)
    ig_s, captum_s = statistics.median(ig_runs), statistics.median(r[0] for r in captum_runs)
    _, captum_attr, captum_delta, captum_change = captum_runs[-1]
    figures = {
        "model": f"{cfg.num_layers}x{cfg.hidden_size} {cfg.cell}",
        "target": f"{target.unit} at position {at.doc_start + at.pos} ({at.pos - first} characters of window before it)",
        "window": len(occluded.contributions),
        "steps": COMPARED_STEPS,
        "prefix_chars": first,
        "prefix_state_ms": round(1000 * prefix_s, 1),
        "grad_ms": round(1000 * grad_s, 1),
        "ig_s": round(ig_s, 3),
        "captum_ig_s": round(captum_s, 3),
        "ig_ratio_vs_captum": round(ig_s / captum_s, 3),
        "ig_completeness_error": round(ig.completeness_error, 4),
        "captum_completeness_error": round(abs(captum_delta) / abs(captum_change), 4) if captum_change else None,
        "default_steps": DEFAULT_STEPS,
        "ig_default_s": round(default_s, 3),
        "ig_default_completeness_error": round(ig_default.completeness_error, 4),
        "occlusion_s": round(occlusion_s, 3),
    }
    targets = {
        "grad_ms": at_most(150),
        "ig_s": at_most(1.5, f"{COMPARED_STEPS} path points"),
        "ig_ratio_vs_captum": at_most(1.0, f"Captum's LayerIntegratedGradients at {COMPARED_STEPS} steps too"),
        "occlusion_s": at_most(2.0, "every character of a 200-character window"),
    }
    measures = "attribution of one unit at one position by each method, integrated gradients beside Captum's: seconds"
    return result("attribute", measures, figures, targets)
