"""Explain's maps panel: the input beside its maps, each with its verdict in one plain
sentence, the colour bar, the display controls and the downloads. A fragment of its own, so a
display-only change (colour map, opacity, scale) reruns only this, from maps already computed.
Built from ``views`` (drawing the maps) and ``panel_parts`` (the downloads)."""

from __future__ import annotations

import streamlit as st

from dashboard.frame import first_view, loaders, state
from dashboard.frame.notices import code, plain
from dashboard.widgets import verdict_views
from dashboard.widgets.method_views import draw_pixel_maps
from dashboard.widgets.panel_parts import downloads
from dashboard.widgets.sidebar import Selection
from dashboard.widgets.views import (
    ABS_MAX,
    PANEL_CSS,
    MapItem,
    colorbar,
    display_controls,
    draw_maps,
    explained_class,
    method_titles,
)
from explainers import render
from explainers.methods import REGISTRY
from explainers.trust.verdicts import FAIL, UNKNOWN


@st.fragment
def maps_panel(
    ex,
    sel: Selection,
    pixel_ex=None,
    boxes: bool = False,
    report_extras: dict | None = None,
    recorder: first_view.Recorder | None = None,
) -> None:
    """Input | Grad-CAM | Grad-CAM++, each map with its sanity verdict in one plain sentence
    under it (a failing map also marked on the picture), the colour bar, then the display
    controls (collapsed) and the downloads. A fragment: colour map, opacity and scale rerun only
    this, from maps already computed. Every caption is read from ``ex``; while the page reruns,
    the whole panel is faded (``PANEL_CSS``) until it is redrawn. Raw maxima and the other
    figures are in the trust section's "Details for the technical reader". With ``recorder``
    (the default view of a plain first visit), what the input and map columns show is kept
    for the next server start (``first_view``)."""
    st.markdown(PANEL_CSS, unsafe_allow_html=True)
    with st.container(key="maps_panel"):
        cmap, opacity = state.get(state.CMAP), float(state.get(state.OPACITY))
        scale = state.get(state.SCALE) if state.get(state.SCALE) in state.SCALES else "own"
        disp = loaders.display_image(sel.image_digest, sel.image)
        titles = method_titles(ex)
        items = [MapItem(m, titles[m], ex.maps[m][0]) for m in ex.maps if REGISTRY[m].cam]
        abs_max = st.session_state.get(ABS_MAX) or render.nice_ceiling(
            max(render.peak_of(it.cam) for it in items)
        )
        n_pixel = len(pixel_ex.maps) if pixel_ex is not None else 0
        per_row = 3 if len(items) + n_pixel <= 2 else 4
        cols = [
            c
            for row in range(-(-(1 + len(items) + n_pixel) // per_row))
            for c in st.columns(per_row)
        ]
        if recorder is not None:  # a closed one returns the columns as they are
            cols[: 1 + len(items)] = [recorder.column(c) for c in cols[: 1 + len(items)]]
        h, w = sel.bundle.input_size
        class_text = explained_class(ex, sel)
        n_s, sig = int(ex.n_samples), float(ex.sigma)
        judged = verdict_views.verdicts_for(sel, [it.method for it in items], n_s, sig)
        failing = [m for m, (v, _) in judged.items() if v.level == FAIL]
        missing = [m for m, (v, _) in judged.items() if v.level == UNKNOWN]

        def sentence(col, it: MapItem) -> None:
            verdict_views.show_sentence(
                col, it.method, judged[it.method][0], sel, missing, n_s, sig
            )

        cols[0].image(
            disp,
            caption=f"Input ({sel.image.width}×{sel.image.height} px; the model sees {w}×{h})",
            width="stretch",
            alt=f"The input image, {sel.image_name or 'image'}.",
        )
        drawn = draw_maps(
            disp,
            items,
            cols[1:],
            cmap,
            opacity,
            scale,
            abs_max,
            class_text,
            boxes=boxes,
            failing=failing,
            under_image=sentence,
            raw_notes=False,
        )
        if pixel_ex is not None:
            draw_pixel_maps(pixel_ex, cols[1 + len(items) :])
        gh, gw = ex.maps[items[0].method].shape[1:]
        left, right = st.columns([3, 2], vertical_alignment="center")
        colorbar(drawn, cmap, left)
        note = (
            f"Class explained: **{plain(class_text)}** · layer {code(ex.layer.path)} ({gh}×{gw} "
            "grid) · bright = where the model found evidence for this class."
        )
        right.caption(note)
        if recorder is not None:
            recorder.note = note
        with st.expander("Display: colour map, opacity, colour scale"):
            display_controls(default_abs=abs_max)
        downloads(ex, sel, cmap, opacity, drawn, failing, abs_max, report_extras)
