"""``lstmviz bench train|record --cells``: each cell type's training or recording speed on
one small model, beside the LSTM, which runs PyTorch's fused kernel where the peephole and
CIFG cells step in Python."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..core.errors import LstmvizError
from ..model.train import TrainConfig
from ..store.format import DEFAULT_LANES
from ..text.corpus import Corpus, Document, Vocab, load_corpus
from ..text.lanes import limit_chars
from .harness import result, timed
from .references import WARM_UP_STEPS
from .train import training_speed

CELL_BENCH = {"hidden_size": 64, "num_layers": 2, "embed_dim": 32, "seq_len": 64, "batch_size": 16}


def _cell_rows(cells: list[str], measure) -> list[dict]:
    """``measure(cell) -> chars/s`` for each cell, each beside the LSTM's (measured too)."""
    from ..model.rnn import CELLS

    unknown = [c for c in cells if c not in CELLS]
    if unknown or not cells:
        raise LstmvizError(f"--cells takes cell types among {', '.join(CELLS)}, not {', '.join(unknown) or 'none'}.")
    speeds = {cell: measure(cell) for cell in dict.fromkeys(["lstm", *cells])}
    return [{"cell": c, "chars_per_s": round(v), "ratio_vs_lstm": round(v / speeds["lstm"], 3)} for c, v in speeds.items()]


def _train_speed(corpus: Corpus, cell: str, steps: int, repeats: int) -> float:
    """Best of ``repeats``: characters/s of ``lstmviz train`` on the small model (the
    validation after the last step, which is not timed, on one batch)."""
    one_batch = CELL_BENCH["batch_size"] * CELL_BENCH["seq_len"]
    cfg = TrainConfig(cell=cell, **CELL_BENCH, steps=steps, eval_every=10**9, val_chars=one_batch, save_every_s=1e9, device="cpu")
    return max(training_speed(corpus, cfg) for _ in range(repeats))


def _record_speed(corpus: Corpus, docs: list[Document], cell: str, repeats: int) -> float:
    """Best of ``repeats``: characters/s of recording ``docs`` in memory with the small
    model's untrained weights (recording costs the same)."""
    from ..model.checkpoint import load_checkpoint, save_checkpoint
    from ..model.rnn import CharRNN
    from ..recording.recorder import record_activations

    cfg = TrainConfig(cell=cell, **CELL_BENCH)
    with tempfile.TemporaryDirectory() as tmp:
        vocab = Vocab.build(d.text for d in corpus.split("train"))
        torch.manual_seed(0)
        model = CharRNN(cfg.model_config(len(vocab)))
        ckpt = load_checkpoint(save_checkpoint(Path(tmp) / cell, model, vocab, corpus=corpus.describe(), training={}))
        seconds = min(timed(lambda: record_activations(ckpt, docs, None, progress=False)) for _ in range(repeats))
    return sum(len(d.text) for d in docs) / seconds


def bench_cells(stage: str, cells: list[str], steps: int = 20, chars: int = 20_000, repeats: int = 1) -> dict:
    """Characters/s of ``lstmviz train`` (``stage="train"``) or ``lstmviz record`` (``"record"``)
    for each cell type on the same small model (``CELL_BENCH``) and text, beside the LSTM
    (best of ``repeats``)."""
    if stage == "train" and steps < 2 * WARM_UP_STEPS:
        first = WARM_UP_STEPS
        raise LstmvizError(
            f"bench train --cells needs at least {2 * first} steps (speed is measured from step {first} to the last)."
        )
    corpus = load_corpus(None, max_chars=max(chars, 400_000))
    text = "".join(d.text for d in limit_chars(corpus.documents, chars))
    piece = -(-len(text) // DEFAULT_LANES)  # one document per lane, so every lane runs
    docs = [Document(f"piece-{k}", text[a : a + piece]) for k, a in enumerate(range(0, len(text), piece))]
    if stage == "train":
        rows = _cell_rows(cells, lambda cell: _train_speed(corpus, cell, steps, repeats))
    else:
        rows = _cell_rows(cells, lambda cell: _record_speed(corpus, docs, cell, repeats))
    size = CELL_BENCH
    model = f"{size['num_layers']}x{size['hidden_size']}, embed {size['embed_dim']}"
    model += f", batch {size['batch_size']} x {size['seq_len']}, {steps} steps" if stage == "train" else f", {chars:,} characters"
    measures = (
        f"characters/s of {'training' if stage == 'train' else 'recording'} by cell type on one small model, beside the LSTM"
    )
    return result(f"{stage} --cells", measures, {"model": model, "cells": rows})
