"""What a person relies on in a real browser (headless Chromium, as in tests/test_browser.py):
the maps above the fold at 1280×720 with their raw maxima and text alternatives, the shared
colour scale in raw values, no stale caption after changing the class, and a click on the
layer's grid choosing a neuron. Screenshots at 1280×720 and 420 px for the README and docs
(written to docs/screenshots/ when UPDATE_DOC_SCREENSHOTS is set)."""

import os
import re

import pytest

from tests.test_browser import (
    CHROMIUM,
    COLD_START_LIMIT_S,
    DOC_SHOTS,
    PAGE_LIMIT_S,
    SHOTS,
    _caption,
    _need,
    _no_errors,
    _streamlit_server,
    _wait_idle,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    import shutil
    from pathlib import Path

    _need(
        Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is not None,
        f"no Chromium at {CHROMIUM}: install Debian's chromium package",
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
                "--no-first-run",
                "--disable-background-networking",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(browser):
    with _streamlit_server() as running:
        yield running[0]


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    if os.environ.get("UPDATE_DOC_SCREENSHOTS"):
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOC_SHOTS / f"{name}.png"))


def _panel_text(page) -> str:
    return page.locator(".st-key-maps_panel").inner_text()


def _alts(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll('.st-key-maps_panel img')]
                                   .map(i => i.getAttribute('alt') || '')""")


def test_explain_at_1280x720_honest_scale_and_never_stale(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(server)
    _caption(page, "Grad-CAM++").wait_for(timeout=COLD_START_LIMIT_S * 1000)
    _wait_idle(page)
    _no_errors(page, "Explain")
    # the maps are above the fold, each with its verdict under it and its raw maximum in its
    # text alternative (the figures themselves are in "Details for the technical reader")
    box = (
        page.locator('[data-testid="stImage"]')
        .filter(has=_caption(page, "Grad-CAM++"))
        .bounding_box()
    )
    assert box["y"] + box["height"] - 40 <= 720, box  # the picture (not its caption) is visible
    text = _panel_text(page)
    assert "Passed the checks" in text and "Do not read this map as evidence" in text, text
    alts = _alts(page)
    assert all(alts) and any("strongest at grid cell" in a for a in alts), alts
    assert len(re.findall(r"raw maximum [0-9.e+-]+ class-score units", " ".join(alts))) == 2, alts
    _shot(page, "explain")

    # the shared scale: the colour bar is in raw values (its text alternative and ticks say so)
    page.get_by_text("Display: colour map, opacity, colour scale").click()
    page.get_by_text("one scale for the maps on screen").click()
    page.wait_for_function(
        """() => [...document.querySelectorAll('.st-key-maps_panel img')]
        .some(i => (i.getAttribute('alt') || '').startsWith('Colour bar: raw map value'))""",
        timeout=60000,
    )
    _wait_idle(page)
    bar = next(a for a in _alts(page) if a.startswith("Colour bar"))
    peak = max(float(v) for v in re.findall(r"raw maximum ([0-9.e+-]+)", " ".join(_alts(page))))
    assert re.search(r"0 to ([0-9.e+-]+)$", bar) and float(bar.rsplit(" ", 1)[1]) == pytest.approx(
        peak, rel=1e-2
    )
    _shot(page, "explain_shared_scale")

    # change the class: after the run, every caption in the panel names the new class
    box = (
        page.get_by_test_id("stSidebar")
        .get_by_test_id("stSelectbox")
        .filter(has_text="Class to explain")
    )
    box.scroll_into_view_if_needed()
    box.locator("input").click()
    page.keyboard.type("nv")
    page.keyboard.press("Enter")
    stale_seen = False
    for _ in range(40):  # while computing, the old panel is faded, not removed
        faded = page.evaluate("""() => [...document.querySelectorAll(
            '.st-key-maps_panel [data-stale="true"]')].some(e => parseFloat(getComputedStyle(e).opacity) < 0.6)""")
        stale_seen = stale_seen or faded
        if "nv" in _panel_text(page).split("Class explained:")[-1][:40]:
            break
        page.wait_for_timeout(100)
    _wait_idle(page)
    text = _panel_text(page)
    assert "Class explained: nv" in text, text
    assert all("for class nv" in a for a in _alts(page) if "heatmap" in a)
    _no_errors(page, "Explain after the class change")
    print("faded panel seen while computing:", stale_seen)

    # the case report: one PDF, downloaded and read back
    pypdf = pytest.importorskip("pypdf")
    with page.expect_download(timeout=120000) as info:
        page.get_by_role("button", name="Case report (PDF)").click()
    path = info.value.path()
    reader = pypdf.PdfReader(str(path))
    assert len(reader.pages) >= 2
    text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages)
    assert "Research model, not a diagnostic device" in text
    assert "class explained nv — melanocytic nevus" in text and "raw max" in text
    assert "SHA-256 of model.keras" in text
    # the trust card of the same view, in words (the verdicts come from the disk cache only)
    assert "How far to trust the maps" in text and "class sensitivity" in text


def test_narrow_screen_starts_with_the_sidebar_closed(browser, server):
    page = browser.new_page(viewport={"width": 420, "height": 900})
    page.goto(server)
    _caption(page, "Grad-CAM++").wait_for(timeout=PAGE_LIMIT_S * 1000)
    _wait_idle(page)
    sidebar = page.get_by_test_id("stSidebar").bounding_box()
    # collapsed: the sidebar takes (almost) none of the screen, and the maps are in view
    assert sidebar is None or sidebar["x"] + sidebar["width"] < 60, sidebar
    assert (
        page.locator('[data-testid="stImage"]').filter(has=_caption(page, "Grad-CAM")).is_visible()
    )
    _shot(page, "explain_420px")


def test_a_click_on_the_grid_chooses_a_neuron(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server + "filters_neurons")
    page.get_by_text("Map from these filters only").wait_for(timeout=PAGE_LIMIT_S * 1000)
    _wait_idle(page)
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    chart.scroll_into_view_if_needed()
    # the plot area inside the chart: the frame's offset and size, read from the SVG
    frame = page.evaluate("""() => {
        const svg = document.querySelector('[data-testid="stVegaLiteChart"] svg');
        const g = svg.querySelector('g[transform]');
        const m = /translate\\(([-0-9.]+),([-0-9.]+)\\)/.exec(g.getAttribute('transform'));
        const d = svg.querySelector('.role-frame > g > path.background').getAttribute('d');
        const s = /h([0-9.]+)v([0-9.]+)/.exec(d);
        const r = svg.getBoundingClientRect();
        return {x: r.x + parseFloat(m[1]), y: r.y + parseFloat(m[2]), w: parseFloat(s[1]), h: parseFloat(s[2])};
    }""")
    row, col = 2, 5
    page.mouse.click(
        frame["x"] + (col + 0.5) * frame["w"] / 8, frame["y"] + (row + 0.5) * frame["h"] / 8
    )
    _caption(page, f"Grad-CAM++ — positions ({row}, {col})").wait_for(timeout=PAGE_LIMIT_S * 1000)
    _wait_idle(page)
    _no_errors(page, "Filters and neurons after a click")
    assert page.get_by_role("radio", name="Individual positions").is_checked()
    _shot(page, "filters_neurons")


def test_worked_example_tabs(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(server + "how_it_works")
    page.get_by_text("6 · A worked example: one cell, by hand").wait_for(
        timeout=PAGE_LIMIT_S * 1000
    )
    _wait_idle(page)
    _no_errors(page, "How it works")
    page.get_by_role("tab", name="⑤ What this implies").click()
    page.get_by_text(re.compile("α ≈ ½ everywhere")).wait_for(timeout=30000)
    page.get_by_role("tab", name="⑤ What this implies").scroll_into_view_if_needed()
    page.mouse.wheel(0, 250)
    page.wait_for_timeout(300)
    # no formula runs past the right edge of the main area
    overflow = page.evaluate("""() => { const main = document.querySelector('[data-testid="stMain"]')
        .getBoundingClientRect(); return [...document.querySelectorAll('.katex-display')]
        .filter(k => k.getBoundingClientRect().right > main.right + 1).length; }""")
    assert overflow == 0
    _shot(page, "how_it_works")


def test_dark_theme_colour_bar_is_transparent_with_light_text(browser, monkeypatch):
    import base64
    import io

    import numpy as np
    from PIL import Image

    with _streamlit_server() as (url, _):
        # The theme follows the system: a browser whose system prefers dark gets the dark theme.
        page = browser.new_page(viewport={"width": 1280, "height": 720}, color_scheme="dark")
        page.goto(url)
        _caption(page, "Grad-CAM++").wait_for(timeout=COLD_START_LIMIT_S * 1000)
        _wait_idle(page)
        src = page.evaluate("""() => [...document.querySelectorAll('.st-key-maps_panel img')]
            .find(i => (i.getAttribute('alt') || '').startsWith('Colour bar')).src""")
        data = page.evaluate(
            """async (u) => { const b = await (await fetch(u)).arrayBuffer();
            return btoa(String.fromCharCode(...new Uint8Array(b))); }""",
            src,
        )
        bar = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGBA"))
        Image.fromarray(bar).save(SHOTS / "colourbar_dark.png")
        assert bar[0, 0, 3] == 0  # transparent background: the dark page shows through
        text = bar[(bar[..., 3] > 200) & (bar[..., :3].min(axis=-1) > 200)]
        assert len(text) > 50  # light tick labels, readable on the dark background
        _shot(page, "explain_dark")
