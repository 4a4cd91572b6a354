"""Writing into one output folder from several runs at once (three dashboard sessions, two
command lines): temporary names that no other thread or process uses, atomic small files,
and a lock on the folder so that a second run waits for the first and then skips what it did
instead of computing everything again."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".batch.lock"
WAITING = "another run is writing to this folder; waiting for it to finish (its results are kept)"


def temp_path(target: Path) -> Path:
    """A hidden temporary name beside `target`, unique to this process, thread and call: a
    file written under it and renamed (`os.replace`) never meets another writer's."""
    return target.parent / (
        f".{target.name}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:12]}.tmp"
    )


def write_atomic(target: Path, text: str) -> None:
    """`target` holds the old text or the new, never half of one (readers in other runs)."""
    tmp = temp_path(target)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def folder_lock(folder: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the folder's lock (`fcntl.flock` on a file in it) for the body. When another run
    (a thread or a process) holds it, `on_wait` gets one message, then this waits. The lock
    goes with the process: a killed run never leaves the folder locked. Without `fcntl`
    (Windows) there is no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        yield
        return
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(WAITING)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
