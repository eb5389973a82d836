"""The static report, opened from file:// in a real headless Chromium (Debian's chromium and
chromium-driver): coloured contexts, rendered figures, links that work, nothing fetched from
outside the folder. Like the dashboard's tests, these never skip without the browser."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lstmviz.analysis.rankings import store_rankings
from lstmviz.bench.browser import chromium, severe_console_errors, text_of, texts_of
from lstmviz.core.errors import LstmvizError
from lstmviz.render.colours import neuron_scale
from lstmviz.render.report import write_report
from lstmviz.store.open import open_store

TOP = 2


@pytest.fixture(scope="module")
def report(tiny_store, tmp_path_factory) -> Path:
    return write_report(tiny_store, tmp_path_factory.mktemp("report") / "report", top=TOP)


@pytest.fixture(scope="module")
def browser():
    # The console, and the DevTools network events: Resource Timing lists nothing for file:// pages.
    with chromium(logs=["browser", "performance"]) as driver:
        yield driver


def best_neurons(store, top: int = TOP) -> dict[str, list[str]]:
    return {f: [r["neuron"] for r in ranking["rows"][:top]] for f, ranking in store_rankings(store).items()}


def open_page(browser, path: Path) -> None:
    browser.get_log("performance")  # what earlier pages requested
    browser.get(path.as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")


def rendered_figures(browser) -> None:
    """Wait until plotly has drawn both figures (its svg inside each figure's div)."""
    drawn = "#histogram svg.main-svg, #heatmap svg.main-svg"
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, drawn)) >= 2)


def requested_urls(browser) -> list[str]:
    """Every URL the page asked for since it was opened, from DevTools' network events."""
    events = [json.loads(e["message"])["message"] for e in browser.get_log("performance")]
    return [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]


def test_the_folder_holds_an_index_plotly_and_a_page_per_best_neuron(report, tiny_store):
    best = best_neurons(tiny_store)
    pages = {p.name for p in (report / "neurons").iterdir()}
    assert pages == {f"{n}.html" for ns in best.values() for n in ns}
    assert (report / "index.html").is_file()
    assert (report / "assets" / "plotly.min.js").stat().st_size > 1_000_000  # the whole bundle, not a stub


def test_index_lists_each_features_best_cells_with_their_scores(report, tiny_store, browser):
    open_page(browser, report / "index.html")
    rankings = store_rankings(tiny_store)
    for feature, neurons in best_neurons(tiny_store).items():
        section = f'section[data-feature="{feature}"]'
        assert texts_of(browser, f"{section} tr a") == neurons
        best = rankings[feature]["rows"][0]
        cells = texts_of(browser, f"{section} tr:nth-child(2) td")  # the first row under the header
        metric, value = rankings[feature]["metric"], best["value"]
        # an AUROC reads as its strength and its direction (0.076: "0.924 (low inside)"); a rho keeps its sign
        reads = (
            f"{max(value, 1 - value):.3f} ({'high' if value >= 0.5 else 'low'} inside)" if metric == "auroc" else f"{value:+.3f}"
        )
        assert cells[2:] == [metric, f"{best['score']:.3f}", reads]
    assert requested_urls(browser) == [(report / "index.html").as_uri(), (report / "assets" / "report.css").as_uri()]
    assert severe_console_errors(browser) == []


def test_links_from_the_index_open_the_neuron_pages(report, tiny_store, browser):
    open_page(browser, report / "index.html")
    first = best_neurons(tiny_store)["in_string"][0]
    browser.find_element(By.LINK_TEXT, first).click()
    text_of(browser, "h1", until=lambda t: t == first)
    assert browser.current_url == (report / "neurons" / f"{first}.html").as_uri()
    open_page(browser, report / "index.html")
    for link in browser.find_elements(By.CSS_SELECTOR, "a.neuron-link"):
        assert Path(link.get_attribute("href").removeprefix("file://")).is_file()


def painted_characters(browser) -> list[dict]:
    """Every character of the page's contexts: its store position, text, title and colour."""
    return browser.execute_script(
        "return [...document.querySelectorAll('.context span[data-pos]')].map(s => ({pos: +s.dataset.pos, "
        "text: s.textContent, title: s.title, colour: getComputedStyle(s).backgroundColor}))"
    )


def test_neuron_page_paints_each_character_with_the_colour_of_its_stored_value(report, tiny_store, browser, reference_colour):
    neuron = best_neurons(tiny_store)["in_string"][0]
    open_page(browser, report / "neurons" / f"{neuron}.html")
    scale = neuron_scale(tiny_store, neuron)
    painted = painted_characters(browser)
    assert len(painted) > 100
    colours = set()
    for ch in painted:
        value = float(tiny_store.neuron(neuron, ch["pos"], ch["pos"] + 1)[0])
        assert ch["colour"] == reference_colour(value, scale.low, scale.centre, scale.high, scale.tanh)
        assert ch["title"] == f"{value:+.3f}"
        assert ch["text"] == tiny_store.text(ch["pos"], ch["pos"] + 1).replace("\n", "\u23ce")  # quotes arrive unescaped
        colours.add(ch["colour"])
    assert len(colours) > 10  # a scale, not one colour


def test_the_first_high_context_marks_the_neurons_top_activation(report, tiny_store, browser):
    neuron = best_neurons(tiny_store)["in_string"][0]
    open_page(browser, report / "neurons" / f"{neuron}.html")
    groups = [s.get_attribute("data-group") for s in browser.find_elements(By.CSS_SELECTOR, "section.contexts")]
    assert groups[:2] == ["high", "low"] and any(g.startswith("q") for g in groups)
    mark = browser.find_element(By.CSS_SELECTOR, 'section[data-group="high"] .context .mark')
    pos = int(mark.get_attribute("data-pos"))
    assert float(tiny_store.neuron(neuron, pos, pos + 1)[0]) == float(np.max(tiny_store.neuron(neuron)))


def test_neuron_page_draws_its_figures_offline_without_console_errors(report, tiny_store, browser):
    neuron = best_neurons(tiny_store)["in_comment"][-1]
    open_page(browser, report / "neurons" / f"{neuron}.html")
    rendered_figures(browser)
    assert browser.find_elements(By.CSS_SELECTOR, "#histogram .bars path")  # the histogram's bars
    assert browser.find_elements(By.CSS_SELECTOR, "#heatmap .hm image")  # the heatmap's cells, as one image
    assert neuron in text_of(browser, "#histogram .gtitle")
    urls = requested_urls(browser)
    assert (report / "assets" / "plotly.min.js").as_uri() in urls
    # plotly paints the heatmap as an inline data: image, which is no request
    assert all(u.startswith(report.as_uri() + "/") or u.startswith("data:") for u in urls), urls
    assert severe_console_errors(browser) == []


def test_names_are_escaped(tiny_store, tmp_path):
    odd = open_store(shutil.copytree(tiny_store.path, tmp_path / "<tiny> & co"), verify_checkpoint=False)
    out = write_report(odd, tmp_path / "report", features=["indent"], top=1)
    index = (out / "index.html").read_text()
    assert "<h1>&lt;tiny&gt; &amp; co</h1>" in index and "<tiny>" not in index


def test_a_chosen_feature_lists_only_its_cells(tiny_store, tmp_path):
    out = write_report(tiny_store, tmp_path / "report", features=["bracket_depth"], top=1)
    assert [p.name for p in (out / "neurons").iterdir()] == [f"{best_neurons(tiny_store, 1)['bracket_depth'][0]}.html"]


def test_an_empty_existing_folder_is_written_into(tiny_store, tmp_path):
    assert write_report(tiny_store, tmp_path, features=["indent"], top=1) == tmp_path
    assert (tmp_path / "index.html").is_file()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"features": ["in_strng"]}, "Unknown feature 'in_strng'"),
        ({"features": []}, "at least one feature"),
        ({"top": 0}, "--top must be at least 1, not 0"),
    ],
)
def test_bad_choices_are_one_clear_error(tiny_store, tmp_path, kwargs, message):
    with pytest.raises(LstmvizError, match=message):
        write_report(tiny_store, tmp_path / "report", **kwargs)
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


def test_a_folder_with_files_in_it_is_not_overwritten(tiny_store, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(LstmvizError, match="not an empty folder"):
        write_report(tiny_store, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_neuron_page_shows_its_explanation_and_score_above_the_examples(report, tiny_store):
    from html import escape

    from lstmviz.analysis.explain.explainer import explain

    neuron = next(n for ns in best_neurons(tiny_store).values() for n in ns)
    page = (report / "neurons" / f"{neuron}.html").read_text()
    unit = explain(tiny_store, neuron).units[0]
    assert f"Explanation: <b>{escape(unit.explanation)}</b> (held-out score {unit.score:.2f}" in page
    assert page.index("Explanation:") < page.index("<h2>Contexts</h2>")
