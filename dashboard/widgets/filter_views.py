"""What the Filters and neurons page (and How it works) draw from the layer's filters: the
typed index list, the top filters by weight, and the maps of a filter selection."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from dashboard.frame import loaders, state
from dashboard.widgets.sidebar import Selection
from dashboard.widgets.views import ABS_MAX, Drawn, MapItem, draw_maps, explained_class
from explainers import index_lists, render
from explainers.methods import REGISTRY

#: The most filters one list may select on a page (what the page can afford to compute).
MAX_LISTED = 256


def parse_indices(text: str, k: int) -> list[int]:
    """``"3, 10, 32"`` or ``"0-15, 40"`` → sorted unique indices below ``k``, at most
    ``MAX_LISTED``; ExplainerError in plain words otherwise (``explainers.index_lists``)."""
    return index_lists.parse_indices(text, k, max_count=MAX_LISTED)


def top_filters(weights: np.ndarray, k: int) -> list[int]:
    """Indices of the k largest weights (largest first)."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    return [int(i) for i in np.argsort(-w, kind="stable")[:k]]


def show_maps(
    ex,
    sel: Selection,
    captions: dict[str, str],
    cmap: str,
    opacity: float,
    columns: Sequence | None = None,
    scale: str | None = None,
) -> Drawn:
    """Every heatmap of ``ex`` in the given columns, at the page's colour scale, with raw
    maxima."""
    disp = loaders.display_image(sel.image_digest, sel.image)
    items = [MapItem(m, captions[m], ex.maps[m][0]) for m in ex.maps if REGISTRY[m].cam]
    cols = columns or st.columns(max(2, len(items)))
    scale = scale or (state.get(state.SCALE) if state.get(state.SCALE) in state.SCALES else "own")
    abs_max = st.session_state.get(ABS_MAX) or render.nice_ceiling(
        max(render.peak_of(it.cam) for it in items)
    )
    return draw_maps(disp, items, cols, cmap, opacity, scale, abs_max, explained_class(ex, sel))
