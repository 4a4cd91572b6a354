"""Patient data follows the image: a sample brings its recorded age, sex and site (the
sidebar's ``prefill_metadata``); an upload or a camera photo is nobody's record, so they are
reset to unknown with a one-line notice instead of silently keeping the previous sample's.
``patient_section`` draws the sidebar's age, sex and site and encodes them for the model."""

from __future__ import annotations

import streamlit as st

from dashboard.frame import state
from dashboard.frame.errors import guard
from explainers import zoo

SEX_LABELS = {"female": "female", "male": "male", "unknown": "unknown"}
SITE_LABELS = {
    "arm": "arm (upper extremity, hand)",
    "head-or-neck": "head or neck (face, scalp, neck, ear)",
    "leg-or-genital": "leg or genital (lower extremity, foot, genital, acral)",
    "trunk": "trunk (back, abdomen, chest)",
    "unknown": "unknown",
}
_AGE_LAST = "_age_last"

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


def _age_to_widget(value):
    return int(value) if value is not None else int(st.session_state.get(_AGE_LAST, 50))


def patient_section(sel) -> None:
    """Age (or unknown), sex and body site; the model's metadata input in ``sel.extra``."""
    st.subheader("Patient")
    age = state.get(state.AGE)
    if age is not None:
        st.session_state[_AGE_LAST] = int(age)
    c1, c2 = st.container(), st.container()  # the number first, the checkbox under it
    with c2:
        unknown = st.checkbox(
            "Age unknown",
            help="Age not known: the model gets its training mean and a missing-age flag.",
            **state.bind(
                state.AGE,
                to_widget=lambda v: v is None,
                from_widget=lambda u: None if u else int(st.session_state.get(_AGE_LAST, 50)),
            ),
        )
    # A second widget on the same setting: its own key.
    wk = "w:age_years"
    stale_key = "_age_years_stale"
    if st.session_state.get(wk) != _age_to_widget(state.get(state.AGE)):  # see state.bind
        st.session_state[stale_key] = st.session_state.get(wk)
        st.session_state[wk] = _age_to_widget(state.get(state.AGE))

    @state.safe
    def age_changed() -> None:
        years = st.session_state.get(wk)
        stale = st.session_state.pop(stale_key, None)
        if years is None or years == stale:  # emptied, or the browser's echo of the age this
            return  # run replaced (it had not seen the new one)
        st.session_state[state.AGE] = int(years)
        st.session_state[_AGE_LAST] = int(years)
        st.session_state[state.widget_key(state.AGE)] = False

    with c1:
        st.number_input(
            "Age (years)",
            min_value=0,
            max_value=120,
            step=1,
            key=wk,
            disabled=unknown,
            on_change=age_changed,
        )
    sex = st.selectbox(
        "Sex",
        list(state.SEXES),
        format_func=SEX_LABELS.get,
        **state.bind(state.SEX, options=state.SEXES, labels=SEX_LABELS.get),
    )
    site = st.selectbox(
        "Body site",
        list(state.SITES),
        format_func=SITE_LABELS.get,
        **state.bind(state.SITE, options=state.SITES, labels=SITE_LABELS.get),
    )
    age = state.get(state.AGE)
    with guard("encoding the patient data"):
        sel.extra = [zoo.skin_lesion_metadata(age, sex, site)]
        sel.extra_token = ("meta", age, sex, site)
        sel.metadata_text = (
            f"{'age unknown' if age is None else f'{age} years'}, {sex}, {site.replace('-', ' ')}"
        )
