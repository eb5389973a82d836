"""Text laid into lanes, and the one loop that runs a model over them.

A layout (:class:`LaidText`) holds documents end to end: their ids, ``keep`` (False where a
document starts: the state is zeroed before that step) and the character each position
predicts, cut into lanes, contiguous runs of whole documents of about equal length
(:func:`document_runs`) that a model runs side by side as one batch, chunk after chunk.
:meth:`LaidText.run` is the loop of every pass (recording, evaluation, ablation, training
and its validation): it carries each lane's state from one chunk to the next.

One type, two layouts: ``LaidText.of`` lays documents in order, and a lane leaves the batch
once its text is done, so a lane writes one contiguous range of a store; training's
``LaidText.in_whole_chunks`` lays shuffled documents each padded to whole chunks and runs
every lane in every chunk, so the fused multi-layer module with its dropout runs each chunk
unbroken on a fixed batch (``train.build_lanes``).

Also the rules every reader of text shares: "the first N characters" (:func:`limit_chars`)
and "position p predicts character p+1, within its document" (:func:`next_characters`,
:func:`logp_of_next`; a store's side of it is ``store.predicted_log2p``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from ..core.options import MAX_CHARS
from .corpus import Document

Result = TypeVar("Result")


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


def chunk_plan(lane_start: np.ndarray, lane_len: np.ndarray, chunk_len: int, first: int = 0, every_lane: bool = False):
    """Yield, chunk by chunk from chunk ``first``, (rows: the lanes in the batch, pos [rows,
    time]: the character offsets they run, valid [rows, time]: which of those are text, not
    padding). A lane leaves the batch once its text is done, and the last chunk is only as
    long as the longest remaining lane, so the batch carries little padding; with
    ``every_lane``, every lane runs every chunk, each ``chunk_len`` long (a fixed batch)."""
    for start in range(first * chunk_len, int(lane_len.max(initial=0)), chunk_len):
        rows = np.arange(len(lane_len)) if every_lane else np.flatnonzero(lane_len > start)
        steps = np.arange(chunk_len if every_lane else min(chunk_len, int(lane_len[rows].max()) - start))
        pos = lane_start[rows, None] + start + steps[None, :]
        yield rows, pos, (start + steps[None, :]) < lane_len[rows, None]


@dataclass(frozen=True)
class Chunk:
    """One step of a run: a few lanes side by side for a few characters."""

    rows: np.ndarray  # [rows] the lanes in the batch: batch row k runs lane rows[k]
    pos: np.ndarray  # [rows, time] the text position each step runs
    valid: np.ndarray  # [rows, time] which steps are text, not padding
    ids: torch.Tensor  # [rows, time] int64 the model's input (0 on padding)
    keep: torch.Tensor  # [rows, time] float32, 0 where a document starts: the state is zeroed before that step
    targets: torch.Tensor  # [rows, time] int64 the character each step predicts; -1: none (a document's end, padding)


def _row_index(rows: np.ndarray, batch: int, lanes: int | None, device) -> torch.Tensor:
    """The batch rows of lanes ``rows`` in a state of ``batch`` rows: ``batch // lanes``
    copies of every lane, copy k's lane j at row ``k * lanes + j``."""
    lanes = lanes or batch
    index = (np.arange(batch // lanes)[:, None] * lanes + rows[None, :]).reshape(-1)
    return torch.from_numpy(index).to(device)


def select_rows(state, rows: np.ndarray, lanes: int | None = None):
    """The rows of lanes ``rows`` in ``state``: a tensor [layers, copies * lanes, hidden]
    (without ``lanes``, one copy), a tuple of them (h, c), nested as deep as needed, or None."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(select_rows(s, rows, lanes) for s in state)
    return state.index_select(1, _row_index(rows, state.shape[1], lanes, state.device))


def update_rows(state, rows: np.ndarray, part, lanes: int | None = None):
    """``state`` with the rows of lanes ``rows`` replaced by ``part`` (as :func:`select_rows` took them)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(update_rows(s, rows, p, lanes) for s, p in zip(state, part, strict=True))
    return state.index_copy(1, _row_index(rows, state.shape[1], lanes, state.device), part)


def logp_of_next(logp: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The log-probability of the character each position predicts: ``logp`` [..., vocab]
    (log-softmaxed), ``targets`` [...] (-1: nothing predicted) -> [...], NaN where nothing is."""
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked.masked_fill(targets < 0, float("nan"))


@dataclass
class LaidText:
    """Documents laid end to end and cut into lanes that a model runs side by side, chunk
    after chunk (:meth:`run`): ``LaidText.of`` for recording, evaluation and ablation,
    ``LaidText.in_whole_chunks`` for training."""

    ids: np.ndarray  # [chars] int32 (0 on training's padding)
    keep: np.ndarray  # [chars] bool, False where a document starts
    next_ids: np.ndarray  # [chars] int32 the character each position predicts, -1 where none
    doc_starts: np.ndarray  # [documents]
    lane_start: np.ndarray  # [lanes]
    lane_len: np.ndarray  # [lanes]
    text: str = ""  # the characters, when laid from documents (training lays encoded pieces)

    @classmethod
    def of(cls, docs: list[Document], vocab, lanes: int) -> LaidText:
        """``docs`` in order, in up to ``lanes`` lanes of whole documents."""
        text = "".join(d.text for d in docs)
        ids = vocab.encode_array(text).astype(np.int32)
        lengths = np.array([len(d.text) for d in docs], dtype=np.int64)
        doc_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        bounds = np.array(lane_bounds(doc_starts, len(text), lanes), dtype=np.int64).reshape(-1, 2)
        next_ids = next_characters(ids, lengths).astype(np.int32)
        return cls(ids, _keep(len(ids), doc_starts), next_ids, doc_starts, bounds[:, 0], bounds[:, 1] - bounds[:, 0], text)

    @classmethod
    def in_whole_chunks(cls, docs: list[np.ndarray], lanes: int, chunk_len: int) -> LaidText:
        """Encoded documents in order, each padded to whole chunks of ``chunk_len`` (at least
        one), in exactly ``lanes`` lanes (empty ones at the end if there are few documents):
        a document starts only where a chunk does."""
        padded = np.maximum(1, -(-np.array([len(d) for d in docs], dtype=np.int64) // chunk_len)) * chunk_len
        doc_starts, total = np.concatenate([[0], np.cumsum(padded)[:-1]]).astype(np.int64), int(padded.sum())
        ids, next_ids = np.zeros(total, dtype=np.int32), np.full(total, -1, dtype=np.int32)
        for d, start in zip(docs, doc_starts, strict=True):
            ids[start : start + len(d)] = d
            next_ids[start : start + len(d)] = next_characters(d, [len(d)])
        bounds = lane_bounds(doc_starts, total, lanes)
        bounds = np.array(bounds + [(total, total)] * (lanes - len(bounds)), dtype=np.int64)
        return cls(ids, _keep(total, doc_starts), next_ids, doc_starts, bounds[:, 0], bounds[:, 1] - bounds[:, 0])

    @property
    def lanes(self) -> int:
        return len(self.lane_start)

    def chunk_count(self, chunk_len: int) -> int:
        return -(-int(self.lane_len.max(initial=0)) // chunk_len)

    def documents(self, docs: list[Document]) -> list[tuple[str, int, int]]:
        return [(d.name, int(s), int(s + len(d.text))) for d, s in zip(docs, self.doc_starts, strict=True)]

    def chunks(self, chunk_len: int, device="cpu", *, start: int = 0, every_lane: bool = False) -> Iterator[Chunk]:
        """The text chunk by chunk from chunk ``start`` (see :func:`chunk_plan`), the model's
        inputs on ``device``."""
        for rows, pos, valid in chunk_plan(self.lane_start, self.lane_len, chunk_len, start, every_lane):
            yield self._chunk(rows, pos, valid, device)

    def whole_documents(self, batch: int, batch_chars: int, device="cpu") -> Iterator[Chunk]:
        """Whole documents, up to ``batch`` side by side, about ``batch_chars`` in all (at
        least one document), each padded to the longest; ``keep`` is 0 also where a document's
        padding starts, so a backward direction starts from zero at the document's end. For
        a bidirectional model, which carries no state from chunk to chunk."""
        stops = np.append(self.doc_starts[1:], len(self.ids))
        taken: list[int] = []
        for d in range(len(self.doc_starts) + 1):
            longest = max((int(stops[k] - self.doc_starts[k]) for k in [*taken, d] if k < len(stops)), default=0)
            if taken and (d == len(stops) or len(taken) == batch or longest * (len(taken) + 1) > batch_chars):
                lengths = stops[taken] - self.doc_starts[taken]
                steps = np.arange(int(lengths.max()))
                valid = steps[None, :] < lengths[:, None]
                keep = valid | (steps[None, :] > lengths[:, None])
                yield self._chunk(np.arange(len(taken)), self.doc_starts[taken, None] + steps[None, :], valid, device, keep)
                taken = []
            if d < len(stops):
                taken.append(d)

    def _chunk(self, rows, pos, valid, device, keep=None) -> Chunk:
        safe = np.where(valid, pos, 0)
        keep = np.where(valid, self.keep[safe], True) if keep is None else keep & np.where(valid, self.keep[safe], True)
        return Chunk(
            rows,
            pos,
            valid,
            torch.from_numpy(np.where(valid, self.ids[safe], 0).astype(np.int64)).to(device),
            torch.from_numpy(keep.astype(np.float32)).to(device),
            torch.from_numpy(np.where(valid, self.next_ids[safe], -1).astype(np.int64)).to(device),
        )

    def run(
        self, chunks: Iterable[Chunk], step: Callable[[Chunk, Any], tuple[Result, Any]], state
    ) -> Iterator[tuple[Chunk, Result, Any]]:
        """Run ``step(chunk, state) -> (result, state)`` over ``chunks`` (of this layout),
        each lane's state carried from one chunk to the next. ``state`` holds every lane's:
        a tensor [layers, copies * lanes, hidden] (row ``copy * lanes + lane``), a tuple of
        them (h, c), nested as deep as needed, or None (nothing carried); ``step`` is given
        and returns the rows of the chunk's lanes. Yields (chunk, result, every lane's state)."""
        for chunk in chunks:
            every = len(chunk.rows) == self.lanes  # chunks hold lanes in order: all of them, as they are
            result, part = step(chunk, state if every else select_rows(state, chunk.rows, self.lanes))
            state = part if every else update_rows(state, chunk.rows, part, self.lanes)
            yield chunk, result, state


def _keep(chars: int, doc_starts: np.ndarray) -> np.ndarray:
    keep = np.ones(chars, dtype=bool)
    keep[doc_starts[doc_starts < chars]] = False
    return keep


@torch.no_grad()
def bits_per_character(model, laid: LaidText, chunk_len: int = 256, hooks=None) -> tuple[float, int]:
    """A character model's bits per character over every scored position of ``laid`` (each
    character of a document but its first), and their count; with ``hooks`` (hook name, fn)
    pairs, as they change it."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0

    def forward(chunk: Chunk, state):
        return model.forward_instrumented(chunk.ids, state, chunk.keep, hooks=hooks)

    for chunk, logits, _ in laid.run(laid.chunks(chunk_len, device), forward, model.initial_state(laid.lanes, device)):
        scored = chunk.targets >= 0
        total -= float(logp_of_next(torch.log_softmax(logits.float(), dim=-1), chunk.targets)[scored].sum())
        count += int(scored.sum())
    model.train(was_training)
    return total / max(count, 1) / math.log(2), count
