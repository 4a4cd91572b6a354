"""One-line notices at the top of the main area: a value that fell back to its default, a bad
link, an error in a widget callback. A callback runs before the script, so its notices wait in
the session for the run's notice area (``notices_here``); during a run they are drawn at once."""

from __future__ import annotations

import re

import streamlit as st

_NOTICES = "_notices"
_NOTICE_BOX = "_notice_box"


# Markdown's (and Streamlit's) specials: emphasis, code, links and images ([...](...), ![...]),
# raw HTML and autolinks (<...>), maths ($), strike-through, colour directives (:red[...]).
_SPECIALS = re.compile(r"([\\`*_\[\]<>$~|#!])")
# Bare addresses that GitHub-flavoured Markdown turns into links *after* parsing (a search over
# the text, so no escape stops it): an invisible word joiner breaks each pattern.
_AUTOLINK = re.compile(r"(?i)(://|www(?=\.)|@)")
JOINER = "\u2060"


def plain(text: object) -> str:
    """``text`` (from a link, a file name, a class-names file, a model) made safe to put into
    Markdown: shown as the characters typed, never as a link, an image, HTML or formatting;
    on one line. Use it wherever such text goes into ``st.markdown``/``st.info``/a caption."""
    one_line = re.sub(r"[\r\n\t\v\f\u2028\u2029]+", " ", str(text))
    escaped = _SPECIALS.sub(r"\\\1", one_line)
    return _AUTOLINK.sub(lambda m: m.group(1)[0] + JOINER + m.group(1)[1:], escaped)


def code(text: object) -> str:
    """``text`` as an inline code span that it cannot close early (a layer's name from a
    user's model)."""
    return "`" + re.sub(r"[`\r\n]+", "'", str(text)) + "`"


def _run_id() -> object | None:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        return ctx.cursors if ctx is not None else None
    except Exception:
        return None


def _page_id() -> str | None:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        return ctx.page_script_hash if ctx is not None else None
    except Exception:
        return None


def notice(text: str, kind: str = "info") -> None:
    """Show a one-line notice (``kind`` "info" or "error") at the top of the main area: now if
    this run has its notice area, else at the start of the next run (from a callback)."""
    box = st.session_state.get(_NOTICE_BOX)
    if box is not None and box[0] is not None and box[0] is _run_id():
        _draw(box[1], kind, text)
        return
    queued = st.session_state.setdefault(_NOTICES, [])
    if (kind, text) not in queued:
        queued.append((kind, text))
    del queued[:-8]


def _draw(container, kind: str, text: str) -> None:
    if kind == "error":
        container.error(text, icon=":material/error:")
    else:
        container.info(text, icon=":material/info:")


def notices_here(container) -> None:
    """Make ``container`` this run's notice area and show the notices queued for it."""
    st.session_state[_NOTICE_BOX] = (_run_id(), container)
    for kind, text in st.session_state.pop(_NOTICES, []):
        _draw(container, kind, text)
