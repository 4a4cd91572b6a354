"""The pieces under the Explain page's maps: the downloads row (overlays marked when they
failed the sanity checks, raw maps, the case report) and the figures for the technical reader
(raw maxima with their unit)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from dashboard.frame import loaders
from dashboard.page_parts.case_report import report_button
from dashboard.widgets.sidebar import Selection
from dashboard.widgets.views import Drawn, image_stem, method_titles
from explainers import marks, render
from explainers.methods import DEFAULT_METHODS, REGISTRY, method_label


def technical_notes(ex, container=None) -> None:
    """The figures under the maps for the technical reader: each map's raw maximum with its unit
    (one caption each, starting "raw max"), and why Grad-CAM++'s raw values are larger."""
    where = container or st
    titles = method_titles(ex)
    cams = [m for m in ex.maps if REGISTRY[m].cam]
    if not cams:
        return
    for m in cams:
        where.caption(
            f"raw max **{render.peak_of(ex.maps[m][0]):.3g}** {render.RAW_UNIT} — {titles[m]} "
            "(the class's pre-softmax score per activation unit, times the activation)"
        )
    gh, gw = ex.maps[cams[0]].shape[1:]
    filters = ex.activations.shape[-1] if ex.activations is not None else "?"
    where.caption(
        f"Grad-CAM++ sums α·relu(g) over the {gh * gw} cells of the {gh}×{gw} grid where "
        f"Grad-CAM averages g, so its raw values run up to {gh * gw / 2:.3g}× larger: compare "
        f"each map with itself. Layer `{ex.layer.path}`, {filters} filters."
    )


def overlay_png(
    disp: np.ndarray,
    cam: np.ndarray,
    cmap: str,
    opacity: float,
    peak: float | None,
    failing: bool = False,
):
    """A callable that writes the overlay (marked when its map failed the sanity checks) as
    PNG bytes when called: a download button's ``data``."""

    def write() -> bytes:
        pic = render.overlay(disp, cam, cmap=cmap, opacity=opacity, peak=peak)
        return loaders.png_bytes(marks.mark_unreliable(pic) if failing else pic)

    return write


def downloads(
    ex,
    sel: Selection,
    cmap: str,
    opacity: float,
    drawn: Drawn,
    failing: Sequence[str] = (),
    abs_max: float | None = None,
    later: dict | None = None,
) -> None:
    """Overlays (marked when they failed the sanity checks), raw maps and the case report, in
    one row."""
    stem = image_stem(sel)
    target = int(ex.targets[0])
    titles = method_titles(ex)
    d1, d2, d3, d4 = st.columns(4)
    disp = loaders.display_image(sel.image_digest, sel.image)
    # The files are written only when a button is clicked (a callable ``data``, run by
    # Streamlit on its own thread): encoding two PNGs on every display change cost ~0.5 s.
    for col, m in zip((d1, d2), DEFAULT_METHODS, strict=False):
        if m not in ex.maps:
            continue
        peak = None if drawn.scale == "own" else drawn.tops[titles[m]]
        col.download_button(
            f"{method_label(m)} (PNG)",
            overlay_png(disp, ex.maps[m][0], cmap, opacity, peak, m in failing),
            file_name=f"{stem}_{m.replace('+', 'pp')}.png",
            mime="image/png",
            key=f"dl:{m}",
            on_click="ignore",
            width="stretch",
            help="The overlay as shown (colour map, opacity, scale and any warning label)",
        )
    arrays = {m: ex.maps[m][0] for m in ex.maps}  # one array per method key
    label = sel.class_label(target)
    d3.download_button(
        "Raw maps (NPZ)",
        lambda: loaders.npz_bytes(
            **arrays,
            target=np.int64(target),
            layer=np.str_(ex.layer.path),
            n_samples=np.int64(ex.n_samples),
            sigma=np.float64(ex.sigma),
            class_name=np.str_(label),
        ),
        file_name=f"{stem}_maps.npz",
        mime="application/octet-stream",
        key="dl:npz",
        on_click="ignore",
        width="stretch",
    )

    items = [m for m in ex.maps if REGISTRY[m].cam]
    report_button(
        ex,
        sel,
        {m: titles[m] for m in items},
        cmap,
        opacity,
        drawn.scale,
        abs_max if drawn.scale == "absolute" else None,
        container=d4,
        later=later,
    )
