"""Text from links, file names, class-names files and models is shown as typed: never as a
link, an image, HTML or formatting (``dashboard.frame.notices.plain``), checked by rendering
what the page sends through a CommonMark renderer, and on the running app with AppTest."""

import html
import re

import pytest
from markdown_it import MarkdownIt

from dashboard.frame.notices import JOINER, code, plain
from tests.helpers import new_app, run, small_cnn

LINK = "[Session expired: sign in again](https://evil.example/login)"
BEACON = "![t](http://evil.example/beacon.png)"
HOSTILE = [
    LINK,
    BEACON,
    "<img src=x onerror=alert(1)>",
    "**bold** _it_ `code` $x$ ~~s~~",
    ":red[alarm] <https://evil.example>",
    "line one\n# heading\n- item",
]


def rendered(markdown: str) -> str:
    return MarkdownIt("commonmark").render(markdown)


def shown_text(markdown: str) -> str:
    """What a reader sees: the rendered HTML without tags, entities decoded (and without the
    invisible word joiners that break bare addresses)."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered(markdown))).replace(JOINER, "").strip()


@pytest.mark.parametrize("text", HOSTILE)
def test_plain_text_renders_as_the_characters_typed(text):
    out = rendered(f"Model {plain(text)} is not available")
    for tag in ("<a ", "<img", "<strong", "<em", "<code", "<h1", "<li", "<script"):
        assert tag not in out, out
    assert (
        shown_text(f"Model {plain(text)} is not available")
        == f"Model {' '.join(text.split(chr(10)))} is not available"
    )


def test_bare_addresses_are_not_turned_into_links():
    # GitHub-flavoured Markdown (Streamlit's) links bare http://, www. and e-mail addresses by
    # searching the parsed text, so escapes do not stop it: an invisible word joiner does (this
    # is the pattern remark-gfm searches for, checked in a real browser too).
    gfm = re.compile(r"(?i)(https?://|www(?=\.))[-.\w]+|[-.\w+]+@[-\w]+(\.[-\w]+)+")
    typed = "go to https://evil.example or WWW.evil.example or me@evil.example"
    assert len(gfm.findall(typed)) == 3
    out = plain(typed)
    assert not gfm.search(out.replace("\\", "")), out
    assert shown_text(out) == typed


def test_code_spans_cannot_be_closed_early():
    out = rendered(f"layer {code('x`[a](http://e)`y')}")
    assert "<a " not in out and out.count("<code>") == 1


# --- on the running app ---------------------------------------------------------------------------
def _page_markdown(at) -> list[str]:
    return (
        [m.value for m in at.markdown]
        + [c.value for c in at.caption]
        + [i.value for i in at.info]
        + [w.value for w in at.warning]
        + [e.value for e in at.error]
    )


def _assert_safe(values: list[str], typed: str) -> None:
    hits = [v for v in values if typed in shown_text(v)]
    assert hits, values
    for v in hits:
        out = rendered(v)
        assert "<a " not in out and "<img" not in out, out


@pytest.mark.slow
@pytest.mark.parametrize("typed", [LINK, BEACON])
def test_a_hostile_model_name_in_a_link_is_shown_as_text(typed):
    at = run(new_app(model=typed))
    notices = [i.value for i in at.info]
    _assert_safe(notices, typed)
    assert any("is not available here" in n for n in notices)


@pytest.mark.slow
def test_a_hostile_sample_name_in_a_link_is_shown_as_text():
    at = run(new_app(sample=BEACON))
    _assert_safe([i.value for i in at.info], BEACON)


@pytest.mark.slow
def test_class_names_from_a_file_are_shown_as_text(tmp_path):
    small_cnn().save(tmp_path / "cnn.keras")
    names = f"{LINK}\n{BEACON}\n<b>third</b>\n".encode()
    at = run(new_app())
    at.selectbox(key="w:model").set_value("upload")
    run(at)
    at.file_uploader(key="w:model_file").set_value(
        ("cnn.keras", (tmp_path / "cnn.keras").read_bytes(), "application/octet-stream")
    )
    at.file_uploader(key="w:class_names").set_value(("names.txt", names, "text/plain"))
    run(at)
    assert not at.error, [e.value for e in at.error]
    values = _page_markdown(at)
    prediction = [v for v in values if v.startswith("**Prediction:**")]
    explained = [v for v in values if v.startswith("Class explained:")]
    assert prediction and explained, values
    for v in prediction + explained:
        out = rendered(v)
        assert "<a " not in out and "<img" not in out and "<b>" not in out, out
    shown = " ".join(shown_text(v) for v in prediction + explained)
    assert any(n in shown for n in (LINK, BEACON, "<b>third</b>")), shown
