"""Results kept in a store's directory beside its files, so each is computed once per store:
rankings, summaries, ablation effects (JSON), the n-gram comparison (arrays, ``.npz``).

A cache is written under a temporary name and renamed (``core/atomic.py``), so a reader
never sees half of one; a file damaged all the same (a disk error, a copy cut short, a
hand edit) is computed again, with a warning that names it, instead of failing each time.
A store that cannot be written (read-only, or in memory) still works, computing each time.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import fsync_path, temporary_name, write_atomic
from .format import FILES

CACHE_SUFFIXES = (".json", ".npz")  # JSON data; named arrays (numpy's npz, no pickles)
_NOT_CACHES = {"meta.json", "manifest.json", *FILES}  # a store's own files, a sharded store's manifest
_ABSENT = object()


def is_cache(path: Path) -> bool:
    """Whether ``path``, a file in a store's directory, is one of the caches kept there."""
    return path.suffix in CACHE_SUFFIXES and path.name not in _NOT_CACHES and not path.name.startswith(".")


def cache_files(directory: Path) -> list[Path]:
    """Every cache kept in a store's directory."""
    return sorted(p for p in directory.iterdir() if p.is_file() and is_cache(p)) if directory.is_dir() else []


def _decode(path: Path) -> Any:
    if path.suffix == ".npz":
        saved = np.load(path, allow_pickle=False)
        if not hasattr(saved, "files"):  # one bare array (.npy), no archive
            raise ValueError("not an npz archive")
        with saved:
            return {name: saved[name] for name in saved.files}  # every member read now: a damaged one fails here
    return json.loads(path.read_text(encoding="utf-8"))


def _encode(path: Path, data: Any) -> bytes | str:
    if path.suffix == ".npz":
        buffer = io.BytesIO()
        np.savez(buffer, **data)
        return buffer.getvalue()
    return json.dumps(data)


def _read(path: Path) -> Any:
    """What the cache at ``path`` holds; ``_ABSENT`` where there is none, or it is damaged
    (then a warning names it)."""
    if not path.is_file():
        return _ABSENT
    try:
        return _decode(path)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        warnings.warn(f"The cache {path} could not be read ({type(exc).__name__}: {exc}); it is computed again.", stacklevel=3)
        return _ABSENT


def _directory(store, name: str) -> Path | None:
    """Where ``store`` keeps its caches: None for a recording held in memory."""
    if Path(name).suffix not in CACHE_SUFFIXES or Path(name).name != name:
        raise ValueError(f"A cache is a file name ending in {' or '.join(CACHE_SUFFIXES)}, not {name!r}.")
    return None if getattr(store, "in_memory", False) else Path(store.path)


def read_cached(store, name: str) -> Any | None:
    """The cache ``name`` of ``store`` (a ``.json`` name: its data; ``.npz``: a dict of
    arrays), or None where it was not computed yet or is damaged (warned)."""
    directory = _directory(store, name)
    data = _ABSENT if directory is None else _read(directory / name)
    return None if data is _ABSENT else data


def cached(store, name: str, compute: Callable[[], Any]) -> Any:
    """The cache ``name`` of ``store`` if it is there and whole, else ``compute()`` (JSON data
    for a ``.json`` name, a dict of arrays for ``.npz``), written for next time."""
    directory = _directory(store, name)
    data = _ABSENT if directory is None else _read(directory / name)
    if data is _ABSENT:
        data = compute()
        write_cache(store, name, data)  # where it cannot be kept, it is computed again next time
    return data


def write_cache(store, name: str, data: Any) -> None:
    """Keep ``data`` as the cache ``name`` of ``store``, replacing what was there (nothing is
    kept for a recording in memory, or a store that cannot be written)."""
    directory = _directory(store, name)
    if directory is not None:
        try:
            write_atomic(directory / name, _encode(directory / name, data))
        except OSError:
            pass  # a read-only store: nothing kept


def copy_caches(source: Path, target: Path) -> list[str]:
    """Copy every cache of the store directory ``source`` that ``target`` does not have yet,
    each whole or not at all (under a temporary name, then renamed). Returns what could
    not be copied, one ``"NAME (reason)"`` each."""
    failed = []
    for cache in cache_files(source):
        final = target / cache.name
        if final.exists():
            continue
        tmp = temporary_name(final, "copying")
        try:
            shutil.copy2(cache, tmp)
            fsync_path(tmp)
            os.replace(tmp, final)
        except OSError as exc:
            failed.append(f"{cache.name} ({exc.strerror or exc})")
        finally:
            tmp.unlink(missing_ok=True)
    return failed
