"""Recording: run the instrumented model over documents and stream every per-character
series of every layer, plus next-character predictions, into an activation store.

Documents start from a zero state, as in training. They are laid in order into lanes
(``lanes.LaidText``), so each lane writes one contiguous range of the store. The store is
written under a temporary name and renamed when complete.

A bidirectional model (an imported tagger) reads each document from both ends, so its
documents are run whole, several side by side (:func:`document_batches`): the forward
direction from each start, the backward one from each end, both from a zero state. Its
store has no next-character predictions.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.errors import CorpusError, StoreError
from ..core.neurons import hook_name
from ..model.checkpoint import Checkpoint
from ..model.guesses import TOP_K
from ..store.format import DEFAULT_LANES, FILES, Series
from ..store.reader import ActivationStore
from ..store.writer import ColumnStage, MemoryWriter, StoreWriter
from ..text.corpus import Document, source_files
from ..text.lanes import LaidText, limit_chars, select_rows, update_rows

STAGE_BYTES = 320 * 2**20  # activations collected in memory before they are written


def stage_span(rows: int, lanes: int, chunk_len: int) -> int:
    """Characters per lane collected before writing: as many whole chunks as fit
    ``STAGE_BYTES`` (float16), at most 4096 (8 KB per neuron and write), at least one chunk."""
    fit = STAGE_BYTES // (2 * rows * lanes) // chunk_len * chunk_len
    return int(min(max(fit, chunk_len), max(4096 // chunk_len, 1) * chunk_len))


BIDIRECTIONAL_BATCH_CHARS = 16_384  # characters (padding included) run at once: whole documents, at least one


def document_batches(laid: LaidText, lanes: int, device="cpu"):
    """Whole documents, up to ``lanes`` side by side, about ``BIDIRECTIONAL_BATCH_CHARS`` in
    all, each padded to the longest: (rows [rows], pos [rows, time], valid [rows, time], ids,
    keep). ``keep`` is 0 at each document's start and where its padding starts, so the
    backward direction starts from zero at the document's end."""
    starts = laid.doc_starts
    stops = np.append(starts[1:], len(laid.text))
    batch: list[int] = []
    for d in range(len(starts) + 1):
        longest = max((int(stops[k] - starts[k]) for k in [*batch, d] if k < len(starts)), default=0)
        if batch and (d == len(starts) or len(batch) == lanes or longest * (len(batch) + 1) > BIDIRECTIONAL_BATCH_CHARS):
            lengths = stops[batch] - starts[batch]
            steps = np.arange(int(lengths.max()))
            pos = starts[batch, None] + steps[None, :]
            valid = steps[None, :] < lengths[:, None]
            keep = np.ones(pos.shape, dtype=np.float32)
            keep[:, 0] = 0
            short = np.flatnonzero(lengths < len(steps))
            keep[short, lengths[short]] = 0
            ids = torch.from_numpy(np.where(valid, laid.ids[np.where(valid, pos, 0)], 0)).to(device)
            yield np.arange(len(batch)), pos, valid, ids, torch.from_numpy(keep).to(device)
            batch = []
        if d < len(starts):
            batch.append(d)


def checked_kinds(cfg, kinds: tuple[str, ...] | None) -> tuple[str, ...]:
    """The series kinds to record, in the model's order; an unknown one is an error."""
    if kinds is None:
        return cfg.series_kinds
    unknown = [k for k in kinds if k not in cfg.series_kinds]
    if unknown or not kinds:
        raise StoreError(f"This {cfg.cell.upper()} has series {', '.join(cfg.series_kinds)}; not {', '.join(unknown) or 'none'}.")
    return tuple(k for k in cfg.series_kinds if k in kinds)


def recorded_rows(cfg, kinds: tuple[str, ...] | None = None) -> int:
    """The neurons a recording of ``kinds`` (default: all) of a model holds."""
    return len(checked_kinds(cfg, kinds)) * cfg.num_layers * cfg.directions * cfg.hidden_size


def store_bytes(rows: int, chars: int) -> int:
    """The size of a store: per character, ``rows`` float16 values and the text and predictions."""
    per_char = sum(np.dtype(dtype).itemsize * (rows if n is None else n) for dtype, n in FILES.values())
    return per_char * chars


def check_free_space(out: Path, needed: int) -> None:
    """Refuse, with the numbers, a recording the disk has no room for (5% to spare)."""
    parent = out.parent if out.parent.exists() else Path.cwd()
    free = shutil.disk_usage(parent).free
    if needed * 1.05 > free:
        raise StoreError(
            f"This recording needs about {needed / 1e9:.2f} GB and {parent} has {free / 1e9:.2f} GB free; record fewer "
            "series (--series h,c), fewer characters (--max-chars) or free space (lstmviz cache clear)."
        )


def check_files_fit(ckpt: Checkpoint, paths, out: str | Path, kinds: tuple[str, ...] | None = None) -> None:
    """Before any file is read: refuse a text whose store the disk could not hold (its size
    in bytes bounds its characters), so a 10 GB folder is refused, not read whole."""
    size = sum(path.stat().st_size for path, _ in source_files(paths))
    check_free_space(Path(out), store_bytes(recorded_rows(ckpt.model_config, kinds), size))


def estimate(ckpt: Checkpoint, chars: int, kinds: tuple[str, ...] | None = None, lanes: int = DEFAULT_LANES) -> dict:
    """What recording ``chars`` characters will take, before it starts: the store's size,
    and the time from chunks of the recording's own forward pass timed here (the median of
    three, a fraction of a second in all) with a fifth more for writing."""
    cfg = ckpt.model_config
    rows = recorded_rows(cfg, kinds)
    wanted = [hook_name(layer, k) for layer in range(cfg.num_layers) for k in checked_kinds(cfg, kinds)]
    device = next(ckpt.model.parameters()).device
    x = torch.zeros((min(lanes, max(chars // 64, 1)), 64), dtype=torch.long, device=device)
    ckpt.model.run_with_cache(x[:, :8], wanted)  # warm-up: first calls allocate
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        ckpt.model.run_with_cache(x, wanted)
        times.append(time.perf_counter() - t0)
    seconds = sorted(times)[1] / x.numel() * chars * 1.2
    return {"chars": chars, "bytes": store_bytes(rows, chars), "seconds": seconds}


def record_activations(
    ckpt: Checkpoint,
    docs: list[Document],
    out: str | Path | None,
    *,
    max_chars: int | None = None,
    lanes: int = DEFAULT_LANES,
    chunk_len: int = 256,
    overwrite: bool = False,
    kinds: tuple[str, ...] | None = None,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> ActivationStore:
    """Record the series of ``kinds`` (default: all, e.g. h c i f g o) of every layer of
    ``ckpt`` over ``docs`` into the store ``out``, after checking the disk has room for it,
    or, with ``out=None``, into memory (a :class:`~lstmviz.store.reader.MemoryStore`);
    ``on_progress(done, total)`` (characters) is called after each chunk."""
    out = None if out is None else Path(out)
    if out is not None and out.exists() and not overwrite:
        raise StoreError(f"{out} already exists; choose another --out or pass --overwrite.")
    docs = limit_chars(docs, max_chars)
    if not docs:
        raise CorpusError("There is no text to record: every document is empty.")
    model, vocab, cfg = ckpt.model, ckpt.vocab, ckpt.model_config
    device = next(model.parameters()).device
    laid = LaidText.of(docs, vocab, lanes)
    total = len(laid.text)

    kinds = checked_kinds(cfg, kinds)
    series, row = [], 0
    for layer in range(1, cfg.num_layers + 1):
        for reverse in (False, True) if cfg.bidirectional else (False,):
            for kind in kinds:
                series.append(Series(layer, kind, cfg.hidden_size, row, reverse))
                row += cfg.hidden_size
    rows = row
    if out is not None:
        check_free_space(out, store_bytes(rows, total))
    wanted = [hook_name(s.layer - 1, s.kind, s.reverse) for s in series]

    t0 = time.perf_counter()
    with StoreWriter(out, rows, total) if out is not None else MemoryWriter(rows, total, docs[0].name) as writer:
        writer.maps["text.u32"][:] = np.frombuffer(laid.text.encode("utf-32-le"), dtype=np.uint32)
        stage_lanes = lanes if cfg.bidirectional else laid.lanes  # bidirectional: a batch's rows, up to `lanes`
        stage = writer.activation_columns(stage_lanes, stage_span(rows, stage_lanes, chunk_len))
        state = model.initial_state(laid.lanes, device)
        bar = tqdm(  # smoothing=0: the ETA from the average rate so far, steady as lanes finish
            total=total, disable=not progress, unit="char", unit_scale=True, desc="recording", dynamic_ncols=True, smoothing=0
        )
        if cfg.bidirectional:  # whole documents; a tagger predicts no next character
            chunks, next_ids = document_batches(laid, lanes, device), None
            writer.maps["logp.f32"][:] = np.nan
        else:
            chunks, next_ids = laid.chunks(chunk_len, device), laid.next_ids
        done = 0  # counted here: a disabled bar (progress=False) counts nothing
        for active, pos, valid, x, keep_t in chunks:
            if cfg.bidirectional:
                (logits, _), cache = model.run_with_cache(x, wanted, keep=keep_t)
            else:
                lanes_state = select_rows(state, active)
                (logits, lanes_state), cache = model.run_with_cache(x, wanted, lanes_state, keep=keep_t)
                state = update_rows(state, active, lanes_state)
            _write_chunk(writer, stage, series, cache, logits, active, pos, valid, next_ids)
            done += int(valid.sum())
            bar.update(int(valid.sum()))
            if on_progress is not None:
                on_progress(done, total)
        bar.close()
        return writer.finish(
            checkpoint=ckpt,
            vocab=vocab.chars,
            documents=laid.documents(docs),
            series=series,
            recording={"lanes": laid.lanes, "chunk_len": chunk_len, "seconds": round(time.perf_counter() - t0, 3)},
        )


def _write_chunk(
    writer: StoreWriter, stage: ColumnStage, series: list[Series], cache: dict, logits, lanes, pos, valid, next_ids
) -> None:
    lane_lens = valid.sum(1)
    for k, (lane, n) in enumerate(zip(lanes, lane_lens, strict=True)):
        span = getattr(stage, "span", int(n))  # a whole document (bidirectional) goes in pieces of the stage's span
        for a in range(0, int(n), max(span, 1)):
            m = min(span, int(n) - a)
            columns = torch.from_numpy(stage.columns(int(lane), int(pos[k, 0]) + a, m))  # [rows, m] float16
            for s in series:  # one kernel converts to float16 and transposes to neuron-major
                columns[s.row : s.row + s.units].copy_(cache[hook_name(s.layer - 1, s.kind, s.reverse)][k, a : a + m].T)
    if next_ids is None:
        return
    logp = torch.log_softmax(logits.float(), dim=-1)
    top_lp, top_ids = logp.topk(TOP_K, dim=-1)
    flat_pos = pos[valid]
    targets = next_ids[flat_pos]
    lp = logp[torch.from_numpy(valid)]  # [valid, vocab]
    scored = torch.from_numpy(targets >= 0)
    actual = torch.full((len(flat_pos),), float("nan"))
    if scored.any():
        actual[scored] = lp[scored, torch.from_numpy(targets[targets >= 0])].cpu()
    writer.maps["logp.f32"][flat_pos] = actual.numpy()
    mask = torch.from_numpy(valid)
    writer.maps["top_ids.u16"][flat_pos] = top_ids[mask].cpu().numpy().astype(np.uint16)
    writer.maps["top_probs.f16"][flat_pos] = top_lp[mask].exp().cpu().numpy().astype(np.float16)


def record_text(ckpt: Checkpoint, text: str, kinds: tuple[str, ...] | None = None, name: str = "text") -> ActivationStore:
    """``text`` recorded in memory, as one document, exactly as a store is recorded."""
    if not text:
        raise CorpusError("There is no text to record: it is empty.")
    return record_activations(ckpt, [Document(name, text)], None, kinds=kinds, progress=False)


@dataclass(frozen=True)
class RecordingDone:
    """A finished recording: the store, and the seconds until it was on disk and in place."""

    store: ActivationStore
    seconds: float

    def to_json(self) -> dict:
        store = self.store
        return {
            "store": str(store.path),
            "chars": len(store),
            "documents": len(store.documents),
            "series": len(store.series),
            "neurons": store.rows,
            "seconds": round(self.seconds, 3),
        }

    def to_text(self) -> str:
        data = self.to_json()
        return (
            f"recorded {data['chars']:,} characters ({data['documents']} documents), {data['series']} series "
            f"({data['neurons']} neurons) in {data['seconds']:.1f} s into {data['store']}"
        )
