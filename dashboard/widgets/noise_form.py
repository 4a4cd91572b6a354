"""The noise controls shared by Explain, Compare and Evaluate: samples, σ and seed in a form,
committed together by one "Apply noise" button. Every noisy sample costs a gradient pass, and
a slider outside a form started a run per keyboard step (issue 17)."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from dashboard.frame import state

NOISE_FORM = "noise_form"
NOISE_APPLY = "w:noise_apply"


def _apply(commits: Sequence) -> None:
    for commit in commits:  # each wrapped by state.safe: never raises
        commit()


def noise_controls() -> tuple[int, float, int]:
    """Samples (0–50), sigma (0.00–1.00) and seed, shared by all pages. In a form: dragging a
    slider or stepping it with the keyboard recomputes nothing until "Apply noise" is pressed
    (every noisy sample costs a gradient pass; a rerun per keyboard step queued minutes)."""
    kws = [
        state.bind(state.N_SAMPLES),
        state.bind(state.SIGMA, from_widget=lambda v: round(float(v), 2)),
        state.bind(state.SEED),
    ]
    commits = tuple(kw.pop("on_change") for kw in kws)  # a form's widgets take no callbacks
    with st.form(NOISE_FORM, border=False, enter_to_submit=False):
        # The button's column fits its label at 1280 px (no icon: it would cut the label).
        c1, c2, c3, c4 = st.columns([3, 3, 1.2, 1.5], vertical_alignment="bottom")
        c1.slider(
            "Noise samples (0 = plain Grad-CAM / Grad-CAM++)",
            0,
            state.MAX_SAMPLES,
            step=1,
            help="Smooth Grad-CAM++: average the gradients over this many noisy copies. "
            "Applied with the button.",
            **kws[0],
        )
        c2.slider(
            "Noise σ (fraction of the image's value range)",
            0.0,
            1.0,
            step=0.01,
            format="%.2f",
            help="Standard deviation of the Gaussian noise, as a fraction "
            "of (max − min) of the preprocessed image. Used when samples > 0.",
            **kws[1],
        )
        c3.number_input(
            "Seed",
            min_value=0,
            max_value=2**31 - 1,
            step=1,
            help="Same seed, same noise, same smoothed maps.",
            **kws[2],
        )
        c4.form_submit_button(
            "Apply noise",
            on_click=_apply,
            args=(commits,),
            key=NOISE_APPLY,
            type="primary",
            width="stretch",
        )
    return (
        int(state.get(state.N_SAMPLES)),
        float(state.get(state.SIGMA)),
        int(state.get(state.SEED)),
    )
