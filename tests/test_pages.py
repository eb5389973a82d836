"""The pages' view states (what a URL holds), and every page on a store written from
activations alone (``write_store`` with no model): what needs the model says so in one
sentence, and no page fails, in a real headless Chromium (the set-up of test_dashboard.py)."""

import ast
import threading
from pathlib import Path

import numpy as np
import pytest
import test_dashboard
from dash import no_update
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import lstmviz.app
from lstmviz.app import create_app
from lstmviz.app.catalog import Catalog, NoModel
from lstmviz.app.page import by_name
from lstmviz.app.pages.compare import ComparePage, CompareView
from lstmviz.app.pages.generate import GenerateView
from lstmviz.app.pages.heatmap import HeatmapView
from lstmviz.app.pages.model import best_cells
from lstmviz.app.pages.neuron import NeuronView, no_decoder_reading
from lstmviz.app.pages.text import TextView
from lstmviz.app.view_state import parse_query, url_for, view_of
from lstmviz.bench.browser import panel_label, serving, severe_console_errors, text_of, texts_of
from lstmviz.recording.sources import cache_root
from lstmviz.store.writer import write_store

browser, downloads = test_dashboard.browser, test_dashboard.downloads  # the fixtures: a Chromium of this module's own
server = test_dashboard.server  # and a dashboard on the tiny model's store

# -- view states -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "view",
    [
        NeuronView(store="tiny · test split", neuron="L2.c.3", pos=40, scale="split"),
        NeuronView(pos=0),
        HeatmapView(neurons=("L1.h.0", "L2.c.3"), marks="0:300", scale="shared"),
        CompareView(a="tiny/snapshots/step-000010", neuron="L1.c.2", pos=7, record=True),
        GenerateView(prime="class ", clamp="L2.c.90:20, L1.c.5:-1", temperature="0.5", length="40"),
        TextView(neuron="L1.h.0", text="x = 'a'  # b\n"),
    ],
)
def test_a_view_reads_back_from_its_url(view):
    assert type(view).from_query(parse_query(view.search())) == view


def test_a_url_says_only_what_differs_from_the_defaults():
    assert NeuronView(neuron="L1.h.0").search() == "?neuron=L1.h.0"
    assert NeuronView(neuron="L1.h.0", pos=0).search() == "?neuron=L1.h.0&pos=0"  # no position: where the finding is
    assert GenerateView(temperature="0.5", length="40").to_query() == {"t": "0.5", "n": "40"}
    assert CompareView(record=True, emergence=False).to_query() == {"record": "yes"}
    assert HeatmapView.from_query({"neurons": "L1.h.0, ,L2.c.3,"}).neurons == ("L1.h.0", "L2.c.3")


def test_a_value_that_cannot_be_read_is_said_in_one_sentence_and_left_at_its_default():
    view = NeuronView.from_query({"neuron": "L1.h.0", "pos": "abc"})
    assert view.problems == ("The position 'abc' is not a number.",)
    assert view.neuron == "L1.h.0" and view.pos is None
    with pytest.raises(Exception, match="not a number"):
        view.check()


def test_the_url_is_left_alone_when_it_already_holds_the_view():
    search = "?store=tiny.store&neuron=L2.h.7&scale="  # the same view as without an empty scale
    assert url_for(NeuronView(store="tiny.store", neuron="L2.h.7"), search) is no_update
    assert url_for(NeuronView(store="tiny.store", neuron="L2.h.8"), search) == "?store=tiny.store&neuron=L2.h.8"


def test_outputs_left_out_keep_their_value_and_an_unknown_one_is_refused():
    def shown(search):
        return {"message": "oops"} if search else {"figure": 1, "message": None}

    in_order = by_name(("figure", "message", "poll_off"), shown)
    assert in_order("?bad") == [no_update, "oops", no_update]
    assert in_order("") == [1, None, no_update]
    with pytest.raises(KeyError, match="polloff"):
        by_name(("figure",), lambda: {"polloff": True})()


# -- a store written from activations alone ----------------------------------------------------


@pytest.fixture(scope="module")
def own_store(tiny_store, tmp_path_factory):
    """The tiny model's h and c on its text, written as a user writes activations of their
    own: no model config, no checkpoint, no predictions."""
    docs = [(d.name, d.start, d.stop) for d in tiny_store.documents]
    series = {
        (s.layer, s.kind): np.asarray(tiny_store.series_block(s.layer, s.kind)) for s in tiny_store.series if s.kind in "hc"
    }
    out = tmp_path_factory.mktemp("own") / "own.store"
    return write_store(out, tiny_store.text(), docs, series, vocab=tiny_store.vocab_chars)


def test_a_store_without_a_model_lists_its_neurons_and_says_what_it_cannot_do(own_store):
    catalog = Catalog.of([own_store])
    assert own_store.meta["model"] == {} and not catalog.has_model("own.store")
    assert catalog.unrecorded_kinds("own.store") == []
    values = [o["value"] for o in catalog.neuron_options("own.store")]
    assert sorted(values) == sorted(str(n) for n in own_store.neuron_ids())  # no gates offered to record
    with pytest.raises(NoModel, match=r"^own.store was written without the model .*, so the dashboard cannot generate text\.$"):
        catalog.checkpoint("own.store", "generate text")


def test_the_model_page_sets_each_store_s_best_cells_beside_the_others(tiny_store, own_store):
    catalog = Catalog.of([tiny_store, own_store])
    table = best_cells(catalog, "own.store")  # the store shown comes first
    head, *rows = table.children
    names = [th.children for th in head.children]
    assert names == ["feature", "own.store", tiny_store.name]
    by_feature = {row.children[0].children: row.children[1:] for row in rows}
    assert set(by_feature) == set(catalog.rankings(tiny_store.name))
    for column, name in enumerate(names[1:]):
        link, reading = by_feature["column"][column].children
        best = catalog.rankings(name)["column"]["rows"][0]
        assert link.children == catalog.best_neuron(name, "column") == best["neuron"]
        assert link.href == f"/?store={name.replace(' ', '+')}&neuron={best['neuron']}"
        assert reading == f" {best['value']:+.3f}"


@pytest.fixture(scope="module")
def own_server(own_store, tmp_path_factory):
    """A dashboard on ``own_store``, and the requests it answered with a server error."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LSTMVIZ_CACHE", str(tmp_path_factory.mktemp("own-cache")))
    app = create_app([own_store])
    app.catalog.prepare(own_store.name)
    failed: list[str] = []
    wsgi = app.server.wsgi_app

    def noting_failures(environ, start_response):
        def start(status, headers, *exc_info):
            if status.startswith("5"):
                failed.append(f"{environ.get('PATH_INFO')}: {status}")
            return start_response(status, headers, *exc_info)

        return wsgi(environ, start)

    app.server.wsgi_app = noting_failures
    with serving(app) as base:
        yield base, app, failed
    mp.undo()


def _settled(browser) -> bool:
    return not browser.find_elements(By.CSS_SELECTOR, "[data-dash-is-loading='true']")


def _one_sentence(text: str, says: str) -> None:
    assert says in text and text.startswith("own.store was written without the model that made its activations")
    assert text.endswith(".") and ". " not in text


def _neuron(browser, base):
    browser.get(base + "/?pos=0")
    WebDriverWait(browser, 30).until(lambda d: panel_label(d))
    _one_sentence(text_of(browser, "#effect-logits .hint"), "cannot measure this neuron's effect")
    assert not browser.find_element(By.ID, "effect-run").is_displayed()
    browser.execute_script(
        "document.querySelector('#text-panel .ch[data-i=\"3\"]').dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))"
    )
    tip = text_of(browser, "#hover-info", until=lambda text: text.startswith("position "))
    assert tip.startswith("position 3 ") and "guesses" not in tip  # no model, so no guesses to show
    browser.find_element(By.CSS_SELECTOR, "#neuron-live summary").click()
    browser.find_element(By.ID, "nlive-input").send_keys("name = 'x'\n")
    _one_sentence(text_of(browser, "#nlive-message .hint"), "cannot colour typed text")


def _discover(browser, base):
    browser.get(base + "/discover?range=100:140")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#discover-table a.neuron-link"))
    assert "Ranked by F1" in text_of(browser, "#discover-hypotheses-note")


def _heatmap(browser, base):
    browser.get(base + "/heatmap?neurons=L1.h.0,L2.c.3&range=0:80")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hm-figure .heatmaplayer, #hm-figure .hm"))


def _gates(browser, base):
    browser.get(base + "/gates")
    _one_sentence(text_of(browser, "#gates-error .hint"), "cannot record its gates")
    assert not browser.find_element(By.ID, "gates-figure").is_displayed()  # no empty plot frame


def _model(browser, base):
    browser.get(base + "/model")
    _one_sentence(text_of(browser, "#model-error .hint"), "cannot draw its training curves or compare its model with the n-gram")
    assert "characters in" in text_of(browser, "#model-summary")
    assert not browser.find_element(By.ID, "model-of-checkpoint").is_displayed()  # no empty curves or n-gram tables
    assert "in_string" in text_of(browser, "#model-cells-table")  # its best cells need no model


def _compare(browser, base):
    browser.get(base + "/compare")  # the store beside itself: nothing to record
    WebDriverWait(browser, 60).until(lambda d: panel_label(d, "cmp-text-b"))
    _one_sentence(text_of(browser, "#cmp-emergence-progress .hint"), "cannot follow its cells through training snapshots")
    assert not browser.find_element(By.ID, "cmp-emergence").is_displayed()


def _generate(browser, base):
    browser.get(base + "/generate")
    _one_sentence(text_of(browser, "#gen-error .hint"), "cannot generate text")


def _text(browser, base):
    browser.get(base + "/text")
    _one_sentence(text_of(browser, "#typed-message .hint"), "cannot colour typed text")


@pytest.mark.parametrize("page", [_neuron, _discover, _heatmap, _gates, _model, _compare, _generate, _text])
def test_every_page_works_on_a_store_without_a_model(own_server, browser, page):
    base, _, failed = own_server
    page(browser, base)
    WebDriverWait(browser, 30).until(_settled)
    assert severe_console_errors(browser) == []
    assert failed == []


# -- a URL out of range: one sentence, the nearest valid view --------------------------------------


@pytest.mark.parametrize(
    ("query", "shown", "says"),
    [
        ("neuron=L1.h.5&pos=-100", ("L1.h.5", 0), "Position -100 is outside the text (0-"),
        ("neuron=L9.h.1&pos=0", ("L2.h.1", 0), "No neuron L9.h.1 in this store: it has layers 1-2 and kinds "),
        ("store=nope&neuron=L2.c.3&pos=30", ("L2.c.3", 30), "No store named 'nope' is open here; showing tiny"),
    ],
)
def test_a_url_out_of_range_shows_the_nearest_view_and_says_so_once(server, browser, tiny_store, query, shown, says):
    base, _ = server
    neuron, start = shown
    browser.get(base + "/?" + query)
    WebDriverWait(browser, 30).until(lambda d: panel_label(d) == neuron)
    WebDriverWait(browser, 30).until(_settled)
    assert browser.execute_script("return document.getElementById('text-panel').lstmvizData.start") == start
    sentence = text_of(browser, "#neuron-error .error")
    assert sentence.startswith(says) and sentence.endswith(".") and ". " not in sentence
    assert browser.find_element(By.TAG_NAME, "body").text.count(says) == 1  # once, not once per panel
    pickers = texts_of(browser, "#store-pick, #neuron-pick", until=lambda t: len(t) == 2 and all(t))
    assert pickers[0] == tiny_store.name and pickers[1].startswith(neuron)  # the pickers show what is painted
    bars = browser.execute_script("return document.querySelectorAll('#histogram .bars path, #histogram .point').length")
    assert bars > 0  # the histogram is drawn, not an empty frame
    browser.find_element(By.ID, "next-neuron").click()  # the next view starts from what is shown
    WebDriverWait(browser, 30).until(lambda d: panel_label(d) not in (None, neuron))
    assert text_of(browser, "#neuron-error", until=lambda t: True) == ""
    assert "store=nope" not in browser.current_url and "L9" not in browser.current_url and "pos=-" not in browser.current_url


@pytest.mark.parametrize(
    ("url", "says", "drawn"),
    [
        ("/model?pos=999999", "Position 999,999 is outside the text (0-", "#model-summary"),
        ("/discover?feature=nope", "No feature named 'nope' is ranked here (", "#discover-table a.neuron-link"),
        ("/text?neuron=L9.h.0", "No neuron L9.h.0 in this store", "#typed-panel .ch"),
        ("/gates?store=nope", "No store named 'nope' is open here; showing ", "#gates-figure .trace"),
    ],
)
def test_every_page_shows_the_nearest_view_to_a_url_out_of_range(server, browser, url, says, drawn):
    base, _ = server
    browser.get(base + url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, drawn))
    WebDriverWait(browser, 30).until(_settled)
    sentence = text_of(browser, ".page .error")
    assert sentence.startswith(says) and sentence.endswith(".") and ". " not in sentence
    assert browser.find_element(By.TAG_NAME, "body").text.count(says) == 1


# -- Generate: one pane until a neuron is held, coloured by a cell that is not held ----------------


def test_generate_shows_one_pane_until_a_neuron_is_held(server, browser, tiny_store, tiny_checkpoint):
    from lstmviz.analysis.rankings import store_rankings
    from lstmviz.model.sampling import sample

    base, _ = server
    browser.get(base + "/generate?n=40")
    WebDriverWait(browser, 60).until(lambda d: test_dashboard._generated(d, "gen-text-held"))
    assert "Nothing held" in text_of(browser, "#gen-title-held")
    assert not browser.find_element(By.ID, "gen-plain-column").is_displayed()  # not the same text twice

    in_string = [row["neuron"] for row in store_rankings(tiny_store)["in_string"]["rows"]]
    browser.get(base + f"/generate?n=40&clamp={in_string[0]}:3")
    WebDriverWait(browser, 60).until(lambda d: test_dashboard._generated(d, "gen-text-plain"))
    assert browser.find_element(By.ID, "gen-plain-column").is_displayed()
    held, plain = (test_dashboard._generated(browser, p) for p in ("gen-text-held", "gen-text-plain"))
    assert held["label"] == plain["label"] == in_string[1]  # the best string cell that is not held
    assert plain["text"] == sample(tiny_checkpoint, "def ", 40, temperature=0.8, seed=1).text  # the same seed, unheld
    assert len(set(held["values"])) > 1

    browser.get(base + f"/generate?n=40&clamp={in_string[0]}:3&color={in_string[0]}")
    says = f"{in_string[0]} is held at 3, so it colours the held text one constant colour"
    assert says in text_of(browser, "#gen-summary", until=lambda t: "held at" in t, timeout=60)
    assert severe_console_errors(browser) == []


# -- pages before their data: a prompt, no empty plot frames, no literal backticks -----------------


def _strings_shown(module: Path) -> list[str]:
    """Every string literal of a module but its docstrings (the text a page can show)."""
    tree = ast.parse(module.read_text())
    documented = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, documented) and node.body and isinstance(node.body[0], ast.Expr)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_text_the_dashboard_shows_has_a_literal_backtick():
    app = Path(lstmviz.app.__file__).parent
    modules = sorted(app.rglob("*.py"))
    assert len(modules) > 10
    with_backticks = [(m.name, s) for m in modules for s in _strings_shown(m) if "`" in s]
    assert with_backticks == []


def test_compare_before_recording_asks_first_and_draws_no_empty_frames(server, browser):
    base, _ = server
    browser.get(base + "/compare")  # the default pair needs a recording: nothing to draw yet
    asked = text_of(browser, "#cmp-progress", until=lambda t: "Record and go on" in t, timeout=120)
    assert "records their h and c" in asked and "“lstmviz cache list” shows it" in asked
    text_of(browser, "#cmp-emergence-progress", until=lambda t: "Record and go on" in t, timeout=120)
    WebDriverWait(browser, 30).until(_settled)
    for part in ("cmp-drawn", "cmp-cka", "cmp-emergence", "cmp-text-a"):
        assert not browser.find_element(By.ID, part).is_displayed(), part
    plots = [p for p in browser.find_elements(By.CSS_SELECTOR, ".js-plotly-plot, .modebar") if p.is_displayed()]
    assert plots == []
    assert "`" not in browser.find_element(By.TAG_NAME, "body").text
    assert severe_console_errors(browser) == []


# -- the Effect panel of a unit the decoder does not read: what that unit is -----------------------


@pytest.mark.parametrize(
    ("neuron", "says"),
    [
        ("L1.c.52", "L1.c.52 is a cell state of layer 1: it reaches the prediction through layer 2, so the decoder's"),
        ("L2.f.3", "L2.f.3 is a forget gate of layer 2: it reaches the prediction through layer 2's h, so the"),
        ("L1r.h.0", "L1r.h.0 is a hidden state of layer 1 (backward): it reaches the prediction through layer 2,"),
    ],
)
def test_the_effect_panel_says_what_a_unit_off_the_decoder_is(neuron, says):
    sentence = no_decoder_reading(neuron, layers=2)
    assert sentence.startswith(says) and sentence.endswith("direct reading is for L2.h units.")
    assert no_decoder_reading("L2.h.0", layers=2, tagger=True).endswith("predicts labels, not the next character.")


# -- nothing is recorded until the user agrees to it ----------------------------------------------


def _cache_listing() -> list[str]:
    root = cache_root()
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def _snapshots(app) -> list[str]:
    """The names the Compare page gives the tiny model's snapshots."""
    return [name for name, (_, path) in app.catalog.comparisons.compare_sources().items() if path.parent.name == "snapshots"]


def test_compare_records_nothing_unasked_while_another_job_runs(server, browser):
    """The issue's surprise: "export CKA" pressed while the Model page's n-gram job ran
    started the comparison, and with it a recording of the snapshot, a minute later."""
    base, app = server
    before = _cache_listing()
    release = threading.Event()
    app.catalog.jobs.start("another page's long job", lambda job: release.wait(120))
    try:
        browser.get(base + "/compare")  # the default pair: the tiny model's first snapshot, to be recorded
        text_of(browser, "#cmp-progress", until=lambda t: "Record and go on" in t, timeout=120)
        text_of(browser, "#cmp-emergence-progress", until=lambda t: "Record and go on" in t, timeout=120)
        for button, says in (("cmp-export-cka", "comparison"), ("cmp-export-emergence", "emergence plot")):
            browser.find_element(By.ID, button).click()
            text_of(browser, "#cmp-error", until=lambda t, says=says: t == f"The {says} is not ready yet.")
        other = _snapshots(app)[-1]
        browser.get(base + "/compare?" + CompareView(a=other).search().lstrip("?"))  # another A: asked again
        text_of(browser, "#cmp-progress", until=lambda t: "Record and go on" in t and other in t, timeout=120)
        browser.find_element(By.ID, "cmp-export-cka").click()
        text_of(browser, "#cmp-error", until=lambda t: t == "The comparison is not ready yet.")
    finally:
        release.set()
    WebDriverWait(browser, 120).until(lambda _: not app.catalog.jobs.unfinished())
    assert _cache_listing() == before
    assert app.catalog.comparisons.comparison(*app.catalog.comparisons.default_pair()) is None  # still waits for the click


def test_choosing_another_model_asks_again_before_recording_it(server):
    base, app = server
    page = ComparePage(app.catalog)
    first, other = _snapshots(app)
    agreed = CompareView(a=first, record=True).search()
    for a, b in ((other, None), (None, other)):
        moved = view_of(CompareView, page.controls_to_url(a, b, None, None, agreed))
        assert not moved.record and other in (moved.a, moved.b)  # its cost is shown first
    kept = view_of(CompareView, page.controls_to_url(None, None, "L1.h.2", 40, agreed))
    assert kept == CompareView(a=first, neuron="L1.h.2", pos=40, record=True)  # the same pair: still agreed
