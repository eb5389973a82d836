"""``lstmviz bench dashboard``: the Neuron page's server time per neuron switch beside the
raw read of the neuron's series, its paint time in headless Chromium, and load tests of a
dashboard served as ``lstmviz serve`` runs it: plain, then beside heavy work."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ..core.errors import LstmvizError
from .fixtures import bench_store, default_checkpoint
from .harness import at_most, result, served
from .loadtest import DashClient, run_load

LIVE_NEURON = "L2.c.90"  # the shipped model's quote cell, for the Text page's typed text
TARGETS = {
    "switch_ms": at_most(50),
    "paint_ms": at_most(150),
    "load_p95_ms": at_most(300),
    "load_errors": at_most(0),
    "stressed_load_p95_ms": at_most(300),
    "stressed_load_errors": at_most(0),
    "live_ms": at_most(200),
}


def _ms_since(t0: float) -> float:
    return 1000 * (time.perf_counter() - t0)


def _switch_times(base: str, store, picks: list[str], pos: int) -> dict[str, float]:
    """Median ms, over the neurons ``picks`` (each once: nothing is cached between them), of
    reading the raw series, the switch callback and the details callback."""
    client = DashClient(base, DashClient.fetch_dependencies(base))
    try:
        client.call(client.switch_bodies(picks[0], pos, store.name)[0])  # warm up
        times: dict[str, list[float]] = {"raw": [], "switch": [], "details": []}
        for neuron in picks:
            t0 = time.perf_counter()
            np.array(store.neuron(neuron))
            times["raw"].append(_ms_since(t0))
            for name, body in zip(("switch", "details"), client.switch_bodies(neuron, pos, store.name), strict=True):
                t0 = time.perf_counter()
                client.call(body)
                times[name].append(_ms_since(t0))
    finally:
        client.close()
    return {name: statistics.median(values) for name, values in times.items()}


def _browser_paint_ms(base_url: str, first: str, presses: int, pos: int) -> list[float]:
    """Paint times (ms, ``performance.now()`` around the clientside update, its layout
    included) of the Neuron page's window in headless Chromium: the page is opened on
    neuron ``first``, then ``presses`` times the user presses "next", as when browsing."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from .browser import chromium, panel_label

    with chromium() as driver:
        driver.get(f"{base_url}/?neuron={first}&pos={pos}")
        WebDriverWait(driver, 60).until(lambda d: panel_label(d) == first)
        times = []
        for _ in range(presses):
            before = panel_label(driver)
            driver.find_element(By.ID, "next-neuron").click()
            WebDriverWait(driver, 60).until(lambda d, b=before: panel_label(d) not in (b, None))
            times.append(float(driver.execute_script("return document.getElementById('text-panel').dataset.paintMs")))
        return times


def _live_text_ms(base: str, store, chars: int = 2000, repeats: int = 9) -> dict:
    """The Text page's callback over HTTP: ``chars`` typed characters recorded in memory and
    their payload made (each time another text, so nothing is reused), median ms."""
    ids = [str(n) for n in store.neuron_ids(("c",))]
    neuron = LIVE_NEURON if LIVE_NEURON in ids else ids[-1]
    chars = min(chars, len(store))
    client = DashClient(base, DashClient.fetch_dependencies(base))
    times = []
    try:
        for k in range(repeats + 1):
            start = k * 997 % (len(store) - chars + 1)
            text = store.text(start, start + chars)
            body = client.body(
                "typed-data", {"typed-text.data": text, "url.search": f"?neuron={neuron}", "url.pathname": "/text"}
            )
            t0 = time.perf_counter()
            answer = client.call(body)["response"]
            if k:  # the first loads the checkpoint
                times.append(_ms_since(t0))
            if not answer.get("typed-data", {}).get("data"):
                raise LstmvizError(f"The Text page painted nothing: {str(answer)[:200]}")
    finally:
        client.close()
    return {"live_chars": chars, "live_ms": round(statistics.median(times), 1)}


def _stressed_load(tmp: Path, clients: int, per_client: int, seed: int, checkpoint: str | None, chars: int) -> dict:
    """The load test on a store of the checkpoint (its test split's first ``chars``
    characters) while the Compare page records the earliest snapshot on that text and
    Discover runs a catastrophic regex again and again (``loadtest.stress``); and the Text
    page's live recording before it."""
    from ..analysis.evaluate import evaluation_documents
    from ..recording.recorder import record_activations

    ckpt = default_checkpoint(checkpoint)
    store = record_activations(ckpt, evaluation_documents(ckpt), tmp / "stress.store", max_chars=chars, progress=False)
    with served(store.path) as base:
        live = _live_text_ms(base, store)
        ids = [str(n) for n in store.neuron_ids(("h", "c"))]
        load = run_load(base, store.name, ids, clients, per_client, seed, stressed=True)
    stressed = {f"stressed_{k}" if k.startswith("load") else k: v for k, v in load.items()}
    return {**live, **{k: v for k, v in stressed.items() if k not in ("clients", "switches_per_client")}}


def _prepared(store) -> float:
    """Seconds to compute the neuron summaries, cached in the store as ``lstmviz serve`` does
    once per store before it starts (rankings first, as it does)."""
    from ..app.catalog import Catalog

    catalog = Catalog.of([store])
    catalog.rankings(store.name)
    t0 = time.perf_counter()
    catalog.prepare(store.name)
    return time.perf_counter() - t0


def _served_figures(store, switches: int, clients: int, per_client: int, browser: bool, seed: int) -> dict:
    """Switch times, paint time and the plain load test of ``store`` served by ``lstmviz serve``."""
    from ..app.pages.neuron import WINDOW

    rng = np.random.default_rng(seed)
    ids = [str(n) for n in store.neuron_ids(("h", "c"))]
    picks = [ids[i] for i in rng.choice(len(ids), size=min(switches, len(ids)), replace=False)]
    pos = max(0, len(store) // 2 - WINDOW // 2)
    with served(store.path) as base:
        ms = _switch_times(base, store, picks, pos)
        paint = statistics.median(_browser_paint_ms(base, picks[0], 12, pos)) if browser else None
        load = run_load(base, store.name, ids, clients, per_client, seed)
    return {
        "window_chars": WINDOW,
        "switch_ms": round(ms["switch"], 2),
        "contexts_ms": round(ms["details"], 2),
        "raw_read_ms": round(ms["raw"], 2),
        "switch_vs_raw_read": round(ms["switch"] / ms["raw"], 2),
        "paint_ms": None if paint is None else round(paint, 2),
        **load,
    }


def bench_dashboard(
    store_path: str | None = None,
    chars: int = 1_000_000,
    switches: int = 30,
    clients: int = 20,
    per_client: int = 50,
    browser: bool = True,
    seed: int = 0,
    stress: bool = True,
    *,
    units: int = 64,
    checkpoint: str | None = None,
    stress_chars: int = 100_000,
) -> dict:
    """Server time of the Neuron page's switch callback (a 5,000-character window) and of its
    details callback (top contexts, histogram, scores), over HTTP as the browser calls them,
    beside the floor: reading the neuron's raw series. The neuron summaries both read are
    computed first, as ``lstmviz serve`` does (``summaries_s``). Then the paint time in
    headless Chromium and a load test (``lstmviz.bench.loadtest``) on the store at
    ``store_path`` or a synthetic one of ``chars`` characters and ``units`` per layer (no
    model recorded, as a user's own); with ``stress``, the load test again on a recording
    of ``stress_chars`` characters by ``checkpoint`` while a recording and a catastrophic
    regex run in the same server."""
    with tempfile.TemporaryDirectory() as tmp:
        store, source = bench_store(Path(tmp), store_path, chars, units, seed)
        summaries_s = _prepared(store)
        served_figures = _served_figures(store, switches, clients, per_client, browser, seed)
        stressed = _stressed_load(Path(tmp), clients, per_client, seed, checkpoint, stress_chars) if stress else {}
        figures = {"source": source, "chars": len(store), **served_figures, "summaries_s": round(summaries_s, 2), **stressed}
    measures = "the Neuron page's neuron switch (server, over HTTP) beside reading the raw series; paint time; load tests"
    return result("dashboard", measures, figures, {k: t for k, t in TARGETS.items() if k in figures})
