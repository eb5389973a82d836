"""Stores on one text: what comparing models needs, for the ``compare`` and ``emergence``
commands and the dashboard's Compare page alike. The text is chosen once (the given files,
else the text of a given store, else a checkpoint's test split); a store is checked to hold
exactly it, a checkpoint is recorded on it (h and c, into the cache, once), unless a store
of the same weights already holds it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import LstmvizError
from ..core.options import MAX_CHARS
from ..model.checkpoint import Checkpoint, load_checkpoint
from ..store.reader import ActivationStore
from ..text.corpus import Document, documents_from_description, load_corpus
from ..text.lanes import limit_chars
from .sources import COMPARED_KINDS, recorded, snapshot_recordings, store_documents, uncached_bytes

Source = ActivationStore | Checkpoint


def evaluation_documents(ckpt: Checkpoint, paths: Sequence[str] | None = None, max_chars: int | None = None) -> list[Document]:
    """The given text (read only as far as ``max_chars``), or the checkpoint's test split."""
    MAX_CHARS.check(max_chars)
    if paths:
        return load_corpus(paths, max_chars).documents
    return documents_from_description(ckpt.config["corpus"], "test")


def _codepoints(x: ActivationStore | str) -> np.ndarray:
    return np.frombuffer(x.encode("utf-32-le"), dtype=np.uint32) if isinstance(x, str) else np.asarray(x.codepoints)


def same_text(a: ActivationStore | str, b: ActivationStore | str) -> None:
    """Refuse two stores (or a store and the text it must hold) whose characters differ:
    never a silent misalignment."""
    pa, pb = _codepoints(a), _codepoints(b)
    if len(pa) != len(pb) or not np.array_equal(pa, pb):
        what = ["the text" if isinstance(x, str) else x.name for x in (a, b)]
        raise LstmvizError(
            f"{what[0]} ({len(pa):,} characters) and {what[1]} ({len(pb):,}) are different text; "
            "compare checkpoints (they are recorded on the same text) or stores of the same text."
        )


@dataclass
class OneText:
    """The documents every compared store holds, and the stores known to hold them."""

    docs: list[Document]
    holders: list[ActivationStore] = field(default_factory=list)

    @classmethod
    def choose(cls, sources: Sequence[Source], paths: Sequence[str] = (), max_chars: int | None = None) -> OneText:
        """``paths`` if given, else the text of the first store among ``sources``, else the
        first checkpoint's test split; its first ``max_chars`` characters."""
        MAX_CHARS.check(max_chars)
        stores = [s for s in sources if isinstance(s, ActivationStore)]
        if paths:
            docs = load_corpus(list(paths)).documents
        elif stores:
            return cls.of_store(stores[0], max_chars)
        else:
            docs = evaluation_documents(sources[0])
        return cls(limit_chars(docs, max_chars))

    @classmethod
    def of_store(cls, store: ActivationStore, max_chars: int | None = None) -> OneText:
        """The text of ``store`` (its first ``max_chars`` characters)."""
        docs = limit_chars(store_documents(store), max_chars)
        return cls(docs, [store] if sum(len(d.text) for d in docs) == len(store) else [])

    @property
    def chars(self) -> int:
        return sum(len(d.text) for d in self.docs)

    def check(self, store: ActivationStore) -> ActivationStore:
        """``store``, if it holds exactly this text; else the one sentence saying it does not."""
        if not any(store is s for s in self.holders):
            same_text(store, "".join(d.text for d in self.docs))
            self.holders.append(store)
        return store

    def _holder_of(self, ckpt: Checkpoint) -> ActivationStore | None:
        return next((s for s in self.holders if s.checkpoint.get("content_hash") == ckpt.content_hash), None)

    def to_record(self, sources: Sequence[Source]) -> list[Checkpoint]:
        """The checkpoints among ``sources`` that no store here holds already."""
        return [s for s in sources if isinstance(s, Checkpoint) and self._holder_of(s) is None]

    def uncached_bytes(self, sources: Sequence[Source]) -> int:
        """The disk that recording ``sources`` on this text will take in the cache (0: none),
        so a page or command can say it before it starts."""
        ckpts = self.to_record(sources)
        return uncached_bytes(ckpts, self.docs, COMPARED_KINDS) if ckpts else 0

    def store_for(
        self,
        source: Source,
        *,
        record: bool = True,
        progress: bool = True,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ActivationStore:
        """A store of ``source`` on this text: a store as it is (checked), a store of the same
        weights that holds it, or the checkpoint's h and c recorded on it (from the cache, or
        into it once; with ``record=False`` only from the cache, else
        :class:`~lstmviz.recording.sources.NotRecorded`)."""
        if isinstance(source, ActivationStore):
            return self.check(source)
        held = self._holder_of(source)
        if held is not None:
            return held
        options = {"record": record, "progress": progress, "on_progress": on_progress}
        return recorded(source, self.docs, kinds=COMPARED_KINDS, **options)

    def stores(
        self,
        sources: Sequence[Source],
        *,
        progress: bool = True,
        before_recording: Callable[[Checkpoint], None] | None = None,
    ) -> list[ActivationStore]:
        """A store of each of ``sources`` on this text. Every given store is checked before
        any recording starts; ``before_recording(ckpt)`` is told of each recording to come."""
        for source in sources:
            if isinstance(source, ActivationStore):
                self.check(source)
        out = []
        for source in sources:
            if before_recording is not None and self.uncached_bytes([source]):
                before_recording(source)
            out.append(self.store_for(source, progress=progress))
        return out

    def snapshots(
        self,
        ckpt: Checkpoint | str,
        *,
        record: bool = True,
        progress: bool = True,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> Iterator[tuple[Checkpoint, ActivationStore]]:
        """Each snapshot of a checkpoint, then the final model, on this text (h and c, cached),
        as :func:`~lstmviz.recording.sources.snapshot_recordings`."""
        path = ckpt.path if isinstance(ckpt, Checkpoint) else ckpt
        return snapshot_recordings(path, self.docs, record=record, progress=progress, on_progress=on_progress)

    def snapshots_uncached_bytes(self, ckpt: Checkpoint | str) -> int:
        """The disk :meth:`snapshots` will take in the cache (0: none)."""
        final = ckpt if isinstance(ckpt, Checkpoint) else load_checkpoint(ckpt)
        return uncached_bytes([load_checkpoint(p) for p in final.snapshots()] + [final], self.docs, COMPARED_KINDS)
