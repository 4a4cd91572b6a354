"""The dashboard holds up in real use, in headless Chromium against the server ``bash run.sh
dashboard`` starts (``python -m dashboard.frame.serve``, i.e. ``streamlit run app.py`` plus the warm-up):
two uploads in a row, fast clicks (samples 0.5 s apart, a class right after a sample, fifteen
slider steps), a bad link, a copied link reproducing the view in a new session, and the
server's memory over many changes. One server for the module (started cold, so the first test
also sees the warm-up); the memory test starts its own.

Skipped where Chromium or Playwright is missing, unless ``CI`` is set (then it fails).
"""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pytest
from PIL import Image

from tests import browser_support as bs

pytestmark = pytest.mark.slow

MEMORY_CHANGES = 40
MEMORY_BOUND_MB = 150  # issue 18: within +150 MB of the level after the first view (was 300)
MEMORY_PEAK_MB = 250  # and never more than +250 MB above it during the changes (block2 too)


def _need_browser() -> None:
    reason = bs.chromium_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so the browser tests must run)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    with bs.chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(browser):
    with bs.streamlit_server("streamlit_robust.log") as (url, started, proc):
        yield url, started, proc


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    p = context.new_page()
    p.goto(server[0])
    bs.wait_maps(p)
    yield p
    context.close()


def _no_errors(page, where: str) -> None:
    found = bs.errors(page)
    assert not found, f"{where}: {found}"
    assert page.get_by_text("This app has encountered an error").count() == 0, where


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def _recorded(page) -> str:
    """The sample id named under "Recorded diagnosis" (in its expander, opened if need be)."""
    loc = page.get_by_text(re.compile(r"from the HAM10000 record of"))
    if not loc.count():
        return ""
    bs.reveal(loc.first)
    return loc.first.inner_text()


def _upload(page, name: str, data: bytes, mime: str) -> None:
    field = page.get_by_test_id("stSidebar").get_by_test_id("stFileUploaderDropzoneInput")
    field.set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])


def test_two_uploads_in_a_row_then_unusual_images(page):
    """Issue 10: the second upload after a first one was explained wiped the page."""
    page.get_by_test_id("stSidebar").get_by_text("Upload", exact=True).click()
    page.get_by_text("Upload an image to explain it.").first.wait_for()
    rng = np.random.default_rng(0)
    first = Image.fromarray(rng.integers(0, 255, (180, 240, 3), dtype=np.uint8))
    _upload(page, "first.png", _png(first), "image/png")
    bs.caption(page, "Grad-CAM++").wait_for(timeout=bs.PAGE_LIMIT_S * 1000)
    bs.wait_maps(page)
    _no_errors(page, "first upload")
    unusual = [
        (
            "cmyk.jpg",
            _png(Image.new("CMYK", (300, 200), (10, 200, 30, 0)), "JPEG"),
            "image/jpeg",
            "300×200",
        ),
        (
            "deep.png",
            _png(Image.fromarray(rng.integers(0, 65535, (64, 96), dtype=np.uint16))),
            "image/png",
            "96×64",
        ),
        ("dot.png", _png(Image.new("RGB", (1, 1), (200, 40, 40))), "image/png", "1×1"),
    ]
    for name, data, mime, size in unusual:
        _upload(page, name, data, mime)
        page.get_by_test_id("stImageCaption").filter(has_text=f"Input ({size} px").wait_for(
            timeout=bs.PAGE_LIMIT_S * 1000
        )
        bs.wait_maps(page)
        _no_errors(page, f"upload of {name} after another upload")
        assert page.get_by_test_id("stSidebar").get_by_text("Model", exact=True).count() >= 1


def test_fast_sample_and_class_changes_end_on_the_last_choice(page):
    """Five samples 0.5 s apart, then a class 0.45 s after the last: no crash, and the view,
    the class box and the URL all show the last choice."""
    sidebar = page.get_by_test_id("stSidebar")
    chosen = ["ISIC_0024338", "ISIC_0024550", "ISIC_0024669", "ISIC_0024793", "ISIC_0028410"]
    for i, image_id in enumerate(chosen):
        bs.selectbox(page, "Sample dermoscopy image", image_id, sidebar)
        page.wait_for_timeout(450 if i == len(chosen) - 1 else 500)
    bs.selectbox(page, "Class to explain", "bcc", sidebar)
    bs.wait_maps(page)
    page.wait_for_timeout(1500)
    bs.wait_idle(page)
    _no_errors(page, "after fast sample and class changes")
    assert chosen[-1] in _recorded(page)
    assert bs.query(page).get("sample") == chosen[-1]
    # The class shown in the box is the class explained, in the text, the maps' caption and the
    # URL (the pick can be lost in the browser when it lands while the box is redrawn for the
    # new image; it must never be half-applied).
    box = bs.selectbox_text(page, "Class to explain")
    explained = bs.explained_text(page)
    code = re.match(r"Class explained: (\w+) ", explained).group(1)
    assert f"{code} — " in box, (box, explained)
    top1 = "top-1" in box
    assert ("target" in bs.query(page)) != top1, (bs.query(page), box)
    if not top1:
        assert bs.query(page)["target"] == str(
            ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"].index(code)
        )
    assert page.get_by_text(re.compile(f"^Class explained: {code} — ")).count() == 1


def test_fifteen_slider_steps_are_fifteen_and_one_run(page):
    """Issue 10: pressing the right arrow 15 times on the noise-samples slider ended at 14.
    Issue 17: each step started a rerun; now the steps stay in the form until Apply."""
    bs.slider_keys(page, "Noise samples", "ArrowRight", 15, delay_ms=120)
    page.wait_for_timeout(600)
    assert bs.query(page).get("samples") is None  # nothing applied yet
    bs.apply_noise(page)
    bs.wait_maps(page)
    page.wait_for_timeout(1000)
    bs.wait_maps(page)
    assert bs.slider_value(page, "Noise samples") == "15"
    assert bs.query(page).get("samples") == "15"
    assert bs.caption(page, "Smooth Grad-CAM++ (15 samples, σ=0.15)").count() == 1
    _no_errors(page, "after 15 slider steps")


def test_bad_link_values_say_so_and_keep_the_sample_data(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server[0] + "?sample=ISIC_9999999&cmap=rainbow&samples=-3")
    bs.wait_maps(page)
    info = page.get_by_test_id("stAlertContentInfo")
    texts = [info.nth(i).inner_text() for i in range(info.count())]
    assert any("cmap=rainbow" in t and "samples=-3" in t and "not valid" in t for t in texts), texts
    assert any("no bundled sample 'ISIC_9999999'" in t for t in texts), texts
    _no_errors(page, "bad link")
    # The first sample is shown with its recorded patient data, as choosing it would.
    assert page.get_by_text("Patient data given to the model: 35 years, female, trunk").count() == 1
    page.close()


def test_a_linked_sample_brings_its_patient_data_unless_the_link_overrides_it(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(server[0] + "?sample=ISIC_0028410")
    bs.wait_maps(page)
    assert page.get_by_text("Patient data given to the model: 45 years, male, arm").count() == 1
    page.goto(server[0] + "?sample=ISIC_0028410&age=70&site=trunk")
    bs.wait_maps(page)
    assert page.get_by_text("Patient data given to the model: 70 years, male, trunk").count() == 1
    page.close()


def test_a_copied_link_reproduces_the_view_in_a_new_session(browser, page):
    sidebar = page.get_by_test_id("stSidebar")
    bs.selectbox(page, "Sample dermoscopy image", "ISIC_0024550", sidebar)
    bs.wait_maps(page)
    bs.selectbox(page, "Class to explain", "nv", sidebar)
    bs.wait_maps(page)
    bs.slider_keys(page, "Noise samples", "ArrowRight", 2)
    bs.apply_noise(page)
    bs.wait_maps(page)
    bs.selectbox(page, "Colour map", "inferno")
    bs.wait_maps(page)
    bs.slider_keys(page, "Overlay opacity", "ArrowRight", 4)
    page.wait_for_url(re.compile(r"opacity=0\.70"))  # the address follows every change
    bs.wait_maps(page)
    shown = {
        m: _overlay_src(page, m)
        for m in ("Smooth Grad-CAM (2 samples, σ=0.15)", "Smooth Grad-CAM++ (2 samples, σ=0.15)")
    }
    assert all(shown.values()), shown
    frame = page.frame_locator('[data-testid="stSidebar"] iframe').first
    frame.get_by_role("button", name="Copy link").click()
    link = frame.locator("#link").inner_text().strip()
    assert link == page.url
    for part in ("sample=ISIC_0024550", "samples=2", "cmap=inferno", "opacity=0.70", "target="):
        assert part in link, link
    other = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    other.goto(link)
    bs.wait_maps(other)
    _no_errors(other, "the copied link")
    assert bs.slider_value(other, "Noise samples") == "2"
    assert bs.slider_value(other, "Overlay opacity") == "0.70"
    assert bs.selectbox_text(other, "Colour map") == "inferno"
    assert bs.explained_text(other).startswith("Class explained: nv")
    # The same pictures: Streamlit names media files by their content.
    for caption, src in shown.items():
        assert _overlay_src(other, caption).rsplit("/", 1)[-1] == src.rsplit("/", 1)[-1], caption
    other.context.close()


def _overlay_src(page, caption: str) -> str:
    return page.evaluate(
        """(cap) => { const c = [...document.querySelectorAll('[data-testid="stImageCaption"]')]
                        .find(e => e.textContent.trim() === cap);
                      const img = c && c.closest('[data-testid="stImage"]').querySelector('img');
                      return img ? img.src : ''; }""",
        caption,
    )


def test_memory_stays_bounded_over_many_changes(browser):
    """Issues 10 and 18: one session's 40 ordinary changes (noise samples up to 16, σ, layer,
    class, sample, colour map; 7 layers down to block2) end within +150 MB of the server's
    level after the first view and never rise above +250 MB during them (measured +77 to +81
    and +93 to +100 with the trim at the end of every run; +153 to +189 and +266 to +303
    without it, docs/BENCHMARKS.md)."""
    result = bs.memory_run(1, MEMORY_CHANGES, 16, browser=browser)
    print("memory:", {k: v for k, v in result.items() if k != "trace"})
    assert result["error"] is None, result
    growth = result["rss_last_mb"] - result["rss_first_mb"]
    assert growth <= MEMORY_BOUND_MB, result
    assert result["rss_peak_mb"] - result["rss_first_mb"] <= MEMORY_PEAK_MB, result
