"""The dashboard in a real headless Chromium (Debian's chromium and chromium-driver).
These tests never skip: without the browser they fail, as CI must notice."""

import threading
import time

import numpy as np
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from lstmviz.analysis.first_views import neuron_opening
from lstmviz.app import create_app
from lstmviz.bench.browser import chromium, panel_label, serving, severe_console_errors, text_of, texts_of


@pytest.fixture(scope="module")
def server(tiny_store, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("LSTMVIZ_CACHE", str(tmp_path_factory.mktemp("cache")))  # recordings the Compare page makes
    app = create_app([tiny_store])
    app.catalog.prepare(tiny_store.name)  # as `lstmviz serve` does: h and c summarised, gates on demand
    with serving(app) as base:
        yield base, app
    mp.undo()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    with chromium(downloads=downloads, logs=["browser"]) as driver:
        yield driver


def open_view(browser, url, neuron_expected=None, timeout=30):
    browser.get(url)
    wait = WebDriverWait(browser, timeout)
    if neuron_expected:
        wait.until(lambda d: panel_label(d) == neuron_expected)
    return wait


def painted_colour(browser, index):
    selector = f'#text-panel .ch[data-i="{index}"]'
    return browser.execute_script(f"return getComputedStyle(document.querySelector('{selector}')).backgroundColor;")


def panel_value(browser, index):
    return browser.execute_script(f"return document.getElementById('text-panel').lstmvizData.values[{index}]")


def test_landing_page_shows_coloured_text_without_console_errors(server, browser, tiny_store):
    base, app = server
    best = app.catalog.best_neuron(tiny_store.name)
    open_view(browser, base + "/", neuron_expected=best)
    spans = browser.find_elements(By.CSS_SELECTOR, "#text-panel .ch")
    start = browser.execute_script("return document.getElementById('text-panel').lstmvizData.start")
    assert start == neuron_opening(tiny_store, best)  # where the quote cell's strings are thickest
    assert len(spans) == min(5000, len(tiny_store) - start)  # one element per character
    assert severe_console_errors(browser) == []


def test_each_character_is_painted_with_the_colour_of_its_value(server, browser, tiny_store, reference_colour):
    base, app = server
    open_view(browser, base + "/?neuron=L2.c.3&pos=40", neuron_expected="L2.c.3")
    s = app.catalog.scale(tiny_store.name, "L2.c.3")
    for i in (0, 7, 55):
        value = float(tiny_store.neuron("L2.c.3", 40 + i, 41 + i)[0])
        assert panel_value(browser, i) == pytest.approx(value, abs=1e-3)
        assert painted_colour(browser, i) == reference_colour(value, s.low, s.centre, s.high, s.tanh)


def test_hovering_a_character_shows_its_value_and_the_models_guesses(server, browser, tiny_store):
    base, _ = server
    open_view(browser, base + "/?neuron=L1.h.2&pos=10", neuron_expected="L1.h.2")
    browser.execute_script(
        "document.querySelector('#text-panel .ch[data-i=\"3\"]').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))"
    )
    tip = text_of(browser, "#hover-info", until=lambda t: t.startswith("position"))
    value = float(tiny_store.neuron("L1.h.2", 13, 14)[0])
    assert tip.startswith("position 13 ") and f"L1.h.2 = {value:.3f}" in tip
    guesses = tip.split("next-char guesses: ")[1].split(", ")
    probs = np.asarray(tiny_store.top_probs[13], dtype=np.float64)
    assert len(guesses) == len(probs)
    assert float(guesses[0].rsplit(" ", 1)[1].rstrip("%")) == pytest.approx(100 * probs[0], abs=0.06)


@pytest.mark.parametrize("neuron", ["L2.c.3", "L1.i.5"])  # a prepared summary, and one made on demand
def test_a_neuron_shows_its_contexts_and_scores(server, browser, neuron):
    base, _ = server
    open_view(browser, base + f"/?neuron={neuron}", neuron_expected=neuron)
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_element(By.ID, "details-rendered").get_attribute("textContent") == neuron)
    assert "Highest activations" in text_of(browser, "#contexts-high")
    assert texts_of(browser, "#contexts-high .context b")[0]  # the context's own character, marked
    scores = text_of(browser, "#scores")
    assert ("in_string" in scores) if ".c." in neuron else ("computed for h and c" in scores)
    assert severe_console_errors(browser) == []


def test_next_button_recolours_and_updates_the_url(server, browser, tiny_store):
    base, _ = server
    open_view(browser, base + "/?neuron=L1.h.4", neuron_expected="L1.h.4")
    before = [painted_colour(browser, i) for i in range(40)]
    browser.find_element(By.ID, "next-neuron").click()
    WebDriverWait(browser, 30).until(lambda d: "neuron=L1.h.5" in d.current_url)
    WebDriverWait(browser, 30).until(lambda d: panel_label(d) == "L1.h.5")
    after = [painted_colour(browser, i) for i in range(40)]
    assert before != after


def test_url_round_trips_a_view(server, browser, tiny_store):
    base, _ = server
    doc = tiny_store.documents[-1]
    url = base + f"/?store={tiny_store.name}&neuron=L2.h.7&pos={doc.start + 5}"
    open_view(browser, url, neuron_expected="L2.h.7")
    assert browser.execute_script("return document.getElementById('text-panel').lstmvizData.start") == doc.start + 5
    time.sleep(1)  # the controls settle; the URL must not move
    assert browser.current_url == url
    browser.refresh()
    open_view(browser, browser.current_url, neuron_expected="L2.h.7")
    assert browser.execute_script("return document.getElementById('text-panel').lstmvizData.start") == doc.start + 5


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("neuron=L9.h.0", "No neuron L9.h.0"),
        ("neuron=banana", "not a unit id"),
        ("store=../../etc", "No store named"),
        ("pos=abc", "not a number"),
    ],
)
def test_bad_urls_show_a_message_not_a_traceback(server, browser, query, message):
    base, _ = server
    browser.get(base + "/?" + query)
    assert message in text_of(browser, "#neuron-error .error")
    assert "Traceback" not in browser.page_source


def test_heatmap_page_exports_a_valid_png(server, browser, downloads):
    base, _ = server
    browser.get(base + "/heatmap?neurons=L1.h.0,L2.c.3&range=0:60")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hm-figure .heatmaplayer, #hm-figure .hm"))
    browser.find_element(By.ID, "hm-export-png").click()
    WebDriverWait(browser, 60).until(lambda d: [p for p in downloads.iterdir() if p.suffix == ".png"])
    png = next(p for p in downloads.iterdir() if p.suffix == ".png")
    assert png.name.startswith("tiny.store-L1.h.0_L2.c.3-0-60")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_gates_page_shows_every_gate_unit(server, browser, tiny_store):
    base, _ = server
    browser.get(base + "/gates")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#gates-figure .scatterlayer .point"))
    points = browser.find_elements(By.CSS_SELECTOR, "#gates-figure .scatterlayer .point")
    assert len(points) == 2 * 3 * 24  # layers x gates (i, f, o) x units
    assert severe_console_errors(browser) == []


def test_discover_row_opens_that_neuron(server, browser, tiny_store):
    base, app = server
    browser.get(base + "/discover?feature=in_comment")
    link = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#discover-table a.neuron-link"))
    expected = app.catalog.rankings(tiny_store.name)["in_comment"]["rows"][0]["neuron"]
    assert text_of(browser, "#discover-table a.neuron-link") == expected
    link.click()
    WebDriverWait(browser, 30).until(lambda d: panel_label(d) == expected)
    assert f"neuron={expected}" in browser.current_url
    assert severe_console_errors(browser) == []


def test_selected_text_ranks_neurons_on_discover(server, browser, tiny_store):
    base, _ = server
    open_view(browser, base + "/?neuron=L1.h.0&pos=0", neuron_expected="L1.h.0")
    browser.execute_script(
        """var spans = document.querySelectorAll('#text-panel .ch');
        var r = document.createRange(); r.setStart(spans[10].firstChild, 0); r.setEnd(spans[30].firstChild, 1);
        var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r);"""
    )
    browser.find_element(By.ID, "select-to-discover").click()
    WebDriverWait(browser, 30).until(lambda d: "/discover" in d.current_url and "range=10%3A31" in d.current_url)
    table = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#discover-hypotheses table"))
    assert "characters 10:31 (21)" in text_of(browser, "#discover-hypotheses")
    assert len(table.find_elements(By.CSS_SELECTOR, "a.neuron-link")) > 0


def test_selection_button_without_a_selection_says_so(server, browser):
    base, _ = server
    open_view(browser, base + "/?neuron=L1.h.0", neuron_expected="L1.h.0")
    browser.execute_script("window.getSelection().removeAllRanges();")
    browser.find_element(By.ID, "select-to-discover").click()
    message = text_of(browser, "#selection-message")
    assert "Select some characters" in message


@pytest.mark.parametrize(
    ("query", "message"),
    [("regex=(unclosed", "Invalid regular expression"), ("range=5:2", "range"), ("feature=nope", "No feature named")],
)
def test_discover_bad_inputs_show_a_message(server, browser, query, message):
    base, _ = server
    browser.get(base + "/discover?" + query)
    assert message in text_of(browser, ".page .error")
    assert "Traceback" not in browser.page_source


def test_model_page_compares_with_the_ngram_and_paints_the_difference(server, browser, tiny_store):
    base, app = server
    browser.get(base + "/model")
    assert "recurrent model" in text_of(browser, "#model-bpc", until=lambda t: "n-gram" in t, timeout=120)
    WebDriverWait(browser, 30).until(lambda d: panel_label(d, "model-text-panel") == "bits saved")
    assert browser.find_elements(By.CSS_SELECTOR, "#model-curves .scatterlayer .trace")  # training curves drawn
    # The painted text's legend: what the colours mean, and the scale's ends (+-99th percentile of |bits saved|).
    saved = np.asarray(app.catalog.model_errors(app.catalog.default).result["advantage"], dtype=np.float64)
    end = np.percentile(np.abs(saved[np.isfinite(saved)]), 99)
    assert browser.find_element(By.ID, "model-legend-box").is_displayed()
    assert text_of(browser, "#model-legend-label") == "bits saved over the n-gram:"
    assert text_of(browser, "#model-legend-low") == f"{-end:+.2f} (the n-gram better)"
    assert text_of(browser, "#model-legend-high") == f"{end:+.2f} (the model better)"
    assert severe_console_errors(browser) == []


def test_compare_page_shows_a_neuron_beside_its_match(server, browser, downloads, tiny_store):
    base, app = server
    browser.get(base + "/compare")
    wait = WebDriverWait(browser, 120)
    asked = text_of(browser, "#cmp-progress", timeout=120)  # the disk it takes, before it starts
    assert "GB in the cache, once" in asked and "records their h and c" in asked
    cost = app.catalog.comparisons.compare_cost(*app.catalog.comparisons.default_pair())
    assert f"about {cost / 1e9:.1f} GB" in asked and cost > 0
    assert app.catalog.comparisons.comparison(*app.catalog.comparisons.default_pair()) is None  # nothing started: it asks first
    emergence = text_of(browser, "#cmp-emergence-progress", timeout=120)
    assert "first 100,000 characters" in emergence and "GB in the cache" in emergence
    browser.find_element(By.ID, "cmp-go-record").click()
    wait.until(lambda d: "record=yes" in d.current_url)
    # The emergence prompt is drawn again once the comparison starts: click whichever link is current.
    WebDriverWait(browser, 120, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: d.find_element(By.ID, "cmp-go-emergence").click() or True
    )
    wait.until(lambda d: panel_label(d, "cmp-text-b"))
    a_label = panel_label(browser, "cmp-text-a")
    b_label = panel_label(browser, "cmp-text-b")
    assert f"best match {b_label}" in text_of(browser, "#cmp-title-b") and "step-000010" in text_of(browser, "#cmp-title-a")
    job = app.catalog.comparisons.comparison(*app.catalog.comparisons.default_pair())
    assert job.result.best_match(a_label)["b"] == b_label
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#cmp-cka .heatmaplayer, #cmp-cka .hm"))
    wait.until(lambda d: panel_label(d, "cmp-text-loss"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#cmp-emergence .scatterlayer .trace"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#cmp-features tr")) == 1 + 7  # header + features
    browser.find_element(By.ID, "cmp-export-cka").click()
    WebDriverWait(browser, 60).until(lambda d: [p for p in downloads.iterdir() if p.name.startswith("cka-")])
    png = next(p for p in downloads.iterdir() if p.name.startswith("cka-"))
    assert png.suffix == ".png" and png.read_bytes()[:4] == b"\x89PNG"
    assert severe_console_errors(browser) == []


def test_compare_page_bad_choice_shows_a_message(server, browser):
    base, _ = server
    browser.get(base + "/compare?a=../../etc")
    assert "Nothing named" in text_of(browser, "#cmp-error .error")


def test_the_load_script_switches_neurons_without_errors(server, tiny_store):
    from lstmviz.bench.loadtest import default_view, run_load

    base, _ = server
    store, neurons = default_view(base)
    assert store == tiny_store.name and "L1.h.0" in neurons
    result = run_load(base, store, neurons, clients=3, switches=4)
    assert result["load_errors"] == 0 and result["load_switches"] == 12
    assert result["load_p95_ms"] > 0


def _generated(browser, panel):
    return browser.execute_script(
        f"var p=document.getElementById('{panel}'); return p && p.lstmvizData && "
        "{label: p.dataset.label, text: p.lstmvizData.chars.join(''), values: Array.from(p.lstmvizData.values)}"
    )


def test_generate_page_paints_the_held_and_the_plain_generation(server, browser, tiny_store, tiny_checkpoint):
    from lstmviz.model.sampling import sample

    base, _ = server
    browser.get(base + "/generate?prime=def%20&clamp=L1.c.3:2.5&color=L1.c.3&seed=4&t=0.8&n=150")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: (_generated(d, "gen-text-plain") or {}).get("label") == "L1.c.3")
    held, plain = _generated(browser, "gen-text-held"), _generated(browser, "gen-text-plain")
    expected_held = sample(tiny_checkpoint, "def ", 150, temperature=0.8, seed=4, clamp={"L1.c.3": 2.5}, color="L1.c.3")
    expected_plain = sample(tiny_checkpoint, "def ", 150, temperature=0.8, seed=4, color="L1.c.3")
    assert held["text"] == expected_held.text and plain["text"] == expected_plain.text
    assert all(v == 2.5 for v in held["values"]) and len(held["values"]) == 154
    assert plain["values"] == pytest.approx(expected_plain.values.tolist(), abs=1e-5)
    assert "Holding L1.c.3 at 2.5" in text_of(browser, "#gen-title-held")
    browser.execute_script(
        "document.querySelector('#gen-text-held .ch[data-i=\"10\"]').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))"
    )
    tip = text_of(browser, "#gen-hover-held", until=lambda t: t.startswith("position"))
    assert tip.startswith("position 10 ") and "L1.c.3 = 2.500" in tip and "next-char guesses" in tip
    assert severe_console_errors(browser) == []


def test_generate_button_puts_the_experiment_in_the_url(server, browser):
    base, _ = server
    browser.get(base + "/generate?n=40")
    WebDriverWait(browser, 60).until(lambda d: _generated(d, "gen-text-held"))  # one pane: nothing held yet
    browser.find_element(By.ID, "gen-clamp").send_keys("L2.h.1:-0.9")
    browser.find_element(By.ID, "gen-run").click()
    WebDriverWait(browser, 60).until(lambda d: "clamp=L2.h.1%3A-0.9" in d.current_url)
    text_of(browser, "#gen-title-held", until=lambda t: "L2.h.1 at -0.9" in t, timeout=60)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("clamp=L1.c.3:abc", "must be a number"),
        ("clamp=L9.c.1:1", "No neuron L9.c.1"),
        ("ablate=cell", "not a neuron id"),
        ("n=5000", "at most 2,000"),
        ("n=0", "between 1 and"),
        ("t=0", "temperature must be a positive"),
        ("seed=x", "not a number"),
        ("store=../x", "No store named"),
    ],
)
def test_generate_bad_inputs_show_a_message(server, browser, query, message):
    base, _ = server
    browser.get(base + "/generate?" + query)
    assert message in text_of(browser, "#gen-error .error")
    assert "Traceback" not in browser.page_source


def test_effect_panel_measures_an_ablation_against_controls(server, browser, tiny_store):
    from lstmviz.analysis.ablation import cached_effect

    base, _ = server
    open_view(browser, base + "/?neuron=L2.h.1", neuron_expected="L2.h.1")
    wait = WebDriverWait(browser, 60)
    logits = text_of(browser, "#effect-logit-table")
    assert "L2.h.1 promotes" in logits and "suppresses" in logits
    assert cached_effect(tiny_store, "L2.h.1") is None
    wait.until(lambda d: d.find_element(By.ID, "effect-run").is_displayed())
    browser.find_element(By.ID, "effect-run").click()
    features = texts_of(browser, "#effect-table tr td:first-child", timeout=120)
    data = cached_effect(tiny_store, "L2.h.1")
    assert data is not None and data["control"]["sets"] == 10
    assert features == list(data["by_feature"])
    assert f"{data['bpc']:.4f} → {data['ablated_bpc']:.4f}" in text_of(browser, "#effect-ablation")
    open_view(browser, base + "/?neuron=L2.h.1", neuron_expected="L2.h.1")  # measured once, shown at once
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "effect-table"))
    assert not browser.find_element(By.ID, "effect-run").is_displayed()
    assert severe_console_errors(browser) == []


def test_effect_panel_of_a_lower_layer_says_what_feeds_the_decoder(server, browser):
    base, _ = server
    open_view(browser, base + "/?neuron=L1.c.2", neuron_expected="L1.c.2")
    hint = text_of(browser, "#effect-logits")
    assert hint == (
        "L1.c.2 is a cell state of layer 1: it reaches the prediction through layer 2, "
        "so the decoder's direct reading is for L2.h units."
    )


def test_the_neuron_picker_shows_its_longest_label_whole(server, browser, tiny_store):
    base, app = server
    named = [o for o in app.catalog.neuron_options(tiny_store.name) if " · best at " in o["label"]]  # h and c, recorded
    longest = max(named, key=lambda o: len(o["label"]))
    open_view(browser, base + f"/?neuron={longest['value']}", neuron_expected=longest["value"])
    label = browser.find_element(By.CSS_SELECTOR, "#neuron-pick .dash-dropdown-value")
    WebDriverWait(browser, 30).until(lambda d: label.text == longest["label"])
    assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", label)  # not cut


def test_the_neuron_page_of_a_store_without_a_model_says_the_effect_needs_one(tmp_path):
    """A store a user wrote from activations of their own records no model: the Neuron page
    paints it, and its Effect panel says what it needs instead of failing."""
    from lstmviz.bench.loadtest import DashClient
    from lstmviz.store.writer import write_store

    text = "def f(x):\n    return x  # the same\n" * 5
    rng = np.random.default_rng(0)
    series = {(1, "h"): np.tanh(rng.normal(size=(4, len(text)))), (1, "c"): rng.normal(size=(4, len(text)))}
    store = write_store(tmp_path / "own.store", text, [("own.py", 0, len(text))], series, vocab=sorted(set(text)))
    server = create_app([store]).server.test_client()
    calls = DashClient("http://127.0.0.1:9", server.get("/_dash-dependencies").get_json())  # builds the bodies only
    inputs = {"url.search": "?neuron=L1.c.2", "url.pathname": "/"}
    answers = {}
    for output in ("text-data", "effect-logits"):
        answer = server.post("/_dash-update-component", data=calls.body(output, inputs), content_type="application/json")
        assert answer.status_code == 200, answer.text
        answers[output] = answer.get_json()["response"]
    assert answers["text-data"]["text-data"]["data"]["label"] == "L1.c.2"  # painted
    effect = answers["effect-logits"]["effect-logits"]["children"]["props"]
    assert effect["className"] == "hint" and "without the model that made its activations" in effect["children"]


def _painted(browser, panel):
    return browser.execute_script(
        f"var p=document.getElementById('{panel}'); return p && p.lstmvizData && "
        "{label: p.dataset.label, text: p.lstmvizData.chars.join(''), values: Array.from(p.lstmvizData.values)}"
    )


def test_text_page_colours_typed_text_by_the_neuron(server, browser, tiny_store, tiny_checkpoint):
    from lstmviz.recording.recorder import record_text

    base, app = server
    browser.get(base + "/text?neuron=L2.c.3")
    box = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "typed-input"))
    WebDriverWait(browser, 30).until(lambda d: (_painted(d, "typed-panel") or {}).get("label") == "L2.c.3")  # the example
    box.send_keys(Keys.CONTROL, "a")  # clear() bypasses the page's own input handling
    box.send_keys(Keys.DELETE)
    typed = "def hello(name):\n    return 'hi ' + name  # greet\n"
    box.send_keys(typed)
    WebDriverWait(browser, 30).until(lambda d: (_painted(d, "typed-panel") or {}).get("text") == typed)
    expected = record_text(load_checkpoint_for(tiny_store), typed).neuron("L2.c.3")
    assert _painted(browser, "typed-panel")["values"] == pytest.approx(expected.tolist(), abs=1e-2)  # float16, as stored
    WebDriverWait(browser, 30).until(lambda d: "text=def+hello" in d.current_url)
    browser.refresh()  # the URL holds the view
    WebDriverWait(browser, 30).until(lambda d: (_painted(d, "typed-panel") or {}).get("text") == typed)
    assert browser.find_element(By.ID, "typed-input").get_attribute("value") == typed
    browser.execute_script(
        "document.querySelector('#typed-panel .ch[data-i=\"4\"]').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))"
    )
    assert "L2.c.3 = " in text_of(browser, "#typed-hover", until=lambda t: t.startswith("position"))
    assert severe_console_errors(browser) == []


def test_typed_text_hover_names_hidden_characters_as_the_python_table_does(server, browser):
    from urllib.parse import urlencode

    from lstmviz.core.characters import glyph_of, name_of

    base, _ = server
    typed = "a b\tc\x0c\u00a0\u2028😀\n"
    browser.get(base + "/text?" + urlencode({"neuron": "L2.c.3", "text": typed}))
    WebDriverWait(browser, 30).until(lambda d: (_painted(d, "typed-panel") or {}).get("text") == typed)
    hovered = []
    for i in range(len(typed)):
        hovered.append(
            browser.execute_script(
                f"document.querySelector('#typed-panel .ch[data-i=\"{i}\"]')"
                ".dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));"
                "return document.getElementById('typed-hover').textContent"
            )
            .split("char '", 1)[1]
            .split("'  L2.c.3", 1)[0]
        )
    assert hovered == [name_of(ch) for ch in typed]
    last = len(typed) - 1
    newline = browser.execute_script(f"return document.querySelector('#typed-panel .ch[data-i=\"{last}\"]').textContent")
    assert newline == glyph_of("\n") + "\n"  # the glyph, then the line break itself


def load_checkpoint_for(store):
    from lstmviz.model.checkpoint import load_checkpoint

    return load_checkpoint(store.checkpoint["path"])


def test_a_long_typed_text_is_kept_by_the_server_and_named_in_the_url(server, browser):
    base, _ = server
    browser.get(base + "/text?neuron=L1.h.0")
    box = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "typed-input"))
    long_text = "x = 1\n" * 300  # 1,800 characters
    browser.execute_script(
        "var box = arguments[0]; var set = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;"
        "set.call(box, arguments[1]); box.dispatchEvent(new Event('input', {bubbles: true}));",
        box,
        long_text,
    )
    WebDriverWait(browser, 30).until(lambda d: "live=" in d.current_url and "text=" not in d.current_url)
    browser.refresh()
    WebDriverWait(browser, 30).until(lambda d: (_painted(d, "typed-panel") or {}).get("text") == long_text)


@pytest.mark.parametrize(
    ("query", "message"),
    [("neuron=L9.h.0", "No neuron L9.h.0"), ("live=nothing", "no longer kept"), ("store=nope", "No store named")],
)
def test_text_page_bad_urls_show_a_message(server, browser, query, message):
    base, _ = server
    browser.get(base + "/text?" + query)
    assert message in text_of(browser, "#typed-error .error")


def test_the_neuron_page_box_paints_typed_text(server, browser):
    base, _ = server
    open_view(browser, base + "/?neuron=L1.c.2", neuron_expected="L1.c.2")
    browser.find_element(By.CSS_SELECTOR, "#neuron-live summary").click()
    box = browser.find_element(By.ID, "nlive-input")
    box.send_keys("name('ψ')\n")
    WebDriverWait(browser, 30).until(lambda d: (_painted(d, "nlive-panel") or {}).get("label") == "L1.c.2")
    assert "read as unknown: 'ψ' (1)" in text_of(browser, "#nlive-message")
    assert severe_console_errors(browser) == []


def test_typed_text_over_the_limit_is_refused_in_a_sentence(server, tiny_store):
    from lstmviz.app.live_text import MAX_CHARS, live_payload
    from lstmviz.core.errors import LstmvizError

    _, app = server
    with pytest.raises(LstmvizError, match="at most 20,000"):
        live_payload(app.catalog, tiny_store.name, "L1.h.0", "x" * (MAX_CHARS + 1))
    payload, note = live_payload(app.catalog, tiny_store.name, "L1.h.0", "name")
    assert payload["text"] == "name" and note.startswith("4 characters")


# -- what the eye sees: colour scales, the heatmap, the small fixes -------------------------------


def test_the_colour_scale_is_chosen_in_the_page_and_kept_in_the_url(server, browser, tiny_store, reference_colour):
    base, app = server
    open_view(browser, base + "/?neuron=L2.c.3&pos=40&scale=split", neuron_expected="L2.c.3")
    s = app.catalog.scale(tiny_store.name, "L2.c.3", "split")
    value = float(tiny_store.neuron("L2.c.3", 47, 48)[0])
    WebDriverWait(browser, 30).until(lambda d: painted_colour(d, 7) == reference_colour(value, s.low, s.centre, s.high))
    legend = text_of(browser, ".legend")
    assert "each side its own range" in legend and f"{s.high:+.2f}" in legend
    gate = "L1.f.2"
    open_view(browser, base + f"/?neuron={gate}&pos=0", neuron_expected=gate)  # a gate: white at 0 to red at 1
    legend = text_of(browser, ".legend", until=lambda t: "white" in t)
    assert "white +0.00" in legend and "red +1.00" in legend
    value = float(tiny_store.neuron(gate, 3, 4)[0])
    assert painted_colour(browser, 3) == reference_colour(value, 0.0, 0.0, 1.0)
    browser.get(base + "/?neuron=L2.c.3&scale=rainbow")
    assert "not a colour scale" in text_of(browser, "#neuron-error .error")


def test_the_heatmap_gives_each_row_its_range_and_fits_the_page(server, browser, tiny_store):
    base, _ = server
    browser.get(base + "/heatmap?neurons=L1.h.0,L2.c.3,L1.f.1&range=0:300")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hm-figure .heatmaplayer, #hm-figure .hm"))
    labels = text_of(browser, "#hm-figure")
    assert "L1.f.1 (0..1)" in labels and "each row" in labels  # rows say their scale; the colour bar is there
    fits = browser.execute_script(
        "var f = document.querySelector('#hm-figure .main-svg'), bar = document.querySelector('#hm-figure .colorbar');"
        "return [f.getBoundingClientRect().right <= window.innerWidth, bar.getBoundingClientRect().right <= window.innerWidth,"
        " document.documentElement.scrollWidth <= window.innerWidth];"
    )
    assert fits == [True, True, True]
    browser.find_element(By.CSS_SELECTOR, "#hm-shared input").click()  # one scale for all rows, on request
    WebDriverWait(browser, 30).until(lambda d: "scale=shared" in d.current_url)
    text_of(browser, "#hm-figure", until=lambda t: "one scale for all rows" in t)


def test_a_reversed_range_says_so_and_keeps_the_inputs(server, browser):
    base, _ = server
    browser.get(base + "/heatmap?neurons=L1.h.0&range=80:20")
    error = text_of(browser, "#hm-error .error")
    assert "reversed" in error and "20:80" in error
    assert browser.find_element(By.ID, "hm-range").get_attribute("value") == "80:20"


def test_a_selection_ranks_by_f1_in_the_selection_and_scrolls_into_view(server, browser, tiny_store):
    base, _ = server
    browser.get(base + "/discover?range=100:140")
    note = text_of(browser, "#discover-hypotheses-note")
    assert "Ranked by F1" in note and "within the selection" in note
    f1 = [float(t) for t in texts_of(browser, "#discover-hypotheses tr td:nth-child(7)")]
    assert f1 == sorted(f1, reverse=True) and f1[0] > 0.3  # usable numbers, not 0.000 for every row
    top = browser.execute_script("return document.getElementById('discover-hypotheses').getBoundingClientRect().top")
    assert 0 <= top < browser.execute_script("return window.innerHeight")  # in view, not below the fold
    assert "low where the feature is on" in text_of(browser, "body")  # "signed" explained


def test_the_picker_finds_a_neuron_by_its_feature(server, browser, tiny_store):
    base, app = server
    best = app.catalog.best_neuron(tiny_store.name, "in_string")
    open_view(browser, base + "/?neuron=L1.h.0", neuron_expected="L1.h.0")
    browser.find_element(By.ID, "neuron-pick").click()
    box = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "input.dash-dropdown-search"))
    box.send_keys("in_string")
    picker_options = "[role=option]:not(.why-switch [role=option])"  # not the Why? panel's switches (app/why.py)
    options = texts_of(browser, picker_options, until=lambda texts: texts and "in_string" in texts[0])
    assert all("in_string" in o for o in options)  # only neurons good at it are offered, the best first
    assert options[0].startswith(f"{best} · best at in_string")
    browser.find_element(By.CSS_SELECTOR, picker_options).click()
    WebDriverWait(browser, 30).until(lambda d: f"neuron={best}" in d.current_url)


def test_the_model_page_axis_shows_where_training_ends(server, browser, tiny_store):
    base, _ = server
    browser.get(base + "/model")
    bpc_text = text_of(browser, "#model-bpc", until=lambda t: "n-gram" in t, timeout=120)
    y_range = browser.execute_script("return document.querySelector('#model-curves .js-plotly-plot').layout.yaxis.range")
    bpc = float(bpc_text.split("recurrent model (recorded)")[1].split()[0])
    assert 10 ** y_range[0] < bpc < 10 ** y_range[1]  # a log axis, in log10 units (the rule: test_the_training_axis_...)
    boxes = browser.execute_script(
        "return Array.from(document.querySelectorAll('#model-curves .annotation')).map(a => a.getBoundingClientRect())"
        ".map(r => [r.left, r.top, r.right, r.bottom]);"
    )
    assert len(boxes) == 2
    (l1, t1, r1, b1), (l2, t2, r2, b2) = boxes
    assert r1 <= l2 or r2 <= l1 or b1 <= t2 or b2 <= t1  # the two reference labels do not overlap


@pytest.fixture(scope="module")
def hc_server(tiny_checkpoint, tmp_path_factory):
    """A dashboard started as `lstmviz serve CHECKPOINT` starts it: on h and c only."""
    import lstmviz
    from lstmviz.recording.recorder import record_activations

    mp = pytest.MonkeyPatch()
    mp.setenv("LSTMVIZ_CACHE", str(tmp_path_factory.mktemp("gates-cache")))
    ckpt = lstmviz.load_checkpoint(tiny_checkpoint)
    from lstmviz.analysis.evaluate import evaluation_documents

    out = tmp_path_factory.mktemp("hc") / "hc.store"
    store = record_activations(ckpt, evaluation_documents(ckpt), out, kinds=("h", "c"), progress=False)
    app = create_app([store], ["tiny · test split"])
    app.catalog.prepare("tiny · test split")
    with serving(app) as base:
        yield base, app
    mp.undo()


def test_gates_are_recorded_when_a_page_first_asks_for_them(hc_server, browser):
    base, app = hc_server
    name = "tiny · test split"
    assert "tiny · test split" in app.catalog.stores  # a friendly name, not the cache file's hash
    assert app.catalog.unrecorded_kinds(name) == ["i", "f", "g", "o"]
    browser.get(base + "/?neuron=L1.f.2")
    WebDriverWait(browser, 60).until(
        lambda d: panel_label(d) == "L1.f.2"
    )  # said to be recording, then painted once recorded (the page polls)
    assert app.catalog.unrecorded_kinds(name) == [] and {s.kind for s in app.catalog.store(name).series} >= {"i", "f"}
    assert app.catalog.scale(name, "L2.c.1").label  # the h and c summaries carried over to the whole recording
    browser.get(base + "/gates")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#gates-figure .scatterlayer .point"))
    assert severe_console_errors(browser) == []


def test_the_gates_page_asks_then_shows_the_recording_until_it_is_done(tiny_checkpoint, tmp_path, browser, monkeypatch):
    import lstmviz
    from lstmviz.analysis.evaluate import evaluation_documents
    from lstmviz.recording import sources
    from lstmviz.recording.recorder import record_activations

    monkeypatch.setenv("LSTMVIZ_CACHE", str(tmp_path / "cache"))
    ckpt = lstmviz.load_checkpoint(tiny_checkpoint)
    store = record_activations(ckpt, evaluation_documents(ckpt), tmp_path / "hc.store", kinds=("h", "c"), progress=False)
    go_on, real = threading.Event(), sources.recorded
    monkeypatch.setattr(sources, "recorded", lambda *a, **k: go_on.wait(60) and real(*a, **k))
    app = create_app([store])
    with serving(app) as base:
        try:
            browser.get(f"{base}/gates")
            asked = text_of(browser, "#gates-error", timeout=60)
            cost = app.catalog.all_series_cost(app.catalog.default)
            assert f"Recording them: about {cost / 1e9:.1f} GB in the cache, once" in asked
            assert app.catalog.all_series_job(app.catalog.default) is None  # asked, not started
            browser.find_element(By.ID, "gates-go").click()
            WebDriverWait(browser, 30).until(lambda d: "record=yes" in d.current_url)
            note = text_of(browser, "#gates-error", until=lambda t: "the gates are recorded now" in t, timeout=60)
            assert "the gates are recorded now" in note
            assert browser.find_elements(By.CSS_SELECTOR, "#gates-error progress") or "queue" in note
            go_on.set()
            WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#gates-figure .scatterlayer .point"))
            assert text_of(browser, "#gates-error", until=lambda t: t == "") == ""
        finally:
            go_on.set()


def test_discover_lists_the_probe_directions_beside_the_best_neuron(tiny_store):
    """The Discover page's probe panel: a hint with the command before any probe, then each
    direction kept in the store with its held-out score and the feature's best neuron."""
    from lstmviz.analysis.rankings import store_rankings
    from lstmviz.bench.loadtest import DashClient
    from lstmviz.store.units import drop_derived, save_direction

    def panel() -> dict:
        server = create_app([tiny_store]).server.test_client()
        calls = DashClient("http://127.0.0.1:9", server.get("/_dash-dependencies").get_json())
        inputs = {"url.search": "", "url.pathname": "/discover"}
        body = calls.body("discover-probes", inputs)
        answer = server.post("/_dash-update-component", data=body, content_type="application/json")
        assert answer.status_code == 200, answer.text
        return answer.get_json()["response"]["discover-probes"]["children"]

    assert "lstmviz probe" in str(panel())
    units = tiny_store.series_block(1, "c").shape[0]
    path = None
    try:
        d = save_direction(tiny_store, "L1.c~in_string", np.ones(units), {"score": 0.9123})
        path = tiny_store.path / f"direction-{d}.npz"
        shown = str(panel())
        assert "L1.c~in_string" in shown and "0.912" in shown
        assert store_rankings(tiny_store)["in_string"]["rows"][0]["neuron"] in shown
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
        drop_derived(tiny_store, "L1.c~in_string")
