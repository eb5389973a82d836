"""lstmviz in a notebook: show() is self-contained coloured HTML, heatmap() the dashboard's
figure, and the example notebook runs on a real Jupyter kernel without an error."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import lstmviz
from lstmviz.core.errors import LstmvizError
from lstmviz.render.colours import neuron_scale

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quote-cell.ipynb"


def test_show_colours_a_range_of_a_store_with_hover_details(tiny_store, reference_colour):
    view = lstmviz.show(tiny_store, "L2.c.3", range="10:70")
    html = view._repr_html_()
    assert "<script" not in html and "http" not in html  # nothing runs, nothing is fetched
    values = tiny_store.neuron("L2.c.3", 10, 70)
    s = view.scale
    expected = reference_colour(float(values[5]), s.low, s.centre, s.high, s.tanh).replace(" ", "")
    assert html.count("<span style=") == 60 and f"background:{expected}" in html
    assert "position 15  " in view.titles[5] and f"L2.c.3 = {values[5]:.3f}" in view.titles[5] and "next: " in view.titles[5]
    assert view.to_html().startswith("<!doctype html>")


def test_show_records_a_text_on_the_fly(tiny_checkpoint, tiny_store):
    from lstmviz.recording.recorder import record_text

    text = "def greet(name):\n    return 'hi'  # ψ\n"
    view = lstmviz.show(tiny_checkpoint, "L1.c.2", text=text)
    expected = record_text(lstmviz.load_checkpoint(tiny_checkpoint), text).neuron("L1.c.2")
    assert view.text == text and list(view.values) == pytest.approx(list(expected))
    assert "read as unknown" in view.note and "ψ" in view.note
    from_store = lstmviz.show(tiny_store, "L1.c.2", text=text)  # its checkpoint records; its range colours
    assert from_store.scale == neuron_scale(tiny_store, "L1.c.2")


def test_show_and_heatmap_bad_input(tiny_checkpoint, tiny_store):
    with pytest.raises(LstmvizError, match="Give the text"):
        lstmviz.show(tiny_checkpoint, "L1.c.2")
    with pytest.raises(LstmvizError, match="No neuron L5"):
        lstmviz.show(tiny_checkpoint, "L5.c.2", text="abc")
    with pytest.raises(LstmvizError, match="at most 100,000"):
        lstmviz.show(tiny_checkpoint, "L1.c.2", text="a" * 100_001)
    with pytest.raises(LstmvizError, match="outside the store"):
        lstmviz.show(tiny_store, "L1.c.2", range="0:99999999")
    with pytest.raises(LstmvizError, match="record one first"):
        lstmviz.heatmap(tiny_checkpoint, "L1.c.2")
    assert lstmviz.heatmap(tiny_store, "L1.c.2,L2.h.0", range="0:50").data[0].z.shape == (2, 50)


def test_heatmap_reads_neurons_as_every_command_does(tiny_store):
    """A comma list as the CLI's ``export heatmap`` reads it: spaces and empty items dropped,
    repeats once; a list of ids too; an id that is not one gets the one sentence."""
    figure = lstmviz.heatmap(tiny_store, " L1.c.2, L2.h.0,,L1.c.2 ", range="0:50")
    assert figure.data[0].z.shape == (2, 50)
    assert figure.data[0].z.tolist() == lstmviz.heatmap(tiny_store, ["L1.c.2", "L2.h.0"], range="0:50").data[0].z.tolist()
    with pytest.raises(LstmvizError, match="'L1-c-2' is not a unit id"):
        lstmviz.heatmap(tiny_store, "L1-c-2", range="0:50")


def test_the_example_notebook_runs_without_an_error():
    notebook = nbformat.read(EXAMPLE, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLE.parent)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    shown = [o["data"]["text/html"] for o in outputs if "lstmviz-text" in o.get("data", {}).get("text/html", "")]
    assert len(shown) == 2 and all("L2.c.90 = " in h and "<script" not in h for h in shown)
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs)  # the heatmap
    assert any("iframe" in o.get("data", {}).get("text/html", "").lower() for o in outputs)  # the dashboard
