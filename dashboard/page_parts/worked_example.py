"""How it works, step 6: one grid cell and one filter worked out by hand, in tabs a lecturer can
click through. The cell is chosen by clicking the layer's grid over the image, the filter by
clicking a row of the table of the cell's largest terms (number inputs are the exact
fallback). Every number comes from ``dashboard.page_parts.teach`` reading the Explanation; the hand sums
are set beside the explainer's own map values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.frame import loaders
from dashboard.page_parts import teach
from dashboard.widgets import grid_pick
from explainers.methods import GRADCAMPP

CELL = "_teach_cell"  # [row, col] (session only)
FILTER = "_teach_filter"  # filter index (session only)
TABLE = "teach_terms"


def _n(x: float) -> str:
    return f"{x:.4g}"


def _choose_cell(cell) -> None:
    st.session_state[CELL] = [int(cell[0]), int(cell[1])]


def _grid_frame(values: np.ndarray, r0: int, c0: int, mark: tuple[int, int]):
    """A small grid as a styled table: rows and columns labelled by grid index, the chosen
    cell highlighted."""
    df = pd.DataFrame(
        values,
        index=[f"row {r0 + i}" for i in range(values.shape[0])],
        columns=[str(c0 + j) for j in range(values.shape[1])],
    )

    def highlight(data):
        out = pd.DataFrame("", index=data.index, columns=data.columns)
        r, c = mark[0] - r0, mark[1] - c0
        if 0 <= r < data.shape[0] and 0 <= c < data.shape[1]:
            out.iloc[r, c] = "background-color: #ffd400; color: black; font-weight: bold"
        return out

    return df.style.format("{:.3g}").apply(highlight, axis=None)


def _sum_line(terms, rest: float, total: float, others: int) -> str:
    parts = " + ".join(f"({_n(t.product)})" for t in terms)
    return f"{parts} + ({_n(rest)}, the other {others} terms) = **{_n(total)}**"


def step_worked(ex, sel) -> None:
    st.header("6 · A worked example: one cell, by hand")
    h, w, k = ex.activations.shape[1:]
    peak = teach.argmax_cell(ex.maps[GRADCAMPP][0])
    cell = st.session_state.get(CELL) or list(peak)
    row, col = min(max(0, int(cell[0])), h - 1), min(max(0, int(cell[1])), w - 1)
    st.markdown(
        f"Click a cell of the {h}×{w} grid, then a filter in the table: the tabs below "
        f"compute that cell of both maps term by term. Now: cell **({row}, {col})**."
    )
    left, right = st.columns([1, 1])
    disp = loaders.display_image(sel.image_digest, sel.image)
    mask = np.zeros((h, w), bool)
    mask[row, col] = True
    with left:
        grid_pick.pick(
            disp,
            (h, w),
            mask,
            key="teach_grid",
            on_cell=_choose_cell,
            on_box=lambda box: _choose_cell(box[:2]),
        )
        c1, c2 = st.columns(2)
        st.session_state["w:teach_row"], st.session_state["w:teach_col"] = row, col
        c1.number_input(
            "Row",
            0,
            h - 1,
            step=1,
            key="w:teach_row",
            on_change=lambda: _choose_cell((st.session_state["w:teach_row"], col)),
        )
        c2.number_input(
            "Column",
            0,
            w - 1,
            step=1,
            key="w:teach_col",
            on_change=lambda: _choose_cell((row, st.session_state["w:teach_col"])),
        )
    wc_all = teach.worked_cell(ex, row, col, 0, top=8)
    table = pd.DataFrame(
        [
            {
                "filter k": t.channel,
                "w (Grad-CAM++)": t.weight,
                f"A at ({row}, {col})": t.activation,
                "w·A": t.product,
            }
            for t in wc_all.terms_pp
        ]
    )
    default_filter = int(table["filter k"].iloc[0]) if len(table) else 0
    channel = st.session_state.get(FILTER)
    channel = default_filter if channel is None or not 0 <= int(channel) < k else int(channel)

    def table_clicked() -> None:
        try:
            rows = st.session_state[TABLE].selection.rows
            if rows:
                st.session_state[FILTER] = int(table["filter k"].iloc[rows[0]])
        except Exception:  # a callback must not raise
            pass

    with right:
        st.markdown(
            f"**The 8 largest Grad-CAM++ terms wₖ·Aₖ at cell ({row}, {col})** — click a "
            "row to follow that filter:"
        )
        st.dataframe(
            table,
            hide_index=True,
            key=TABLE,
            on_select=table_clicked,
            selection_mode="single-row",
            width="stretch",
            column_config={
                c: st.column_config.NumberColumn(c, format="%.4g")
                for c in table.columns
                if c != "filter k"
            },
        )
        st.session_state["w:teach_filter"] = channel
        st.number_input(
            f"Filter k (0 to {k - 1})",
            0,
            k - 1,
            step=1,
            key="w:teach_filter",
            on_change=lambda: st.session_state.__setitem__(
                FILTER, int(st.session_state["w:teach_filter"])
            ),
        )
    wc = teach.worked_cell(ex, row, col, channel, top=6)
    tabs = st.tabs(
        [
            f"① A and g of filter {channel}",
            "② its two weights",
            "③ Grad-CAM at the cell",
            "④ Grad-CAM++ at the cell",
            "⑤ What this implies",
        ]
    )
    z = h * w
    with tabs[0]:
        a_win, r0, c0 = teach.window(wc.a_grid, row, col)
        g_win, _, _ = teach.window(wc.g_grid, row, col)
        st.markdown(
            f"Filter {channel}'s activations $A_k$ (layer-output units) and gradients "
            f"$g_k = \\partial y^c / \\partial A_k$ (class-score units per activation "
            f"unit), rows {r0}–{r0 + a_win.shape[0] - 1}, columns "
            f"{c0}–{c0 + a_win.shape[1] - 1}; the chosen cell is highlighted."
        )
        a_col, g_col = st.columns(2)
        a_col.markdown("**A**")
        a_col.dataframe(_grid_frame(a_win, r0, c0, (row, col)), width="stretch")
        g_col.markdown("**g**")
        g_col.dataframe(_grid_frame(g_win, r0, c0, (row, col)), width="stretch")
    with tabs[1]:
        g_sum = float(wc.g_grid.sum())
        pos = wc.g_grid > 0
        st.markdown(
            f"**Grad-CAM:** $w_{{{channel}}} = \\frac{{1}}{{Z}}\\sum_{{ij}} g_{{ij}}$ = "
            f"{_n(g_sum)} / {z} = **{_n(wc.w_gc)}**"
        )
        a_sum = float(wc.a_grid.sum())
        st.markdown(
            f"**Grad-CAM++:** $w_{{{channel}}} = \\sum_{{ij}} \\alpha_{{ij}}\\,"
            f"\\mathrm{{relu}}(g_{{ij}})$ over the {int(pos.sum())} cells with $g > 0$; "
            f"$\\sum_{{ab}} A_{{ab}}$ = {_n(a_sum)}, mean α there = "
            f"{_n(float(wc.alpha_grid[pos].mean()) if pos.any() else 0.0)}, so "
            f"$w_{{{channel}}}$ = **{_n(wc.w_pp)}**."
        )
        if ex.n_samples == 0 and pos[row, col]:
            g = float(wc.g_grid[row, col])
            st.markdown(
                f"At cell ({row}, {col}): α = 1/(2 + g·ΣA) = 1/(2 + {_n(g)} × "
                f"{_n(a_sum)}) = **{_n(1.0 / (2.0 + g * a_sum))}** (the explainer: "
                f"{_n(float(wc.alpha_grid[row, col]))})."
            )
    with tabs[2]:
        _cell_sum("Grad-CAM", "", wc.terms_gc, wc.rest_gc, wc.total_gc, wc.map_gc, row, col, k)
    with tabs[3]:
        _cell_sum(
            "Grad-CAM++",
            " with the Grad-CAM++ weights",
            wc.terms_pp,
            wc.rest_pp,
            wc.total_pp,
            wc.map_pp,
            row,
            col,
            k,
        )
    with tabs[4]:
        facts = teach.implications(ex)
        st.markdown("\n".join(f"- {line}" for line in facts.statements()))


def _cell_sum(
    name: str, note: str, terms, rest, total: float, explainer: float, row: int, col: int, k: int
) -> None:
    """One method's value at the cell, term by term, beside the explainer's own value."""
    st.markdown(
        f"$L_{{\\text{{{name}}}}}({row},{col}) = \\mathrm{{ReLU}}\\big(\\sum_k "
        f"w_k A_k({row},{col})\\big)${note}: the largest of the {k} terms, then the rest:"
    )
    st.markdown(
        "\n".join(
            f"- $w_{{{t.channel}}} \\cdot A_{{{t.channel}}}$ = {_n(t.weight)} × "
            f"{_n(t.activation)} = {_n(t.product)}"
            for t in terms
        )
    )
    st.markdown(
        f"Sum: {_sum_line(terms, rest, total, k - len(terms))}; "
        f"ReLU → **{_n(max(total, 0.0))}**. The explainer's map at this cell: "
        f"**{_n(explainer)}** (class-score units)."
    )
