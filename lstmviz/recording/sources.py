"""What a command or page is pointed at: a recorded store, or a checkpoint to be recorded on
some text. Recordings made on a user's behalf (``serve``, ``compare``, ``emergence``) go to
one cache folder (``$LSTMVIZ_CACHE``, default ``~/.cache/lstmviz``), keyed by the weights'
hash and the text's, so each is made once and reused."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from filelock import Timeout

from ..core.atomic import lock_for, process_alive, writer_pid
from ..core.errors import LstmvizError, StoreError
from ..core.options import OLDER_THAN
from ..model.checkpoint import CONFIG_FILE, SHIPPED_DIR, Checkpoint, load_checkpoint, shipped_path
from ..store.cache import copy_caches
from ..store.open import open_store
from ..store.reader import ActivationStore
from ..text.corpus import Document

DEFAULT_CHECKPOINT = SHIPPED_DIR / "stdlib-lstm"


def cache_root() -> Path:
    return Path(os.environ.get("LSTMVIZ_CACHE", Path.home() / ".cache" / "lstmviz"))


def text_key(docs: list[Document]) -> str:
    """A short hash of the documents (names and texts): which text a cached store holds."""
    h = hashlib.sha1()
    for d in docs:
        h.update(d.name.encode("utf-8", "surrogatepass") + b"\0" + d.text.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()[:12]


def is_store(path: Path) -> bool:
    """A store directory, or a sharded store (its directory or its manifest)."""
    from ..store.sharded import is_sharded

    return (path / "meta.json").is_file() or is_sharded(path)


def open_source(path: str | Path | None) -> ActivationStore | Checkpoint:
    """A store or a checkpoint directory (default: the shipped checkpoint); anything else
    is one clear error."""
    target = shipped_path(path) if path else DEFAULT_CHECKPOINT
    if is_store(target):
        return open_store(target)
    if (target / CONFIG_FILE).is_file():
        return load_checkpoint(target)
    if not target.exists():
        raise LstmvizError(f"{target} does not exist: give an activation store or a checkpoint directory.")
    raise LstmvizError(f"{target} is neither an activation store nor a checkpoint directory.")


# What comparing models needs (CKA, matched neurons, cells): h and c, without the gates, a
# third of a full recording's size.
COMPARED_KINDS = ("h", "c")


def recorded_kinds(ckpt: Checkpoint, kinds: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """``kinds`` among the checkpoint's series (a GRU has no c); None for all."""
    return None if kinds is None else tuple(k for k in ckpt.model_config.series_kinds if k in kinds)


def cached_store_path(ckpt: Checkpoint, docs: list[Document], kinds: tuple[str, ...] | None = None) -> Path:
    kinds = recorded_kinds(ckpt, kinds)
    only = "" if kinds is None else "-" + "".join(kinds)
    return cache_root() / f"{ckpt.name}-{ckpt.content_hash[:12]}-{text_key(docs)}{only}.store"


class NotRecorded(LstmvizError):
    """A recording that was not asked for is missing from the cache: what a page reads
    before the user has agreed to what recording it costs."""

    def __init__(self, ckpt: Checkpoint, docs: list[Document]):
        chars = sum(len(d.text) for d in docs)
        super().__init__(
            f"{ckpt.name} is not recorded on this text ({chars:,} characters) yet, and recording it was not asked for."
        )


def cached_recording(ckpt: Checkpoint, docs: list[Document], kinds: tuple[str, ...] | None = None) -> ActivationStore | None:
    """``ckpt`` recorded on ``docs`` (the series of ``kinds``, default all) from the cache:
    the store of every series, or the one of ``kinds``; None when neither is there. Never
    records."""
    kinds = recorded_kinds(ckpt, kinds)
    whole = _cached(cached_store_path(ckpt, docs))
    if whole is not None or kinds is None:  # every series is there already: it serves for any of them
        return whole
    return _cached(cached_store_path(ckpt, docs, kinds))


def recorded(
    ckpt: Checkpoint,
    docs: list[Document],
    *,
    kinds: tuple[str, ...] | None = None,
    record: bool = True,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> ActivationStore:
    """``ckpt`` recorded on ``docs`` (the series of ``kinds``, default all), from the cache or
    recorded into it (once). Writers of the same cached store take its lock: a second one
    waits, then opens the first one's. With ``record=False`` it only reads the cache: a
    missing store is :class:`NotRecorded`, never a recording nobody agreed to."""
    from .recorder import record_activations

    kinds = recorded_kinds(ckpt, kinds)
    store = cached_recording(ckpt, docs, kinds)
    if store is None and not record:
        raise NotRecorded(ckpt, docs)
    if store is None:
        cached = cached_store_path(ckpt, docs, kinds)
        with lock_for(cached):
            store = _cached(cached)
            if store is None:
                options = {"kinds": kinds, "progress": progress, "on_progress": on_progress}
                store = record_activations(ckpt, docs, cached, overwrite=True, **options)
    if kinds is None:
        _drop_parts(ckpt, docs, store)
    return store


def snapshot_recordings(ckpt_path, docs: list[Document], *, record: bool = True, progress: bool = True, on_progress=None):
    """Each snapshot of a checkpoint, then the final model, recorded (h and c) on ``docs``
    (cached: a second run reads them): yields (checkpoint, store), each recorded only when
    asked for (with ``record=False``, only read from the cache: :class:`NotRecorded` when
    one is missing). ``on_progress(fraction, message)`` follows the recordings."""
    final = load_checkpoint(ckpt_path)
    paths = [*final.snapshots(), final.path]
    if len(paths) < 2:
        raise LstmvizError(f"{final.path} has no snapshots to follow training through; train with --snapshots N.")
    for k, path in enumerate(paths):
        ckpt = load_checkpoint(path)

        def report(done: int, total: int, k=k, name=ckpt.name) -> None:
            if on_progress is not None:
                on_progress((k + done / max(total, 1)) / len(paths), f"recording {name} ({k + 1} of {len(paths)})")

        options = {"record": record, "progress": progress, "on_progress": report}
        yield ckpt, recorded(ckpt, docs, kinds=COMPARED_KINDS, **options)


def _cached(path: Path) -> ActivationStore | None:
    if is_store(path):
        try:
            return open_store(path)
        except StoreError:
            pass  # damaged (a disk error, a hand edit): recorded again
    return None


def _drop_parts(ckpt: Checkpoint, docs: list[Document], whole: ActivationStore) -> None:
    """Once every series of a text is cached, the h-and-c recording of it (what ``serve``
    starts on) holds nothing more: its analysis caches move into the whole store and it is
    removed, so the cache does not hold h and c twice. One in use by a writer is kept, and
    so is one whose caches could not all be copied (a warning says which)."""
    part = cached_store_path(ckpt, docs, COMPARED_KINDS)
    if part == whole.path or not is_store(part):
        return
    try:
        with lock_for(part, timeout=0):
            failed = copy_caches(part, whole.path)
            if failed:
                warnings.warn(f"Kept {part}: could not copy its caches {', '.join(failed)} into {whole.path}.", stacklevel=3)
                return
            shutil.rmtree(part)
    except Timeout:
        pass  # a writer has it: removed another time
    except OSError as exc:
        warnings.warn(f"Could not remove {part}, which {whole.path} makes redundant: {exc}.", stacklevel=3)


def uncached_bytes(ckpts: list[Checkpoint], docs: list[Document], kinds: tuple[str, ...] | None = None) -> int:
    """The disk that recording ``ckpts`` on ``docs`` into the cache will take: the size of
    each store not there yet (so a page can say it before it starts)."""
    from .recorder import recorded_rows, store_bytes

    chars = sum(len(d.text) for d in docs)
    missing = [c for c in ckpts if not (is_store(cached_store_path(c, docs, kinds)) or is_store(cached_store_path(c, docs)))]
    return sum(store_bytes(recorded_rows(c.model_config, recorded_kinds(c, kinds)), chars) for c in missing)


def store_documents(store: ActivationStore) -> list[Document]:
    """The text a store was recorded on, as documents (to record another model on it)."""
    return [Document(d.name, store.text(d.start, d.stop)) for d in store.documents]


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    bytes: int
    age_days: float  # since it was last written

    def to_json(self) -> dict:
        return {"name": self.path.name, "bytes": self.bytes, "age_days": round(self.age_days, 2)}


@dataclass(frozen=True)
class CacheListing:
    """What the cache folder holds, largest first."""

    root: Path
    entries: list[CacheEntry]

    def to_json(self) -> dict:
        return {"cache": str(self.root), "entries": [e.to_json() for e in self.entries]}

    def to_text(self) -> str:
        total = sum(e.bytes for e in self.entries) / 1e9
        lines = [f"{self.root}: {len(self.entries)} entries, {total:.2f} GB"]
        lines += [f"  {e.bytes / 1e9:8.2f} GB  {e.age_days:6.1f} days  {e.path.name}" for e in self.entries]
        return "\n".join(lines)


def cache_listing() -> CacheListing:
    return CacheListing(cache_root(), cache_entries())


class Cleared(NamedTuple):
    """What :func:`clear_cache` did."""

    removed: int
    freed: int  # bytes
    busy: int  # kept because a writer holds them

    def to_text(self) -> str:
        return f"removed {self.removed} entries, {self.freed / 1e9:.2f} GB" + (
            f"; {self.busy} in use were kept" if self.busy else ""
        )


def cache_entries() -> list[CacheEntry]:
    """The stores in the cache folder, largest first."""
    root = cache_root()
    if not root.is_dir():
        return []
    now, out = time.time(), []
    for path in root.iterdir():
        if path.is_dir() and not path.name.startswith("."):
            files = [f for f in path.rglob("*") if f.is_file()]
            newest = max([path.stat().st_mtime, *(f.stat().st_mtime for f in files)])
            out.append(CacheEntry(path, sum(f.stat().st_size for f in files), (now - newest) / 86400))
    return sorted(out, key=lambda e: -e.bytes)


def clear_cache(older_than_days: float | None = None) -> Cleared:
    """Remove cache entries (those unused for ``older_than_days``, or all), each under its
    lock, so one being written is kept; what dead writers left is removed too. Returns
    (removed, bytes freed, kept because in use)."""
    OLDER_THAN.check(older_than_days)
    removed = freed = busy = 0
    for entry in cache_entries():
        if older_than_days is not None and entry.age_days < older_than_days:
            continue
        try:
            with lock_for(entry.path, timeout=0):
                shutil.rmtree(entry.path)
        except Timeout:
            busy += 1
            continue
        removed, freed = removed + 1, freed + entry.bytes
    root = cache_root()
    for leftover in root.glob(".*.writing-*") if root.is_dir() else []:
        pid = writer_pid(leftover)
        if pid is not None and not process_alive(pid):
            shutil.rmtree(leftover, ignore_errors=True)
    return Cleared(removed, freed, busy)
