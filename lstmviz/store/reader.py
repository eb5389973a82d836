"""Reading a store: everything memory-mapped, so opening is instant and one neuron's
series is one contiguous read (see ``format.py`` for the files)."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np

from ..core.errors import NeuronError, StoreError
from ..core.neurons import NeuronId, UnitId, parse_unit
from .format import FILES, META_KEYS, STORE_FORMAT, STORE_VERSION, Series, StoredDocument, check_range, file_shape
from .units import unit_series, unit_window


def predicted_log2p(store) -> np.ndarray:
    """Per character, log2 of the probability the model gave it from the position before
    (position p predicts character p+1, within its document: ``lanes.next_characters``);
    NaN at a document's first character and wherever nothing was predicted."""
    out = np.full(len(store), np.nan)
    out[1:] = np.asarray(store.logp[:-1], dtype=np.float64) / np.log(2)
    out[[d.start for d in store.documents]] = np.nan
    return out


class ActivationStore:
    """A recorded store, opened lazily (see :func:`lstmviz.store.open.open_store`)."""

    in_memory = False  # a recording held in memory keeps no caches

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

    def neuron(self, unit: str | UnitId, start: int | None = None, stop: int | None = None) -> np.ndarray:
        """One unit's values over characters [start, stop) as float32: for a neuron, one
        contiguous read; a direction or dictionary feature is computed from its series."""
        u = parse_unit(unit)
        start, stop = check_range(start, stop, self.chars)
        if not isinstance(u, NeuronId):
            return unit_window(self, u, start, stop)
        return np.asarray(self.activations[self.row_of(u), start:stop], dtype=np.float32)

    def window(self, units: list[str | UnitId], start: int | None = None, stop: int | None = None) -> np.ndarray:
        """Several units over characters [start, stop): [units, characters] float32."""
        parsed = [parse_unit(u) for u in units]
        if any(not isinstance(u, NeuronId) for u in parsed):
            start, stop = check_range(start, stop, self.chars)
            return np.stack([self.neuron(u, start, stop) for u in parsed])
        rows = [self.row_of(n) for n in parsed]
        start, stop = check_range(start, stop, self.chars)
        return np.asarray(self.activations[rows, start:stop], dtype=np.float32)

    def unit_series(self, unit: str | UnitId) -> np.ndarray:
        """One unit's whole series as float16, as stored: a neuron's row (one contiguous
        read), or a direction's or dictionary feature's derived series (``units.py``)."""
        u = parse_unit(unit)
        if not isinstance(u, NeuronId):
            return unit_series(self, u)
        return np.asarray(self.activations[self.row_of(u)])

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


class MemoryStore(ActivationStore):
    """A recording held in memory (a text typed in the dashboard, or given in a notebook):
    the same reading API as a store on disk, with nothing written."""

    in_memory = True

    def __init__(self, name: str, meta: dict, arrays: dict[str, np.ndarray]):
        super().__init__(Path(name), meta)
        self._arrays = arrays

    def _map(self, name: str) -> np.ndarray:
        return self._arrays[name]


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


def open_single(path: str | Path, verify_checkpoint: bool = True) -> ActivationStore:
    """Open one store directory lazily (``open.open_store`` also opens sharded ones). A
    truncated store, or one whose checkpoint has changed since it was recorded, is a
    :class:`StoreError`."""
    path = Path(path)
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
        from ..model.checkpoint import (  # here: that module loads torch, which reading a store does not need
            WEIGHTS_FILE,
            file_sha256,
        )

        weights = recorded_from / WEIGHTS_FILE
        if weights.is_file() and file_sha256(weights) != ckpt["content_hash"]:
            raise StoreError(
                f"The store at {path} was recorded from an earlier version of the checkpoint {ckpt['path']}; "
                "record it again (lstmviz record)."
            )
    return store
