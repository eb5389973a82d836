"""Bits per character of a checkpoint, beside the n-gram baseline on exactly the same
characters (every character of a document but its first); for a tagger (an imported
bidirectional model), which predicts no character, the accuracy of its head against labels."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core.errors import CorpusError, LstmvizError
from ..model.checkpoint import Checkpoint, load_checkpoint
from ..store.cache import cached
from ..store.reader import predicted_log2p
from ..text.corpus import Document, documents_from_description, load_corpus
from ..text.lanes import LaidText, bits_per_character
from .ngram import DEFAULT_MAX_ORDER, NgramResult, ngram_baseline


def evaluation_documents(ckpt: Checkpoint, paths: Sequence[str] | None = None, max_chars: int | None = None) -> list[Document]:
    """The given text (read only as far as ``max_chars``), or the checkpoint's test split."""
    if paths:
        return load_corpus(paths, max_chars).documents
    return documents_from_description(ckpt.config["corpus"], "test")


def model_bpc(ckpt: Checkpoint, docs: list[Document], lanes: int = 32) -> tuple[float, int]:
    """The checkpoint's bits per character on ``docs`` (each character of a document but its
    first), and how many characters that is."""
    return bits_per_character(ckpt.model, LaidText.of(docs, ckpt.vocab, lanes))


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
    log2p = predicted_log2p(store)
    return float(-np.nanmean(log2p)) if np.isfinite(log2p).any() else float("nan")


def read_labels(path: str | Path, docs: list[Document], num_labels: int) -> list[np.ndarray]:
    """Per document, a class id per character (-1: not scored), from a JSON file holding one
    list per document in the order they are read (or one flat list for a single document)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LstmvizError(f"Cannot read the labels {path}: {exc}.") from None
    if isinstance(data, list) and data and not isinstance(data[0], list):
        data = [data]
    ok = isinstance(data, list) and len(data) == len(docs)
    ok = ok and all(isinstance(row, list) and len(row) == len(d.text) for row, d in zip(data, docs, strict=False))
    ok = ok and all(isinstance(x, int) and -1 <= x < num_labels for row in data for x in row)
    if not ok:
        raise LstmvizError(
            f"The labels {path} must be a JSON list with, for each of the {len(docs)} documents, a list of one class id "
            f"(0-{num_labels - 1}, or -1 for none) per character."
        )
    return [np.asarray(row, dtype=np.int64) for row in data]


@torch.no_grad()
def tagger_evaluation(ckpt: Checkpoint, paths: Sequence[str] | None, labels: str | Path | None) -> dict:
    """What can be said of a tagger: that it has no bits per character, and its accuracy
    on ``labels`` if given."""
    cfg = ckpt.model_config
    result = {
        "checkpoint": str(ckpt.path),
        "kind": "tagger",
        "note": f"a bidirectional {cfg.cell.upper()} tagger with {cfg.num_labels} classes, not a next-character model: "
        "it has no bits per character",
        "accuracy": None,
    }
    if labels is None:
        return result
    docs = evaluation_documents(ckpt, paths)
    if not docs:
        raise CorpusError("Give the text the labels belong to (PATHS): an imported tagger has no test split.")
    right = scored = 0
    device = next(ckpt.model.parameters()).device
    for doc, tags in zip(docs, read_labels(labels, docs, cfg.num_labels), strict=True):
        if len(doc.text):
            logits, _ = ckpt.model(torch.from_numpy(ckpt.vocab.encode_array(doc.text)).to(device)[None])
            guess, mask = logits[0].argmax(-1).cpu().numpy(), tags >= 0
            right += int((guess[mask] == tags[mask]).sum())
            scored += int(mask.sum())
    accuracy = round(right / scored, 5) if scored else None
    return result | {"text": list(paths or []), "documents": len(docs), "chars": scored, "accuracy": accuracy}


def evaluate(
    ckpt: Checkpoint, paths: Sequence[str] | None = None, max_order: int = DEFAULT_MAX_ORDER, labels: str | Path | None = None
) -> dict:
    if ckpt.model_config.num_labels:
        return tagger_evaluation(ckpt, paths, labels)
    if labels is not None:
        raise LstmvizError("--labels is for taggers (imported bidirectional models); this model predicts the next character.")
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


def error_analysis(store, ngram_log2p: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Per character, how many more bits the n-gram model spends on it than the recurrent
    model (positive: the LSTM predicts it better), and a table by character.

    ``ngram_log2p`` is, per store character, log2 of the n-gram's probability of that
    character given what came before (NaN for a document's first character)."""
    lstm_log2p = predicted_log2p(store)
    advantage = lstm_log2p - ngram_log2p
    ok = np.isfinite(advantage)
    chars = np.asarray(store.codepoints)[ok]
    df = pd.DataFrame(
        {
            "char": [chr(c) for c in chars],
            "advantage": advantage[ok],
            "lstm_bits": -lstm_log2p[ok],
            "ngram_bits": -ngram_log2p[ok],
        }
    )
    table = (
        df.groupby("char")
        .agg(
            count=("advantage", "size"),
            advantage=("advantage", "mean"),
            lstm_bits=("lstm_bits", "mean"),
            ngram_bits=("ngram_bits", "mean"),
        )
        .reset_index()
    )
    table = table[table["count"] >= 20].sort_values("advantage", ascending=False).reset_index(drop=True)
    return advantage, table


ERRORS_CACHE = "model-errors-v2.npz"  # inside the store directory (v2: modified Kneser-Ney)


def store_error_analysis(store, report=lambda fraction, message: None) -> dict:
    """The recorded model against the n-gram baseline on a store (Karpathy et al., sec. 5):
    ``{"advantage": [chars] bits the model saves per character, "table": by character,
    "baseline": the n-gram's result}``. The n-gram is trained on the checkpoint's training
    split (a minute or two), so the result is kept in the store directory (``ERRORS_CACHE``);
    ``report(fraction, message)`` follows the work."""

    def compute() -> dict[str, np.ndarray]:
        report(0.05, "loading the checkpoint's training split")
        ckpt = load_checkpoint(store.checkpoint["path"])
        report(0.1, "counting n-grams up to order 20 on the training split (a minute or two)")
        ngram, result = ngram_for_store(store, ckpt)
        advantage, table = error_analysis(store, ngram)
        summary = {"baseline": result.to_json(), "table": table.to_dict(orient="records")}
        return {"advantage": advantage.astype(np.float32), "summary": np.array(json.dumps(summary))}

    saved = cached(store, ERRORS_CACHE, compute)
    return {"advantage": saved["advantage"], **json.loads(str(saved["summary"]))}
