"""Pointing at the layer's grid: the image with the grid drawn over it as an Altair chart, where
a click chooses a cell and a drag chooses a box (Streamlit's own chart selection,
``st.altair_chart(..., on_select=...)``). Rows and columns are labelled on the axes; grid lines
are drawn twice, dark and wide under light and thin, so they show on pale and dark skin.

The selection is turned into settings in a callback (which runs before the script and must not
raise); sliders elsewhere on the page stay the exact fallback.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import numpy as np
import streamlit as st
from PIL import Image

CELL = "cell"  # the point selection's name
BOX = "box"  # the interval selection's name
MAX_CELLS = 64 * 64  # above this the cells are too small to click; the sliders remain
CHART_PX = 290  # with its axes it fits half the page at 1280 px beside the sidebar


def _data_url(image: np.ndarray, max_side: int = 512) -> str:
    im = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    scale = min(1.0, max_side / max(im.size))
    if scale < 1.0:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def cells_from_box(box: dict, grid: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """An interval selection ``{"col": [x0, x1], "row": [y0, y1]}`` in grid coordinates (cell
    (r, c) spans c..c+1 and r..r+1) → inclusive ``(row0, col0, row1, col1)``, clamped; None
    when the box is empty or unreadable."""
    h, w = grid
    try:
        x0, x1 = sorted(float(v) for v in box["col"])
        y0, y1 = sorted(float(v) for v in box["row"])
    except (KeyError, TypeError, ValueError):
        return None
    if not all(np.isfinite([x0, x1, y0, y1])):
        return None
    c0, c1 = int(np.floor(x0)), int(np.ceil(x1)) - 1
    r0, r1 = int(np.floor(y0)), int(np.ceil(y1)) - 1
    c0, r0 = max(0, c0), max(0, r0)
    c1, r1 = min(w - 1, max(c0, c1)), min(h - 1, max(r0, r1))
    if c0 > w - 1 or r0 > h - 1:
        return None
    return r0, c0, r1, c1


def clicked_cells(points: list, grid: tuple[int, int]) -> list[tuple[int, int]]:
    """A point selection's rows ``[{"row": r, "col": c}, ...]`` → valid (row, col) cells."""
    h, w = grid
    out = []
    for p in points or []:
        try:
            r, c = int(p["row"]), int(p["col"])
        except (KeyError, TypeError, ValueError):
            continue
        if 0 <= r < h and 0 <= c < w:
            out.append((r, c))
    return out


def grid_chart(image: np.ndarray, grid: tuple[int, int], chosen: np.ndarray | None):
    """The Altair chart: image, clickable cells (chosen ones tinted), double grid lines,
    labelled axes, and the two selections."""
    import altair as alt
    import pandas as pd

    h, w = grid
    H, W = np.asarray(image).shape[:2]
    rows, cols = np.mgrid[0:h, 0:w]
    mask = np.zeros((h, w), bool) if chosen is None else np.asarray(chosen, bool)
    show_tint = mask.any() and not mask.all()
    cells = pd.DataFrame(
        {"row": rows.ravel(), "col": cols.ravel(), "chosen": mask.ravel() & show_tint}
    )
    cells["row_end"], cells["col_end"] = cells["row"] + 1, cells["col"] + 1
    cells["cell"] = [
        f"row {r}, column {c}" for r, c in zip(cells["row"], cells["col"], strict=False)
    ]
    step = max(1, max(h, w) // 16)
    x = alt.X(
        "col:Q",
        scale=alt.Scale(domain=[0, w], nice=False, zero=False),
        axis=alt.Axis(
            title="column",
            values=[c + 0.5 for c in range(0, w, step)],
            labelExpr="floor(datum.value)",
            grid=False,
            orient="top",
        ),
    )
    y = alt.Y(
        "row:Q",
        scale=alt.Scale(domain=[h, 0], nice=False, zero=False),
        axis=alt.Axis(
            title="row",
            values=[r + 0.5 for r in range(0, h, step)],
            labelExpr="floor(datum.value)",
            grid=False,
        ),
    )
    width = CHART_PX
    height = max(80, round(CHART_PX * H / max(W, 1)))
    picture = (
        alt.Chart(
            pd.DataFrame({"x": [0], "y": [0], "x2": [w], "y2": [h], "url": [_data_url(image)]})
        )
        .mark_image(aspect=False, align="left", baseline="top")
        .encode(
            x=alt.X("x:Q", scale=alt.Scale(domain=[0, w], nice=False)),
            y=alt.Y("y:Q", scale=alt.Scale(domain=[h, 0], nice=False)),
            x2="x2:Q",
            y2="y2:Q",
            url="url:N",
        )
    )
    point = alt.selection_point(
        name=CELL, fields=["row", "col"], on="click", clear=False, toggle=False
    )
    box = alt.selection_interval(
        name=BOX,
        encodings=["x", "y"],
        mark=alt.BrushConfig(fill="#ffd400", fillOpacity=0.2, stroke="#ffd400"),
    )
    rects = (
        alt.Chart(cells)
        .mark_rect(stroke=None)
        .encode(
            x=x,
            x2="col_end:Q",
            y=y,
            y2="row_end:Q",
            color=alt.condition("datum.chosen", alt.value("#ffd400"), alt.value("#ffffff")),
            opacity=alt.condition("datum.chosen", alt.value(0.45), alt.value(0.001)),
            tooltip=[alt.Tooltip("cell:N", title="cell")],
        )
        .add_params(point, box)
    )
    lines_r = pd.DataFrame({"v": np.arange(0, h + 1, step)})
    lines_c = pd.DataFrame({"v": np.arange(0, w + 1, step)})
    layers = [picture, rects]
    for color, size, opacity in (("#000000", 3, 0.55), ("#ffffff", 1, 0.9)):
        layers.append(
            alt.Chart(lines_r)
            .mark_rule(color=color, strokeWidth=size, opacity=opacity)
            .encode(y=alt.Y("v:Q", scale=alt.Scale(domain=[h, 0], nice=False)))
        )
        layers.append(
            alt.Chart(lines_c)
            .mark_rule(color=color, strokeWidth=size, opacity=opacity)
            .encode(x=alt.X("v:Q", scale=alt.Scale(domain=[0, w], nice=False)))
        )
    return (
        alt.layer(*layers)
        .properties(width=width, height=height, autosize=alt.AutoSizeParams(type="pad"))
        .configure_axis(labelFontSize=13, titleFontSize=13, labelOverlap=False)
        .configure_view(stroke=None)
    )


def pick(
    image: np.ndarray,
    grid: tuple[int, int],
    chosen: np.ndarray | None,
    key: str,
    on_cell: Callable[[tuple[int, int]], None],
    on_box: Callable[[tuple[int, int, int, int]], None],
) -> None:
    """Draw the chart; a click calls ``on_cell((row, col))``, a drag ``on_box((r0, c0, r1, c1))``
    (both from Streamlit's selection callback, guarded so it cannot raise)."""
    h, w = grid
    if h * w > MAX_CELLS:
        st.caption(f"The {h}×{w} grid is too fine to click; use the sliders.")
        return

    def changed() -> None:
        try:
            event = st.session_state.get(key) or {}
            selection = event.get("selection", {}) if isinstance(event, dict) else event.selection
            box = selection.get(BOX) or {}
            cells = clicked_cells(selection.get(CELL) or [], grid)
            if box:
                found = cells_from_box(box, grid)
                if found is not None:
                    on_box(found)
                    return
            if cells:
                on_cell(cells[-1])
        except Exception:  # a callback must never raise; the sliders remain
            pass

    st.altair_chart(
        grid_chart(image, grid, chosen),
        key=key,
        on_select=changed,
        selection_mode=[CELL, BOX],
        width="content",
        alt=f"The image with the layer's {h}×{w} grid; click a cell or drag a box.",
    )
