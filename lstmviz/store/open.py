"""Opening any store by its path: one recording, or a sharded store's manifest.

Here, not in ``reader.py``, so the base format knows nothing of its sharded extension."""

from __future__ import annotations

from pathlib import Path

from .reader import ActivationStore, open_single
from .sharded import is_sharded, open_sharded


def open_store(path: str | Path, verify_checkpoint: bool = True) -> ActivationStore:
    """Open a store lazily. A truncated store, or one whose checkpoint has changed since it
    was recorded, is a :class:`StoreError`. A sharded store (a directory with a
    ``manifest.json``, see ``sharded.py``) opens as one store."""
    if is_sharded(path):
        return open_sharded(path, verify_checkpoint)
    return open_single(path, verify_checkpoint)
