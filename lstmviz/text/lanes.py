"""Text laid into lanes: whole documents in order, cut into ``lanes`` contiguous ranges of
about equal length that a model runs side by side as one batch, each lane's state carried
from chunk to chunk and zeroed where a document starts. Recording, evaluation, ablation and
the benchmarks all read text this way, so a lane writes one contiguous range of a store.

Also the two rules every reader of text shares: "the first N characters" (:func:`limit_chars`)
and "position p predicts character p+1, within its document" (:func:`next_characters`;
a store's side of it is ``store.predicted_log2p``). Training cuts its lanes with the same
:func:`document_runs`, after shuffling the documents and padding each to whole chunks
(``train.build_lanes``), so the fused multi-layer module with dropout runs unbroken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..core.options import MAX_CHARS
from .corpus import Document


def limit_chars(docs: list[Document], max_chars: int | None) -> list[Document]:
    """The documents, without empty ones, cut to ``max_chars`` characters in all."""
    MAX_CHARS.check(max_chars)
    out, total = [], 0
    for d in docs:
        if not d.text:
            continue
        if max_chars is not None and total + len(d.text) > max_chars:
            if max_chars - total > 0:
                out.append(Document(d.name, d.text[: max_chars - total]))
            break
        out.append(d)
        total += len(d.text)
    return out


def next_characters(ids: np.ndarray, lengths) -> np.ndarray:
    """Position p predicts character p+1, within its document: per position of the
    documents' ids laid end to end (their ``lengths``), the id it predicts, or -1 at a
    document's last character, which predicts nothing scored."""
    out = np.full(len(ids), -1, dtype=np.int64)
    out[:-1] = ids[1:]
    out[np.cumsum(lengths)[np.asarray(lengths) > 0] - 1] = -1
    return out


def document_runs(lengths, parts: int) -> list[tuple[int, int]]:
    """Documents of ``lengths`` cut into up to ``parts`` contiguous runs of whole documents of
    about equal total length, as (first, stop) document indices: each document joins the run
    its middle falls in, so a run passes its share by at most half a document at each end.
    Recording's lanes, training's lanes and Ray's shards are all cut this way."""
    lengths = np.asarray(lengths, dtype=np.float64)
    middles = np.cumsum(lengths) - lengths / 2
    run_of = np.minimum((middles * parts // max(lengths.sum(), 1)).astype(np.int64), parts - 1)
    edges = [0, *(np.flatnonzero(np.diff(run_of)) + 1).tolist(), len(lengths)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def lane_bounds(doc_starts: np.ndarray, total: int, lanes: int) -> list[tuple[int, int]]:
    """The text (``total`` characters, documents starting at ``doc_starts``) split into up to
    ``lanes`` contiguous ranges of whole documents of about equal length (:func:`document_runs`)."""
    ends = np.append(np.asarray(doc_starts[1:], dtype=np.int64), total)
    runs = document_runs(ends - doc_starts, lanes)
    return [(int(doc_starts[a]), int(ends[b - 1])) for a, b in runs]


def chunk_plan(lane_start: np.ndarray, lane_len: np.ndarray, chunk_len: int):
    """Yield, chunk by chunk, (rows: the lanes that still have text, pos [rows, time]: the
    character offsets they run, valid [rows, time]: which of those are text, not padding).
    A lane leaves the batch once its text is done, and the last chunk is only as long as
    the longest remaining lane, so the batch carries little padding."""
    for start in range(0, int(lane_len.max()), chunk_len):
        rows = np.flatnonzero(lane_len > start)
        steps = np.arange(min(chunk_len, int(lane_len[rows].max()) - start))
        pos = lane_start[rows, None] + start + steps[None, :]
        yield rows, pos, (start + steps[None, :]) < lane_len[rows, None]


def select_rows(state, rows: np.ndarray):
    """The state of batch rows ``rows`` (h, or (h, c); each [layers, batch, hidden])."""
    index = torch.from_numpy(rows)
    return tuple(s[:, index.to(s.device)] for s in state) if isinstance(state, tuple) else state[:, index.to(state.device)]


def update_rows(state, rows: np.ndarray, part):
    """``state`` with batch rows ``rows`` replaced by ``part``."""
    index = torch.from_numpy(rows)
    if isinstance(state, tuple):
        return tuple(s.index_copy(1, index.to(s.device), p) for s, p in zip(state, part, strict=True))
    return state.index_copy(1, index.to(state.device), part)


@dataclass
class LaidText:
    """Whole documents laid into lanes run side by side: the text's ids, ``keep`` (0 where a
    document starts, so the state is zeroed there), the next character each position
    predicts (-1 at a document's last character: position p predicts p+1, within its
    document), and each lane's range of the text."""

    text: str
    ids: np.ndarray  # [chars] int64
    keep: np.ndarray  # [chars] float32
    next_ids: np.ndarray  # [chars] int64, -1 where nothing is predicted
    doc_starts: np.ndarray  # [documents]
    lane_start: np.ndarray  # [lanes]
    lane_len: np.ndarray  # [lanes]

    @classmethod
    def of(cls, docs: list[Document], vocab, lanes: int) -> LaidText:
        text = "".join(d.text for d in docs)
        ids = vocab.encode_array(text)
        lengths = np.array([len(d.text) for d in docs])
        doc_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        keep = np.ones(len(text), dtype=np.float32)
        keep[doc_starts] = 0.0
        next_ids = next_characters(ids, lengths)
        bounds = np.array(lane_bounds(doc_starts, len(text), lanes)).reshape(-1, 2)
        return cls(text, ids, keep, next_ids, doc_starts, bounds[:, 0], bounds[:, 1] - bounds[:, 0])

    @property
    def lanes(self) -> int:
        return len(self.lane_start)

    def documents(self, docs: list[Document]) -> list[tuple[str, int, int]]:
        return [(d.name, int(s), int(s + len(d.text))) for d, s in zip(docs, self.doc_starts, strict=True)]

    def chunks(self, chunk_len: int, device="cpu"):
        """Per chunk: the lanes still running, positions and validity (see :func:`chunk_plan`),
        and the model's inputs: ids [rows, time] and keep [rows, time] as tensors."""
        for rows, pos, valid in chunk_plan(self.lane_start, self.lane_len, chunk_len):
            safe = np.where(valid, pos, 0)
            x = torch.from_numpy(np.where(valid, self.ids[safe], 0)).to(device)
            keep = torch.from_numpy(np.where(valid, self.keep[safe], 1.0)).to(device)
            yield rows, pos, valid, x, keep


@torch.no_grad()
def bits_per_character(model, laid: LaidText, chunk_len: int = 256) -> tuple[float, int]:
    """A character model's bits per character over every scored position of ``laid`` (each
    character of a document but its first), and their count."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    state = model.initial_state(laid.lanes, device)
    total, count = 0.0, 0
    for rows, pos, valid, x, keep in laid.chunks(chunk_len, device):
        logits, part = model.forward_instrumented(x, select_rows(state, rows), keep)
        state = update_rows(state, rows, part)
        targets = torch.from_numpy(laid.next_ids[np.where(valid, pos, 0)]).to(device)
        scored = torch.from_numpy(valid).to(device) & (targets >= 0)
        logp = torch.log_softmax(logits[scored].float(), dim=-1)
        total -= float(logp.gather(1, targets[scored, None]).sum())
        count += int(scored.sum())
    model.train(was_training)
    return total / max(count, 1) / math.log(2), count
