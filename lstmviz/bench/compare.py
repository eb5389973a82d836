"""``lstmviz bench compare``: the whole comparison of two stores, in its own process (for
its peak memory), beside the correlations as a careful user writes them and the bare
product of the standardised series.

    python -m lstmviz.bench.compare STORE_A STORE_B

is that child process: it compares the two stores and prints its seconds as JSON."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

from .fixtures import synthetic_store
from .harness import at_most, peak_mb, result, run_module, timed
from .references import reference_correlations, standardised


def timed_comparison(path_a: str, path_b: str) -> dict:
    """Seconds of :func:`compare_stores` (without features) in this process, and its
    memory before it started (MB)."""
    from ..analysis.compare import compare_stores
    from ..store.open import open_store

    a, b = open_store(path_a), open_store(path_b)
    before = peak_mb()
    return {"seconds": timed(lambda: compare_stores(a, b, with_features=False)), "start_rss_mb": before}


def _compare_in_child(a, b) -> dict:
    """:func:`timed_comparison` in a child process, with its peak memory."""
    stdout, peak = run_module("lstmviz.bench.compare", str(a.path), str(b.path), failure="The comparison failed")
    return {**json.loads(stdout.strip().splitlines()[-1]), "peak_rss_mb": peak}


def _products(a, b, repeats: int) -> dict:
    """Median seconds of the bare product of the standardised series, numpy's and torch's;
    the number of series of each store and their size as stored (float16, MB)."""
    ta, tb = standardised(a), standardised(b)
    xa, xb = ta.numpy(), tb.numpy()
    return {
        "numpy": statistics.median(timed(lambda: xa @ xb.T) for _ in range(repeats)),
        "torch": statistics.median(timed(lambda: ta @ tb.T) for _ in range(repeats)),
        "series": (len(xa), len(xb)),
        "blocks_mb": (xa.size + xb.size) * 2 / 2**20,
    }


def bench_compare(chars: int = 500_000, units: int = 256, repeats: int = 3) -> dict:
    """The whole comparison (correlation of every h and c series of A with every one of B,
    best matches, assignment, CKA) of two synthetic 2-layer models over ``chars`` characters,
    alternating with :func:`reference_correlations`, each a median of ``repeats``."""
    with tempfile.TemporaryDirectory() as tmp:
        a, _ = synthetic_store(Path(tmp) / "a.store", chars, units=units, seed=1)
        b, source = synthetic_store(Path(tmp) / "b.store", chars, units=units, seed=2)
        runs, reference = [], []
        for _ in range(repeats):
            runs.append(_compare_in_child(a, b))
            reference.append(timed(lambda: reference_correlations(a, b)))
        products = _products(a, b, repeats)
    seconds, ref_seconds = statistics.median(r["seconds"] for r in runs), statistics.median(reference)
    product, blocks_mb = min(products["numpy"], products["torch"]), products["blocks_mb"]
    figures = {
        "source": source.replace("synthetic", "two synthetic stores of"),
        "chars": chars,
        "series_a": products["series"][0],
        "series_b": products["series"][1],
        "seconds": round(seconds, 2),
        "runs": [round(r["seconds"], 2) for r in runs],
        "reference": "h and c widened to float32, standardised, one float32 product A x B (torch)",
        "reference_seconds": round(ref_seconds, 2),
        "reference_runs": [round(x, 2) for x in reference],
        "vs_reference": round(seconds / ref_seconds, 2),
        "product_seconds": round(product, 2),
        "product_numpy_seconds": round(products["numpy"], 2),
        "product_torch_seconds": round(products["torch"], 2),
        "vs_product": round(seconds / product, 2),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs)),
        "start_rss_mb": round(statistics.median(r["start_rss_mb"] for r in runs)),  # the child before comparing
        "series_blocks_mb": round(blocks_mb),
    }
    targets = {
        "vs_reference": at_most(1.5),
        "vs_product": at_most(1.5),
        "seconds": at_most(10),
        "peak_rss_mb": at_most(round(2 * blocks_mb), "twice the two series blocks as stored"),
    }
    measures = "the whole comparison of two stores (in its own process) beside the correlations a careful user writes: seconds"
    return result("compare", measures, figures, targets)


if __name__ == "__main__":  # the child process of bench_compare
    print(json.dumps(timed_comparison(*sys.argv[1:3])))
