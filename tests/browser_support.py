"""Driving the real dashboard: ``streamlit run app.py`` in a subprocess, headless Chromium
(Debian's ``/usr/bin/chromium`` through Playwright), and the small actions the browser tests
and the dashboard benchmark share (wait for the maps, change a slider or a select box, read the
server's resident memory).

Not a test module; ``tests/test_browser*.py`` use it, and it is the dashboard benchmark:
``python tests/browser_support.py cold N`` (N sessions on a cold server), ``memory SESSIONS
CHANGES TOP_SAMPLES``, or ``all [CHANGES]`` (every figure of docs/BENCHMARKS.md's Dashboard
section in one run, also written to ``artifacts/dashboard_bench.json``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PAGE_LIMIT_S = 240
ERROR_SELECTOR = '[data-testid="stException"], [data-testid="stAlertContentError"]'
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-proxy-server",  # every page is on 127.0.0.1, whatever proxy the machine sets
]


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM}: install Debian's chromium package (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (requirements-dev.txt)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(
    log_name: str = "streamlit.log", cwd: Path | None = None
) -> Iterator[tuple[str, float, subprocess.Popen]]:
    """A fresh dashboard server (``python -m dashboard.frame.serve``, i.e. ``streamlit run app.py``
    with the warm-up started at once); yields (url, start time (monotonic), process)."""
    cwd = cwd or Path(os.environ.get("DASHBOARD_DIR", ROOT))  # another checkout, to compare
    port = free_port()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    (ROOT / "artifacts").mkdir(exist_ok=True)
    log = open(ROOT / "artifacts" / log_name, "w")
    started = time.monotonic()
    # As `bash run.sh dashboard` starts it (the warm-up begins with the server); a checkout
    # from before dashboard/frame/serve.py existed (or with dashboard/serve.py) accordingly.
    if (cwd / "dashboard" / "frame" / "serve.py").is_file():
        launcher = ["dashboard.frame.serve"]
    elif (cwd / "dashboard" / "serve.py").is_file():
        launcher = ["dashboard.serve"]
    else:
        launcher = ["streamlit", "run", "app.py"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            *launcher,
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180  # a loaded 2-core machine starts it slowly
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with status {proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("streamlit did not open its port within 180 s")
        yield url, started, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextlib.contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (``ps -o rss``)."""
    out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True)
    return int(out.stdout.strip() or 0) / 1024.0


# --- page actions -------------------------------------------------------------------------------
def caption(page, text: str):
    return page.get_by_test_id("stImageCaption").filter(has_text=re.compile(f"^{re.escape(text)}$"))


def wait_idle(page, timeout_s: float = PAGE_LIMIT_S) -> None:
    """Until the script run has finished (Streamlit's running indicator is gone)."""
    page.wait_for_timeout(400)
    page.wait_for_function(
        """() => { const app = document.querySelector('[data-testid="stApp"]');
                   return app && app.getAttribute('data-test-script-state') === 'notRunning'; }""",
        timeout=timeout_s * 1000,
    )
    page.wait_for_timeout(200)


def wait_maps(page, timeout_s: float = PAGE_LIMIT_S) -> None:
    """Both heatmaps of the Explain page are shown and the run is over."""
    page.get_by_test_id("stImageCaption").filter(
        has_text=re.compile(r"Grad-CAM\+\+")
    ).first.wait_for(timeout=timeout_s * 1000)
    wait_idle(page, timeout_s)


def errors(page) -> list[str]:
    found = page.locator(ERROR_SELECTOR)
    return [found.nth(i).inner_text() for i in range(found.count())]


def reveal(locator) -> None:
    """Open the collapsed expander (a ``<details>``) that holds ``locator``, if any: Explain
    keeps its display controls in one."""
    locator.wait_for(state="attached", timeout=PAGE_LIMIT_S * 1000)
    if locator.is_visible():
        return
    summary = locator.locator("xpath=ancestor::details[1]/summary")
    if summary.count():
        summary.first.click()
        locator.wait_for(state="visible", timeout=30_000)


def selectbox(page, label: str, text: str, where=None) -> None:
    """Choose, in the select box labelled ``label``, the first option containing ``text``
    (typed into the box's search field, then Enter: works for long, virtualised lists too)."""
    label_el = page.get_by_test_id("stWidgetLabel").filter(
        has_text=re.compile("^" + re.escape(label))
    )
    box = (where or page).get_by_test_id("stSelectbox").filter(has=label_el).first
    reveal(box)
    field = box.locator("input")
    for _ in range(3):
        field.click()
        field.fill(text)
        # Click the filtered option once the list shows it: pressing Enter at once can pick the
        # still-highlighted old option on a busy machine (seen when two servers shared 2 cores).
        option = page.get_by_role("option").filter(has_text=text).first
        try:
            option.wait_for(timeout=15_000)
            option.click()
        except Exception:
            field.press("Enter")
        # On a loaded machine the click can land while the list is still opening and choose
        # nothing: the typed text stays in the box and the browser sends nothing (seen in CI).
        # Leaving the box tells the two apart: without a choice it shows the old value again.
        field.blur()
        page.wait_for_timeout(150)
        if text.lower() in field.input_value().lower():
            return
    raise AssertionError(f"could not choose {text!r} in the select box {label!r}")


def selectbox_text(page, label: str) -> str:
    """What the select box labelled ``label`` shows."""
    label_el = page.get_by_test_id("stWidgetLabel").filter(
        has_text=re.compile("^" + re.escape(label))
    )
    box = page.get_by_test_id("stSelectbox").filter(has=label_el).first
    reveal(box)
    field = box.locator("input")
    shown = field.input_value() if field.count() else ""
    return shown or box.inner_text()


def slider_keys(
    page, label: str, key: str = "ArrowRight", times: int = 1, delay_ms: int = 0
) -> None:
    """Press ``key`` on the slider labelled ``label``."""
    thumb = _slider(page, label)
    thumb.focus()
    for _ in range(times):
        thumb.press(key)
        if delay_ms:
            page.wait_for_timeout(delay_ms)


def apply_noise(page) -> None:
    """Press "Apply noise" (the noise sliders sit in a form: nothing runs until then)."""
    page.get_by_role("button", name=re.compile("Apply noise")).first.click()


def _slider_box(page, label: str):
    label_el = page.get_by_test_id("stWidgetLabel").filter(
        has_text=re.compile("^" + re.escape(label))
    )
    box = page.get_by_test_id("stSlider").filter(has=label_el).first
    reveal(box)
    return box


def _slider(page, label: str):
    return _slider_box(page, label).get_by_role("slider")


def slider_value(page, label: str) -> str:
    """The value the slider labelled ``label`` shows above its thumb."""
    return _slider_box(page, label).get_by_test_id("stSliderThumbValue").first.inner_text().strip()


def query(page) -> dict[str, str]:
    """The page URL's query parameters."""
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(page.url).query))


def explained_text(page) -> str:
    """The "Class explained: ..." caption under the maps (read from the maps' own computation)."""
    loc = page.get_by_text(re.compile(r"^Class explained:"))
    return loc.first.inner_text() if loc.count() else ""


# --- the benchmark: cold start, concurrency, memory over many changes ---------------------------
SAVED_VIEW_NOTE = "Saved at an earlier start of this server"  # dashboard/frame/first_view.py


def _time_to_maps(browser, url: str, started: float, results: list, i: int) -> None:
    """Seconds to the first two maps on screen (the saved default view, when this server has
    one: ``saved``) and to the live page with its controls."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    caption(page, "Grad-CAM++").first.wait_for(timeout=PAGE_LIMIT_S * 1000)
    maps = round(time.monotonic() - started, 1)
    saved = page.get_by_text(SAVED_VIEW_NOTE).count() > 0
    page.get_by_text("Noise samples").first.wait_for(timeout=PAGE_LIMIT_S * 1000)
    results[i] = {"maps": maps, "saved": saved, "live": round(time.monotonic() - started, 1)}
    page.close()


def cold_start(n_sessions: int = 1) -> list[dict]:
    """For ``n_sessions`` opened at once: seconds from the server's start to both heatmaps
    (the saved default view, when there is one) and to the live page (``_time_to_maps``)."""
    import threading

    from playwright.sync_api import sync_playwright

    with streamlit_server("bench_streamlit.log") as (url, started, _proc):
        results: list = [None] * n_sessions

        def one(i: int) -> None:
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                try:
                    _time_to_maps(b, url, started, results, i)
                finally:
                    b.close()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n_sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results


LAYERS = (
    "block14_sepconv1_act",
    "block4_sepconv2_act",
    "block13_sepconv2_act",
    "block7_sepconv3_act",
    "block2_sepconv2_act",
    "block10_sepconv1_act",
    "block14_sepconv2_act",
)
CLASSES = ("bcc", "nv", "bkl", "mel")
SAMPLES = (
    "ISIC_0024338",
    "ISIC_0024550",
    "ISIC_0024669",
    "ISIC_0024793",
    "ISIC_0025319",
    "ISIC_0026154",
    "ISIC_0028410",
    "ISIC_0024367",
)
CMAPS = ("inferno", "jet", "magma", "viridis")


def many_changes(page, n_changes: int, on_change=None, max_samples: int = 16) -> None:
    """``n_changes`` ordinary changes in one session, each waited for: noise samples (up to
    ``max_samples`` and back), σ, layer, class, sample, colour map, in turn."""
    step = max(1, max_samples // 2)

    def samples(k: int) -> None:
        up = (k // 2) % 2 == 0
        slider_keys(page, "Noise samples", "ArrowRight" if up else "ArrowLeft", step)
        apply_noise(page)

    def sigma(k: int) -> None:
        slider_keys(page, "Noise σ", "ArrowRight", 1)
        apply_noise(page)

    actions = [
        samples,
        sigma,
        lambda k: selectbox(page, "Layer", LAYERS[k % len(LAYERS)]),
        lambda k: selectbox(page, "Class to explain", CLASSES[k % len(CLASSES)]),
        lambda k: selectbox(page, "Sample dermoscopy image", SAMPLES[k % len(SAMPLES)]),
        lambda k: selectbox(page, "Colour map", CMAPS[k % len(CMAPS)]),
    ]
    for k in range(n_changes):
        actions[k % len(actions)](k // len(actions))
        wait_maps(page)
        if on_change is not None:
            on_change(k)


def memory_run(
    n_sessions: int = 1, n_changes: int = 40, max_samples: int = 16, browser=None
) -> dict:
    """Server RSS after the first view and after ``n_changes`` changes in each of
    ``n_sessions`` sessions (driven one after another, all kept open) on a fresh server."""
    with contextlib.ExitStack() as stack:
        url, _started, proc = stack.enter_context(streamlit_server("bench_memory.log"))
        b = browser or stack.enter_context(chromium())
        pages = []
        for _ in range(n_sessions):
            page = b.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            wait_maps(page)
            pages.append(page)
        first = rss_mb(proc.pid)
        trace: list = []
        error = None
        try:
            for page in pages:
                many_changes(
                    page, n_changes, lambda k: trace.append(round(rss_mb(proc.pid))), max_samples
                )
        except Exception as exc:
            error = f"{type(exc).__name__} after {len(trace)} changes: {str(exc)[:200]}"
        last = rss_mb(proc.pid)
        for page in pages:
            page.close()
        time.sleep(3)
        closed = rss_mb(proc.pid)
        return {
            "sessions": n_sessions,
            "changes": n_changes,
            "rss_first_mb": round(first),
            "rss_last_mb": round(last),
            "rss_peak_mb": max(trace or [last]),
            "rss_after_close_mb": round(closed),
            "trace": trace,
            "error": error,
        }


# --- display-only settings: how long from the key press to the redrawn map ---------------------
def _first_map_src(page) -> str:
    img = page.locator('.st-key-maps_panel [data-testid="stImage"] img').nth(1)
    return img.get_attribute("src") or ""


# In the page: the time of the user's input (a key press, a click on a list option, any click)
# and the time the redrawn Grad-CAM overlay's new image has loaded, i.e. what the person sees.
_ARM_JS = """([kind, old, caption]) => {
  if (window.__redraw && window.__redraw.stop) window.__redraw.stop();
  const t = window.__redraw = {start: null, shown: null};
  const type = kind === 'key' ? 'keydown' : 'click';
  const on = (e) => {
    if (t.start !== null) return;
    if (kind === 'option' && !(e.target.closest && e.target.closest('[role="option"]'))) return;
    t.start = performance.now(); };
  document.addEventListener(type, on, true);
  const check = () => {
    if (caption !== null && t.start !== null && t.shown === null && [...document.querySelectorAll(
          '[data-testid="stCaptionContainer"]')].some(c => c.textContent.startsWith(caption))) {
      t.shown = performance.now(); return; }
    const i = document.querySelectorAll('.st-key-maps_panel [data-testid="stImage"] img')[1];
    if (t.shown !== null || t.start === null || !i || i.getAttribute('src') === old) return;
    const done = () => { if (t.shown === null) t.shown = performance.now(); };
    if (i.complete && i.naturalWidth) done(); else i.addEventListener('load', done, {once: true});
  };
  const obs = new MutationObserver(check);
  obs.observe(document.body, {subtree: true, childList: true, attributes: true,
                              attributeFilter: ['src']});
  t.stop = () => { obs.disconnect(); document.removeEventListener(type, on, true); };
}"""
_SHOWN_JS = """() => { const t = window.__redraw;
  return t && t.shown !== null ? {s: (t.shown - t.start) / 1000} : null; }"""


def timed_redraw(
    page, kind: str, action, timeout_s: float = PAGE_LIMIT_S, caption: str | None = None
) -> float:
    """Seconds from the user's input (``kind``: "key", "option" or "click") to the redrawn
    Grad-CAM overlay on screen (its new image loaded), or to a caption starting with
    ``caption``; timed in the page, so the test driver's own steps do not count. Raises
    ``AssertionError`` when it is not redrawn in ``timeout_s``."""
    page.evaluate(_ARM_JS, [kind, _first_map_src(page), caption])
    action()
    try:
        shown = page.wait_for_function(_SHOWN_JS, timeout=timeout_s * 1000).json_value()
    except Exception as exc:
        raise AssertionError(f"the overlay was not redrawn within {timeout_s:.0f} s") from exc
    finally:
        page.evaluate("() => window.__redraw && window.__redraw.stop()")
    return round(float(shown["s"]), 2)


def display_timing(repeats: int = 3) -> dict:
    """Seconds from a display-only change (opacity by one keyboard step, colour map, scale), and
    from another class to explain (both maps recomputed), to the redrawn Grad-CAM overlay on
    screen, on a warm server (docs/BENCHMARKS.md)."""
    out: dict = {"opacity": [], "cmap": [], "scale": [], "class": []}
    with contextlib.ExitStack() as stack:
        url, _started, _proc = stack.enter_context(streamlit_server("bench_display.log"))
        b = stack.enter_context(chromium())
        page = b.new_page(viewport={"width": 1280, "height": 720})
        page.goto(url)
        wait_maps(page)

        def timed(name: str, kind: str, action, caption: str | None = None) -> None:
            out[name].append(timed_redraw(page, kind, action, caption=caption))
            wait_idle(page)

        for k in range(repeats):
            timed(
                "opacity",
                "key",
                lambda: slider_keys(
                    page, "Overlay opacity", "ArrowRight" if k % 2 == 0 else "ArrowLeft"
                ),
            )
            timed(
                "cmap", "option", lambda: selectbox(page, "Colour map", CMAPS[(k + 1) % len(CMAPS)])
            )
            timed(
                "scale",
                "click",
                lambda: page.get_by_text(
                    "one scale for the maps on screen" if k % 2 == 0 else "each map's own maximum",
                    exact=True,
                ).click(),
            )
        # A recomputation of both maps: another class to explain, to the maps' caption naming it
        # (a weak class's overlay can look the same as the last one's).
        for k in range(repeats):
            code = CLASSES[k % len(CLASSES)]
            side = page.get_by_test_id("stSidebar")
            timed(
                "class",
                "option",
                lambda: selectbox(page, "Class to explain", code, side),
                caption=f"Class explained: {code} — ",
            )
        # A computation: noise samples applied; seconds until a spinner or progress bar shows.
        out["noise_feedback"] = []
        has_apply = page.get_by_role("button", name=re.compile("Apply noise")).count() > 0
        for k in range(repeats):
            if has_apply:
                slider_keys(page, "Noise samples", "ArrowRight", 4)
                t0 = time.monotonic()
                apply_noise(page)
            else:  # a checkout from before the form: the slider step itself reruns
                t0 = time.monotonic()
                slider_keys(page, "Noise samples", "ArrowRight", 4)
            page.locator('[data-testid="stSpinner"], [data-testid="stProgress"]').first.wait_for(
                timeout=PAGE_LIMIT_S * 1000
            )
            out["noise_feedback"].append(round(time.monotonic() - t0, 2))
            wait_maps(page)
        page.close()
    return out


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "cold"
    if what == "cold":
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 1
        print(json.dumps({"sessions": n, "seconds": cold_start(n)}))
    elif what == "all":  # every dashboard figure of docs/BENCHMARKS.md in one run
        changes = int(sys.argv[2]) if len(sys.argv) > 2 else 40
        report = {
            "load_average_at_start": os.getloadavg(),
            "cold_1": [cold_start(1)[0] for _ in range(5)],
            "cold_4": cold_start(4),
            "cold_8": cold_start(8),
        }
        print(json.dumps(report), flush=True)
        for sessions in (1, 8):
            report[f"memory_{sessions}"] = memory_run(sessions, changes, 16)
            print(json.dumps(report[f"memory_{sessions}"]), flush=True)
        report["load_average_at_end"] = os.getloadavg()
        (ROOT / "artifacts").mkdir(exist_ok=True)
        (ROOT / "artifacts" / "dashboard_bench.json").write_text(json.dumps(report, indent=1))
        print(json.dumps({k: v for k, v in report.items() if not k.startswith("memory")}))
    elif what == "display":
        print(json.dumps(display_timing(int(sys.argv[2]) if len(sys.argv) > 2 else 3)))
    elif what == "memory":
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 1
        changes = int(sys.argv[3]) if len(sys.argv) > 3 else 40
        top = int(sys.argv[4]) if len(sys.argv) > 4 else 16
        print(json.dumps(memory_run(n, changes, top)))
