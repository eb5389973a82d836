"""What a command or page is pointed at: a recorded store, or a checkpoint to be recorded on
some text. Recordings made on a user's behalf (``serve``, ``compare``, ``emergence``) go to
one cache folder (``$LSTMVIZ_CACHE``, default ``~/.cache/lstmviz``), keyed by the weights'
hash and the text's, so each is made once and reused."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from .atomic import lock_for
from .checkpoint import CONFIG_FILE, Checkpoint, load_checkpoint
from .corpus import Document
from .errors import LstmvizError, StoreError
from .store import ActivationStore, open_store

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "stdlib-lstm"


def cache_root() -> Path:
    return Path(os.environ.get("LSTMVIZ_CACHE", Path.home() / ".cache" / "lstmviz"))


def text_key(docs: list[Document]) -> str:
    """A short hash of the documents (names and texts): which text a cached store holds."""
    h = hashlib.sha1()
    for d in docs:
        h.update(d.name.encode("utf-8", "surrogatepass") + b"\0" + d.text.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()[:12]


def is_store(path: Path) -> bool:
    return (path / "meta.json").is_file()


def open_source(path: str | Path | None) -> ActivationStore | Checkpoint:
    """A store or a checkpoint directory (default: the shipped checkpoint); anything else
    is one clear error."""
    target = Path(path) if path else DEFAULT_CHECKPOINT
    if is_store(target):
        return open_store(target)
    if (target / CONFIG_FILE).is_file():
        return load_checkpoint(target)
    if not target.exists():
        raise LstmvizError(f"{target} does not exist: give an activation store or a checkpoint directory.")
    raise LstmvizError(f"{target} is neither an activation store nor a checkpoint directory.")


def cached_store_path(ckpt: Checkpoint, docs: list[Document]) -> Path:
    return cache_root() / f"{ckpt.name}-{ckpt.content_hash[:12]}-{text_key(docs)}.store"


def recorded(
    ckpt: Checkpoint,
    docs: list[Document],
    *,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> ActivationStore:
    """``ckpt`` recorded on ``docs``, from the cache or recorded into it (once). Writers of
    the same cached store take its lock: a second one waits, then opens the first one's."""
    from .recording import record_activations

    cached = cached_store_path(ckpt, docs)
    with lock_for(cached):
        if is_store(cached):
            try:
                return open_store(cached)
            except StoreError:
                pass  # damaged (a disk error, a hand edit): recorded again
        return record_activations(ckpt, docs, cached, progress=progress, overwrite=True, on_progress=on_progress)


def store_documents(store: ActivationStore) -> list[Document]:
    """The text a store was recorded on, as documents (to record another model on it)."""
    return [Document(d.name, store.text(d.start, d.stop)) for d in store.documents]
