"""The on-disk activation store: every per-character series of a recorded text.

A store is a directory:
  meta.json         format version, checkpoint id and content hash, model config, vocabulary,
                    documents with character offsets, the series list, file sizes
  text.u32          the text as code points                       [chars]
  activations.f16   every unit of every series, neuron-major     [rows, chars] float16
  logp.f32          log-probability of the actual next character [chars] (NaN at a document's end)
  top_ids.u16       top-5 next-character ids                     [chars, 5]
  top_probs.f16     their probabilities                          [chars, 5]

Everything is memory-mapped: opening is instant, one neuron's series is one contiguous read.
A neuron is named ``L{layer}.{kind}.{index}`` (layer from 1, as in the paper), e.g. ``L2.c.117``;
:class:`NeuronId` (``neurons.py``) is the one place that parses and formats that name.
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .atomic import move_into_place, temporary_name, write_atomic, writer_pid
from .errors import NeuronError, StoreError
from .neurons import NeuronId

STORE_FORMAT = "lstmviz-store"
STORE_VERSION = 1
TOP_K = 5
META_KEYS = ("format_version", "checkpoint", "vocab", "chars", "documents", "series", "file_sizes")
# Recording's default batch (documents side by side). Fused throughput on the test split is
# within 10% of 64 lanes, at a quarter of the memory. Here, not in recording.py, so the CLI
# can show it without importing torch.
DEFAULT_LANES = 16
FILES = {  # name -> (dtype, values per character (None: rows))
    "text.u32": (np.uint32, 1),
    "activations.f16": (np.float16, None),
    "logp.f32": (np.float32, 1),
    "top_ids.u16": (np.uint16, TOP_K),
    "top_probs.f16": (np.float16, TOP_K),
}


def file_shape(name: str, rows: int, chars: int) -> tuple[int, ...]:
    """The array shape of one store file."""
    per_char = FILES[name][1]
    return (rows, chars) if per_char is None else ((chars,) if per_char == 1 else (chars, per_char))


@dataclass(frozen=True)
class Series:
    layer: int  # from 1
    kind: str
    units: int
    row: int  # first row in activations.f16
    reverse: bool = False  # the backward direction of a bidirectional layer

    def neuron(self, unit: int) -> NeuronId:
        return NeuronId(self.layer, self.kind, unit, self.reverse)

    @property
    def key(self) -> tuple[int, str, bool]:
        return (self.layer, self.kind, self.reverse)

    def to_json(self) -> dict:
        """As meta.json lists it (``reverse`` only where true, so other stores read as before)."""
        return {k: v for k, v in self.__dict__.items() if k != "reverse" or v}


@dataclass(frozen=True)
class StoredDocument:
    name: str
    start: int  # character offsets in the store's text
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def check_range(start: int | None, stop: int | None, length: int) -> tuple[int, int]:
    start = 0 if start is None else int(start)
    stop = length if stop is None else int(stop)
    if start > stop:
        raise StoreError(f"Character range {start}:{stop} is reversed: the start must come before the end ({stop}:{start}?).")
    if not 0 <= start <= stop <= length:
        raise StoreError(f"Character range {start}:{stop} is outside the store (0:{length}).")
    return start, stop


def cached_json(store: ActivationStore, name: str, compute):
    """JSON data kept in the store directory: read if there, else ``compute()``d and
    written atomically (a read-only store still works, only computing it again)."""
    cache = store.path / name
    if cache.is_file():
        try:
            return json.loads(cache.read_text())
        except ValueError:  # not JSON, or not even text: computed again below
            pass
    data = compute()
    try:
        write_atomic(cache, json.dumps(data))
    except OSError:
        pass
    return data


def predicted_log2p(store) -> np.ndarray:
    """Per character, log2 of the probability the model gave it from the position before
    (position p predicts character p+1, within its document: ``lanes.next_characters``);
    NaN at a document's first character and wherever nothing was predicted."""
    out = np.full(len(store), np.nan)
    out[1:] = np.asarray(store.logp[:-1], dtype=np.float64) / np.log(2)
    out[[d.start for d in store.documents]] = np.nan
    return out


class ActivationStore:
    """A recorded store, opened lazily (see :func:`open_store`)."""

    def __init__(self, path: Path, meta: dict):
        self.path = path
        self.meta = meta
        self.chars: int = meta["chars"]
        self.series = [Series(**s) for s in meta["series"]]
        self.documents = [StoredDocument(**d) for d in meta["documents"]]
        self.vocab_chars: list[str] = meta["vocab"]
        self.rows = sum(s.units for s in self.series)
        self._series_by_key = {s.key: s for s in self.series}

    def __len__(self) -> int:
        return self.chars

    def __repr__(self) -> str:
        return f"ActivationStore({str(self.path)!r}, chars={self.chars}, series={len(self.series)})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoint(self) -> dict:
        return self.meta["checkpoint"]

    def _map(self, name: str) -> np.ndarray:
        dtype = FILES[name][0]
        shape = file_shape(name, self.rows, self.chars)
        if self.chars == 0:
            return np.zeros(shape, dtype=dtype)
        return np.memmap(self.path / name, dtype=dtype, mode="r", shape=shape)

    @cached_property
    def activations(self) -> np.ndarray:
        """[rows, chars] float16, memory-mapped."""
        return self._map("activations.f16")

    @cached_property
    def codepoints(self) -> np.ndarray:
        return self._map("text.u32")

    @cached_property
    def logp(self) -> np.ndarray:
        return self._map("logp.f32")

    @cached_property
    def top_ids(self) -> np.ndarray:
        return self._map("top_ids.u16")

    @cached_property
    def top_probs(self) -> np.ndarray:
        return self._map("top_probs.f16")

    # -- neurons ------------------------------------------------------------------------------
    def neuron_ids(self, kinds: tuple[str, ...] | None = None) -> list[NeuronId]:
        return [s.neuron(i) for s in self.series if kinds is None or s.kind in kinds for i in range(s.units)]

    def row_of(self, neuron: str | NeuronId) -> int:
        n = NeuronId.parse(neuron)
        series = self._series_by_key.get((n.layer, n.kind, n.reverse))
        if series is None:
            layers = max(s.layer for s in self.series)
            kinds = sorted({s.kind for s in self.series})
            if n.reverse and not any(s.reverse for s in self.series):
                raise NeuronError(f"No neuron {n} in this store: its model has one direction (L{n.layer}.{n.kind}.{n.index}?).")
            raise NeuronError(f"No neuron {n} in this store: it has layers 1-{layers} and kinds {', '.join(kinds)}.")
        if not 0 <= n.index < series.units:
            raise NeuronError(f"No neuron {n} in this store: layer {n.layer} has units 0-{series.units - 1}.")
        return series.row + n.index

    def neuron_of_row(self, row: int) -> NeuronId:
        for s in self.series:
            if s.row <= row < s.row + s.units:
                return s.neuron(row - s.row)
        raise StoreError(f"Row {row} is outside the store (0-{self.rows - 1}).")

    def neuron(self, neuron: str | NeuronId, start: int | None = None, stop: int | None = None) -> np.ndarray:
        """One neuron's values over characters [start, stop) as float32: one contiguous read."""
        row = self.row_of(neuron)
        start, stop = check_range(start, stop, self.chars)
        return np.asarray(self.activations[row, start:stop], dtype=np.float32)

    def window(self, neurons: list[str | NeuronId], start: int | None = None, stop: int | None = None) -> np.ndarray:
        """Several neurons over characters [start, stop): [neurons, characters] float32."""
        rows = [self.row_of(n) for n in neurons]
        start, stop = check_range(start, stop, self.chars)
        return np.asarray(self.activations[rows, start:stop], dtype=np.float32)

    def series_block(self, layer: int, kind: str, reverse: bool = False) -> np.ndarray:
        """All units of one series: [units, chars] float16 view (no copy)."""
        s = self._series_by_key.get((layer, kind, reverse))
        if s is None:
            raise StoreError(f"No series L{layer}{'r' if reverse else ''}.{kind} in this store.")
        return self.activations[s.row : s.row + s.units]

    # -- text and predictions -----------------------------------------------------------------
    def text(self, start: int | None = None, stop: int | None = None) -> str:
        start, stop = check_range(start, stop, self.chars)
        try:
            return np.ascontiguousarray(self.codepoints[start:stop]).tobytes().decode("utf-32-le")
        except UnicodeDecodeError as exc:
            position = start + exc.start // 4
            raise StoreError(f"The store at {self.path} is damaged: text.u32 has no character at {position}.") from None

    def document_at(self, position: int) -> StoredDocument:
        starts = [d.start for d in self.documents]
        i = int(np.searchsorted(starts, position, side="right")) - 1
        if not 0 <= position < self.chars or i < 0:
            raise StoreError(f"Position {position} is outside the store (0:{self.chars}).")
        return self.documents[i]

    def predictions(self, start: int | None = None, stop: int | None = None) -> dict:
        """Per character: log-probability of the actual next character and the top-5 guesses."""
        start, stop = check_range(start, stop, self.chars)
        ids = np.asarray(self.top_ids[start:stop])
        if ids.size and ids.max() >= len(self.vocab_chars):
            raise StoreError(f"The store at {self.path} is damaged: top_ids.u16 names characters outside its vocabulary.")
        return {
            "logp": np.asarray(self.logp[start:stop], dtype=np.float32),
            "top_chars": [[self.vocab_chars[i] for i in row] for row in ids],
            "top_probs": np.asarray(self.top_probs[start:stop], dtype=np.float32),
        }


def zeroed_array(shape: tuple[int, ...], dtype) -> np.ndarray:
    """A zero-filled array in memory of its own, asking the kernel for huge pages
    (``MADV_HUGEPAGE``) where it has them: one fault per 2 MB instead of one per 4 KB. On a
    virtual machine that hands free memory back to its host, a fresh 4 KB page costs about
    17 us, so a recording's 189 MB stage took 1.16 s to fill the first time and 0.10 s on
    huge pages (measured 2026-12-03)."""
    size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if not size:
        return np.zeros(shape, dtype=dtype)
    memory = mmap.mmap(-1, size)  # anonymous: zero-filled, and returned to the system when the array goes
    if hasattr(mmap, "MADV_HUGEPAGE"):
        memory.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(memory, dtype=dtype).reshape(shape)


class ColumnStage:
    """Neuron-major writes in page-sized runs. Recording produces a few hundred characters
    of every neuron per lane and chunk: written straight into the neuron-major file, each
    neuron's run is a fraction of a page, so every chunk faults in (and keeps resident)
    one page per neuron per lane. Here each lane's characters are collected for ``span``
    characters, then written one contiguous run per neuron with ``os.pwrite``: no page of
    the store is mapped into this process, and memory stays at ``lanes x rows x span``
    values.

    A long recording does not leave its pages to pile up in the page cache: after each
    ``FLUSH_BYTES`` written, a thread of its own flushes them to disk (``fdatasync``, waiting
    on the disk while recording goes on) and drops them from the cache
    (``posix_fadvise(DONTNEED)``, run by run, so a page a lane has half written stays). The
    next writes reuse those pages instead of taking fresh ones, which cost about 17 us a
    page where a virtual machine hands free memory back to its host (this project's
    machines): the shipped model's whole test split (4.4 GB) recorded in 32 s instead of
    53 s. Below ``FLUSH_BYTES`` the cache absorbs the writes and one flush at the end is
    cheapest (100,000 characters, 0.92 GB: 7.5 s, and 7.8 s flushing every 256 MB).
    A dropped page is always on disk first, so one written again is read back whole."""

    FLUSH_BYTES = 2**30
    PAGE = mmap.PAGESIZE

    def __init__(self, path: Path, rows: int, chars: int, lanes: int, span: int):
        self.rows, self.chars, self.span = rows, chars, span
        self.buf = zeroed_array((lanes, rows, span), np.float16)
        self.start = np.zeros(lanes, dtype=np.int64)
        self.fill = np.zeros(lanes, dtype=np.int64)
        self.end = np.full(lanes, -1, dtype=np.int64)  # where each lane's last write ended
        self.fd: int | None = os.open(path, os.O_WRONLY)
        self.unflushed: list[tuple[int, int, bool]] = []  # since the last flush: (start, n, continues its lane)
        self.unflushed_bytes = 0
        self.flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lstmviz-flush")
        self.flushing: Future | None = None
        self.drops = hasattr(os, "posix_fadvise") and hasattr(os, "fdatasync")  # Linux; elsewhere the cache keeps them

    def columns(self, lane: int, start: int, n: int) -> np.ndarray:
        """A [rows, n] view to fill with characters ``start .. start + n`` of ``lane``; a lane's
        columns come in order, each call continuing where the last one stopped."""
        if n > self.span:
            raise ValueError(f"{n} columns do not fit a stage of {self.span}.")
        if self.fill[lane] and (self.start[lane] + self.fill[lane] != start or self.fill[lane] + n > self.span):
            self._write(lane)
        if not self.fill[lane]:
            self.start[lane] = start
        at = int(self.fill[lane])
        self.fill[lane] += n
        return self.buf[lane, :, at : at + n]

    def _write(self, lane: int) -> None:
        n, start, block = int(self.fill[lane]), int(self.start[lane]), self.buf[lane]
        for row in range(self.rows):
            os.pwrite(self.fd, block[row, :n], (row * self.chars + start) * block.itemsize)
        self.fill[lane] = 0
        self.unflushed.append((start, n, start == self.end[lane]))
        self.unflushed_bytes += self.rows * n * block.itemsize
        self.end[lane] = start + n
        if self.drops and self.unflushed_bytes >= self.FLUSH_BYTES:
            if self.flushing is not None:
                self.flushing.result()  # one flush at a time; a failed one stops the recording
            self.flushing = self.flusher.submit(self._flush_and_drop, self.unflushed)
            self.unflushed, self.unflushed_bytes = [], 0

    def _flush_and_drop(self, runs: list[tuple[int, int, bool]]) -> None:
        """On the flush thread: everything written so far to disk, then the pages of ``runs``
        out of the cache. A run's last page is kept when the run ends inside it (its lane
        writes the rest next); its first page goes too when the run continues its lane's
        previous one (that page is now whole)."""
        os.fdatasync(self.fd)
        size = self.buf.itemsize
        for start, n, continues in runs:
            for row in range(self.rows):
                a = (row * self.chars + start) * size
                if continues:
                    a -= a % self.PAGE
                os.posix_fadvise(self.fd, a, (row * self.chars + start + n) * size - a, os.POSIX_FADV_DONTNEED)

    def close(self, write: bool = True) -> None:
        """Write what the lanes still hold (``write=False``: drop it), wait for the flush
        under way, and close the file."""
        if self.fd is None:
            return
        try:
            if write:
                for lane in np.flatnonzero(self.fill):
                    self._write(int(lane))
        finally:
            self.flusher.shutdown(wait=True)  # no flush outlives the file it flushes
            os.close(self.fd)
            self.fd = None
        if write and self.flushing is not None:
            self.flushing.result()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _remove_abandoned(out: Path) -> None:
    """Remove the temporary directories that writers of ``out`` left when their process
    was killed before it could clean up (``kill -9``, a lost machine)."""
    for tmp in out.parent.glob(f".{out.name}.writing-*"):
        pid = writer_pid(tmp)
        if pid is not None and not process_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


class StoreWriter:
    """Writes a store under a temporary name of its own next to ``out``; :meth:`finish` adds
    meta.json, flushes everything to disk and moves it into place in one step
    (``atomic.move_into_place``). Leaving the ``with`` block any other way (an error, Ctrl-C)
    removes the temporary directory: nothing half-written is left behind. What a killed
    writer of the same store left is removed when the next one starts."""

    def __init__(self, out: str | Path, rows: int, chars: int):
        self.out = Path(out)
        self.rows, self.chars = rows, chars
        self.out.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(self.out)
        self.tmp = temporary_name(self.out)
        self.tmp.mkdir()
        self.maps: dict[str, np.ndarray | None] = {}
        self.stage: ColumnStage | None = None
        for name, (dtype, _) in FILES.items():
            shape = file_shape(name, rows, chars)
            self.maps[name] = np.memmap(self.tmp / name, dtype=dtype, mode="w+", shape=shape) if chars else None
            if not chars:
                (self.tmp / name).touch()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.maps.clear()
        if self.stage is not None:
            self.stage.close(write=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def activation_columns(self, lanes: int, span: int) -> ColumnStage:
        """A staging buffer for writing the activations a few thousand characters at a time
        per lane (see :class:`ColumnStage`); :meth:`finish` writes what it still holds."""
        self.stage = ColumnStage(self.tmp / "activations.f16", self.rows, self.chars, lanes, span)
        return self.stage

    def finish(
        self, *, checkpoint, vocab: list[str], documents: list[tuple[str, int, int]], series: list[Series], recording: dict
    ):
        """Write meta.json and move the store into place; returns it opened."""
        if self.stage is not None:
            self.stage.close()
        self.maps.clear()  # unmapped; the kernel writes the pages back as it does for any file
        sizes = {name: (self.tmp / name).stat().st_size for name in FILES}
        meta = store_meta(checkpoint, vocab, self.chars, documents, series, recording, sizes)
        (self.tmp / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
        move_into_place(self.tmp, self.out)
        return open_store(self.out, verify_checkpoint=False)


def store_meta(checkpoint, vocab: list[str], chars: int, documents, series: list[Series], recording: dict, sizes: dict) -> dict:
    """What meta.json says of a recording."""
    return {
        "format": STORE_FORMAT,
        "format_version": STORE_VERSION,
        "checkpoint": {
            "path": str(checkpoint.path.resolve()),
            "name": checkpoint.name,
            "id": checkpoint.id,
            "content_hash": checkpoint.content_hash,
        }
        if checkpoint is not None
        else {"path": "", "name": "", "id": "", "content_hash": ""},
        "model": checkpoint.model_config.to_json() if checkpoint is not None else {},
        "vocab": vocab,
        "chars": chars,
        "documents": [{"name": n, "start": a, "stop": b} for n, a, b in documents],
        "series": [s.to_json() for s in series],
        "dtype": "float16",
        "top_k": TOP_K,
        "recording": recording,
        "file_sizes": sizes,
    }


class MemoryStore(ActivationStore):
    """A recording held in memory (a text typed in the dashboard, or given in a notebook):
    the same reading API as a store on disk, with nothing written."""

    def __init__(self, name: str, meta: dict, arrays: dict[str, np.ndarray]):
        super().__init__(Path(name), meta)
        self._arrays = arrays

    def _map(self, name: str) -> np.ndarray:
        return self._arrays[name]


class MemoryWriter:
    """The writer :func:`lstmviz.recording.record_activations` uses without a path: arrays
    in memory, the same interface as :class:`StoreWriter`."""

    def __init__(self, rows: int, chars: int, name: str = "text"):
        self.rows, self.chars, self.name = rows, chars, name
        self.maps = {n: zeroed_array(file_shape(n, rows, chars), FILES[n][0]) for n in FILES}

    def __enter__(self) -> MemoryWriter:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def activation_columns(self, lanes: int, span: int) -> MemoryWriter:
        return self

    def columns(self, lane: int, start: int, n: int) -> np.ndarray:
        """Where characters start..start+n of every neuron go: a view of the array itself."""
        return self.maps["activations.f16"][:, start : start + n]

    def finish(self, *, checkpoint, vocab: list[str], documents, series: list[Series], recording: dict) -> MemoryStore:
        sizes = {n: int(a.nbytes) for n, a in self.maps.items()}
        return MemoryStore(self.name, store_meta(checkpoint, vocab, self.chars, documents, series, recording, sizes), self.maps)


def write_store(
    out: str | Path,
    text: str,
    documents: list[tuple[str, int, int]],
    series: dict[tuple[int, str], np.ndarray],
    vocab: list[str] | None = None,
    checkpoint=None,
) -> ActivationStore:
    """A store from arrays already in memory (``{(layer, kind): [units, chars]}``), e.g.
    synthetic activations for tests. Predictions are left empty (NaN, id 0)."""
    rows, listed = 0, []
    for (layer, kind), values in series.items():
        listed.append(Series(layer, kind, values.shape[0], rows))
        rows += values.shape[0]
    with StoreWriter(out, rows, len(text)) as w:
        if len(text):
            w.maps["text.u32"][:] = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
            for s, values in zip(listed, series.values(), strict=True):
                w.maps["activations.f16"][s.row : s.row + s.units] = values.astype(np.float16)
            w.maps["logp.f32"][:] = np.nan
        return w.finish(checkpoint=checkpoint, vocab=vocab or ["\ufffd"], documents=documents, series=listed, recording={})


def _checked(path: Path, meta: dict) -> ActivationStore:
    """The store ``meta`` describes, if every file has the size it says and the sizes fit
    the text and the series (a lie in meta.json must not map past a file's end)."""
    store = ActivationStore(path, meta)
    expected = {
        name: int(np.prod(file_shape(name, store.rows, store.chars))) * np.dtype(FILES[name][0]).itemsize for name in FILES
    }
    for name, size in expected.items():
        f = path / name
        actual = f.stat().st_size if f.is_file() else 0
        if actual != size or meta["file_sizes"].get(name) != size:
            raise StoreError(f"The store at {path} is truncated or damaged: {name} has {actual} bytes, expected {size}.")
    if any(not 0 <= d.start <= d.stop <= store.chars for d in store.documents):
        raise StoreError(f"The store at {path} is damaged: a document lies outside its text.")
    return store


def open_store(path: str | Path, verify_checkpoint: bool = True) -> ActivationStore:
    """Open a store lazily. A truncated store, or one whose checkpoint has changed since it
    was recorded, is a :class:`StoreError`. A sharded store (a directory with a
    ``manifest.json``, see ``sharded_store.py``) opens as one store."""
    from .sharded_store import is_sharded, open_sharded

    path = Path(path)
    if is_sharded(path):
        return open_sharded(path, verify_checkpoint)
    meta_path = path / "meta.json"
    if not path.is_dir():
        raise StoreError(f"No activation store at {path}: the directory does not exist.")
    if not meta_path.is_file():
        raise StoreError(f"{path} is not an activation store (or its recording did not finish): it has no meta.json.")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise StoreError(f"The store at {path} is corrupt: meta.json is not valid JSON.") from None
    if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
        raise StoreError(f"{path} is not an lstmviz activation store.")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise StoreError(f"The store at {path} is damaged: its meta.json has no {', '.join(missing)}; record it again.")
    if meta.get("format_version") != STORE_VERSION:
        raise StoreError(
            f"The store at {path} has format version {meta.get('format_version')}; this lstmviz reads {STORE_VERSION}."
        )
    try:
        store = _checked(path, meta)
        ckpt = meta["checkpoint"]
        recorded_from = Path(ckpt["path"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise StoreError(f"The store at {path} is damaged: its meta.json does not describe a store; record it again.") from None
    if verify_checkpoint:
        from .checkpoint import WEIGHTS_FILE, file_sha256  # here: that module loads torch, which reading a store does not need

        weights = recorded_from / WEIGHTS_FILE
        if weights.is_file() and file_sha256(weights) != ckpt["content_hash"]:
            raise StoreError(
                f"The store at {path} was recorded from an earlier version of the checkpoint {ckpt['path']}; "
                "record it again (lstmviz record)."
            )
    return store
