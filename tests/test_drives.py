"""The Neuron page's "What drives it" panel in a real headless Chromium: it lists the circuit
``unit_circuits`` computes, over the unit's best feature's positions, and its graph's nodes
open their own Neuron pages."""

import numpy as np
import test_dashboard
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lstmviz.analysis.circuits import Selection, unit_circuits
from lstmviz.app.catalog import Catalog
from lstmviz.app.drives import DrivesPanel
from lstmviz.app.pages.neuron import NeuronView, neuron_link
from lstmviz.bench.browser import panel_label, text_of, texts_of
from lstmviz.core.neurons import NeuronId
from lstmviz.model.checkpoint import load_checkpoint
from lstmviz.store.writer import write_store

browser, downloads = test_dashboard.browser, test_dashboard.downloads  # the fixtures: a Chromium of this module's own
server = test_dashboard.server  # and a dashboard on the tiny model's store

UNIT = "L2.c.3"


def _best_binary_feature(rankings: dict, neuron: str) -> str | None:
    """The AUROC-ranked feature whose ranking lists ``neuron`` highest."""
    ranks = {}
    for feature, table in rankings.items():
        listed = [r["neuron"] for r in table["rows"]]
        if table["metric"] == "auroc" and neuron in listed:
            ranks[feature] = listed.index(neuron)
    return min(ranks, key=ranks.get) if ranks else None


def _expected(tiny_store, app) -> tuple[str, dict[str, list[str]]]:
    """What the panel must list: each gate's top five sources over the best feature's positions."""
    ckpt = load_checkpoint(tiny_store.checkpoint["path"])
    feature = _best_binary_feature(app.catalog.rankings(app.catalog.default), UNIT)
    selection = Selection.of_store(tiny_store, feature)
    ids = ckpt.vocab.encode_array(tiny_store.text())
    (unit,), _ = unit_circuits(ckpt, tiny_store, [NeuronId.parse(UNIT)], selection.positions, ids)
    return selection.label, {g: [t.source for t in unit.top(g, 5)] for g in unit.terms}


def test_the_panel_lists_the_circuits_top_sources_and_its_nodes_open_their_pages(server, browser, tiny_store):
    url, app = server
    label, expected = _expected(tiny_store, app)
    browser.get(f"{url}/?neuron={UNIT}")
    WebDriverWait(browser, 60).until(lambda d: panel_label(d) == UNIT)
    text_of(browser, "#drives-body", lambda t: "Not read yet" in t, timeout=60)
    browser.find_element(By.ID, "drives-run").click()
    text_of(browser, "#drives-table", timeout=120)
    assert f"over {label} (" in text_of(browser, "#drives-body")
    for gate, sources in expected.items():
        listed = texts_of(browser, f'#drives-table tr[data-gate="{gate}"] .drives-source')
        assert [t.split(" (")[0] for t in listed] == sources
    assert "random edges" in text_of(browser, "#drives-check")
    # the graph: the unit's gates, its top sources and theirs, each unit a link to its page
    nodes = browser.find_elements(By.CSS_SELECTOR, "#drives-graph a")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#drives-graph .drives-edge")) >= 5
    other = next(a for a in nodes if a.text != UNIT)
    target = other.text
    other.click()
    WebDriverWait(browser, 60).until(lambda d: panel_label(d) == target)
    assert f"neuron={target}" in browser.current_url


def test_a_store_without_its_model_says_so_in_one_sentence(tiny_store, tmp_path):
    docs = [(d.name, d.start, d.stop) for d in tiny_store.documents]
    series = {
        (s.layer, s.kind): np.asarray(tiny_store.series_block(s.layer, s.kind)) for s in tiny_store.series if s.kind in "hc"
    }
    bare = write_store(tmp_path / "bare.store", tiny_store.text(), docs, series, vocab=tiny_store.vocab_chars)
    shown = DrivesPanel(Catalog.of([bare]), NeuronView, neuron_link).show(f"?neuron={UNIT}", None)
    said = shown["body"].children
    assert said.startswith("bare.store was written without the model that made its activations")
    assert said.endswith("so the dashboard cannot read the circuit into a unit.")
    assert shown["run_style"] == {"display": "none"} and shown["poll_off"] is True


def test_a_failed_job_is_one_sentence_in_the_page_with_the_button_to_try_again(server):
    _, app = server
    panel, name = DrivesPanel(app.catalog, NeuronView, neuron_link), app.catalog.default
    feature = _best_binary_feature(app.catalog.rankings(name), "L1.h.2")
    job = app.catalog.jobs.start(f"drives:{name}:L1.h.2:{feature}", lambda job: 1 / 0)
    WebDriverWait(None, 30, poll_frequency=0.05).until(lambda _: job.state == "failed")
    shown = panel.show("?neuron=L1.h.2", None)
    assert shown["body"].children == "The circuit could not be read: ZeroDivisionError: division by zero"
    assert shown["run_style"] == {} and shown["poll_off"] is True
