"""A sharded store: a manifest naming ordinary stores, each a contiguous run of whole
documents, read as one store.

A recording too large for one machine is written as shards (``sharding.py``), one store per
shard, and a ``manifest.json`` written last beside them. :class:`ShardedStore` is an
:class:`~lstmviz.store.reader.ActivationStore` whose files are the shards' files joined along the
character axis, lazily (:class:`JoinedArray`): every reader of a store (analysis, the
dashboard, export, compare) works on it unchanged, reading only the shards a range touches.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.atomic import write_atomic
from ..core.errors import StoreError
from .reader import ActivationStore, open_single

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "lstmviz-sharded-store"
MANIFEST_VERSION = 1
CHARACTER_AXIS = {"activations.f16": 1}  # every other store file has characters first


def _is_integer(key) -> bool:
    return isinstance(key, (int, np.integer))


class JoinedArray:
    """Arrays (memory-mapped shard files) joined along their character axis, read lazily:
    indexing reads only the parts a character range or list touches. A block of rows over
    every character stays lazy (``series_block``); anything narrower is read into memory,
    as slicing a memory-mapped file would."""

    def __init__(self, parts: list, axis: int):
        self.parts, self.axis = parts, axis
        self.offsets = np.concatenate([[0], np.cumsum([p.shape[axis] for p in parts])]).astype(np.int64)
        shape = list(parts[0].shape)
        shape[axis] = int(self.offsets[-1])
        self.shape, self.dtype = tuple(shape), parts[0].dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        joined = np.concatenate([np.asarray(p) for p in self.parts], axis=self.axis)
        return joined if dtype is None else joined.astype(dtype, copy=False)

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis or k is None for k in key) or len(key) > self.ndim:
            raise IndexError("A sharded store's arrays take one index per axis (no ... or None).")
        key = key + (slice(None),) * (self.ndim - len(key))
        where, others = key[self.axis], key[: self.axis] + key[self.axis + 1 :]
        if any(not _is_integer(k) and not isinstance(k, slice) for k in others) and not isinstance(where, slice):
            raise IndexError("A sharded store's arrays take at most one list of indices per read.")
        out_axis = self.axis - sum(_is_integer(k) for k in key[: self.axis])
        if _is_integer(where):
            part, local = self._locate(np.array([where]))
            return self.parts[int(part[0])][self._with(key, int(local[0]))]
        if isinstance(where, slice):
            start, stop, step = where.indices(self.shape[self.axis])
            if step == 1:
                return self._range(key, start, stop, out_axis)
            where = np.arange(start, stop, step)
        return self._gather(key, np.asarray(where), out_axis)

    def _with(self, key: tuple, where) -> tuple:
        return key[: self.axis] + (where,) + key[self.axis + 1 :]

    def _locate(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.shape[self.axis]
        index = np.where(index < 0, index + n, index).astype(np.int64)
        if index.size and (index.min() < 0 or index.max() >= n):
            raise IndexError(f"Character index out of range (0:{n}).")
        part = np.searchsorted(self.offsets, index, side="right") - 1
        return part, index - self.offsets[part]

    def _range(self, key: tuple, start: int, stop: int, out_axis: int):
        """Characters start..stop: the pieces of the parts they cover, joined."""
        if start == 0 and stop == self.shape[self.axis] and len(self.parts) > 1:
            pieces = [p[key] for p in self.parts]
            if pieces[0].ndim >= 2:  # a block of rows over every character: still lazy
                return JoinedArray(pieces, out_axis)
            return np.concatenate(pieces, axis=out_axis)
        pieces = []
        for p, a, b in zip(self.parts, self.offsets[:-1], self.offsets[1:], strict=True):
            lo, hi = max(start, a), min(stop, b)
            if lo < hi or (not pieces and b >= stop):
                pieces.append(np.asarray(p[self._with(key, slice(lo - a, max(hi, lo) - a))]))
            if b >= stop:
                break
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=out_axis)

    def _gather(self, key: tuple, where: np.ndarray, out_axis: int) -> np.ndarray:
        """Characters at a list of positions (or a mask), in the order asked."""
        if where.dtype == bool:
            where = np.flatnonzero(where)
        part, local = self._locate(where.ravel())
        order = np.argsort(part, kind="stable")
        pieces = [np.asarray(self.parts[k][self._with(key, local[order][part[order] == k])]) for k in np.unique(part)]
        if not pieces:
            return np.asarray(self.parts[0][self._with(key, local)])
        joined = np.concatenate(pieces, axis=out_axis)
        return np.take(joined, np.argsort(order, kind="stable"), axis=out_axis)


class ShardedStore(ActivationStore):
    """Shards (ordinary stores of consecutive documents) read as one store: the same API and
    the same values as a single store of the same text."""

    def __init__(self, path: Path, manifest: dict, shards: list[ActivationStore]):
        self.manifest, self.shards = manifest, shards
        self.shard_offsets = np.concatenate([[0], np.cumsum([len(s) for s in shards])]).astype(np.int64)
        meta = dict(shards[0].meta)
        meta["chars"] = int(self.shard_offsets[-1])
        meta["documents"] = [
            {"name": d.name, "start": d.start + int(a), "stop": d.stop + int(a)}
            for s, a in zip(shards, self.shard_offsets, strict=False)
            for d in s.documents
        ]
        meta["file_sizes"] = {name: sum(s.meta["file_sizes"][name] for s in shards) for name in meta["file_sizes"]}
        meta["recording"] = {"shards": len(shards), "seconds": sum(s.meta["recording"].get("seconds", 0) for s in shards)}
        super().__init__(path, meta)

    def __repr__(self) -> str:
        return f"ShardedStore({str(self.path)!r}, chars={self.chars}, shards={len(self.shards)})"

    def _map(self, name: str):
        return JoinedArray([s._map(name) for s in self.shards], CHARACTER_AXIS.get(name, 0))


def manifest_entry(store: ActivationStore, path: str) -> dict:
    """What the manifest says of one shard: enough to notice a shard replaced or cut."""
    docs = store.documents
    return {"path": path, "chars": len(store), "documents": len(docs), "first": docs[0].name, "last": docs[-1].name}


def write_manifest(out: Path, shards: list[tuple[str, ActivationStore]]) -> Path:
    """Write ``out/manifest.json`` naming ``shards`` (relative path, opened store), atomically."""
    first = shards[0][1]
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "chars": sum(len(s) for _, s in shards),
        "checkpoint": first.checkpoint,
        "shards": [manifest_entry(s, rel) for rel, s in shards],
    }
    write_atomic(out / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False))
    return out / MANIFEST


def is_sharded(path: str | Path) -> bool:
    path = Path(path)
    return path.name == MANIFEST and path.is_file() or (path / MANIFEST).is_file()


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise StoreError(f"The sharded store's manifest {path} is not readable JSON; record it again.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise StoreError(f"{path} is not an lstmviz sharded-store manifest.")
    if manifest.get("format_version") != MANIFEST_VERSION or not isinstance(manifest.get("shards"), list):
        raise StoreError(f"The manifest {path} has format version {manifest.get('format_version')}; this lstmviz reads 1.")
    if not manifest["shards"]:
        raise StoreError(f"The manifest {path} names no shards; record it again.")
    return manifest


def open_sharded(path: str | Path, verify_checkpoint: bool = True) -> ShardedStore:
    """Open a sharded store (its directory or its manifest.json). A shard that is missing,
    damaged or not the one the manifest names is one :class:`StoreError`."""
    path = Path(path)
    root = path.parent if path.name == MANIFEST else path
    manifest = _read_manifest(root / MANIFEST)
    shards = []
    for entry in manifest["shards"]:
        try:
            shard = open_single(root / entry["path"], verify_checkpoint)
        except StoreError as exc:
            raise StoreError(f"The sharded store {root} names shard {entry['path']}, which cannot be read: {exc}") from None
        except (KeyError, TypeError):
            raise StoreError(f"The manifest {root / MANIFEST} is damaged: a shard entry has no path; record it again.") from None
        if manifest_entry(shard, entry["path"]) != entry:
            raise StoreError(f"The sharded store {root} names shard {entry['path']}, which holds other text than it lists.")
        if shards and (shard.series != shards[0].series or shard.vocab_chars != shards[0].vocab_chars):
            raise StoreError(f"The sharded store {root} mixes shards of different recordings ({entry['path']}).")
        shards.append(shard)
    return ShardedStore(root, manifest, shards)
