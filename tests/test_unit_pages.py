"""A probe direction's page and a dictionary feature's page in a real headless Chromium: a
small store recorded here, probed (``L1.h~in_string``) and given a small trained dictionary
(``L1.h#3``); the painted values are checked against the projection and the feature's
activation computed here from the saved files with numpy alone."""

import base64
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lstmviz.app import create_app
from lstmviz.bench.browser import chromium, panel_label, serving, severe_console_errors, text_of, texts_of

FEATURE = 3
WINDOW = 5000  # characters the Neuron page paints at once


@pytest.fixture(scope="module")
def probed_store(tiny_checkpoint, corpus_dir, tmp_path_factory):
    """A recording of the tiny model over four files (a probe trains on half of them, scores
    on the rest) with a probe direction of in_string on L1.h and a dictionary of 48 features
    (k = 4) on L1.h kept in it."""
    import lstmviz
    from lstmviz.analysis.dictionary import dictionary
    from lstmviz.analysis.probes import probe_features

    files = [str(corpus_dir / f"module_{i}.py") for i in range(4)]
    store = lstmviz.record(tiny_checkpoint, files, out=tmp_path_factory.mktemp("units") / "probed.store", progress=False)
    probe_features(store, features=["in_string"], layers=[1], kinds=["h"])
    dictionary(store, 1, "h", size=48, k=4, steps=40, batch=256, splice_chars=300, progress=False)
    return store


@pytest.fixture(scope="module")
def units_server(probed_store):
    app = create_app([probed_store])
    app.catalog.prepare(probed_store.name)
    with serving(app) as base:
        yield base, app


@pytest.fixture(scope="module")
def browser():
    with chromium(logs=["browser"]) as driver:
        yield driver


def _series(store) -> np.ndarray:
    return np.asarray(store.series_block(1, "h"), dtype=np.float64)  # [units, chars]


def projection(store) -> np.ndarray:
    """L1.h projected on the saved direction, read from its file."""
    vector = np.load(Path(store.path) / "direction-L1.h~in_string.npz")["vector"].astype(np.float64)
    assert np.linalg.norm(vector) == pytest.approx(1, abs=1e-5)
    return vector @ _series(store)


def feature_activation(store, feature: int) -> np.ndarray:
    """f_feature(x) of every character's L1.h, from the saved weights in float64:
    the k largest of ReLU((x - b_dec) W_enc + b_enc), the rest 0."""
    (folder,) = (Path(store.path) / "dictionaries").glob("L1.h-*")
    w = {name: value.astype(np.float64) for name, value in load_file(str(folder / "sae_weights.safetensors")).items()}
    k = int(folder.name.rsplit("-k", 1)[1])
    pre = (_series(store).T - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    kth = np.sort(pre, axis=1)[:, -k]
    return np.where(pre[:, feature] >= kth, np.maximum(pre[:, feature], 0), 0)


def painted(browser) -> tuple[int, np.ndarray]:
    data = browser.execute_script(
        "var d = document.getElementById('text-panel').lstmvizData; return [d.start, Array.from(d.values)]"
    )
    return data[0], np.asarray(data[1], dtype=np.float64)


def open_unit(browser, base: str, unit: str, pos: int = 0) -> None:
    browser.get(base + f"/?neuron={unit.replace('#', '%23')}&pos={pos}")
    WebDriverWait(browser, 60).until(lambda d: panel_label(d) == unit)


@pytest.mark.parametrize("unit", ["L1.h~in_string", f"L1.h#{FEATURE}"])
def test_a_unit_s_page_paints_its_values_with_its_contexts_and_histogram(units_server, browser, probed_store, unit):
    base, _ = units_server
    expected = projection(probed_store) if "~" in unit else feature_activation(probed_store, FEATURE)
    pos = 40
    open_unit(browser, base, unit, pos)
    start, values = painted(browser)
    assert start == pos and len(values) == min(WINDOW, len(probed_store) - pos)
    np.testing.assert_allclose(values, expected[pos : pos + len(values)], atol=2e-2)  # float16 series, as a neuron's
    if "#" in unit:
        assert (values == 0).mean() > 0.5 and values.max() > 0  # a sparse feature, on at some characters
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "details-rendered").get_attribute("textContent") == unit)
    high = [float(t.split()[0]) for t in texts_of(browser, "#contexts-high .context")]
    assert max(high) == pytest.approx(expected.max(), abs=2e-2)  # its strongest character, as numpy finds it
    assert text_of(browser, "#histogram .gtitle").startswith(f"{unit}: density")
    assert text_of(browser, "#neuron-error", until=lambda t: True) == ""
    effect = text_of(browser, "#effect-ablation", until=lambda t: "Effect panel" in t)
    what = "a probe direction" if "~" in unit else "a dictionary feature"
    assert f"{unit} is {what}" in effect and f"lstmviz ablate CHECKPOINT --neurons {unit} --store" in effect
    assert severe_console_errors(browser) == []


@pytest.mark.parametrize(
    "typed, label, unit",
    [
        ("direction", "direction: in_string (L1.h)", "L1.h~in_string"),
        (f"feature #{FEATURE} of", f"feature #{FEATURE} of L1.h dictionary", f"L1.h#{FEATURE}"),
    ],
)
def test_the_picker_offers_the_store_s_directions_and_features(units_server, browser, typed, label, unit):
    base, app = units_server
    open_unit(browser, base, "L1.h.0")
    browser.find_element(By.ID, "neuron-pick").click()
    box = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "input.dash-dropdown-search"))
    box.send_keys(typed)
    options = texts_of(browser, "[role=option]", until=lambda texts: texts and texts[0].startswith(typed))
    assert label in options
    values = [o["value"] for o in app.catalog.unit_options(app.catalog.default)]
    assert values.index(unit) > max(i for i, v in enumerate(values) if "~" not in v and "#" not in v)  # after every neuron
    browser.find_elements(By.CSS_SELECTOR, "[role=option]")[options.index(label)].click()
    WebDriverWait(browser, 30).until(lambda d: panel_label(d) == unit)
    assert unit.replace("#", "%23") in browser.current_url


@pytest.mark.parametrize(
    "unit, says",
    [
        ("L1.h%23999", "No feature L1.h#999: the dictionary of L1.h has features 0-47"),
        ("L2.c~nothing", "No direction L2.c~nothing in this store"),
        ("L2.c%231", "No dictionary of L2.c in this store"),
    ],
)
def test_a_unit_the_store_lacks_is_one_sentence(units_server, browser, unit, says):
    base, app = units_server
    browser.get(base + f"/?neuron={unit}")
    note = text_of(browser, "#neuron-error")
    assert says in note and note.count(". ") == 0 and note.endswith(".")
    best = app.catalog.best_neuron(app.catalog.default)
    WebDriverWait(browser, 30).until(lambda d: panel_label(d) == best)  # the nearest view instead


def _array(data) -> np.ndarray:
    """A figure's array as the browser holds it: a list, or plotly's typed array
    ({"dtype", "bdata": base64, "shape"})."""
    if isinstance(data, dict):
        shape = [int(n) for n in str(data["shape"]).split(",")]
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).reshape(shape).astype(np.float64)
    return np.asarray(data, dtype=np.float64)


def test_the_heatmap_sets_a_direction_and_a_feature_beside_a_neuron(units_server, browser, probed_store):
    base, _ = units_server
    rows = ["L1.h.0", "L1.h~in_string", f"L1.h#{FEATURE}"]
    browser.get(base + f"/heatmap?neurons={','.join(rows).replace('#', '%23')}&range=40:140")
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#hm-figure .heatmaplayer, #hm-figure .hm"))
    trace = browser.execute_script(
        "var t = document.querySelector('#hm-figure .js-plotly-plot').data[0]; return [t.y, t.customdata]"
    )
    labels, values = trace[0], _array(trace[1])
    assert [label.split(" (")[0].removeprefix("tanh(").rstrip(")") for label in labels] == rows
    expected = [
        probed_store.neuron("L1.h.0", 40, 140),
        projection(probed_store)[40:140],
        feature_activation(probed_store, FEATURE)[40:140],
    ]
    np.testing.assert_allclose(values, np.stack(expected), atol=2e-2)
    assert text_of(browser, "#hm-error", until=lambda t: True) == ""
    picker = [o["value"] for o in units_server[1].catalog.unit_options(units_server[1].catalog.default)]
    assert set(rows) <= set(picker)  # the rows' picker offers them too


def test_compare_matches_a_direction_and_a_feature_of_a_with_b_neurons(probed_store, tiny_checkpoint, corpus_dir, tmp_path):
    """A against B = a second recording of the same model on the same text: a unit of A is set
    beside the h or c neuron of B its series correlates with most (numpy's corrcoef here, over
    every h and c neuron of B), and a unit A does not keep is one sentence."""
    import lstmviz
    from lstmviz.analysis.compare import compare_stores
    from lstmviz.app.pages.compare import CompareView, _drawn
    from lstmviz.core.errors import LstmvizError

    files = [str(corpus_dir / f"module_{i}.py") for i in range(4)]
    b = lstmviz.record(tiny_checkpoint, files, out=tmp_path / "b.store", progress=False)
    c = compare_stores(probed_store, b, with_features=False)
    ids = [f"L{s.layer}.{s.kind}.{u}" for s in b.series if s.kind in ("h", "c") for u in range(s.units)]
    neurons = np.stack([np.asarray(b.neuron(n), dtype=np.float64) for n in ids])
    units = {"L1.h~in_string": projection(probed_store), f"L1.h#{FEATURE}": feature_activation(probed_store, FEATURE)}
    for unit, values in units.items():
        r = np.array([np.corrcoef(values, row)[0, 1] if row.std() > 0 else 0.0 for row in neurons])
        best = int(np.abs(r).argmax())
        drawn = _drawn(c, CompareView(a="a", b="b", neuron=unit))
        assert drawn["title_b"] == f"B (b): best match {ids[best]}, r = {r[best]:+.3f}"
        assert drawn["title_a"] == f"A (a): {unit}" and unit in drawn["neuron_options"]
    with pytest.raises(LstmvizError) as refused:
        _drawn(c, CompareView(a="a", b="b", neuron="L1.h~in_comment"))
    assert str(refused.value).endswith(".") and str(refused.value).count(". ") == 0


def test_typed_text_is_painted_by_a_direction_as_the_store_paints_it(units_server, probed_store):
    """The Neuron page's box and the Text page record typed text in memory; a direction kept in
    the store is computed on it from the saved vector."""
    from lstmviz.app.live_text import live_payload
    from lstmviz.recording.recorder import record_text

    _, app = units_server
    text = 'name = "quoted"  # and a comment\n'
    payload, note = live_payload(app.catalog, app.catalog.default, "L1.h~in_string", text)
    assert "coloured by L1.h~in_string" in note
    ckpt = app.catalog.checkpoint(app.catalog.default, "record typed text")
    alone = record_text(ckpt, text, kinds=("h",), name="typed")
    vector = np.load(Path(probed_store.path) / "direction-L1.h~in_string.npz")["vector"].astype(np.float64)
    expected = vector @ np.asarray(alone.series_block(1, "h"), dtype=np.float64)
    painted_values = np.frombuffer(base64.b64decode(payload["values"]), dtype="<f4")
    np.testing.assert_allclose(painted_values, expected, atol=2e-2)
