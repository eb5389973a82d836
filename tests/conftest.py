"""Shared fixtures: a small text corpus made on the fly, a tiny model trained on it, and its
recorded store. Everything is small enough to train in seconds on a CPU."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lstmviz.corpus import load_corpus
from lstmviz.train import TrainConfig, train

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
