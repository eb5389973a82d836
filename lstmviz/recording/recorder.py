"""Recording: run the instrumented model over documents and stream every per-character
series of every layer, plus next-character predictions, into an activation store.

Documents start from a zero state, as in training. They are laid in order into lanes
(``lanes.LaidText``) and run by ``LaidText.run``, so each lane writes one contiguous range of
the store. The store is written under a temporary name and renamed when complete.

A bidirectional model (an imported tagger) reads each document from both ends, so its
documents are run whole, several side by side (``LaidText.whole_documents``): the forward
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
from ..text.lanes import Chunk, LaidText, limit_chars, logp_of_next
from .pace import Pace

STAGE_BYTES = 320 * 2**20  # activations collected in memory before they are written


def stage_span(rows: int, lanes: int, chunk_len: int) -> int:
    """Characters per lane collected before writing: as many whole chunks as fit
    ``STAGE_BYTES`` (float16), at most 4096 (8 KB per neuron and write), at least one chunk."""
    fit = STAGE_BYTES // (2 * rows * lanes) // chunk_len * chunk_len
    return int(min(max(fit, chunk_len), max(4096 // chunk_len, 1) * chunk_len))


BIDIRECTIONAL_BATCH_CHARS = 16_384  # characters (padding included) run at once: whole documents, at least one


def checked_kinds(cfg, kinds: tuple[str, ...] | None) -> tuple[str, ...]:
    """The series kinds to record, in the model's order; an unknown one is an error."""
    if kinds is None:
        return cfg.series_kinds
    unknown = [k for k in kinds if k not in cfg.series_kinds]
    if unknown or not kinds:
        raise StoreError(f"This {cfg.cell.upper()} has series {', '.join(cfg.series_kinds)}; not {', '.join(unknown) or 'none'}.")
    return tuple(k for k in cfg.series_kinds if k in kinds)


def recorded_series(cfg, kinds: tuple[str, ...] | None = None) -> list[Series]:
    """The series a recording of ``kinds`` (default: all) of a model holds, each at its
    first row of the store: layer by layer, direction by direction, in the model's order."""
    kinds, series = checked_kinds(cfg, kinds), []
    for layer in range(1, cfg.num_layers + 1):
        for reverse in (False, True) if cfg.bidirectional else (False,):
            for kind in kinds:
                series.append(Series(layer, kind, cfg.hidden_size, len(series) * cfg.hidden_size, reverse))
    return series


def recorded_rows(cfg, kinds: tuple[str, ...] | None = None) -> int:
    """The neurons a recording of ``kinds`` (default: all) of a model holds."""
    return sum(s.units for s in recorded_series(cfg, kinds))


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
    laid = LaidText.of(docs, ckpt.vocab, lanes)
    series = recorded_series(ckpt.model_config, kinds)
    rows, total = sum(s.units for s in series), len(laid.text)
    if out is not None:
        check_free_space(out, store_bytes(rows, total))
    t0 = time.perf_counter()
    with StoreWriter(out, rows, total) if out is not None else MemoryWriter(rows, total, docs[0].name) as writer:
        writer.maps["text.u32"][:] = np.frombuffer(laid.text.encode("utf-32-le"), dtype=np.uint32)
        _record_lanes(ckpt.model, laid, writer, series, lanes, chunk_len, _Progress(total, progress, on_progress))
        return writer.finish(
            checkpoint=ckpt,
            vocab=ckpt.vocab.chars,
            documents=laid.documents(docs),
            series=series,
            recording={"lanes": laid.lanes, "chunk_len": chunk_len, "seconds": round(time.perf_counter() - t0, 3)},
        )


class _Progress:
    """Characters recorded, to the progress bar (with the time left at the rate measured
    here, :mod:`~lstmviz.recording.pace`) and ``on_progress(done, total)``."""

    def __init__(self, total: int, progress: bool, on_progress: Callable[[int, int], None] | None):
        self.done, self.total, self.on_progress = 0, total, on_progress  # counted here: a disabled bar counts nothing
        self.pace = Pace(total)
        self.bar = tqdm(  # the time left is the pace's, not tqdm's (which counts the warm-up in its rate)
            total=total,
            disable=not progress,
            unit="char",
            unit_scale=True,
            desc="recording",
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]",
            postfix=self.pace.left_text(),
        )

    def add(self, chars: int) -> None:
        self.done += chars
        self.pace.reached(self.done)
        self.bar.set_postfix_str(self.pace.left_text(), refresh=False)
        self.bar.update(chars)
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)

    def close(self) -> None:
        self.bar.close()


def _record_lanes(model, laid: LaidText, writer, series: list[Series], lanes: int, chunk_len: int, progress: _Progress) -> None:
    """Run the instrumented model over ``laid`` (``LaidText.run``), each chunk's series and
    next-character predictions into ``writer``."""
    device = next(model.parameters()).device
    wanted = [hook_name(s.layer - 1, s.kind, s.reverse) for s in series]
    if model.config.bidirectional:  # whole documents, each from a zero state; a tagger predicts no next character
        chunks, state, stage_lanes = laid.whole_documents(lanes, BIDIRECTIONAL_BATCH_CHARS, device), None, lanes
        writer.maps["logp.f32"][:] = np.nan
    else:
        chunks, state, stage_lanes = laid.chunks(chunk_len, device), model.initial_state(laid.lanes, device), laid.lanes
    stage = writer.activation_columns(stage_lanes, stage_span(writer.rows, stage_lanes, chunk_len))

    def forward(chunk: Chunk, state):
        (logits, state), cache = model.run_with_cache(chunk.ids, wanted, state, keep=chunk.keep)
        return (logits, cache), state

    for chunk, (logits, cache), _ in laid.run(chunks, forward, state):
        _write_series(stage, series, cache, chunk)
        if not model.config.bidirectional:
            _write_predictions(writer, logits, chunk)
        progress.add(int(chunk.valid.sum()))
    progress.close()


def _write_series(stage: ColumnStage, series: list[Series], cache: dict, chunk: Chunk) -> None:
    """Each lane's characters of every series, neuron-major, into the stage."""
    for k, (lane, n) in enumerate(zip(chunk.rows, chunk.valid.sum(1), strict=True)):
        span = getattr(stage, "span", int(n))  # a whole document (bidirectional) goes in pieces of the stage's span
        for a in range(0, int(n), max(span, 1)):
            m = min(span, int(n) - a)
            columns = torch.from_numpy(stage.columns(int(lane), int(chunk.pos[k, 0]) + a, m))  # [rows, m] float16
            for s in series:  # one kernel converts to float16 and transposes to neuron-major
                columns[s.row : s.row + s.units].copy_(cache[hook_name(s.layer - 1, s.kind, s.reverse)][k, a : a + m].T)


def _write_predictions(writer, logits: torch.Tensor, chunk: Chunk) -> None:
    """Per character: log p of the actual next character, and the top candidates."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    top_lp, top_ids = logp.topk(TOP_K, dim=-1)
    mask, at = torch.from_numpy(chunk.valid).to(logp.device), chunk.pos[chunk.valid]
    writer.maps["logp.f32"][at] = logp_of_next(logp, chunk.targets)[mask].cpu().numpy()
    writer.maps["top_ids.u16"][at] = top_ids[mask].cpu().numpy().astype(np.uint16)
    writer.maps["top_probs.f16"][at] = top_lp[mask].exp().cpu().numpy().astype(np.float16)


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
