"""The one place where errors become messages.

``with guard("loading the model"):`` runs a block; an ``ExplainerError`` (the user's input
is wrong) becomes ``st.error`` with its plain one-line message, anything else (a bug)
becomes a plain ``st.error`` saying what failed, with the details logged on the server, not
shown. Streamlit's own control flow (``st.rerun``, ``st.stop``) derives from BaseException and
passes through untouched. After the block the page goes on rendering.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from dashboard.frame.notices import plain
from explainers.errors import ExplainerError

log = logging.getLogger("dashboard")


def message(exc: BaseException, what: str) -> str:
    """The text shown for an exception raised while doing ``what`` (both may hold a file's
    or a class's name: shown as typed, never as Markdown)."""
    what = plain(what)
    if isinstance(exc, ExplainerError):
        return f"Problem {what}: {plain(exc)}"
    if isinstance(exc, MemoryError):
        return f"Not enough memory while {what}. Try a smaller image, fewer noise samples or a later layer."
    return (
        f"Something went wrong while {what} ({type(exc).__name__}). The rest of the page still "
        "works; try another setting, and report this if it keeps happening."
    )


@contextmanager
def guard(what: str, container=None) -> Iterator[None]:
    """Show any error raised inside the block as ``st.error`` (in ``container`` if given)."""
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, ExplainerError):
            log.exception("unexpected error while %s", what)
        (container or st).error(message(exc, what), icon=":material/error:")
