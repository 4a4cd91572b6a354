"""The machine a measurement ran on, in words (CPU, cores, GPU, TensorFlow and Python
versions): printed with every benchmark so its figures say where they come from."""

from __future__ import annotations

import os
import platform
import time

import tensorflow as tf

#: What the benchmarks time with: wall-clock seconds (the default), or this process's CPU
#: seconds (``--clock cpu``, all its threads), which other jobs on a shared machine disturb far
#: less than the wall clock: with 2 cores and a load of 20, wall times are mostly waiting.
_clock = time.perf_counter


def use_clock(kind: str) -> None:
    """``"wall"`` or ``"cpu"``: the clock ``clock()`` reads from now on."""
    global _clock
    _clock = time.process_time if kind == "cpu" else time.perf_counter


def clock() -> float:
    """Seconds by the clock ``use_clock`` chose (differences only)."""
    return _clock()


def clock_name() -> str:
    return "CPU seconds of this process" if _clock is time.process_time else "wall-clock seconds"


def machine() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    device = (
        ", ".join(
            tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus
        )
        if gpus
        else "no GPU"
    )
    return f"{cpu}, {cores} cores, {device}; TensorFlow {tf.__version__}, Python {platform.python_version()}"
