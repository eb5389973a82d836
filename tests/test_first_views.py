"""Where first views open (``analysis.first_views``), on a store with planted cells over a text
built so that the answer is known: a wall of imports, then code thick with short strings,
comments and indented lines, then one long docstring."""

import numpy as np
import pytest

from lstmviz.analysis.first_views import FIRST_VIEWS_CACHE, densest_stretch, first_views, line_starts, neuron_opening
from lstmviz.store.writer import write_store
from lstmviz.text.features import compute_features

IMPORTS = "import os\nimport sys\n" * 150
BUSY = "def f(x):\n    s = 'abc' + \"d\"  # note\n    return s\n" * 30
DOCSTRING = 'def g():\n    """' + "A long explanation of nothing in particular.\n    " * 60 + '"""\n    return 1\n'
TEXT = IMPORTS + BUSY + DOCSTRING + IMPORTS


@pytest.fixture
def planted(tmp_path):
    """L1.c.2 = in_string, L1.c.3 = in_comment, L1.h.1 = indent (each plus noise); the rest noise."""
    n = len(TEXT)
    feats = compute_features(TEXT, [("a.py", 0, n)])
    rng = np.random.default_rng(0)
    h, c = rng.normal(size=(4, n)), rng.normal(size=(4, n))
    c[2] = feats["in_string"] * 2 + rng.normal(scale=0.5, size=n)
    c[3] = feats["in_comment"] * 2 + rng.normal(scale=0.5, size=n)
    h[1] = feats["indent"] / 4 + rng.normal(scale=0.3, size=n)
    return write_store(tmp_path / "p.store", TEXT, [("a.py", 0, n)], {(1, "h"): h, (1, "c"): c})


def test_the_quote_cell_opens_where_short_strings_are_thickest_not_on_the_imports_or_the_docstring(planted):
    assert neuron_opening(planted, "L1.c.2") == len(IMPORTS) + len("def f(x):\n")  # the first line with a string
    assert neuron_opening(planted, "L1.c.3") == len(IMPORTS) + len("def f(x):\n")  # and the first comment


def test_a_neuron_without_a_yes_no_feature_opens_where_its_strongest_values_are(planted, tmp_path):
    n = len(TEXT)
    spikes = np.zeros((1, n))
    docstring = len(IMPORTS) + len(BUSY)
    spikes[0, docstring + 200 : docstring + 1200 : 40] = 9.0  # inside the docstring, nowhere else
    lines = line_starts(TEXT)
    store = write_store(tmp_path / "s.store", TEXT, [("a.py", 0, n)], {(1, "h"): spikes})
    opening = neuron_opening(store, "L1.h.0")
    assert opening == lines[lines <= docstring + 200][-1]  # the start of the line of the first spike


def test_densest_stretch_counts_beginnings_not_length():
    text = "x\n" * 10 + "a" * 50 + "\n" + "ab\n" * 10
    marks = np.array([c == "a" for c in text])
    # the 50-character run is one beginning; the ten short runs after it are ten
    assert densest_stretch(marks, line_starts(text), span=30) == text.index("ab")
    assert densest_stretch(np.zeros(len(text), bool), line_starts(text), span=30) == 0


def test_the_heatmap_opens_on_each_features_best_cell_where_they_change(planted):
    views = first_views(planted)
    heatmap = views["heatmap"]
    assert {"L1.c.2", "L1.c.3", "L1.h.1"} <= set(heatmap["neurons"])
    window = TEXT[heatmap["start"] : heatmap["stop"]]
    assert heatmap["start"] in line_starts(TEXT)
    assert "'" in window and "#" in window and "\n    " in window and "\nd" in window  # strings, comments, indents
    assert (planted.path / FIRST_VIEWS_CACHE).is_file()  # computed once, kept in the store


def test_the_heatmap_page_opens_on_that_window_titled_with_the_stores_name_in_the_dashboard(planted):
    from lstmviz.app.catalog import Catalog
    from lstmviz.app.pages.heatmap import HeatmapView, _view
    from lstmviz.render.figures import heatmap_figure

    catalog = Catalog.of([planted], names=["planted-lstm · test split"])
    view, store, start, stop, scales = _view(catalog, "")
    opening = first_views(planted)["heatmap"]
    assert list(view.neurons) == opening["neurons"] and (start, stop) == (opening["start"], opening["stop"])
    figure = heatmap_figure(store, list(view.neurons), start, stop, scales, name=view.store)
    assert figure.layout.title.text.startswith(f"planted-lstm · test split: characters {start}-{stop}")
    assert HeatmapView(neurons=("L1.h.1",)).resolve(catalog).marks == "0:120"  # neurons chosen: the text's start
