"""Pieces of page that several pages draw: the prediction table, the noise controls (from
``noise_form``), the side-by-side maps with their raw maxima, weak-evidence flags and colour scale (a fragment:
colour map, opacity and scale rerun only it and recompute nothing), filter parsing and the
layer grid drawn over the image."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.frame import loaders, state
from dashboard.frame.notices import plain
from dashboard.widgets.method_views import blank_note
from dashboard.widgets.noise_form import noise_controls  # noqa: F401 - the pages call views.noise_controls
from dashboard.widgets.sidebar import RANDOM_NOTE, Selection, choose_sample, explain_class
from explainers import marks, method_label, render
from explainers.evaluation.localisation import cam_box
from explainers.methods import comparable_peak


# --- prediction ---------------------------------------------------------------------------------
def top_k_table(sel: Selection, k: int = 5, all_up_to: int = 7) -> pd.DataFrame:
    """Every class when there are at most ``all_up_to``, else the k most likely: short class
    name, probability in %, pre-softmax score, and the full name last (text may be cut, numbers
    not)."""
    probs = sel.prediction.probabilities[0]
    logits = sel.prediction.logits[0]
    if len(logits) <= all_up_to:
        k = len(logits)
    order = np.argsort(-np.asarray(logits, dtype=np.float64), kind="stable")[:k]
    names = sel.bundle.class_names if sel.bundle is not None else []
    rows = []
    for rank, i in enumerate(order, 1):
        short = names[i] if i < len(names) else str(int(i))
        full = sel.class_label(int(i))
        rows.append(
            {
                "rank": rank,
                "class": short,
                "probability (%)": float(probs[i]) * 100.0,
                "score (logit)": float(logits[i]),
                "full name": full.split(" — ", 1)[1] if " — " in full else full,
            }
        )
    return pd.DataFrame(rows)


def class_glossary(sel: Selection, table: pd.DataFrame) -> str:
    """ "akiec = actinic keratosis ..., bcc = ...": the full names for a column's tooltip."""
    return "; ".join(
        f"{c} = {n}" for c, n in zip(table["class"], table["full name"], strict=False) if c != n
    )


def prediction_table(sel: Selection) -> None:
    """The table, with widths that never cut a number; full class names in the tooltip of the
    class column and in the last column."""
    table = top_k_table(sel)
    glossary = class_glossary(sel, table)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "rank": st.column_config.NumberColumn("#", width=40, help="Rank by pre-softmax score."),
            "class": st.column_config.TextColumn(
                "class", width=80, help=glossary or "The model's class name."
            ),
            "probability (%)": st.column_config.ProgressColumn(
                "probability",
                format="%.1f %%",
                min_value=0.0,
                max_value=100.0,
                width=150,
                help="Softmax probability of the class, in per cent.",
            ),
            "score (logit)": st.column_config.NumberColumn(
                "score (logit)",
                format="%.3f",
                width=110,
                help="Pre-softmax score; the maps explain this score.",
            ),
            "full name": st.column_config.TextColumn("full name", width="large"),
        },
    )


def prediction_summary(sel: Selection) -> str:
    """One line for the top of the page: top-1 class and, for a sample, its recorded diagnosis."""
    top1 = int(np.argmax(sel.prediction.logits[0]))
    text = f"**Prediction:** {plain(sel.class_label(top1))} ({sel.probability(top1) * 100:.1f} %)"
    if not sel.meaningful:
        text += f" — :red[{RANDOM_NOTE}]"
    s = sel.sample
    if s is not None and sel.bundle is not None and s.dx in sel.bundle.class_names:
        agrees = sel.bundle.class_names[top1] == s.dx
        text += (
            f" · **recorded diagnosis:** {s.dx} ({s.dx_name}) — "
            f"{':green[agrees]' if agrees else ':orange[differs]'}"
        )
    return text


def prediction_block(sel: Selection) -> None:
    """The prediction table across the page (so the full class names are not cut), then the
    recorded diagnosis of a sample image."""
    left, right = st.container(), st.container()
    with left:
        title = "Prediction"
        if not sel.meaningful:
            title += f" — {RANDOM_NOTE}"
        st.subheader(title)
        prediction_table(sel)
        if not sel.meaningful:
            st.caption(f":red[**{RANDOM_NOTE}**]: this model has no trained weights.")
        elif not sel.prediction.softmax_head:
            st.caption("The model has no softmax head: its raw outputs are shown as scores.")
    with right:
        st.subheader("Recorded diagnosis")
        top1 = int(np.argmax(sel.prediction.logits[0]))
        if sel.sample is not None:
            s = sel.sample
            kind = "malignant" if s.malignant else "benign"
            st.markdown(
                f"**{s.dx} — {s.dx_name}** ({kind})  \nfrom the HAM10000 record of `{s.image_id}`"
            )
            if s.dx in sel.bundle.class_names:
                agrees = sel.bundle.class_names[top1] == s.dx
                mark = ":green[agrees]" if agrees else ":orange[differs]"
                st.markdown(
                    f"Model's top-1: **{plain(sel.class_label(top1))}** — {mark}"
                    f"{' (' + RANDOM_NOTE + ')' if not sel.meaningful else ''}"
                )
                recorded = sel.bundle.class_names.index(s.dx)
                if not agrees and sel.target != recorded:
                    st.button(
                        f"Explain the recorded diagnosis ({s.dx})",
                        key="w:explain_recorded",
                        on_click=explain_class,
                        args=(recorded,),
                        icon=":material/target:",
                    )
            else:
                st.caption("This model's classes are not the HAM10000 diagnoses.")
        else:
            st.caption("No recorded diagnosis: this image is not one of the bundled samples.")
        if sel.metadata_text:
            st.caption(f"Patient data given to the model: {sel.metadata_text}")


def gallery(sel: Selection) -> None:
    """Thumbnails of the bundled samples with a button each."""
    samples = loaders.samples()
    with st.expander(f"Sample gallery ({len(samples)} HAM10000 dermoscopy images)"):
        cols = st.columns(4)
        for i, s in enumerate(samples):
            with cols[i % 4]:
                data = loaders.sample_bytes(str(s.path))
                thumb = loaders.display_image(
                    loaders.digest(data),
                    loaders.decode(loaders.digest(data), data, s.image_id),
                    160,
                )
                st.image(
                    thumb,
                    caption=f"{s.image_id}: {s.dx} ({s.dx_name})",
                    width="stretch",
                    alt=f"Dermoscopy image {s.image_id}, recorded diagnosis {s.dx_name}.",
                )
                st.button(
                    "Use this image",
                    key=f"gallery:{s.image_id}",
                    on_click=choose_sample,
                    args=(s.image_id,),
                    disabled=(sel.sample is not None and sel.sample.image_id == s.image_id),
                    width="stretch",
                )


# --- the side-by-side maps ----------------------------------------------------------------------
SCALE_NAMES = {
    "own": "each map's own maximum",
    "shared": "one scale for the maps on screen",
    "absolute": "absolute (a fixed raw range)",
}
ABS_MAX = "_abs_max"  # the absolute scale's top value, raw units (session only)
PANEL_CSS = """<style>
.st-key-maps_panel [data-stale="true"], .st-key-maps_panel[data-stale="true"] {
  opacity: 0.35 !important; transition: opacity 0.2s ease-in; }
.st-key-maps_panel [data-testid="stImageCaption"], .st-key-maps_panel [data-testid="stCaptionContainer"] {
  font-size: 1rem !important; }
</style>"""
RAW_HELP = (
    f"Raw map values are in {render.RAW_UNIT}: the class's pre-softmax score per "
    "activation unit (the weight w) times the layer's activation A."
)


def theme_text_color() -> str:
    """The page's text colour for drawn figures: light on the dark theme, dark otherwise.

    ``st.context.theme`` reports the browser's theme, but may still say "light" on a session's
    first run (Streamlit issue #11920); there the configured ``theme.base`` is trusted."""
    try:
        kind = st.context.theme.type
    except Exception:
        kind = None
    first = not st.session_state.get("_theme_reported", False)
    st.session_state["_theme_reported"] = True
    if kind is None or first:
        try:
            configured = st.get_option("theme.base")
        except Exception:
            configured = None
        kind = configured if configured in ("dark", "light") else kind
    return "#fafafa" if kind == "dark" else "#31333f"


@st.cache_data(show_spinner=False, max_entries=32)
def colorbar_png(cmap: str, label: str, vmax: float | None, text_color: str) -> bytes:
    """The colour bar as a PNG with a transparent background (it sits on any theme)."""
    fig = render.colorbar_figure(cmap, label, vmax=vmax, text_color=text_color)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, transparent=True)
    return buf.getvalue()


def display_controls(default_abs: float = 1.0) -> tuple[str, float, str, float | None]:
    """Colour map, opacity, colour scale (and the absolute scale's maximum): display only."""
    c1, c2, c3 = st.columns([2, 2, 3])
    cmap = c1.selectbox(
        "Colour map",
        list(state.CMAPS),
        help="viridis (default) is perceptually uniform and readable with colour-blindness; "
        "jet and turbo are not uniform. Display only: nothing is recomputed.",
        **state.bind(state.CMAP, options=state.CMAPS, labels=str),
    )
    opacity = c2.slider(
        "Overlay opacity",
        0.0,
        1.0,
        step=0.05,
        format="%.2f",
        help="Opacity of the map where it is at the top of its scale. Lower values are more "
        "transparent (opacity × value), so where the map is near 0 the photo shows "
        "untinted.",
        **state.bind(state.OPACITY, from_widget=lambda v: round(float(v), 2)),
    )
    scale = c3.radio(
        "Colour scale",
        list(state.SCALES),
        horizontal=True,
        format_func=SCALE_NAMES.get,
        help="Own maximum: compare shapes. Shared: one raw scale for the maps on screen, so weak "
        "evidence looks weak. Absolute: a fixed raw range you set, the same for every "
        "image and class.",
        **state.bind(state.SCALE, options=state.SCALES, labels=SCALE_NAMES.get),
    )
    abs_max = None
    if scale == "absolute":
        if not st.session_state.get(ABS_MAX):
            st.session_state[ABS_MAX] = float(default_abs)
        st.session_state["w:abs_max"] = float(st.session_state[ABS_MAX])

        def changed() -> None:
            value = st.session_state.get("w:abs_max")
            if value:
                st.session_state[ABS_MAX] = float(value)

        abs_max = float(
            st.number_input(
                f"Absolute scale: top colour at ({render.RAW_UNIT})",
                min_value=1e-6,
                format="%.4g",
                key="w:abs_max",
                on_change=changed,
                help=RAW_HELP,
            )
        )
    return cmap, float(opacity), scale, abs_max


@dataclass
class MapItem:
    """One map to draw: its method key (maps of one method share units), its title (from the
    Explanation it came from) and the raw map (h, w)."""

    method: str
    title: str
    cam: np.ndarray


@dataclass
class Drawn:
    peaks: dict[str, float]
    tops: dict[str, float]
    weak: list[str]
    scale: str


def alt_text(item: MapItem, class_text: str, peak: float) -> str:
    """A short text alternative: method, class, the strongest grid cell and its raw value."""
    cam = np.asarray(item.cam)
    r, c = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return (
        f"{item.title} heatmap for class {class_text}: strongest at grid cell (row {r}, "
        f"column {c}) of {cam.shape[0]}×{cam.shape[1]}, raw maximum {peak:.3g} "
        f"{render.RAW_UNIT}."
    )


def draw_maps(
    disp: np.ndarray,
    items: Sequence[MapItem],
    columns: Sequence,
    cmap: str,
    opacity: float,
    scale: str,
    abs_max: float | None,
    class_text: str,
    compare: bool = True,
    boxes: bool = False,
    failing: Sequence[str] = (),
    under_image=None,
    raw_notes: bool = True,
) -> Drawn:
    """Each overlay at the chosen scale with its raw maximum printed under it (unless
    ``raw_notes`` is False: Explain keeps figures for the technical reader); a map whose
    evidence is tiny beside the others (``render.weak_maps``) is flagged in words; with
    ``boxes`` each map's weakly-supervised localisation box is drawn. The maps of the methods
    in ``failing`` (failed sanity checks) are marked on the picture itself
    (``marks.mark_unreliable``); ``under_image(col, item)`` writes right under each picture."""
    peaks = {it.title: render.peak_of(it.cam) for it in items}
    grid_cells = int(np.prod(np.asarray(items[0].cam).shape)) if items else 0
    comparable = {it.title: comparable_peak(it.method, peaks[it.title], grid_cells) for it in items}
    weak = render.weak_maps(comparable) if compare and len(items) > 1 else []
    tops = render.scale_peaks(peaks, scale, abs_max)
    for col, it in zip(columns, items, strict=False):
        peak = peaks[it.title]
        if peak <= 0:  # an untinted photo looked like a broken map
            col.info(blank_note(it.method, it.title), icon=":material/block:")
            col.caption(f"raw max **0** {render.RAW_UNIT}")
            continue
        pic = render.overlay(
            disp,
            it.cam,
            cmap=cmap,
            opacity=opacity,
            peak=None if scale == "own" else tops[it.title],
        )
        if boxes:
            pic = marks.draw_box(pic, cam_box(it.cam, pic.shape[:2]))
        alt = alt_text(it, class_text, peak)
        if it.method in failing:
            pic = marks.mark_unreliable(pic)
            alt = f"Marked 'do not read as evidence' (failed the sanity checks). {alt}"
        col.image(pic, caption=it.title, width="stretch", alt=alt)
        if under_image is not None:
            under_image(col, it)
        note = f"raw max **{peak:.3g}** {render.RAW_UNIT}"
        if scale != "own" and peak > tops[it.title]:
            note += f" (above the scale's top, {tops[it.title]:.3g}: drawn as the top colour)"
        if raw_notes:
            col.caption(note)
        elif scale != "own" and peak > tops[it.title]:
            col.caption("Stronger than the scale's top: drawn as the top colour.")
        if it.title in weak:
            top = max(comparable.values())
            ratio = comparable[it.title] / top if top > 0 else 0.0
            col.markdown(
                f":orange[**Weak evidence:** this map's maximum is {ratio * 100:.2g} % of "
                "the strongest map here. Scaled to its own maximum it would look as "
                "strong as the others; it is not.]"
            )
    return Drawn(peaks, tops, weak, scale)


def colorbar(drawn: Drawn, cmap: str, container=None) -> None:
    """The colour bar for the maps just drawn: relative for the own scale, raw values for the
    shared and absolute scales."""
    where = container or st
    if drawn.scale == "own":
        vmax, label = None, "each map ÷ its own maximum (0 = no evidence, 1 = that map's maximum)"
    else:
        vmax = max(drawn.tops.values(), default=0.0) or None
        label = f"raw map value ({render.RAW_UNIT}); " + (
            "one scale for the maps on screen"
            if drawn.scale == "shared"
            else "fixed absolute scale"
        )
    alt = "Colour bar: " + label + ("" if vmax is None else f", 0 to {vmax:.3g}")
    where.image(colorbar_png(cmap, label, vmax, theme_text_color()), width="stretch", alt=alt)


def image_stem(sel: Selection) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", (sel.image_name or "image").rsplit(".", 1)[0])
    return stem or "image"


def explained_class(ex, sel: Selection) -> str:
    """The class the Explanation ``ex`` explains, with its score: read from ``ex`` itself, so a
    caption can never describe another run's choice."""
    t = int(ex.targets[0])
    return f"{sel.class_label(t)} (score {float(ex.logits[0, t]):.3g})"


def method_titles(ex) -> dict[str, str]:
    """Captions built from the Explanation's own noise settings."""
    return {m: method_label(m, int(ex.n_samples), float(ex.sigma)) for m in ex.maps}
