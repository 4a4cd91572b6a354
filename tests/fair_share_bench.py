"""Benchmark (not a test): a second visitor's first maps while another runs the heaviest job.

``python tests/fair_share_bench.py [REPEATS] [CHECKOUT ...]``: for each checkout (default: this
one; pass another folder, e.g. an export of main, to compare) a fresh server, warmed up, then
REPEATS times, alternately: a new session's first maps on an idle server ("idle"), and the same
while another session computes block1_conv1 with 50 noise samples ("loaded"); with CROWD=N
in the environment also N sessions opened at once beside the heavy job ("crowd"). Each new session
asks for an unused seed, so its maps are computed, not read from the cache. Prints one JSON
line per checkout; docs/BENCHMARKS.md records the figures.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.browser_support import PAGE_LIMIT_S, caption, chromium, streamlit_server

HEAVY = {"layer": "xception/block1_conv1", "samples": "50"}


def _url(base: str, **query: str) -> str:
    return base + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def first_maps(browser, base: str) -> float:
    """Seconds from opening a new session (unused seed) to its two plain heatmaps."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        t0 = time.monotonic()
        page.goto(_url(base, seed=str(random.randrange(1, 2**30))))
        caption(page, "Grad-CAM++").wait_for(timeout=PAGE_LIMIT_S * 1000)
        return round(time.monotonic() - t0, 2)
    finally:
        page.close()


def start_heavy(browser, base: str):
    """A session computing the heaviest maps; returned once its noisy samples are under way."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(_url(base, seed=str(random.randrange(1, 2**30)), **HEAVY))
    page.get_by_text("Computing noisy samples:").first.wait_for(timeout=PAGE_LIMIT_S * 1000)
    return page


def crowd_maps(browser, base: str, n: int) -> list[float]:
    """Seconds to first maps for ``n`` new sessions opened at once (each polled, so a session
    that finishes early is timed when it finishes, not when its turn to be read comes)."""
    pages, t0 = [], time.monotonic()
    for _ in range(n):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(_url(base, seed=str(random.randrange(1, 2**30))), wait_until="commit")
        pages.append(page)
    done: dict = {}
    while len(done) < n and time.monotonic() - t0 < PAGE_LIMIT_S:
        for i, page in enumerate(pages):
            if i not in done and caption(page, "Grad-CAM++").count():
                done[i] = round(time.monotonic() - t0, 2)
        time.sleep(0.2)
    for page in pages:
        page.close()
    return [done.get(i, float("nan")) for i in range(n)]


def run(checkout: Path, repeats: int) -> dict:
    os.environ["DASHBOARD_DIR"] = str(checkout)
    idle, loaded = [], []
    crowd = int(os.environ.get("CROWD", "0"))  # also: CROWD sessions at once beside the heavy job
    crowds = []
    with streamlit_server("fair_share_bench.log") as (base, _started, _proc), chromium() as b:
        first_maps(b, base)  # warm-up: the model, the last layer's compiled pass
        start_heavy(b, base).close()  # ... and block1_conv1's
        time.sleep(5)
        for _ in range(repeats):
            idle.append(first_maps(b, base))
            heavy = start_heavy(b, base)
            try:
                loaded.append(first_maps(b, base))
            finally:
                heavy.close()  # its run stops at its next progress step
            time.sleep(5)
            if crowd:
                heavy = start_heavy(b, base)
                try:
                    crowds.append(crowd_maps(b, base, crowd))
                finally:
                    heavy.close()
                time.sleep(5)
    return {
        "crowd_s": crowds,
        "checkout": str(checkout),
        "turns_env": os.environ.get("EXPLAINERS_TURNS"),
        "idle_s": idle,
        "loaded_s": loaded,
        "idle_median_s": statistics.median(idle),
        "loaded_median_s": statistics.median(loaded),
        "ratio_of_medians": round(statistics.median(loaded) / statistics.median(idle), 2),
        "load_average_at_end": os.getloadavg(),
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    checkouts = [Path(p).resolve() for p in sys.argv[2:]] or [Path(__file__).resolve().parents[1]]
    print(
        json.dumps({"load_average_at_start": os.getloadavg(), "cpus": os.cpu_count()}), flush=True
    )
    for c in checkouts:
        print(json.dumps(run(c, n)), flush=True)
