"""Colour scales: each kind of series on its own bounds, each neuron on its own range, and the
default chosen so that a cell reads (contrast inside vs outside its feature)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstmviz.analysis.distribution import stats_of, value_stats
from lstmviz.core.errors import ConfigError, NeuronError
from lstmviz.render.colours import COLOUR_LEVELS, SCALES, ColourScale, checked_scale, contrast, neuron_scale, scale_for

WIDE = stats_of(np.concatenate([np.linspace(-27, 0, 900), np.linspace(0, 5.7, 100)]))


def test_each_kind_has_its_bounds_and_c_is_painted_as_tanh():
    gate = scale_for("L1.f.3", WIDE)
    assert (gate.low, gate.centre, gate.high, gate.tanh) == (0.0, 0.0, 1.0, False)
    assert gate.positions([0.0, 0.5, 1.0]).tolist() == [0.5, 0.75, 1.0]  # white at 0, sequential to red at 1
    h = scale_for("L2.h.7", WIDE)
    assert h.positions([-1.0, 0.0, 1.0]).tolist() == [0.0, 0.5, 1.0]
    c = scale_for("L2.c.90", WIDE)
    assert c.tanh and c.label == "tanh(L2.c.90)"
    assert c.positions([-27.0, 0.0, 0.5]) == pytest.approx([0.0, 0.5, 0.5 + 0.5 * math.tanh(0.5)])


def test_the_kind_is_read_from_the_neuron_id_in_either_direction():
    assert scale_for("L1r.c.3", WIDE).tanh and scale_for("L1r.i.3", WIDE).low == 0.0  # a bidirectional model's backward cells
    assert not scale_for("L1r.h.3", WIDE).tanh
    with pytest.raises(NeuronError, match="is not a unit id"):
        scale_for("c.3", WIDE)


def test_split_gives_each_side_of_zero_its_own_range():
    s = scale_for("L2.c.90", WIDE, "split")
    assert s.low == pytest.approx(WIDE.q01) and s.high == pytest.approx(WIDE.q99)
    assert s.positions([s.low, 0.0, s.high]).tolist() == [0.0, 0.5, 1.0]
    assert s.positions([-1e9, 1e9, np.nan]).tolist() == [0.0, 1.0, 0.5]  # clipped; NaN at the centre


def test_centred_and_symmetric_scales():
    centred = scale_for("L1.c.1", WIDE, "centred")
    assert centred.centre == pytest.approx(WIDE.median) and centred.positions([WIDE.median])[0] == 0.5
    symmetric = scale_for("L1.c.1", WIDE, "symmetric")
    assert symmetric.high == pytest.approx(WIDE.abs99) and symmetric.low == pytest.approx(-WIDE.abs99)


def test_a_cell_that_tanh_would_paint_in_one_colour_is_centred_by_default():
    saturated = stats_of(np.linspace(-149, -5, 1000))  # every value where tanh is flat
    assert scale_for("L2.c.287", saturated).label.endswith("(around its median)")
    assert scale_for("L2.h.287", saturated).label.endswith("(-1..1)")  # only c is unbounded


def test_an_unknown_scale_is_one_clear_error():
    assert checked_scale("default") is None and checked_scale("split") == "split"
    with pytest.raises(ConfigError, match="not a colour scale; choose one of fixed, split"):
        checked_scale("rainbow")


def test_levels_are_bytes_on_the_palette():
    s = ColourScale(-2.0, 0.0, 2.0)
    levels = s.levels([-2.0, 0.0, 2.0, 1.0])
    assert levels.dtype == np.uint8 and levels.tolist() == [0, 128, COLOUR_LEVELS, 191]


def test_the_stored_statistics_equal_numpys(tiny_store):
    values = tiny_store.neuron("L2.c.3").astype(np.float64)
    stats = value_stats(tiny_store, "L2.c.3")
    assert stats.q01 == pytest.approx(np.quantile(values, 0.01))
    assert stats.median == pytest.approx(np.quantile(values, 0.5))
    assert stats.abs99 == pytest.approx(np.quantile(np.abs(values), 0.99))
    assert stats.dev99 == pytest.approx(np.quantile(np.abs(values - np.median(values)), 0.99))
    assert neuron_scale(tiny_store, "L2.c.3") == scale_for("L2.c.3", stats)


def test_the_default_makes_a_quote_like_cell_more_distinct_than_the_old_symmetric_scale():
    """A planted cell like the shipped quote cell: about -25 outside strings, small and positive inside."""
    rng = np.random.default_rng(0)
    inside = rng.random(20_000) < 0.15
    values = np.where(inside, rng.normal(1.0, 0.8, inside.size), rng.normal(-12, 8, inside.size)).astype(np.float32)
    stats = stats_of(values)
    measured = {name: contrast(scale_for("L2.c.90", stats, name), values, inside) for name in SCALES}
    assert measured["fixed"] > 1.5 * measured["symmetric"]
    assert contrast(scale_for("L2.c.90", stats), values, inside) == measured["fixed"]
    unrelated = rng.random(inside.size) < 0.15  # a split the cell knows nothing of: about no contrast
    assert contrast(scale_for("L2.c.90", stats), values, unrelated) < 0.1 * measured["fixed"]


def test_the_training_axis_shows_the_whole_run_from_its_first_steps():
    import json

    from lstmviz.model.checkpoint import SHIPPED_DIR
    from lstmviz.render.figures import training_figure

    history = json.loads((SHIPPED_DIR / "stdlib-lstm" / "history.json").read_text())
    fig = training_figure(history, {"test bpc": 1.195, "n-gram": 1.279})
    assert fig.layout.yaxis.type == "log"
    low, high = (10**end for end in fig.layout.yaxis.range)  # a log axis's range is in log10 units
    first_steps = [bpc for step, bpc in zip(history["step"], history["train_bpc"], strict=True) if step <= 700]
    assert max(first_steps) > 7  # the run starts near log2 of the vocabulary
    shown = [*history["train_bpc"], *history["val_bpc"], 1.195, 1.279]
    assert low < min(shown) and max(shown) < high  # every step, and both references, in view
    assert high < 1.1 * max(shown) and low > 0.9 * min(shown)  # and no more: the end stays readable
    positions = [a.yanchor for a in fig.layout.annotations]
    assert len(set(positions)) == 2  # the two reference labels on different sides of their lines
