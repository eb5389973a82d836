"""``lstmviz bench scale``: the same recording and find-cells in one process and on a local
Ray cluster with one and two workers, alternating."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from ..model.checkpoint import Checkpoint
from ..text.corpus import Document
from .fixtures import default_checkpoint, model_shape
from .harness import at_most, result

WAYS = (("single", None), ("ray1", 1), ("ray2", 2))  # name, Ray workers (None: this process)


def _scale_run(ckpt: Checkpoint, docs: list[Document], out: Path, workers: int | None) -> tuple[float, float]:
    """Record ``docs`` and rank every h and c neuron against the built-in features, in this
    process (``workers=None``) or on that many Ray actors and tasks: (record s, find-cells s)."""
    from ..analysis.rankings import rank_neurons
    from ..recording.recorder import record_activations
    from ..scale.shard_rankings import rank_neurons_sharded
    from ..scale.sharding import record_sharded
    from ..text.features import store_features

    t0 = time.perf_counter()
    if workers is None:
        store = record_activations(ckpt, docs, out, progress=False)
    else:
        store = record_sharded(ckpt.path, docs, out, shards=workers, workers=workers)
    t1 = time.perf_counter()
    features = store_features(store)
    if workers is None:
        rank_neurons(store, features, ("h", "c"))
    else:
        rank_neurons_sharded(store, features, ("h", "c"), workers=workers)
    return t1 - t0, time.perf_counter() - t1


def _runs(ckpt: Checkpoint, docs: list[Document], repeats: int) -> tuple[dict[str, list[tuple[float, float]]], float]:
    """Each way ``repeats`` times, alternating, on a cluster started once and kept, as on a
    real one: their (record s, find-cells s), and the seconds the cluster took to start."""
    from ..scale.sharding import connect

    t0 = time.perf_counter()
    started = connect(None)
    cluster_s = time.perf_counter() - t0
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in WAYS}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(repeats):
                for name, workers in WAYS:
                    out = Path(tmp) / f"{name}-{r}"
                    runs[name].append(_scale_run(ckpt, docs, out, workers))
                    shutil.rmtree(out)
    finally:
        if started:
            import ray

            ray.shutdown()
    return runs, cluster_s


def bench_scale(checkpoint: str | None = None, chars: int = 475_222, repeats: int = 3) -> dict:
    """The first ``chars`` characters of the checkpoint's test split recorded and ranked each
    way, medians of ``repeats``."""
    from ..analysis.evaluate import evaluation_documents
    from ..recording.recorder import recorded_rows, store_bytes
    from ..text.lanes import limit_chars

    ckpt = default_checkpoint(checkpoint)
    docs = limit_chars(evaluation_documents(ckpt), chars)
    n = sum(len(d.text) for d in docs)
    runs, cluster_s = _runs(ckpt, docs, repeats)
    total = {k: statistics.median(a + b for a, b in v) for k, v in runs.items()}
    record_s = {k: statistics.median(a for a, _ in v) for k, v in runs.items()}
    figures = {
        "model": model_shape(ckpt.model_config),
        "chars": n,
        "documents": len(docs),
        "single_s": round(total["single"], 2),
        "ray1_s": round(total["ray1"], 2),
        "ray2_s": round(total["ray2"], 2),
        "speedup_2": round(total["single"] / total["ray2"], 3),
        "overhead_1": round(total["ray1"] / total["single"] - 1, 3),
        "record_s": {k: round(v, 2) for k, v in record_s.items()},
        "find_cells_s": {k: round(total[k] - record_s[k], 2) for k in total},
        "cluster_start_s": round(cluster_s, 2),
        "s_per_million_chars_per_worker": round(record_s["ray1"] / n * 1e6, 1),
        "bytes_per_char": store_bytes(recorded_rows(ckpt.model_config), 1),
    }
    measures = "recording and find-cells in one process beside a local Ray cluster of one and two workers: seconds"
    return result("scale", measures, figures, {"overhead_1": at_most(0.15)})
