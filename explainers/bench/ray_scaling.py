"""The measurement behind docs/SCALING.md: the batch command on the same images with the local
engine and with Ray (1 and 2 actors), one image per batch so rows arrive one by one.

    python -m explainers.bench.ray_scaling --images DIR --out DIR [--model skin-lesion] [--steps N]

For each run: the wall time, the time to the first row (start-up + one image), the steady
per-image time (between the first and the last row, over the images in between), the CPU
time per image over the same rows (this process plus every Ray actor, from /proc: on a
machine shared with other jobs it is the figure that does not depend on their load) and the
peak resident memory of the driver and of each Ray actor (sampled every 0.5 s). Prints one
Markdown table, and writes it with the raw timings to OUT/measurements.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from explainers.batch.ray_engine import RayOptions
from explainers.batch.run import run_batch


def _cpu_seconds(actors: bool, seen: dict[int, float]) -> float:
    """CPU time (user + system) of this process and (with `actors`) of every Ray actor running
    ExplainWorker seen so far (`seen`: its last reading, kept after it exits, so an actor the
    pool retires still counts): run nothing else with Ray meanwhile."""
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    total = me.ru_utime + me.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc") if actors else ():
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            if b"ExplainWorker" not in cmd:
                continue
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            seen[int(entry)] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return total + sum(seen.values())


def _rss_by_pid() -> dict[int, tuple[str, int]]:
    """{pid: (command line, resident bytes)} of this machine's processes."""
    out = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = (
                Path(f"/proc/{entry}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
            pages = int(Path(f"/proc/{entry}/statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out[int(entry)] = (cmd, pages * page)
    return out


class MemorySampler(threading.Thread):
    """Peak RSS of this process and of every Ray actor running ExplainWorker."""

    def __init__(self, actors: bool, seen: dict[int, float]) -> None:
        super().__init__(daemon=True)
        self.with_actors = actors
        self.seen = seen
        self.stop = threading.Event()
        self.driver = 0
        self.actors: dict[int, int] = {}

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            for pid, (cmd, rss) in _rss_by_pid().items():
                if pid == me:
                    self.driver = max(self.driver, rss)
                elif self.with_actors and "ExplainWorker" in cmd:
                    self.actors[pid] = max(self.actors.get(pid, 0), rss)
            if self.with_actors:
                _cpu_seconds(True, self.seen)  # the last reading of an actor before it exits
            self.stop.wait(0.5)


def measure(
    name: str, model: str, images: Path, out: Path, steps: int, **kwargs: Any
) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    times: list[float] = []
    cpu: list[float] = []

    def on_image(done: int, total: int) -> None:
        times.append(time.perf_counter() - start)
        cpu.append(_cpu_seconds(ray, seen))

    load_before = os.getloadavg()[0]
    ray = kwargs.get("engine") == "ray"
    seen: dict[int, float] = {}
    sampler = MemorySampler(ray, seen)
    sampler.start()
    start = time.perf_counter()
    result = run_batch(
        model, images, out, batch_size=1, n_steps=steps, progress=False, on_image=on_image, **kwargs
    )
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    n = len(times)
    steady = (times[-1] - times[0]) / (n - 1) if n > 1 else float("nan")
    cpu_per_image = (cpu[-1] - cpu[0]) / (n - 1) if n > 1 else float("nan")
    return {
        "run": name,
        "images": n,
        "failed": result.failed,
        "wall_s": wall,
        "first_row_s": times[0] if times else float("nan"),
        "per_image_s": steady,
        "cpu_per_image_s": cpu_per_image,
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg()[0],
        "driver_peak_mib": sampler.driver / 2**20,
        "actor_peak_mib": sorted(round(v / 2**20) for v in sampler.actors.values()),
        "row_times_s": times,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m explainers.bench.ray_scaling",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--images", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--model", default="skin-lesion")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument(
        "--runs",
        default="local,ray1,ray2",
        help="comma-separated: local, ray1 (1 actor), ray2 (2 actors of 1 CPU)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    plans = {
        "local": {},
        "ray1": {"engine": "ray", "ray_options": RayOptions(actors=(1, 1))},
        "ray2": {"engine": "ray", "ray_options": RayOptions(actors=(2, 2))},
    }
    results = []
    for name in args.runs.split(","):
        r = measure(name, args.model, args.images, args.out / name, args.steps, **plans[name])
        results.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "row_times_s"}), flush=True)
    (args.out / "measurements.json").write_text(json.dumps(results, indent=2) + "\n")
    print(
        "| run | images | wall (s) | first row (s) | per image, steady (s) | CPU per image (s) "
        "| driver peak (MiB) | actor peak (MiB) | load average before / after |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['run']} | {r['images']} | {r['wall_s']:.1f} | {r['first_row_s']:.1f} | "
            f"{r['per_image_s']:.2f} | {r['cpu_per_image_s']:.2f} | {r['driver_peak_mib']:.0f} | "
            f"{r['actor_peak_mib'] or '-'} | {r['load_avg_before']:.1f} / {r['load_avg_after']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
