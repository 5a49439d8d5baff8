"""An exclusive advisory file lock (fcntl.flock) for what several tvmx processes share: the
per-user caches (Spike extensions, the accelerator's host helpers) and the tuning records.

flock locks belong to the open file, so the kernel releases them when the process dies: a tvmx
killed while holding one never blocks the next. A lock may be removed by its holder when done
(`remove=True`, for the caches: the file is no artifact to leave behind); whoever then gets the
lock on the unlinked file sees, by its inode, that it is no longer the lock and takes the new one."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tvmx.errors import InputError


@contextmanager
def file_lock(path: Path, waiting: Callable[[Path], None] | None = None, *, remove: bool = False,
              readonly_ok: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the duration of the block.
    `waiting(path)` is called once if another process holds it, before blocking. `readonly_ok`: in
    a folder nobody may write (a read-only records folder), there is no writer to exclude: run the
    block without the lock."""
    if readonly_ok and not path.exists() and path.parent.is_dir() and not os.access(path.parent, os.W_OK):
        yield
        return
    fd = _acquire(path, waiting)
    try:
        yield
    finally:
        if remove:
            path.unlink(missing_ok=True)  # still held: nobody can lock this file and think it current
        os.close(fd)  # closing the last descriptor of the open file releases its lock


def _acquire(path: Path, waiting: Callable[[Path], None] | None) -> int:
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(f"cannot create the lock file {path}: {exc.strerror}",
                             hint="check that the cache folder is writable (or set XDG_CACHE_HOME)") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting is not None:
                waiting(path)
                waiting = None
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            return fd
        os.close(fd)  # locked a file its holder removed: lock the one at `path` now
