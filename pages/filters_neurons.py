"""Filters and neurons: per-filter maps with their weights, and maps restricted to chosen
positions of the layer's grid."""

import streamlit as st

from dashboard.frame import loaders, state
from dashboard.frame.errors import guard
from dashboard.frame.notices import code, plain
from dashboard.widgets import filter_views, grid_pick, method_views, sidebar, views
from explainers import render
from explainers.methods import REGISTRY, method_label

GRID_COLUMNS = 6
MAX_DRAWN = 48

sel = sidebar.selection()
st.title("Filters and neurons")
st.caption(
    "A Grad-CAM map is a weighted sum of the layer's feature maps (filters), "
    "L = ReLU(Σₖ wₖ·Aₖ). Look at the terms one by one, or keep only some positions of "
    "the layer's grid (neurons)."
)


def noise_note(n_samples: int, sigma: float) -> str:
    if n_samples > 0:
        return (
            f"Smoothed: {n_samples} noise samples, σ = {sigma:.2f} of the image range "
            "(set on the Explain page)."
        )
    return "No noise samples (set on the Explain page)."


def filters_section(base, n_samples, sigma, seed, cmap, opacity):
    st.header("Filters")
    k_total = base.activations.shape[-1]
    offered = [m for m in base.maps if REGISTRY[m].cam]
    method = st.selectbox(
        "Method of the filter terms",
        offered,
        format_func=method_label,
        help="The methods chosen on the Explain page. Each picture below is one filter's term "
        "of this method's sum (HiResCAM and LayerCAM weigh every position: wᵢⱼₖ·Aᵢⱼₖ).",
        **state.bind(state.FILTER_METHOD, options=offered, labels=method_label),
    )
    name = method_label(method)
    weights = filter_weights(base, method)
    mode = st.radio(
        "Choose filters",
        list(state.FILTER_MODES),
        horizontal=True,
        format_func={"top k": f"Top k by {name} weight", "list": "By index (list or ranges)"}.get,
        **state.bind(state.FILTER_MODE),
    )
    channels = None
    if mode == "top k":
        if state.get(state.TOP_K) > min(64, k_total):
            state.set(state.TOP_K, min(64, k_total))
        k = st.slider(
            "k (number of filters)", 1, min(64, k_total), step=1, **state.bind(state.TOP_K)
        )
        channels = filter_views.top_filters(weights, k)
    else:
        text = st.text_input(
            f"Filter indices (0 to {k_total - 1})",
            placeholder="e.g. 10, 32, 3 or 0-15",
            **state.bind(state.FILTERS),
        )
        with guard("reading the filter indices"):
            channels = filter_views.parse_indices(text, k_total)
    if not channels:
        return
    per_filter = base.filter_maps(method, channels)[0]  # (n, h, w): w_k * A_k
    st.caption(
        f"{len(channels)} of {k_total} filters. Each picture is one term wₖ·Aₖ of the {name} "
        "sum (negative parts shown as 0), coloured on the page's colour scale (set on Explain: "
        f"now {views.SCALE_NAMES.get(state.get(state.SCALE), 'own')}); wₖ is the filter's weight in "
        f"class-score units per activation unit ({name}; the mean over positions for the "
        "per-position methods); raw maxima in class-score units."
        + (f" The first {MAX_DRAWN} are drawn." if len(channels) > MAX_DRAWN else "")
    )
    small = loaders.display_image(sel.image_digest, sel.image, 192)
    shown = channels[:MAX_DRAWN]
    peaks = {ch: render.peak_of(per_filter[i]) for i, ch in enumerate(shown)}
    weak = set(render.weak_maps(peaks))
    scale = state.get(state.SCALE) if state.get(state.SCALE) in state.SCALES else "own"
    tops = render.scale_peaks(
        peaks,
        scale,
        st.session_state.get(views.ABS_MAX)
        or render.nice_ceiling(max(peaks.values(), default=1.0)),
    )
    for i, ch in enumerate(shown):
        if i % GRID_COLUMNS == 0:
            cols = st.columns(GRID_COLUMNS)  # one row at a time: reading order = filter order
        with cols[i % GRID_COLUMNS]:
            st.image(
                render.overlay(
                    small,
                    per_filter[i],
                    cmap=cmap,
                    opacity=opacity,
                    peak=None if scale == "own" else tops[ch],
                ),
                caption=f"filter {ch}: w = {weights[ch]:.3g}"
                + ("; inactive here (A = 0)" if not (per_filter[i] > 0).any() else ""),
                width="stretch",
                alt=f"Filter {ch}'s term of the {name} map, raw maximum {peaks[ch]:.3g}.",
            )
            st.caption(
                f"raw max {peaks[ch]:.3g}"
                + (
                    " · :orange[weak: under 5 % of the strongest filter shown]"
                    if ch in weak
                    else ""
                )
            )
    if scale != "own" and peaks:
        views.colorbar(views.Drawn({}, dict(tops.items()), [], scale), cmap, st.columns([2, 3])[0])
    st.subheader("Map from these filters only")
    ex = None
    with (
        guard("computing the map of the chosen filters"),
        st.spinner("Computing the map of the chosen filters …"),
    ):
        ex = sel.explain(
            n_samples=n_samples, sigma=sigma, seed=seed, filters=channels, methods=tuple(offered)
        )
    if ex is not None:
        label = (
            f"{len(channels)} filters"
            if len(channels) > 3
            else "filters " + ", ".join(map(str, channels))
        )
        titles = views.method_titles(ex)
        items = [views.MapItem(m, f"{titles[m]} — {label}", ex.maps[m][0]) for m in ex.maps]
        items.append(
            views.MapItem(
                method,
                f"{views.method_titles(base)[method]} — all {k_total} filters (for comparison)",
                base.maps[method][0],
            )
        )
        scale = state.get(state.SCALE) if state.get(state.SCALE) in state.SCALES else "own"
        abs_max = st.session_state.get(views.ABS_MAX) or render.nice_ceiling(
            max(render.peak_of(it.cam) for it in items)
        )
        disp = loaders.display_image(sel.image_digest, sel.image)
        drawn = views.draw_maps(
            disp,
            items,
            st.columns(max(3, len(items))),
            cmap,
            opacity,
            scale,
            abs_max,
            views.explained_class(ex, sel),
        )
        views.colorbar(drawn, cmap, st.columns([2, 3])[0])


def neurons_section(base, n_samples, sigma, seed, cmap, opacity):
    st.header("Neurons")
    h, w = base.activations.shape[1:3]
    mode = st.radio(
        f"Positions on the layer's {h}×{w} grid",
        list(state.NEURON_MODES),
        horizontal=True,
        format_func={
            "all": "All",
            "region": "A region (box)",
            "positions": "Individual positions",
        }.get,
        **state.bind(state.NEURON_MODE),
    )
    neurons, region, what = None, False, "all positions"
    if mode == "region":
        reg = state.get(state.REGION) or [h // 4, w // 4, (3 * h) // 4, (3 * w) // 4]
        r0, c0, r1, c1 = (
            min(max(0, int(v)), lim - 1) for v, lim in zip(reg, (h, w, h, w), strict=False)
        )
        st.session_state[state.REGION] = [r0, c0, r1, c1]
        for wk, val in (("w:region_rows", (r0, r1)), ("w:region_cols", (c0, c1))):
            st.session_state[wk] = val

        def region_changed():
            rows = st.session_state.get("w:region_rows", (r0, r1))
            cols_ = st.session_state.get("w:region_cols", (c0, c1))
            st.session_state[state.REGION] = [
                int(rows[0]),
                int(cols_[0]),
                int(rows[1]),
                int(cols_[1]),
            ]

        c1_, c2_ = st.columns(2)
        if h > 1:
            c1_.slider(
                "Rows (grid cells, top to bottom)",
                0,
                h - 1,
                key="w:region_rows",
                on_change=region_changed,
            )
        if w > 1:
            c2_.slider(
                "Columns (grid cells, left to right)",
                0,
                w - 1,
                key="w:region_cols",
                on_change=region_changed,
            )
        r0, c0, r1, c1 = st.session_state[state.REGION]
        neurons, region = [(r0, c0), (r1, c1)], True
        what = f"rows {r0}–{r1}, columns {c0}–{c1}"
    elif mode == "positions":
        positions = [
            tuple(p) for p in (state.get(state.POSITIONS) or []) if 0 <= p[0] < h and 0 <= p[1] < w
        ]
        c1_, c2_, c3_ = st.columns([2, 2, 1], vertical_alignment="bottom")
        row = c1_.slider("Row", 0, max(h - 1, 1), value=min(h // 2, h - 1), key="w:pos_row")
        col = c2_.slider("Column", 0, max(w - 1, 1), value=min(w // 2, w - 1), key="w:pos_col")
        row, col = min(row, h - 1), min(col, w - 1)

        def add():
            r = min(int(st.session_state.get("w:pos_row", row)), h - 1)
            c = min(int(st.session_state.get("w:pos_col", col)), w - 1)
            cur = [list(p) for p in (state.get(state.POSITIONS) or [])]
            if [r, c] not in cur:
                cur.append([r, c])
            st.session_state[state.POSITIONS] = cur

        def clear():
            st.session_state[state.POSITIONS] = []

        c3_.button("Add position", on_click=add, width="stretch")
        if positions:
            st.caption(
                "Chosen positions (row, column): " + ", ".join(f"({r}, {c})" for r, c in positions)
            )
            st.button("Clear positions", on_click=clear)
            neurons = positions
        else:
            st.caption(f"No position added yet: showing the slider position ({row}, {col}) alone.")
            neurons = [(row, col)]
        what = (
            f"{len(neurons)} positions"
            if len(neurons) > 3
            else "positions " + ", ".join(f"({r}, {c})" for r, c in neurons)
        )
    ex = base
    if neurons is not None:
        ex = None
        with (
            guard("computing the map of the chosen positions"),
            st.spinner("Computing the map of the chosen positions …"),
        ):
            ex = sel.explain(
                n_samples=n_samples,
                sigma=sigma,
                seed=seed,
                neurons=neurons,
                region=region,
                methods=tuple(m for m in base.maps if REGISTRY[m].cam),
            )
    if ex is None:
        return
    disp = loaders.display_image(sel.image_digest, sel.image)
    left, right = st.columns([1, 1])
    with left:
        grid_pick.pick(
            disp,
            (h, w),
            ex.position_mask,
            key="grid_pick",
            on_cell=toggle_position,
            on_box=choose_region,
        )
        st.caption(
            f"The layer's {h}×{w} grid over the image; chosen: {what}. Click a cell to "
            "add or remove it, drag a box to choose a region; the sliders above set the "
            "same exactly."
        )
    caps = {m: f"{c} — {what}" for m, c in views.method_titles(ex).items()}
    filter_views.show_maps(
        ex,
        sel,
        caps,
        cmap,
        opacity,
        columns=right.columns(max(2, sum(REGISTRY[m].cam for m in ex.maps))),
    )
    st.caption(
        "Activations outside the chosen positions are set to 0 before the weights and "
        "the map are computed; colours on the page's colour scale (set on Explain)."
    )


def filter_weights(ex, method: str):
    """The method's weight per filter, (K,): its channel weights, or for the per-position
    methods their mean over the grid."""
    if method in ex.weights:
        return ex.weights[method][0]
    return ex.position_weights[method][0].mean(axis=(0, 1))


def toggle_position(cell: tuple[int, int]) -> None:
    """Chart callback: a clicked cell is added to the chosen positions (removed if chosen)."""
    cur = [list(p) for p in (state.get(state.POSITIONS) or [])]
    if state.get(state.NEURON_MODE) != "positions":
        cur = []
    cell_l = [int(cell[0]), int(cell[1])]
    cur = [p for p in cur if p != cell_l] if cell_l in cur else [*cur, cell_l]
    st.session_state[state.POSITIONS] = cur
    state.set(state.NEURON_MODE, "positions")


def choose_region(box: tuple[int, int, int, int]) -> None:
    """Chart callback: a dragged box becomes the region."""
    st.session_state[state.REGION] = [int(v) for v in box]
    state.set(state.NEURON_MODE, "region")


if sel.bundle is None or sel.image is None or not sel.ready:
    st.info("Choose a model and an image in the sidebar (see the Explain page).")
else:
    n_samples, sigma, seed = (
        int(state.get(state.N_SAMPLES)),
        float(state.get(state.SIGMA)),
        int(state.get(state.SEED)),
    )
    cmap, opacity = state.get(state.CMAP), float(state.get(state.OPACITY))
    base = None
    with guard("computing the heatmaps"):
        with st.spinner(f"Computing the maps for {plain(sel.class_label(sel.target))} …"):
            base = sel.explain(
                n_samples=n_samples,
                sigma=sigma,
                seed=seed,
                methods=method_views.split(state.get(state.METHODS) or ())[0],
            )
    if base is not None:
        # Read from the Explanation itself, so it always describes the maps below it.
        st.caption(
            f"Class explained: **{plain(views.explained_class(base, sel))}** · layer "
            f"{code(base.layer.path)} · " + noise_note(int(base.n_samples), float(base.sigma))
        )
        with guard("showing the filters"):
            filters_section(base, n_samples, sigma, seed, cmap, opacity)
        with guard("showing the neurons"):
            neurons_section(base, n_samples, sigma, seed, cmap, opacity)
