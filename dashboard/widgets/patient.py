"""Patient data follows the image: a sample brings its recorded age, sex and site (the
sidebar's ``prefill_metadata``); an upload or a camera photo is nobody's record, so they are
reset to unknown with a one-line notice instead of silently keeping the previous sample's."""

from __future__ import annotations

from dashboard.frame import state

PATIENT_RESET = (
    "A new image: its patient data (age, sex, body site) is set to unknown; "
    "set it in the sidebar if you know it."
)


def reset_patient() -> None:
    """Age, sex and site back to unknown (from a callback); the notice only when one of them
    was known."""
    known = (
        state.get(state.AGE) is not None
        or state.get(state.SEX) != "unknown"
        or state.get(state.SITE) != "unknown"
    )
    state.set(state.AGE, None)
    state.set(state.SEX, "unknown")
    state.set(state.SITE, "unknown")
    if known:
        state.notice(PATIENT_RESET)
