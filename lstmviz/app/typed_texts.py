"""Text a user types (the Text page, the Neuron page's box): recorded in memory by a store's
checkpoint on the server's main thread, the latest few kept; and texts too long for a URL,
kept under a short key the URL names."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

LIVE_KEPT = 16  # typed texts kept recorded in memory
TEXTS_KEPT = 256  # typed texts too long for a URL, kept for their URLs


class TypedTexts:
    """The typed texts of one dashboard (its catalog's stores and checkpoints)."""

    def __init__(self, catalog):
        self.catalog = catalog
        self._lock = threading.Lock()
        self._live: OrderedDict = OrderedDict()  # typed texts recorded in memory, latest last
        self._kept: OrderedDict = OrderedDict()  # long typed texts a URL names

    def recording(self, name: str, text: str, kind: str):
        """``text`` recorded in memory by the checkpoint of store ``name`` (only the series of
        ``kind``, which is all a painted view needs), and the characters the model does not
        know; the latest few are kept, least recently used dropped."""
        key = (name, kind, hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest())
        with self._lock:
            if key in self._live:
                self._live.move_to_end(key)
                return self._live[key]
        from ..recording.recorder import record_text

        ckpt = self.catalog.checkpoint(name, "colour typed text")
        unknown = ckpt.vocab.unknown_chars(text)
        result = (self.catalog.main_thread.run(lambda: record_text(ckpt, text, kinds=(kind,), name="typed text")), unknown)
        with self._lock:
            self._live[key] = result
            while len(self._live) > LIVE_KEPT:
                self._live.popitem(last=False)
        return result

    def keep(self, text: str) -> str:
        """A short key for a typed text too long for a URL (kept while recent)."""
        key = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        with self._lock:
            self._kept[key] = text
            self._kept.move_to_end(key)
            while len(self._kept) > TEXTS_KEPT:
                self._kept.popitem(last=False)
        return key

    def kept(self, key: str) -> str | None:
        with self._lock:
            return self._kept.get(key)
