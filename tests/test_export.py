"""Heatmap export: the same figure builder as the dashboard, to every supported format."""

import numpy as np
import pytest
from click.testing import CliRunner

from lstmviz.cli.main import main
from lstmviz.core.errors import LstmvizError, StoreError
from lstmviz.render.colours import neuron_scales
from lstmviz.render.export import write_figure
from lstmviz.render.figures import heatmap_figure, parse_range


def export(store, *args):
    return CliRunner().invoke(main, ["export", str(store.path), *map(str, args)])


def test_heatmap_holds_the_values_and_characters(tiny_store):
    fig = heatmap_figure(tiny_store, ["L1.h.0", "L2.c.3"], 10, 50)  # one scale for all rows
    heat = fig.data[0]
    assert heat.y == ("L1.h.0", "L2.c.3")
    values = tiny_store.neuron("L2.c.3", 10, 50)
    assert list(heat.customdata[1]) == pytest.approx(list(values))  # the hover's values
    limit = np.quantile(np.abs(tiny_store.window(["L1.h.0", "L2.c.3"], 10, 50)), 0.99)
    assert list(heat.z[1]) == pytest.approx(list(np.clip(0.5 + 0.5 * values / limit, 0, 1)), abs=1e-6)
    assert "".join(heat.text[0]).replace("⏎", "\n").replace("·", " ").replace("⇥", "\t") == tiny_store.text(10, 50)
    assert (heat.zmin, heat.zmax) == (0, 1)


def test_heatmap_rows_each_on_their_own_scale(tiny_store):
    neurons = ["L1.h.0", "L2.c.3", "L1.f.1"]
    scales = neuron_scales(tiny_store, neurons)
    heat = heatmap_figure(tiny_store, neurons, 10, 50, scales).data[0]
    for row, (n, s) in enumerate(zip(neurons, scales, strict=True)):
        assert list(heat.z[row]) == pytest.approx(list(s.positions(tiny_store.neuron(n, 10, 50))))
    assert heat.y[2] == "L1.f.1 (0..1)" and heat.y[1] == scales[1].label


def test_standalone_html_works_offline(tiny_store, tmp_path):
    result = export(tiny_store, "--neurons", "L1.h.0,L2.c.3", "--range", "0:100", "--out", tmp_path / "h.html")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "h.html").read_text()
    assert "<script src=" not in html.split("plotly")[0]  # plotly.js is inlined, no CDN
    assert "L2.c.3" in html


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".svg", b"<svg"), (".pdf", b"%PDF")])
def test_static_formats_through_kaleido(tiny_store, tmp_path, suffix, magic):
    out = tmp_path / f"h{suffix}"
    result = export(tiny_store, "--neurons", "L1.h.0", "--range", "0:60", "--out", out)
    assert result.exit_code == 0, result.output
    assert magic in out.read_bytes()[:200]


def test_bad_inputs_are_clear_errors(tiny_store, tmp_path):
    cases = [
        (("--neurons", "L7.h.0", "--range", "0:10", "--out", tmp_path / "a.html"), "No neuron L7.h.0"),
        (("--neurons", "nonsense", "--range", "0:10", "--out", tmp_path / "a.html"), "not a unit id"),
        (("--neurons", "L1.h.0", "--range", "10", "--out", tmp_path / "a.html"), "not a character range"),
        (("--neurons", "L1.h.0", "--range", "0:999999", "--out", tmp_path / "a.html"), "outside the store"),
        (("--neurons", "L1.h.0", "--range", "0:10", "--out", tmp_path / "a.gif"), "must end in"),
        (("--neurons", "L1.h.0", "--range", "0:10", "--out", tmp_path / "no" / "a.png"), "does not exist"),
    ]
    for args, message in cases:
        result = export(tiny_store, *args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_range_parsing():
    assert parse_range("5:", 100) == (5, 100)
    assert parse_range(":7", 100) == (0, 7)
    with pytest.raises(StoreError):
        parse_range("9:3", 100)
    with pytest.raises(LstmvizError):
        write_figure(None, "x.bmp")
