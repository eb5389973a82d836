"""``lstmviz bench record``: a whole recording, as ``lstmviz record`` runs it in its own
process, beside the fused forward (the ceiling) and the step loop a careful user writes
with nn.LSTMCell's weights; and one neuron read back from a store of 1M characters."""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ..store.format import DEFAULT_LANES
from .fixtures import default_checkpoint, laid_chunks, model_shape, user_batches
from .harness import at_least, at_most, result, run_module
from .references import forward_seconds, hoisted_cell_loop


def _record_in_child(checkpoint: Path, max_chars: int, lanes: int, out: Path) -> tuple[float, float]:
    """``lstmviz record`` as a user runs it, in its own process: its seconds (until the
    store is on disk and in place) and peak memory (MB)."""
    args = ["record", str(checkpoint), "--out", str(out), "--max-chars", str(max_chars), "--lanes", str(lanes), "--json"]
    stdout, peak = run_module("lstmviz.cli", *args, failure="Recording failed")
    return json.loads(stdout)["seconds"], peak


def neuron_read_ms(folder: Path, chars: int = 1_000_000, reads: int = 20) -> float:
    """Median milliseconds to read one neuron's whole series from a store of ``chars``
    characters (64 synthetic neurons), each read another neuron."""
    from ..store.writer import write_store

    rng = np.random.default_rng(0)
    series = {(1, "h"): rng.normal(size=(64, chars)).astype(np.float16)}
    big = write_store(folder / "big", "x" * chars, [("x", 0, chars)], series)
    times = []
    for i in range(reads):
        t0 = time.perf_counter()
        big.neuron(f"L1.h.{(i * 7) % 64}", 0, chars)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _runs(ckpt, batches, n: int, lanes: int, repeats: int, tmp: Path) -> dict:
    """Each way of computing the states, alternating, ``repeats`` times: seconds, and the
    recording's peak memory and what it stored."""
    from ..store.open import open_store

    runs: dict[str, list] = {"ours": [], "fused": [], "loop": [], "model": [], "rss": []}
    for _ in range(repeats):
        runs["fused"].append(forward_seconds(ckpt, batches))
        runs["model"].append(forward_seconds(ckpt, batches, ckpt.model.hook_names()))
        seconds, peak = _record_in_child(ckpt.path, n, lanes, tmp / "s")
        runs["ours"].append(seconds)
        runs["rss"].append(peak)
        store = open_store(tmp / "s")
        runs["stored"] = (store.activations.dtype.itemsize, len(store.series))
        del store
        shutil.rmtree(tmp / "s")  # its dirty pages dropped: not written back while the next ones run
        runs["loop"].append(hoisted_cell_loop(ckpt, batches)[0])
    return runs


TARGETS = {
    "ratio_vs_fused": at_least(0.7),
    "ratio_vs_cell_loop": at_least(1.2),
    "bytes_per_value": at_most(2),
    "peak_rss_mb": at_most(2000, "recording 5,000,000 characters"),
    "read_ms": at_most(10),
}


def bench_record(
    checkpoint: str | None = None, chars: int = 100_000, lanes: int = DEFAULT_LANES, repeats: int = 3, read_chars: int = 1_000_000
) -> dict:
    """The first ``chars`` characters of the checkpoint's test split recorded (medians of
    ``repeats``), beside the fused forward and :func:`hoisted_cell_loop`; one neuron read
    from a store of ``read_chars`` characters."""
    from ..analysis.evaluate import evaluation_documents
    from ..text.lanes import limit_chars

    ckpt = default_checkpoint(checkpoint)
    laid, chunks = laid_chunks(ckpt, limit_chars(evaluation_documents(ckpt), chars), lanes, 256)
    batches, n = user_batches(chunks), len(laid.text)
    with tempfile.TemporaryDirectory() as tmp:
        runs = _runs(ckpt, batches, n, lanes, repeats, Path(tmp))
        read_ms = neuron_read_ms(Path(tmp), read_chars)
    ours, fused, loop, model = (n / statistics.median(runs[k]) for k in ("ours", "fused", "loop", "model"))
    bytes_per_value, n_series = runs["stored"]
    figures = {
        "model": model_shape(ckpt.model_config),
        "chars": n,
        "lanes": laid.lanes,
        "series": n_series,
        "chars_per_s": round(ours),
        "fused_chars_per_s": round(fused),
        "cell_loop_chars_per_s": round(loop),
        "cell_loop": "nn.LSTMCell weights, input projection hoisted (one product per layer and chunk), h and c kept",
        "ratio_vs_fused": round(ours / fused, 3),
        "ratio_vs_cell_loop": round(ours / loop, 3),
        "model_part_chars_per_s": round(model),  # recording's forward alone: every series computed, nothing written
        "model_part_ratio_vs_fused": round(model / fused, 3),
        "bytes_per_value": bytes_per_value,
        "peak_rss_mb": round(max(runs["rss"])),
        "read_chars": read_chars,
        "read_ms": round(read_ms, 3),
    }
    measures = (
        "a whole recording (`lstmviz record` in its own process, until the store is on disk) beside the fused forward and "
        "a careful nn.LSTMCell step loop: characters/s; one neuron read back from a store"
    )
    return result("record", measures, figures, TARGETS)
