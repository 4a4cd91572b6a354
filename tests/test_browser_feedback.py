"""Issue 17 in a real browser (headless Chromium): the page follows a dark system theme and the
menu (top right) switches it; no select box in the sidebar cuts its choice at 1280×720; the
noise sliders wait for "Apply noise"; no text in the main area of a page is cut at 1280×720."""

import re

import pytest

from tests import browser_support as bs

pytestmark = pytest.mark.slow

CUT_SELECT_BOXES = """() => [...document.querySelectorAll('[data-testid="stSidebar"] [data-testid="stSelectbox"] input')]
    .filter(i => i.scrollWidth > i.clientWidth + 1).map(i => i.value)"""


@pytest.fixture(scope="module")
def browser():
    missing = bs.chromium_missing()
    if missing:
        pytest.skip(missing)
    with bs.chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(browser):
    with bs.streamlit_server("feedback_streamlit.log") as running:
        yield running[0]


def _luminance(css: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_a_dark_system_theme_is_followed_and_the_settings_menu_is_reachable(browser, server):
    ctx = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="dark")
    page = ctx.new_page()
    page.goto(server)
    bs.wait_maps(page)
    background = page.evaluate(
        """() => getComputedStyle(document.querySelector('[data-testid="stApp"]')).backgroundColor"""
    )
    assert _luminance(background) < 0.3, background
    # The menu (top right) offers the theme: System, Light, Dark; Light turns the page light.
    page.get_by_test_id("stMainMenu").click()
    menu = page.get_by_test_id("stMainMenuPopover")
    menu.wait_for(timeout=10_000)
    lines = [t.strip() for t in menu.inner_text().splitlines()]
    for choice in ("System", "Light", "Dark"):
        assert choice in lines, lines
    menu.get_by_text(re.compile(r"Light$")).last.click()
    page.wait_for_function(
        """() => { const c = getComputedStyle(document.querySelector('[data-testid="stApp"]'))
                   .backgroundColor.match(/\\d+/g).map(Number);
                   return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255 > 0.7; }""",
        timeout=10_000,
    )
    ctx.close()


def test_sidebar_select_boxes_show_their_whole_choice_at_1280(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(server)
    bs.wait_maps(page)
    assert page.evaluate(CUT_SELECT_BOXES) == []
    for sample in ("ISIC_0024338", "ISIC_0024669"):  # the longest diagnosis names
        bs.selectbox(page, "Sample dermoscopy image", sample, page.get_by_test_id("stSidebar"))
        bs.wait_maps(page)
        assert page.evaluate(CUT_SELECT_BOXES) == [], sample
    page.close()


# Text whose box clips it (overflow hidden or an ellipsis), in the main area; KaTeX's hidden
# MathML copy and Streamlit's scrolling tab bar are not text a reader sees cut.
CUT_TEXT = """() => [...document.querySelectorAll('[data-testid="stMain"] *')]
  .filter(e => !e.closest('.katex-mathml') && !e.closest('[role="tablist"]'))
  .filter(e => { const s = getComputedStyle(e);
     const clips = s.overflowX !== 'visible' || s.textOverflow === 'ellipsis' || e.tagName === 'INPUT';
     const text = e.tagName === 'INPUT' ? e.value : e.textContent.trim();
     return clips && text && text.length < 300 && e.clientWidth > 0
            && e.scrollWidth > e.clientWidth + 1; })
  .map(e => (e.value || e.textContent).slice(0, 60))"""


@pytest.mark.parametrize(
    ("path", "title"),
    [
        ("", "Explain a prediction"),
        ("trust", "Can these maps be trusted?"),
        ("compare", "Compare the methods"),
        ("evaluate", "Evaluate the maps"),
        ("filters_neurons", "Filters and neurons"),
        ("audit", "Audit a dataset"),
    ],
)
def test_no_text_is_cut_on_the_pages_at_1280(browser, server, path, title):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(server.rstrip("/") + "/" + path)
    page.get_by_role("heading", name=title).first.wait_for(timeout=bs.PAGE_LIMIT_S * 1000)
    if not path:
        bs.wait_maps(page)
    page.wait_for_timeout(1500)  # then wait for the run to end
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=bs.PAGE_LIMIT_S * 1000)
    assert page.evaluate(CUT_TEXT) == [], path
    page.close()
