"""What the benchmarks run on: the shipped checkpoint (or a given one), a synthetic store of
real text with random activations, and a text laid out in lanes as recording lays it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..model.checkpoint import Checkpoint, load_checkpoint
from ..recording.sources import DEFAULT_CHECKPOINT
from ..store.reader import ActivationStore
from ..text.corpus import Document, load_corpus
from ..text.lanes import Chunk, LaidText, limit_chars


def default_checkpoint(path: str | Path | None) -> Checkpoint:
    """The checkpoint at ``path``, or the shipped one."""
    return load_checkpoint(path or DEFAULT_CHECKPOINT)


def model_shape(cfg) -> str:
    """A model's size as the benchmarks' results name it, e.g. ``2x384 lstm`` (layers x units,
    cell), from its model or training config."""
    return f"{cfg.num_layers}x{cfg.hidden_size} {cfg.cell}"


def bench_store(folder: Path, store_path: str | None, chars: int, units: int | None, seed: int) -> tuple[ActivationStore, str]:
    """The store at ``store_path`` if given, else a synthetic one of ``chars`` characters in
    ``folder`` (:func:`synthetic_store`); and a description."""
    if store_path:
        from ..store.open import open_store

        return open_store(store_path), f"store {store_path}"
    return synthetic_store(folder / "bench.store", chars, units=units, seed=seed)


def synthetic_store(out: Path, chars: int, units: int | None = None, seed: int = 0) -> tuple[ActivationStore, str]:
    """A store over ``chars`` characters of real text (the stdlib) with synthetic h and c of
    the shipped model's shape (or ``units`` per layer): for benchmarks that need more text
    than the shipped test split. It records no model, as a store a user writes from their own
    activations. Returns the store and a description."""
    from ..store.writer import write_store

    cfg = default_checkpoint(None).model_config
    units = units or cfg.hidden_size
    documents = limit_chars(load_corpus(max_chars=chars).documents, chars)
    text = "".join(d.text for d in documents)
    total = len(text)
    ends = np.cumsum([len(d.text) for d in documents])
    docs = [(d.name, int(end) - len(d.text), int(end)) for d, end in zip(documents, ends, strict=True)]
    rng = np.random.default_rng(seed)
    series = {}
    for layer in range(1, cfg.num_layers + 1):
        series[(layer, "h")] = np.tanh(rng.standard_normal((units, total), dtype=np.float32)).astype(np.float16)
        series[(layer, "c")] = (3 * rng.standard_normal((units, total), dtype=np.float32)).astype(np.float16)
    store = write_store(out, text, docs, series, vocab=sorted(set(text)))
    return store, f"synthetic h, c of a {cfg.num_layers}x{units} model over {total:,} stdlib characters"


def laid_chunks(ckpt: Checkpoint, docs: list[Document], lanes: int, chunk_len: int) -> tuple[LaidText, list[Chunk]]:
    """``docs`` laid out as recording lays them (``lanes.LaidText``) and the chunks recording
    runs, made once, so that no run times their making."""
    laid = LaidText.of(docs, ckpt.vocab, lanes)
    return laid, list(laid.chunks(chunk_len))


def user_batches(chunks: list[Chunk]) -> list[tuple[np.ndarray, torch.Tensor]]:
    """The chunks as a user's own batches, which the references read: (rows: the lanes in
    the batch, ids [rows, time]) per chunk."""
    return [(chunk.rows, chunk.ids) for chunk in chunks]
