"""Shared fixtures: a small text corpus made on the fly, a tiny model trained on it, and its
recorded store. Everything is small enough to train in seconds on a CPU."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lstmviz.model.train import TrainConfig, train
from lstmviz.text.corpus import load_corpus

SNIPPET = textwrap.dedent(
    '''
    def greet(name):
        """Say hello to someone."""
        # build the message
        message = "hello, " + name
        if name:
            return message  # done
        return 'nobody'
    '''
)


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for i in range(40):
        (root / f"module_{i}.py").write_text(SNIPPET.replace("greet", f"greet_{i}") * 3)
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(corpus_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    cfg = TrainConfig(hidden_size=24, embed_dim=8, seq_len=32, batch_size=4, steps=30, eval_every=15, snapshots=2, seed=3)
    train(load_corpus([str(corpus_dir)]), out, cfg, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_store(tiny_checkpoint, tmp_path_factory):
    import lstmviz

    return lstmviz.record(tiny_checkpoint, out=tmp_path_factory.mktemp("store") / "tiny.store", progress=False)


@pytest.fixture
def reference_colour():
    return _reference_colour


def _reference_colour(value: float, low: float, centre: float, high: float, tanh: bool = False) -> str:
    """The CSS colour a painted value should have, computed here independently of
    lstmviz.render.colours: the position on the palette (0.5 at ``centre``, linear on each side),
    one of 256 levels, then plotly's RdBu (reversed) interpolated between its stops."""
    import math

    stops = [(0, 48, 97), (33, 102, 172), (67, 147, 195), (146, 197, 222), (209, 229, 240), (247, 247, 247)]
    stops += [(253, 219, 199), (244, 165, 130), (214, 96, 77), (178, 24, 43), (103, 0, 31)]
    stops[0] = (5, 48, 97)
    v = math.tanh(value) if tanh else value
    t = 0.5 + 0.5 * (v - centre) / (high - centre) if v >= centre else 0.5 - 0.5 * (centre - v) / (centre - low)
    level = math.floor(min(1.0, max(0.0, t)) * 255 + 0.5)
    x = level / 255 * 10
    k = min(int(x), 9)
    a, b = stops[k], stops[k + 1]
    r, g, bl = (round(a[i] + (b[i] - a[i]) * (x - k)) for i in range(3))
    return f"rgb({r}, {g}, {bl})"
