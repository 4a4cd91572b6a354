"""Explain's choice of methods (any method of the registry that needs no more than the one
gradient pass or the guided input gradient; Score-CAM lives on Compare, where its cost is shown
before it runs) and the drawing of input-sized maps (guided backprop), which are images, not
heatmaps on the layer's grid."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from dashboard.frame import state
from explainers.methods import COUNTERFACTUAL, DEFAULT_METHODS, REGISTRY, method_keys, method_label
from explainers.methods.guided import to_image

#: What Explain offers: every method but those that cost extra forward passes per channel.
EXPLAIN_METHODS = tuple(k for k in method_keys() if "forward" not in REGISTRY[k].needs)


def method_controls() -> tuple[list[str], bool]:
    """The methods to draw and whether to draw each map's localisation box."""
    c1, c2 = st.columns([5, 2], vertical_alignment="bottom")
    chosen = c1.multiselect(
        "Methods",
        list(EXPLAIN_METHODS),
        format_func=method_label,
        help="Grad-CAM-family maps share one gradient pass, so adding them costs almost nothing; "
        "guided backprop and Guided Grad-CAM add one input-gradient pass. Score-CAM (K "
        "forward passes) is on the Compare page.",
        **state.bind(
            state.METHODS,
            to_widget=lambda v: [k for k in (v or []) if k in EXPLAIN_METHODS],
            from_widget=lambda v: list(v) if v else list(DEFAULT_METHODS),
        ),
    )
    box = c2.toggle(
        "Localisation boxes",
        help="The largest region at or above 15 % of each map's maximum "
        "(Grad-CAM §4.1), as a white box in the image's pixels.",
        **state.bind(state.BOX, from_widget=bool),
    )
    chosen = [k for k in chosen if k in REGISTRY] or list(DEFAULT_METHODS)
    return chosen, bool(box)


def split(methods: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(heatmaps on the layer's grid, input-sized maps): computed and drawn apart, so a model
    without ReLUs loses only its guided maps, never the heatmaps."""
    cams = tuple(m for m in methods if REGISTRY[m].cam)
    pixels = tuple(m for m in methods if not REGISTRY[m].cam)
    return cams or DEFAULT_METHODS, pixels


def draw_pixel_maps(ex, columns: Sequence) -> None:
    """Guided maps as images at the model input's size: grey = 0, bright = positive."""
    for col, m in zip(columns, [m for m in ex.maps if not REGISTRY[m].cam], strict=False):
        pixel = np.asarray(ex.maps[m][0])
        col.image(
            to_image(pixel),
            caption=method_label(m),
            width="stretch",
            alt=f"{method_label(m)}: the input gradient at {pixel.shape[0]}×"
            f"{pixel.shape[1]} px; grey is 0, bright is positive, dark is negative.",
        )
        col.caption(
            f"max |value| **{float(np.abs(pixel).max()):.3g}** (class score per unit of "
            "the model's input); grey = 0"
        )


def blank_note(method: str, title: str) -> str:
    """What a map that is 0 everywhere means, in words (shown instead of an untinted photo)."""
    against = method == COUNTERFACTUAL
    return (
        f"**No evidence {'against' if against else 'for'} the class** at this layer: the "
        f"{title} map is 0 everywhere"
        + (" (nothing here would raise the class score if removed)." if against else ".")
    )
