"""Writing so that nothing is ever half-written or lost, and two writers never collide.

Every writer of a file or a directory (stores, checkpoints, the caches kept beside a store)
writes under a temporary name that no other writer can have (process id and a random tag),
flushes it to disk (``fsync``), and then moves it into place with one rename. A directory
that already exists is exchanged with the new one in one step (Linux's ``renameat2`` with
``RENAME_EXCHANGE``), so a reader finds the old store or the new one, never none; where the
file system cannot exchange, the old one is renamed aside first. Writers of the same cache
path take a lock on it (the ``filelock`` package), so a second one waits and then finds the
first one's result.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import uuid
from pathlib import Path

from filelock import FileLock

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def temporary_name(final: Path, tag: str = "writing") -> Path:
    """A name beside ``final`` that no other writer uses: ``.NAME.TAG-PID-RANDOM``."""
    return final.with_name(f".{final.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def writer_pid(temporary: Path) -> int | None:
    """The process id in a :func:`temporary_name`, or None."""
    parts = temporary.name.rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def fsync_path(path: Path) -> None:
    """Flush a file, or a directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path``: the old content or the new, never a mix, whatever happens."""
    path = Path(path)
    tmp = temporary_name(path, "tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step; False where the system cannot."""
    if not hasattr(_libc, "renameat2"):
        return False
    if _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    if ctypes.get_errno() in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(b))


def move_into_place(tmp: Path, final: Path) -> None:
    """Put the finished directory ``tmp`` at ``final``, replacing what is there: flushed first,
    then exchanged in one step, so ``final`` never stops existing; the old one is removed."""
    for f in tmp.rglob("*"):
        if f.is_file():
            fsync_path(f)
    fsync_path(tmp)
    if final.exists() and _exchange(tmp, final):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old directory
    else:
        old = temporary_name(final, "old")
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    fsync_path(final.parent)


def lock_for(path: str | Path, timeout: float = -1) -> FileLock:
    """The lock every writer of ``path`` holds while it writes (a file beside it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.with_name(f".{path.name}.lock")), timeout=timeout)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
