"""Issue 17 in a real browser (headless Chromium) on a fresh install: with an EMPTY sanity
cache, the first view of the dashboard says, without any click and above y = 900 px at
1280×720, that Grad-CAM++ must not be read as evidence on this model; the Explain page fits in
1800 px with its details collapsed; on a phone the maps come before the controls; and the case
report the button downloads is the one ``python -m explainers report`` writes, with the
verdicts on page 1."""

import io
import re
import subprocess
import sys

import pytest

from tests.browser_support import caption, chromium, chromium_missing, streamlit_server, wait_maps

pytestmark = pytest.mark.slow

SENTENCE = re.compile(
    r"^Do not read this map as evidence: it stays the same when the model's weights are random"
)
MAX_PAGE_PX = 1800


@pytest.fixture(scope="module")
def empty_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("sanity_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLAINERS_SANITY_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def running(empty_cache):
    missing = chromium_missing()
    if missing:
        pytest.skip(missing)
    with streamlit_server("verdicts_streamlit.log") as (url, _started, _proc), chromium() as b:
        yield url, b


def _column_of(page, title: str):
    """The maps panel's column holding the picture captioned ``title``."""
    return (
        page.locator('.st-key-maps_panel [data-testid="stColumn"]')
        .filter(has=caption(page, title))
        .first
    )


def _page_height(page) -> float:
    return page.evaluate("""() => document.querySelector('[data-testid="stMainBlockContainer"]')
                                   .getBoundingClientRect().height""")


def _text(pdf: bytes) -> list[str]:
    import pypdf

    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    return [
        re.sub(
            r"Created \d{4}-\d\d-\d\d \d\d:\d\d UTC",
            "Created <date>",
            " ".join(p.extract_text().split()),
        )
        for p in pages
    ]


def test_first_view_says_grad_cam_pp_is_not_evidence_and_the_page_fits(
    running, empty_cache, tmp_path
):
    url, b = running
    page = b.new_page(viewport={"width": 1280, "height": 720})
    page.goto(url)
    wait_maps(page)
    column = _column_of(page, "Grad-CAM++")
    sentence = column.get_by_text(SENTENCE)
    assert sentence.count() == 1, column.inner_text()
    box = sentence.bounding_box()
    assert box["y"] + box["height"] <= 900, box  # without any click or scroll
    assert "Passed the checks" in _column_of(page, "Grad-CAM").inner_text()
    alt = column.locator("img").first.get_attribute("alt")
    assert alt.startswith("Marked 'do not read as evidence'"), alt  # marked on the picture itself
    height = _page_height(page)
    print(f"Explain at 1280x720 with details collapsed: {height:.0f} px")
    assert height <= MAX_PAGE_PX
    assert not list(empty_cache.glob("*.json"))  # known, not computed

    # the button's report is the command's report, verdicts on page 1
    with page.expect_download(timeout=180000) as info:
        page.get_by_role("button", name="Case report (PDF)").click()
    button = _text(open(info.value.path(), "rb").read())
    from explainers.zoo import list_samples

    s = list_samples()[0]
    out = tmp_path / "cli.pdf"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "explainers",
            "report",
            "--model",
            "skin-lesion",
            "--image",
            str(s.path),
            "--age",
            f"{s.age:g}",
            "--sex",
            s.sex,
            "--site",
            s.localization,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    command = _text(out.read_bytes())
    for n, (a, c) in enumerate(zip(button, command, strict=False)):
        if a != c:  # the first differing words, readable
            wa, wc = a.split(), c.split()
            i = next(
                (k for k, (x, y) in enumerate(zip(wa, wc, strict=False)) if x != y),
                min(len(wa), len(wc)),
            )
            pytest.fail(
                f"page {n + 1} differs at word {i}: button {wa[max(0, i - 8) : i + 8]} "
                f"vs command {wc[max(0, i - 8) : i + 8]}"
            )
    assert len(button) == len(command) and button == command
    assert "Passed the checks" in button[0] and "Do not read this map as evidence" in button[0]
    page.close()


def test_on_a_phone_the_maps_come_first(running):
    url, b = running
    page = b.new_page(viewport={"width": 420, "height": 900})
    page.goto(url)
    wait_maps(page)
    pp = (
        page.locator('[data-testid="stImage"]')
        .filter(has=caption(page, "Grad-CAM++"))
        .bounding_box()
    )
    methods = page.get_by_test_id("stMultiSelect").first.bounding_box()
    assert pp["y"] < methods["y"], (pp, methods)
    assert page.get_by_text(SENTENCE).count() == 1
    page.close()


def test_check_now_runs_the_sanity_check_in_place(running, empty_cache):
    """At a layer without a shipped measurement, each map says it is not checked yet and offers
    "Check now"; one click runs the check on this page (with its progress) and both maps then
    carry a verdict, stored in the disk cache."""
    url, browser = running
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(url + "?layer=xception/block13_sepconv2_act", timeout=120_000)
    wait_maps(page)
    panel = page.locator(".st-key-maps_panel")
    assert panel.get_by_text("Not checked yet").count() == 2
    page.get_by_role("button", name="Check now").first.click()
    verdicts = panel.get_by_text(
        re.compile(r"^(Passed the checks|Do not read this map as evidence)")
    )
    verdicts.nth(1).wait_for(timeout=600_000)
    assert verdicts.count() == 2 and panel.get_by_text("Not checked yet").count() == 0
    assert len(list(empty_cache.glob("*.json"))) >= 2  # kept for the next visitor
    page.close()
