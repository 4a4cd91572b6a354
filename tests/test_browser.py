"""The dashboard in a real browser: ``streamlit run app.py`` in a subprocess, opened in headless
Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright). Waits for both heatmaps, visits
every page, checks that no exception or error box shows anywhere, saves screenshots and measures
the cold start and a display-only change.

Skipped (with the reason) where Chromium or Playwright is missing, unless ``CI`` is set: then it
fails, because CI installs them (``.ci/run``).
"""

import contextlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.browser_support import caption as _caption
from tests.browser_support import selectbox, streamlit_server, timed_redraw
from tests.browser_support import wait_idle as _wait_idle
from tests.browser_support import wait_maps as _wait_maps

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "screenshots"
DOC_SHOTS = ROOT / "docs" / "screenshots"
COLD_START_LIMIT_S = 180  # catches hangs only: the 8 s goal is measured on a quiet machine by
#   `python tests/browser_support.py cold 1` (docs/BENCHMARKS.md), not beside pytest and Chromium
PAGE_LIMIT_S = 240
ERROR_SELECTOR = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def _need(condition: bool, reason: str) -> None:
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so the browser test must run)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    _need(
        Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is not None,
        f"no Chromium at {CHROMIUM}: install Debian's chromium package (apt-get install chromium)",
    )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "the playwright Python package is not installed (requirements-dev.txt)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(browser):
    """A fresh ``streamlit run app.py``; yields (url, start time)."""
    with _streamlit_server() as running:
        yield running


@contextlib.contextmanager
def _streamlit_server():
    """A fresh ``streamlit run app.py`` (tests/browser_support.py): yields (url, start time)."""
    with streamlit_server() as (url, started, _proc):
        yield url, started


def _no_errors(page, where: str) -> None:
    found = page.locator(ERROR_SELECTOR)
    texts = [found.nth(i).inner_text() for i in range(found.count())]
    assert not texts, f"{where}: {texts}"


def _shot(page, name: str) -> None:
    """A picture for artifacts/ only: the README's (1280×720, docs/screenshots/) come from
    tests/test_browser_ui.py, which owns those names."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def _nav(page):
    """The app's page links at the top of the sidebar."""
    return page.get_by_test_id("stSidebar").locator('[data-testid="stPageLink-NavLink"]')


def _go(page, title: str) -> None:
    _nav(page).filter(has_text=re.compile(f"{re.escape(title)}$")).first.click()


def test_every_page_in_a_real_browser(browser, server):
    url, started = server
    page = browser.new_page(viewport={"width": 1440, "height": 1500})
    timings = {}

    # 1. cold start: a fresh server to both heatmaps of the default view
    page.goto(url)
    _caption(page, "Grad-CAM").wait_for(timeout=COLD_START_LIMIT_S * 1000)
    _caption(page, "Grad-CAM++").wait_for(timeout=COLD_START_LIMIT_S * 1000)
    timings["cold_start_s"] = round(time.monotonic() - started, 1)
    _wait_idle(page)
    _no_errors(page, "Explain")
    assert page.get_by_text("Recorded diagnosis").count() >= 1
    # The table (in its expander) is a component loaded on first use: wait for it rather than
    # count at once.
    page.get_by_text("Prediction of every class and the recorded diagnosis").click()
    page.get_by_test_id("stDataFrame").first.wait_for(timeout=PAGE_LIMIT_S * 1000)
    page.get_by_text("Heatmaps", exact=True).scroll_into_view_if_needed()
    _shot(page, "explain")

    # 2. a display-only change (colour map): the overlays are redrawn from cached maps
    _wait_idle(page)
    # viridis is the default; the helper opens the expander. Timed in the page: from the click on
    # the option to the new overlay on screen.
    timings["colormap_change_s"] = timed_redraw(
        page, "option", lambda: selectbox(page, "Colour map", "inferno"), timeout_s=60
    )
    _wait_idle(page)
    _no_errors(page, "Explain after the colour map change")

    # 3. smoothed maps from a link: the captions say so (a new session from the URL)
    t0 = time.monotonic()
    page.goto(url + "?samples=4")
    smooth = "Smooth Grad-CAM++ (4 samples, σ=0.15)"
    _caption(page, smooth).wait_for(timeout=PAGE_LIMIT_S * 1000)
    timings["smooth_4_samples_page_s"] = round(time.monotonic() - t0, 1)
    _wait_idle(page)
    _no_errors(page, "Explain with 4 noise samples")
    _shot(page, "explain_smooth")

    # 4. every other page, with the settings carried over (the smoothed captions)
    _go(page, "Filters and neurons")
    page.get_by_text("Map from these filters only").wait_for(timeout=PAGE_LIMIT_S * 1000)
    _caption(page, f"{smooth} — all positions").wait_for(timeout=PAGE_LIMIT_S * 1000)
    _wait_idle(page)
    _no_errors(page, "Filters and neurons")
    assert (
        page.get_by_test_id("stImageCaption")
        .filter(has_text=re.compile(r"^filter \d+: w = "))
        .count()
        == 8
    )
    _shot(page, "filters_neurons")

    _go(page, "How it works")
    page.get_by_text("5 · The differences, on this image").wait_for(timeout=PAGE_LIMIT_S * 1000)
    _wait_idle(page)
    _no_errors(page, "How it works")
    assert page.locator(".katex").count() >= 5
    assert page.get_by_text("Now: 4 noisy copies").count() >= 1
    _shot(page, "how_it_works")

    if (ROOT / "pages" / "evaluate.py").is_file():
        _go(page, "Evaluate")
        page.get_by_text("Evaluate the maps").first.wait_for(timeout=PAGE_LIMIT_S * 1000)
        _wait_idle(page)
        _no_errors(page, "Evaluate")
        _shot(page, "evaluate")

    # 5. back to Explain: still smoothed, and the URL keeps it for a reload
    _go(page, "Explain")
    _caption(page, smooth).wait_for(timeout=PAGE_LIMIT_S * 1000)
    _wait_idle(page)
    _no_errors(page, "Explain, second visit")
    assert "samples=4" in page.url

    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS.parent / "browser_timings.json").write_text(json.dumps(timings, indent=2))
    print("browser timings:", timings)
    assert timings["cold_start_s"] < COLD_START_LIMIT_S


def test_keras_application_offline_path_in_a_real_browser(browser, server):
    """Choosing MobileNetV2: offline, a warning and the way on with random weights (online, the
    ImageNet model itself); either way both heatmaps and no error box."""
    url, _ = server
    page = browser.new_page(viewport={"width": 1440, "height": 1500})
    page.goto(url)
    _caption(page, "Grad-CAM++").wait_for(timeout=PAGE_LIMIT_S * 1000)
    _wait_idle(page)
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name=re.compile(r"^MobileNetV2")).click()
    offline = page.get_by_text("could not be downloaded")
    heatmap = _caption(page, "Grad-CAM++")
    deadline = time.monotonic() + PAGE_LIMIT_S
    _wait_idle(page)
    while time.monotonic() < deadline and offline.count() == 0 and heatmap.count() == 0:
        page.wait_for_timeout(500)
    _no_errors(page, "MobileNetV2")
    if offline.count():
        _shot(page, "offline_warning")
        page.get_by_role("button", name="Continue with random weights").click()
        _caption(page, "Grad-CAM++").wait_for(timeout=PAGE_LIMIT_S * 1000)
        _wait_idle(page)
        assert page.get_by_text("every prediction is meaningless").count() >= 1
        _shot(page, "random_weights")
    else:
        heatmap.wait_for(timeout=PAGE_LIMIT_S * 1000)
        _wait_idle(page)
    _no_errors(page, "MobileNetV2 explained")
    assert _caption(page, "Grad-CAM").count() == 1


def test_first_visit_straight_to_a_page_uses_the_app_navigation(browser):
    """A fresh server whose first visitor opens /how_it_works (a bookmark, a reload): the page
    list is the app's (Explain, ..., Evaluate), not Streamlit's file names (app, evaluate, ...),
    and the shared sidebar is there."""
    with _streamlit_server() as (url, _):
        page = browser.new_page(viewport={"width": 1440, "height": 1500})
        page.goto(url + "how_it_works")
        page.get_by_text("1 · The class score").wait_for(timeout=COLD_START_LIMIT_S * 1000)
        _wait_idle(page)
        _no_errors(page, "How it works, opened directly")
        nav = _nav(page)
        assert nav.filter(has_text=re.compile("Explain$")).count() == 1
        assert nav.filter(has_text=re.compile("How it works$")).count() == 1
        assert nav.filter(has_text=re.compile("^app$")).count() == 0
        assert page.get_by_test_id("stSidebarNav").count() == 0  # no list of file names
        assert page.get_by_test_id("stSidebar").get_by_text("Model", exact=True).count() >= 1
        _shot(page, "how_it_works_direct")


def test_a_restarted_server_shows_the_saved_default_view_until_the_live_one_is_ready(
    browser, tmp_path, monkeypatch
):
    """The first plain visit saves the default view (dashboard/frame/first_view.py); after a
    restart, a plain visit shows it, labelled as saved, while TensorFlow loads, and the live
    page (with its controls) then replaces it. A visit with link parameters never gets it."""
    monkeypatch.setenv("EXPLAINERS_FIRST_VIEW", str(tmp_path))
    saved_note = "Saved at an earlier start of this server"
    with _streamlit_server() as (url, _):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        _wait_maps(page)
        assert page.get_by_text(saved_note).count() == 0  # nothing saved yet: nothing shown
        page.close()
    assert (tmp_path / "explain.json").is_file()
    with _streamlit_server() as (url, started):
        linked = browser.new_page(viewport={"width": 1280, "height": 900})
        linked.goto(url + "?cmap=magma")  # not the default view: waits for the live page
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        _caption(page, "Grad-CAM++").first.wait_for(timeout=COLD_START_LIMIT_S * 1000)
        preview_s = time.monotonic() - started
        assert page.get_by_text(saved_note).count() == 1, "the first maps were not the saved view"
        assert page.get_by_text("Do not read this map as evidence").count() >= 1
        assert linked.get_by_text(saved_note).count() == 0
        _shot(page, "explain_saved_first_view")
        _wait_maps(page)
        live_s = time.monotonic() - started
        assert page.get_by_text(saved_note).count() == 0  # replaced by the live page
        assert page.get_by_text("Noise samples").count() >= 1
        _no_errors(page, "Explain after the saved first view")
        print(f"saved view after {preview_s:.1f} s, live page after {live_s:.1f} s")
        _wait_maps(linked)
        assert linked.get_by_text(saved_note).count() == 0
        page.close()
        linked.close()
