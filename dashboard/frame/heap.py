"""The server's C heap (glibc): its settings, and handing freed memory back to the system.

TensorFlow's large, short-lived buffers (on the system allocator) are freed into glibc's
arenas, which keep them resident unless trimmed: at block2, +100-170 MB stayed for the life of
the process (docs/BENCHMARKS.md). So the dashboard trims after each new explanation
(``loaders``) and at the end of every script run (``bootstrap``). No TensorFlow here: the
end-of-run hook runs from the first run on. Elsewhere than glibc, everything is a no-op."""

from __future__ import annotations

import contextlib
import ctypes
import functools


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


def tune_malloc(mmap_threshold: int = 4 * 2**20) -> None:
    """glibc settings for a long-running server, from now on: every block of
    ``mmap_threshold`` bytes or more in its own mapping, returned to the system when freed (an
    early layer's maps and statistics are 4-20 MB arrays; glibc otherwise raises the threshold
    as such blocks are freed and keeps later ones in its heap; measured on a replay of 40
    dashboard changes: 96 MB less growth). The number of arenas is not capped here: glibc
    fixes that limit once more than 8 arenas exist, which TensorFlow's threads make before
    this runs (16 arenas measured after a ``mallopt(M_ARENA_MAX)``). Their free memory is
    handed back instead (``release_memory``)."""
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):
            libc.mallopt(-3, int(mmap_threshold))  # M_MMAP_THRESHOLD


def release_memory() -> None:
    """Hand freed C-heap memory back to the operating system (``malloc_trim``)."""
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):
            libc.malloc_trim(0)
