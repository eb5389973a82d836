"""Bits per character of a checkpoint, beside the n-gram baseline on exactly the same
characters (every character of a document but its first)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .baseline import DEFAULT_MAX_ORDER, NgramResult, ngram_baseline
from .checkpoint import Checkpoint
from .corpus import Document, documents_from_description, load_corpus
from .errors import CorpusError
from .train import build_lanes, evaluate_lanes


def evaluation_documents(ckpt: Checkpoint, paths: Sequence[str] | None = None, max_chars: int | None = None) -> list[Document]:
    """The given text (read only as far as ``max_chars``), or the checkpoint's test split."""
    if paths:
        return load_corpus(paths, max_chars).documents
    return documents_from_description(ckpt.config["corpus"], "test")


def model_bpc(ckpt: Checkpoint, docs: list[Document], batch_size: int = 32, seq_len: int = 256) -> tuple[float, int]:
    device = next(ckpt.model.parameters()).device
    encoded = [ckpt.vocab.encode_array(d.text).astype(np.int32) for d in docs]
    with torch.inference_mode():
        return evaluate_lanes(ckpt.model, build_lanes(encoded, min(batch_size, len(encoded)), seq_len), device)


def baseline_for(ckpt: Checkpoint, docs: list[Document], max_order: int = DEFAULT_MAX_ORDER) -> NgramResult:
    """The n-gram model trained on the checkpoint's own training split, scored on ``docs``."""
    train_docs = documents_from_description(ckpt.config["corpus"], "train")
    encode = ckpt.vocab.encode_array
    return ngram_baseline([encode(d.text) for d in train_docs], [encode(d.text) for d in docs], len(ckpt.vocab), max_order)


def ngram_for_store(store, ckpt: Checkpoint, max_order: int = DEFAULT_MAX_ORDER) -> tuple[np.ndarray, NgramResult]:
    """The n-gram baseline on a store's documents: per store character, log2 of its
    probability given the ones before it in its document (NaN at a document's first
    character), and the baseline's result (best order, bpc by order)."""
    docs = [Document(d.name, store.text(d.start, d.stop)) for d in store.documents]
    result = baseline_for(ckpt, docs, max_order)
    out = np.full(len(store), np.nan)
    k = 0
    for d in store.documents:
        n = max(len(d) - 1, 0)
        out[d.start + 1 : d.start + 1 + n] = result.log2_probs[k : k + n]
        k += n
    return out, result


def store_bpc(store) -> float:
    """The recorded model's bits per character on a store, from its recorded predictions
    (every character of a document but its first, as ``evaluate`` scores)."""
    logp = np.asarray(store.logp, dtype=np.float64)
    scored = np.ones(len(store), dtype=bool)
    for d in store.documents:
        scored[d.stop - 1] = False  # a document's last position predicts nothing
    return float(-logp[scored].mean() / np.log(2)) if scored.any() else float("nan")


def evaluate(ckpt: Checkpoint, paths: Sequence[str] | None = None, max_order: int = DEFAULT_MAX_ORDER) -> dict:
    docs = evaluation_documents(ckpt, paths)
    if sum(max(len(d.text) - 1, 0) for d in docs) == 0:
        raise CorpusError("The text to evaluate on has no character to predict (each document needs two or more).")
    bpc, chars = model_bpc(ckpt, docs)
    base = baseline_for(ckpt, docs, max_order)
    return {
        "checkpoint": str(ckpt.path),
        "text": "test split" if not paths else list(paths),
        "documents": len(docs),
        "bpc": round(bpc, 5),
        "chars": chars,
        "baseline": base.to_json(),
        "improvement": round(1 - bpc / base.bpc, 4),
    }
