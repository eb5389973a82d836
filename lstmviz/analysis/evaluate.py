"""Bits per character of a checkpoint, beside the n-gram baseline on exactly the same
characters (every character of a document but its first); for a tagger (an imported
bidirectional model), which predicts no character, the accuracy of its head against labels."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core.characters import name_of
from ..core.errors import CorpusError, LstmvizError
from ..core.options import MAX_ORDER, TOP
from ..model.checkpoint import Checkpoint, load_checkpoint, recorded_path
from ..recording.one_text import evaluation_documents
from ..store.cache import cached
from ..store.reader import predicted_log2p
from ..text.corpus import Document, documents_from_description
from ..text.lanes import LaidText, bits_per_character
from .ngram import DEFAULT_MAX_ORDER, NgramResult, ngram_baseline


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


@dataclass
class TaggerEvaluation:
    """What can be said of a tagger: that it has no bits per character, and its accuracy on
    labels, if given."""

    checkpoint: str
    note: str
    accuracy: float | None = None
    measured: dict | None = None  # text, documents, chars: what the accuracy was measured on

    def to_json(self) -> dict:
        out = {"checkpoint": self.checkpoint, "kind": "tagger", "note": self.note, "accuracy": self.accuracy}
        return out | (self.measured or {})

    def to_text(self) -> str:
        lines = [f"model:     {self.note}."]
        if self.measured is None or self.accuracy is None:
            lines.append("accuracy:  give --labels (and the text they belong to) to measure the head's accuracy")
        else:
            lines.append(f"accuracy:  {self.accuracy:.2%} of {self.measured['chars']:,} labelled characters")
        return "\n".join(lines)


@torch.no_grad()
def tagger_evaluation(ckpt: Checkpoint, paths: Sequence[str] | None, labels: str | Path | None) -> TaggerEvaluation:
    """What can be said of a tagger: that it has no bits per character, and its accuracy
    on ``labels`` if given."""
    cfg = ckpt.model_config
    note = (
        f"a bidirectional {cfg.cell.upper()} tagger with {cfg.num_labels} classes, not a next-character model: "
        "it has no bits per character"
    )
    if labels is None:
        return TaggerEvaluation(str(ckpt.path), note)
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
    return TaggerEvaluation(str(ckpt.path), note, accuracy, {"text": list(paths or []), "documents": len(docs), "chars": scored})


@dataclass
class Evaluation:
    """A next-character model's bits per character beside the n-gram baseline's."""

    checkpoint: str
    text: str | list[str]  # "test split", or the paths given
    documents: int
    bpc: float
    chars: int  # characters scored
    baseline: NgramResult
    max_order: int  # the highest n-gram order tried

    def to_json(self) -> dict:
        return {
            "checkpoint": self.checkpoint,
            "text": self.text,
            "documents": self.documents,
            "bpc": round(self.bpc, 5),
            "chars": self.chars,
            "baseline": self.baseline.to_json(),
            "improvement": round(1 - self.bpc / self.baseline.bpc, 4),
        }

    def to_text(self) -> str:
        data, base = self.to_json(), self.baseline
        return "\n".join(
            [
                f"text:      {data['text']} ({self.documents} documents, {self.chars:,} characters scored)",
                f"model:     {data['bpc']:.4f} bits per character",
                f"baseline:  {data['baseline']['bpc']:.4f} ({base.order}-gram, {data['baseline']['name']}; "
                f"best of orders 1-{self.max_order})",
                f"the model is {data['improvement']:.1%} below the baseline",
            ]
        )


def evaluate(
    ckpt: Checkpoint, paths: Sequence[str] | None = None, max_order: int = DEFAULT_MAX_ORDER, labels: str | Path | None = None
) -> Evaluation | TaggerEvaluation:
    MAX_ORDER.check(max_order)
    if ckpt.model_config.num_labels:
        return tagger_evaluation(ckpt, paths, labels)
    if labels is not None:
        raise LstmvizError("--labels is for taggers (imported bidirectional models); this model predicts the next character.")
    docs = evaluation_documents(ckpt, paths)
    if sum(max(len(d.text) - 1, 0) for d in docs) == 0:
        raise CorpusError("The text to evaluate on has no character to predict (each document needs two or more).")
    bpc, chars = model_bpc(ckpt, docs)
    base = baseline_for(ckpt, docs, max_order)
    return Evaluation(str(ckpt.path), "test split" if not paths else list(paths), len(docs), bpc, chars, base, max_order)


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


@dataclass
class ModelVsNgram:
    """Per character, how many bits the recurrent model saves over the n-gram baseline
    (Karpathy et al., sec. 5), and the same by character, best first."""

    store: str
    advantage: np.ndarray  # [chars] bits saved (NaN where either scores nothing)
    table: pd.DataFrame  # char, count, advantage, lstm_bits, ngram_bits

    def to_json(self) -> dict:
        rows = self.table.to_dict(orient="records")
        return {"store": self.store, "mean_advantage_bits": float(np.nanmean(self.advantage)), "by_char": rows}

    def to_text(self, top: int = 15) -> str:
        TOP.check(top)
        shown = self.table.assign(char=self.table["char"].map(name_of))
        floats = {"float_format": lambda v: f"{v:.3f}", "index": False}
        return "\n".join(
            [
                f"bits saved per character by the LSTM over the n-gram (mean {np.nanmean(self.advantage):+.3f}); best first:",
                shown.head(top).to_string(**floats),
                "",
                "...and where the n-gram does better:",
                shown.tail(top).iloc[::-1].to_string(**floats),
            ]
        )


def model_vs_ngram(store, max_order: int = DEFAULT_MAX_ORDER) -> ModelVsNgram:
    """The recorded model against the n-gram baseline of orders 1..``max_order`` on a store."""

    MAX_ORDER.check(max_order)
    ckpt = load_checkpoint(recorded_path(store.checkpoint))
    advantage, table = error_analysis(store, ngram_for_store(store, ckpt, max_order)[0])
    return ModelVsNgram(str(store.path), advantage, table)


ERRORS_CACHE = "model-errors-v2.npz"  # inside the store directory (v2: modified Kneser-Ney)


def store_error_analysis(store, report=lambda fraction, message: None) -> dict:
    """The recorded model against the n-gram baseline on a store (Karpathy et al., sec. 5):
    ``{"advantage": [chars] bits the model saves per character, "table": by character,
    "baseline": the n-gram's result}``. The n-gram is trained on the checkpoint's training
    split (a minute or two), so the result is kept in the store directory (``ERRORS_CACHE``);
    ``report(fraction, message)`` follows the work."""

    def compute() -> dict[str, np.ndarray]:
        report(0.05, "loading the checkpoint's training split")
        ckpt = load_checkpoint(recorded_path(store.checkpoint))
        report(0.1, "counting n-grams up to order 20 on the training split (a minute or two)")
        ngram, result = ngram_for_store(store, ckpt)
        advantage, table = error_analysis(store, ngram)
        summary = {"baseline": result.to_json(), "table": table.to_dict(orient="records")}
        return {"advantage": advantage.astype(np.float32), "summary": np.array(json.dumps(summary))}

    saved = cached(store, ERRORS_CACHE, compute)
    return {"advantage": saved["advantage"], **json.loads(str(saved["summary"]))}
