"""TensorFlow's CPU memory: system malloc instead of oneDNN's pool, chosen before TensorFlow loads.

Why: with oneDNN (TensorFlow's default on x86) the CPU allocator is a BFC pool that keeps the
peak of the largest call resident for the life of the process, so a server's memory grew with
its largest batch. ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=true`` makes oneDNN use the system malloc,
which returns a call's memory when it ends (with ``malloc_trim`` where glibc holds on to it), and
on this project's passes it is no slower (docs/BENCHMARKS.md, "TensorFlow's CPU allocator").
TensorFlow reads the variable once, when it loads; so every entry point calls
``prefer_system_allocator()`` before anything imports TensorFlow, and the package calls it again
where it first imports TensorFlow itself. A user's own setting of the variable is kept.
"""

from __future__ import annotations

import logging
import os
import sys

VARIABLE = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"
_log = logging.getLogger("explainers")
_warned = False


def prefer_system_allocator() -> bool:
    """Ask TensorFlow for the system allocator unless the user set ``VARIABLE``; returns whether
    the setting in force is "true". If TensorFlow is already imported without it, it is too late
    to change: one log line says so (once per process), and nothing else happens."""
    global _warned
    if VARIABLE in os.environ:
        return os.environ[VARIABLE].strip().lower() in ("1", "true")
    if "tensorflow" in sys.modules:
        if not _warned:
            _warned = True
            _log.info(
                "TensorFlow was imported before explainers could set %s=true: its CPU "
                "memory pool keeps the peak of the largest call (set the variable before "
                "importing TensorFlow to avoid that)",
                VARIABLE,
            )
        return False
    os.environ[VARIABLE] = "true"
    return True
