"""Pieces of page that several pages draw: the prediction table, the noise controls, the
side-by-side maps (a fragment: colour map and opacity rerun only it and recompute nothing),
filter parsing and the layer grid drawn over the image."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageDraw

from explainers import render
from explainers.errors import ExplainerError

from dashboard import loaders, state
from dashboard.sidebar import RANDOM_NOTE, Selection

SCALE_LABEL = "relative importance: each map ÷ its own maximum"
METHOD_NAMES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++"}


# --- prediction ---------------------------------------------------------------------------------
def top_k_table(sel: Selection, k: int = 5) -> pd.DataFrame:
    """The k most likely classes: class, probability in %, pre-softmax score."""
    probs = sel.prediction.probabilities[0]
    logits = sel.prediction.logits[0]
    order = np.argsort(-np.asarray(logits, dtype=np.float64), kind="stable")[:k]
    rows = []
    for rank, i in enumerate(order, 1):
        rows.append({
            "rank": rank,
            "class": sel.class_label(int(i)),
            "probability (%)": float(probs[i]) * 100.0,
            "score (logit)": float(logits[i]),
        })
    return pd.DataFrame(rows)


def prediction_block(sel: Selection) -> None:
    """Top-5 table, and beside it the recorded diagnosis of a sample image."""
    left, right = st.columns([3, 2], gap="large")
    with left:
        title = "Prediction (top 5)"
        if not sel.meaningful:
            title += f" — {RANDOM_NOTE}"
        st.subheader(title)
        st.dataframe(
            top_k_table(sel), hide_index=True, width="stretch",
            column_config={
                "rank": st.column_config.NumberColumn("rank", width="small"),
                "probability (%)": st.column_config.ProgressColumn(
                    "probability (%)", format="%.1f %%", min_value=0.0, max_value=100.0),
                "score (logit)": st.column_config.NumberColumn(
                    "score (logit)", format="%.4g",
                    help="Pre-softmax score; the maps explain this score."),
            },
        )
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
            st.markdown(f"**{s.dx} — {s.dx_name}** ({kind})  \nfrom the HAM10000 record of "
                        f"`{s.image_id}`")
            if sel.bundle.class_names[: len(sel.bundle.class_names)] and s.dx in sel.bundle.class_names:
                agrees = sel.bundle.class_names[top1] == s.dx
                mark = ":green[agrees]" if agrees else ":orange[differs]"
                st.markdown(f"Model's top-1: **{sel.class_label(top1)}** — {mark}"
                            f"{' (' + RANDOM_NOTE + ')' if not sel.meaningful else ''}")
                recorded = sel.bundle.class_names.index(s.dx)
                if not agrees and sel.target != recorded:
                    from dashboard.sidebar import explain_class

                    st.button(f"Explain the recorded diagnosis ({s.dx})", key="w:explain_recorded",
                              on_click=explain_class, args=(recorded,), icon=":material/target:")
            else:
                st.caption("This model's classes are not the HAM10000 diagnoses.")
        else:
            st.caption("No recorded diagnosis: this image is not one of the bundled samples.")
        if sel.metadata_text:
            st.caption(f"Patient data given to the model: {sel.metadata_text}")
        st.caption(f"Explaining: **{sel.target_text()}**"
                   f"{' (the top-1 class)' if sel.target_is_top1 else ''}")


def gallery(sel: Selection) -> None:
    """Thumbnails of the bundled samples with a button each."""
    from dashboard.sidebar import choose_sample

    samples = loaders.samples()
    with st.expander(f"Sample gallery ({len(samples)} HAM10000 dermoscopy images)"):
        cols = st.columns(4)
        for i, s in enumerate(samples):
            with cols[i % 4]:
                data = loaders.sample_bytes(str(s.path))
                thumb = loaders.display_image(loaders.digest(data), loaders.decode(loaders.digest(data), data, s.image_id), 160)
                st.image(thumb, caption=f"{s.image_id}: {s.dx} ({s.dx_name})", width="stretch")
                st.button("Use this image", key=f"gallery:{s.image_id}", on_click=choose_sample,
                          args=(s.image_id,), disabled=(sel.sample is not None and sel.sample.image_id == s.image_id),
                          width="stretch")


# --- noise controls -----------------------------------------------------------------------------
def noise_controls() -> tuple[int, float, int]:
    """Samples (0–50), sigma (0.00–1.00) and seed, shared by all pages."""
    c1, c2, c3 = st.columns([3, 3, 1])
    n = c1.slider("Noise samples (0 = plain Grad-CAM / Grad-CAM++)", 0, state.MAX_SAMPLES, step=1,
                  help="Smooth Grad-CAM++: average the gradients over this many noisy copies.",
                  **state.bind(state.N_SAMPLES))
    sigma = c2.slider("Noise σ (fraction of the image's value range)", 0.0, 1.0, step=0.01,
                      format="%.2f", help="Standard deviation of the Gaussian noise, as a fraction "
                      "of (max − min) of the preprocessed image. Used when samples > 0.",
                      **state.bind(state.SIGMA, from_widget=lambda v: round(float(v), 2)))
    seed = c3.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1,
                           help="Same seed, same noise, same smoothed maps.",
                           **state.bind(state.SEED))
    return int(n), float(sigma), int(seed)


# --- the side-by-side maps ----------------------------------------------------------------------
def display_controls(key_prefix: str = "") -> tuple[str, float]:
    c1, c2 = st.columns(2)
    cmap = c1.selectbox("Colour map", list(state.CMAPS),
                        **state.bind(state.CMAP, options=state.CMAPS, labels=str))
    opacity = c2.slider("Overlay opacity", 0.0, 1.0, step=0.05, format="%.2f",
                        **state.bind(state.OPACITY, from_widget=lambda v: round(float(v), 2)))
    return cmap, float(opacity)


def image_stem(sel: Selection) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", (sel.image_name or "image").rsplit(".", 1)[0])
    return stem or "image"


@st.fragment
def maps_panel(ex, sel: Selection, n_samples: int, sigma: float) -> None:
    """Input | Grad-CAM | Grad-CAM++ with colour bar and downloads. A fragment: changing the
    colour map or opacity reruns only this, from maps already computed."""
    cmap, opacity = display_controls()
    disp = loaders.display_image(sel.image_digest, sel.image)
    captions = sel.captions(n_samples, sigma)
    overlays = {m: render.overlay(disp, ex.maps[m][0], cmap=cmap, opacity=opacity)
                for m in ("gradcam", "gradcam++")}
    cols = st.columns(3)
    h, w = sel.bundle.input_size
    cols[0].image(disp, caption=f"Input ({sel.image.width}×{sel.image.height} px; "
                                f"the model sees {w}×{h})", width="stretch")
    for col, m in zip(cols[1:], ("gradcam", "gradcam++")):
        col.image(overlays[m], caption=captions[m], width="stretch")
    gh, gw = ex.maps["gradcam"].shape[1:]
    left, right = st.columns([2, 3], vertical_alignment="center")
    left.image(loaders.colorbar_png(cmap, SCALE_LABEL), width="stretch")
    right.caption(
        f"Class explained: **{sel.target_text()}** · layer `{ex.layer.path}` "
        f"({gh}×{gw} grid, {ex.activations.shape[-1]} filters) · maps upsampled to the image. "
        f"Raw map maxima (class score × activation units): Grad-CAM "
        f"{float(ex.maps['gradcam'].max()):.3g}, Grad-CAM++ {float(ex.maps['gradcam++'].max()):.3g}."
    )
    stem = image_stem(sel)
    d1, d2, d3 = st.columns(3)
    for col, m in zip((d1, d2), ("gradcam", "gradcam++")):
        col.download_button(f"Download {METHOD_NAMES[m]} overlay (PNG)", loaders.png_bytes(overlays[m]),
                            file_name=f"{stem}_{m.replace('+', 'pp')}.png", mime="image/png",
                            key=f"dl:{m}", on_click="ignore", width="stretch")
    d3.download_button(
        "Download raw maps (NPZ)",
        loaders.npz_bytes(gradcam=ex.maps["gradcam"][0], gradcampp=ex.maps["gradcam++"][0],
                          target=np.int64(sel.target), layer=np.str_(ex.layer.path),
                          n_samples=np.int64(n_samples), sigma=np.float64(sigma),
                          class_name=np.str_(sel.class_label(sel.target))),
        file_name=f"{stem}_maps.npz", mime="application/octet-stream", key="dl:npz",
        on_click="ignore", width="stretch")


# --- filters ------------------------------------------------------------------------------------
def parse_indices(text: str, k: int) -> list[int]:
    """``"3, 10, 32"`` or ``"0-15, 40"`` → sorted unique indices below ``k``; ExplainerError
    in plain words otherwise."""
    out: list[int] = []
    parts = [p.strip() for p in re.split(r"[,\s;]+", str(text or "").strip()) if p.strip()]
    if not parts:
        raise ExplainerError("type filter indices, e.g. 3, 10, 32 or 0-15")
    for part in parts:
        m = re.fullmatch(r"(\d+)\s*(?:-|–|\.\.)\s*(\d+)", part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise ExplainerError(f"the range '{part}' runs backwards; write it as {hi}-{lo}")
            out.extend(range(lo, hi + 1))
        elif part.isdigit():
            out.append(int(part))
        else:
            raise ExplainerError(f"'{part}' is not a filter index or a range like 0-15")
    bad = [i for i in out if i >= k]
    if bad:
        raise ExplainerError(f"filter {bad[0]} does not exist: this layer has filters 0 to {k - 1}")
    out = sorted(set(out))
    if len(out) > 256:
        raise ExplainerError(f"{len(out)} filters selected; choose at most 256 to draw")
    return out


def top_filters(weights: np.ndarray, k: int) -> list[int]:
    """Indices of the k largest weights (largest first)."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    return [int(i) for i in np.argsort(-w, kind="stable")[:k]]


# --- grid over the image --------------------------------------------------------------------------
def grid_image(image: np.ndarray, grid: tuple[int, int], cells: np.ndarray | None = None) -> np.ndarray:
    """The image with the layer's grid drawn over it and the selected cells (bool (h, w))
    tinted."""
    h, w = grid
    im = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGBA")
    W, H = im.size
    tint = Image.new("RGBA", im.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(tint)
    if cells is not None and not cells.all():
        for r, c in zip(*np.nonzero(cells)):
            x0, x1 = c * W / w, (c + 1) * W / w
            y0, y1 = r * H / h, (r + 1) * H / h
            draw.rectangle([x0, y0, x1, y1], fill=(255, 255, 0, 110), outline=(255, 220, 0, 255))
    step_r = max(1, h // 32)
    step_c = max(1, w // 32)
    for r in range(0, h + 1, step_r):
        y = min(H - 1, round(r * H / h))
        draw.line([(0, y), (W, y)], fill=(255, 255, 255, 150), width=1)
    for c in range(0, w + 1, step_c):
        x = min(W - 1, round(c * W / w))
        draw.line([(x, 0), (x, H)], fill=(255, 255, 255, 150), width=1)
    return np.asarray(Image.alpha_composite(im, tint).convert("RGB"))


def show_maps(ex, sel: Selection, captions: dict[str, str], cmap: str, opacity: float,
              columns: Sequence = None) -> None:
    """Both methods' overlays in two columns."""
    disp = loaders.display_image(sel.image_digest, sel.image)
    cols = columns or st.columns(2)
    for col, m in zip(cols, ("gradcam", "gradcam++")):
        if m in ex.maps:
            col.image(render.overlay(disp, ex.maps[m][0], cmap=cmap, opacity=opacity),
                      caption=captions[m], width="stretch")
