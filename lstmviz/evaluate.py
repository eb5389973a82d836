"""Bits per character of a checkpoint, beside the n-gram baseline on exactly the same
characters (every character of a document but its first)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .baseline import NgramResult, ngram_baseline
from .checkpoint import Checkpoint
from .corpus import Document, documents_from_description, load_corpus
from .errors import CorpusError
from .train import build_lanes, evaluate_lanes


def evaluation_documents(ckpt: Checkpoint, paths: Sequence[str] | None = None) -> list[Document]:
    """The given text, or the checkpoint's test split."""
    if paths:
        return load_corpus(paths).documents
    return documents_from_description(ckpt.config["corpus"], "test")


def model_bpc(ckpt: Checkpoint, docs: list[Document], batch_size: int = 32, seq_len: int = 256) -> tuple[float, int]:
    device = next(ckpt.model.parameters()).device
    encoded = [ckpt.vocab.encode_array(d.text).astype(np.int32) for d in docs]
    with torch.inference_mode():
        return evaluate_lanes(ckpt.model, build_lanes(encoded, min(batch_size, len(encoded)), seq_len), device)


def baseline_for(ckpt: Checkpoint, docs: list[Document], max_order: int = 12) -> NgramResult:
    """The n-gram model trained on the checkpoint's own training split, scored on ``docs``."""
    train_docs = documents_from_description(ckpt.config["corpus"], "train")
    encode = ckpt.vocab.encode_array
    return ngram_baseline([encode(d.text) for d in train_docs], [encode(d.text) for d in docs], len(ckpt.vocab), max_order)


def evaluate(ckpt: Checkpoint, paths: Sequence[str] | None = None, max_order: int = 12) -> dict:
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
