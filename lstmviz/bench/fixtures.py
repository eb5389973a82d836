"""What the benchmarks run on: the shipped checkpoint (or a given one), a synthetic store of
real text with random activations, and a text laid out in lanes as recording lays it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model.checkpoint import Checkpoint, load_checkpoint
from ..recording.sources import DEFAULT_CHECKPOINT
from ..store.reader import ActivationStore
from ..text.corpus import Document, load_corpus


def default_checkpoint(path: str | Path | None) -> Checkpoint:
    """The checkpoint at ``path``, or the shipped one."""
    return load_checkpoint(path or DEFAULT_CHECKPOINT)


def synthetic_store(out: Path, chars: int, units: int | None = None, seed: int = 0) -> tuple[ActivationStore, str]:
    """A store over ``chars`` characters of real text (the stdlib) with synthetic h and c of
    the shipped model's shape (or ``units`` per layer): for benchmarks that need more text
    than the shipped test split. It records no model, as a store a user writes from their own
    activations. Returns the store and a description."""
    from ..store.writer import write_store

    cfg = default_checkpoint(None).model_config
    units = units or cfg.hidden_size
    documents = load_corpus(max_chars=chars).documents
    docs, total = [], 0
    for d in documents:
        if total >= chars:
            break
        docs.append((d.name, total, total + min(len(d.text), chars - total)))
        total += min(len(d.text), chars - total)
    text = "".join(d.text for d in documents)[:total]
    rng = np.random.default_rng(seed)
    series = {}
    for layer in range(1, cfg.num_layers + 1):
        series[(layer, "h")] = np.tanh(rng.standard_normal((units, total), dtype=np.float32)).astype(np.float16)
        series[(layer, "c")] = (3 * rng.standard_normal((units, total), dtype=np.float32)).astype(np.float16)
    store = write_store(out, text, docs, series, vocab=sorted(set(text)))
    return store, f"synthetic h, c of a {cfg.num_layers}x{units} model over {total:,} stdlib characters"


def lane_batches(ckpt: Checkpoint, docs: list[Document], lanes: int, chunk_len: int):
    """The chunks recording runs, in its layout (``lanes.LaidText``): a list of (rows: the
    lanes in the batch, ids [rows, time]); and the number of characters."""
    from ..text.lanes import LaidText

    laid = LaidText.of(docs, ckpt.vocab, lanes)
    return [(rows, x) for rows, _, _, x, _ in laid.chunks(chunk_len)], len(laid.text)
