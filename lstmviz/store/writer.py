"""Writing a store: under a temporary name, moved into place when complete, so an
interrupted recording leaves nothing half-written behind."""

from __future__ import annotations

import json
import mmap
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..core.atomic import move_into_place, process_alive, temporary_name, writer_pid
from .format import FILES, Series, file_shape, store_meta
from .reader import ActivationStore, MemoryStore, open_single


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
        return open_single(self.out, verify_checkpoint=False)


class MemoryWriter:
    """The writer :func:`lstmviz.recording.recorder.record_activations` uses without a path: arrays
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
