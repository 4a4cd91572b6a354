"""The machine a measurement ran on, in words (CPU, cores, GPU, TensorFlow and Python
versions): printed with every benchmark so its figures say where they come from."""

from __future__ import annotations

import os
import platform


def machine() -> str:
    import tensorflow as tf

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
    device = ", ".join(tf.config.experimental.get_device_details(g).get("device_name", g.name)
                       for g in gpus) if gpus else "no GPU"
    return f"{cpu}, {cores} cores, {device}; TensorFlow {tf.__version__}, Python {platform.python_version()}"
