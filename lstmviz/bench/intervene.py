"""``lstmviz bench intervene``: the exact intervention pass (one c unit of layer 1 clamped
at every character) beside a careful hand-written loop doing the same, the fused forward
with nothing clamped, and sampling with the unit clamped."""

from __future__ import annotations

import statistics
import time

import torch

from ..core.errors import LstmvizError
from ..model.checkpoint import Checkpoint
from ..store.format import DEFAULT_LANES
from ..text.lanes import Chunk, LaidText
from .fixtures import default_checkpoint, laid_chunks, model_shape, user_batches
from .harness import at_least, result, timed
from .references import clamped_loop, forward_seconds

UNIT, VALUE = 52, 0.0  # L1.c.52, a comment cell of the shipped model, clamped to 0


def clamped_exact(
    ckpt: Checkpoint, laid: LaidText, chunks: list[Chunk], neuron: str, value: float
) -> tuple[float, list[torch.Tensor]]:
    """Ours: the model's forward with a ready-made clamp hook (the exact step path), run by
    ``LaidText.run``. Returns seconds and the logits per chunk."""
    from ..model.interventions import clamp

    model, hooks = ckpt.model, clamp(neuron, value)

    def forward(chunk: Chunk, state):
        return model.forward_instrumented(chunk.ids, state, hooks=hooks)

    t0 = time.perf_counter()
    with torch.inference_mode():
        logits = [out for _, out, _ in laid.run(chunks, forward, model.initial_state(laid.lanes))]
    return time.perf_counter() - t0, logits


def _runs(ckpt: Checkpoint, laid: LaidText, chunks: list[Chunk], unit: int, repeats: int, sample_chars: int) -> dict:
    """Seconds of each way, alternating, ``repeats`` times; and the largest logit difference
    between ours and the loop."""
    from ..model.sampling import sample

    neuron, runs = f"L1.c.{unit}", {"ours": [], "loop": [], "fused": [], "sample": []}
    batches = user_batches(chunks)
    for _ in range(repeats):
        seconds, ours = clamped_exact(ckpt, laid, chunks, neuron, VALUE)
        runs["ours"].append(seconds)
        seconds, loop = clamped_loop(ckpt, batches, unit, VALUE)
        runs["loop"].append(seconds)
        runs["fused"].append(forward_seconds(ckpt, batches))
        runs["sample"].append(timed(lambda: sample(ckpt, "def ", sample_chars, seed=0, clamp={neuron: VALUE})))
    runs["agree"] = max(float((a - b).abs().max()) for a, b in zip(ours, loop, strict=True))
    return runs


def bench_intervene(
    checkpoint: str | None = None,
    chars: int = 100_000,
    lanes: int = DEFAULT_LANES,
    repeats: int = 3,
    sample_chars: int = 2000,
    unit: int = UNIT,
) -> dict:
    """The first ``chars`` characters of the checkpoint's test split with L1.c.``unit``
    clamped (medians of ``repeats``), and sampling ``sample_chars`` characters with it clamped."""
    from ..analysis.evaluate import evaluation_documents
    from ..text.lanes import limit_chars

    ckpt = default_checkpoint(checkpoint)
    cfg = ckpt.model_config
    if cfg.cell != "lstm" or cfg.num_layers < 2:
        raise LstmvizError("bench intervene clamps an LSTM's layer-1 c: it needs an LSTM checkpoint of two or more layers.")
    laid, chunks = laid_chunks(ckpt, limit_chars(evaluation_documents(ckpt), chars), lanes, 256)
    runs, n = _runs(ckpt, laid, chunks, unit, repeats, sample_chars), len(laid.text)
    exact, loop, fused = (n / statistics.median(runs[k]) for k in ("ours", "loop", "fused"))
    figures = {
        "model": model_shape(cfg),
        "intervention": f"L1.c.{unit} clamped to {VALUE:g} at every character",
        "chars": n,
        "lanes": laid.lanes,
        "exact_chars_per_s": round(exact),
        "loop_chars_per_s": round(loop),
        "ratio_vs_loop": round(exact / loop, 3),
        "fused_chars_per_s": round(fused),
        "ratio_vs_fused": round(exact / fused, 3),
        "max_logit_difference": runs["agree"],
        "sample_chars_per_s": round(sample_chars / statistics.median(runs["sample"])),
    }
    measures = "the exact pass with one cell clamped beside a careful hand-written clamp loop and the fused forward: characters/s"
    return result("intervene", measures, figures, {"ratio_vs_loop": at_least(1.0), "sample_chars_per_s": at_least(2000)})
