"""The Units page on a store whose units have planted meanings (test_explain.py's): before
the units are explained it says so and explains them in the background on a click; then the
grid lists every unit with its explanation and scores, the search narrows it (and lives in
the URL), and a unit links to its Neuron page, in a real headless Chromium."""

from __future__ import annotations

import pytest
import test_dashboard
import test_explain
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from lstmviz.analysis.explain.explainer import cached_explanations, explain
from lstmviz.app import create_app
from lstmviz.app.pages.units import UnitsView, unit_rows
from lstmviz.app.view_state import parse_query
from lstmviz.bench.browser import panel_label, serving, severe_console_errors, text_of, texts_of

browser, downloads = test_dashboard.browser, test_dashboard.downloads  # a Chromium of this module's own
planted = test_explain.planted  # L1.h.0 digits, L1.h.1 after `#` until the newline, L1.h.2 the column, L1.h.3 noise
UNITS = "#units-grid .ag-center-cols-container .ag-row"


@pytest.fixture(scope="module")
def units_server(planted):
    app = create_app([planted])
    app.catalog.prepare(planted.name)
    with serving(app) as base:
        yield base


def test_the_search_lives_in_the_url():
    view = UnitsView(store="planted.store", q="after import")
    assert view.search() == "?store=planted.store&q=after+import"
    assert UnitsView.from_query(parse_query(view.search())) == view


def _listed(browser, until, timeout: float = 30) -> list[str]:
    return texts_of(browser, f"{UNITS} [col-id='unit']", until=lambda units: bool(units) and until(units), timeout=timeout)


def test_the_page_explains_the_units_then_lists_searches_and_links_them(units_server, browser, planted):
    browser.get(units_server + "/units")
    assert "not explained yet" in text_of(browser, "#units-none")
    assert not browser.find_element(By.ID, "units-grid-box").is_displayed()
    browser.find_element(By.ID, "units-explain").click()  # the job runs in the queue; the page polls it

    assert sorted(_listed(browser, lambda units: len(units) == 4, timeout=120)) == ["L1.h.0", "L1.h.1", "L1.h.2", "L1.h.3"]
    explanations = texts_of(browser, f"{UNITS} [col-id='explanation']")
    assert any("digit" in e for e in explanations) and any(e.startswith("unexplained") for e in explanations)
    assert "4 units" in text_of(browser, "#units-summary")
    assert sorted(cached_explanations(planted)) == ["L1.h.0", "L1.h.1", "L1.h.2", "L1.h.3"]  # kept in the store

    box = browser.find_element(By.ID, "units-q")
    box.send_keys("digit", Keys.ENTER)
    assert _listed(browser, lambda units: len(units) < 4) == ["L1.h.0"]
    WebDriverWait(browser, 10).until(lambda d: d.current_url.endswith("/units?q=digit"))

    browser.find_element(By.CSS_SELECTOR, f"{UNITS} [col-id='unit'] a").click()
    WebDriverWait(browser, 30).until(lambda d: panel_label(d) == "L1.h.0")
    assert parse_query(browser.current_url.split("?", 1)[1]) == {"store": "planted.store", "neuron": "L1.h.0"}
    assert severe_console_errors(browser) == []


def test_a_search_in_the_url_opens_narrowed_best_scored_first(units_server, browser, planted):
    units = explain(planted).units  # cached by the page's job: the same explanations
    with_the = sorted((u for u in units if "the" in u.explanation.split()), key=lambda u: -u.score)
    assert len(with_the) == 3  # the digit, column and noise units say "the"; the comment unit does not
    browser.get(units_server + "/units?q=the")
    assert _listed(browser, lambda listed: len(listed) == 3) == [u.neuron for u in with_the]
    assert browser.find_element(By.ID, "units-q").get_attribute("value") == "the"
    assert severe_console_errors(browser) == []


def test_the_grid_s_rows_link_each_unit_to_its_neuron_page(planted):
    rows = unit_rows(explain(planted), "planted.store", "")
    assert [r["unit"] for r in rows][0].startswith("[")
    assert {r["unit"] for r in rows} == {f"[L1.h.{i}](/?store=planted.store&neuron=L1.h.{i})" for i in range(4)}
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True)  # best-scored first
