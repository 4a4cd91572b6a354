"""Trust: the sanity checks of Adebayo et al. (2018) for the current model and layer, with the
cascade strip of maps and the curves, and the artefact audit of the current image."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.frame import fair_share, loaders
from dashboard.frame.errors import guard
from dashboard.frame.notices import plain
from dashboard.widgets import sidebar, trust_views
from explainers import marks, render
from explainers.evaluation.scoring import load_mask_noted
from explainers.methods import DEFAULT_METHODS, REGISTRY, method_label
from explainers.trust import sanity
from explainers.trust.artefact_audit import EDGE_SHARE, REGIONS, audit
from explainers.trust.segmentation import STABLE_IOU

CAM_METHODS = [k for k in REGISTRY if REGISTRY[k].cam and "forward" not in REGISTRY[k].needs]

sel = sidebar.selection()
st.title("Can these maps be trusted?")
st.caption(
    "Two sanity checks (Adebayo et al. 2018). **Model randomisation**: the weights of a copy of "
    "the model are re-drawn from the top down; a map that explains the model must change. "
    "**Random logit**: the map for another class must differ from the map for the predicted one. "
    f"Verdict: pass when the Spearman rank correlation with the trained map is below "
    f"{sanity.CASCADE_PASS} once the head and the last block are random, and the random-logit "
    f"Spearman is below {sanity.LOGIT_PASS}, and fewer than half of the trained maps are empty "
    "(an empty map has nothing to rank, so it cannot pass)."
)


def _sanity_section() -> None:
    methods = st.multiselect(
        "Methods to check",
        CAM_METHODS,
        default=list(DEFAULT_METHODS),
        format_func=lambda k: REGISTRY[k].label,
        key="trust:methods",
    )
    n_images = st.slider(
        "Bundled images",
        2,
        8,
        sanity.DEFAULT_SAMPLES,
        key="trust:images",
        help="The same images for every step; 8 takes about a minute on 2 CPU cores.",
    )
    if not methods:
        st.info("Choose at least one method.")
        return
    cached = {
        m: trust_views.cached_result(sel, m, 0, 0.15)
        if n_images == sanity.DEFAULT_SAMPLES
        else None
        for m in methods
    }
    report = None
    if all(cached.values()):
        results = cached
    elif st.button("Run the sanity check", type="primary", key="trust:run"):
        bar = st.progress(0.0, text="starting")

        def progress(fraction: float, text: str) -> None:
            bar.progress(min(1.0, max(0.0, fraction)), text=text)
            fair_share.checkpoint()  # between steps: let a waiting person's step go first

        with fair_share.heavy():  # one per user at a time, users in turn
            report = sanity.sanity_for_bundle(
                sel.bundle,
                layer=sel.layer.path,
                methods=methods,
                n_images=n_images,
                progress=progress,
            )
        bar.empty()
        results = report.methods
    else:
        missing = ", ".join(REGISTRY[m].label for m in methods if not cached[m])
        st.info(
            f"Not checked yet for this model and layer: {missing}. The check re-draws the weights "
            "of a copy of the model about 6 times and recomputes the maps of the bundled images."
        )
        return
    _show_results(results, n_images)


def _show_results(results: dict, n_images: int) -> None:
    from explainers.images import load_image
    from explainers.zoo import list_samples

    samples = list_samples()[:n_images]
    for key, r in results.items():
        st.subheader(method_label(key, 0, 0.15))
        trust_views.verdict_badge(r)
        steps = ["trained"] + [s.step for s in r.cascade]
        # Numbered so the chart keeps the cascade's order (its axis sorts the labels).
        table = pd.DataFrame(
            {
                "randomised": [f"{i}. {name}" for i, name in enumerate(steps[1:], 1)],
                "Spearman (rank correlation, -1..1)": [round(s.spearman, 2) for s in r.cascade],
                "SSIM (structural similarity, -1..1)": [round(s.ssim, 2) for s in r.cascade],
            }
        )
        left, right = st.columns([3, 2])
        left.line_chart(table.set_index("randomised"), height=240)
        right.dataframe(table, hide_index=True)
        right.caption(
            f"Random logit: Spearman {r.random_logit_spearman:.2f} between the map for the "
            f"predicted class and the maps for other classes (below {sanity.LOGIT_PASS}: class-sensitive)."
        )
        pick = st.selectbox(
            "Image of the cascade strip",
            range(min(len(samples), r.maps.shape[1])),
            format_func=lambda i: f"{samples[i].image_id} ({samples[i].dx_name})",
            key=f"trust:strip:{key}",
        )
        picture = loaders.display_image(
            f"sample:{samples[pick].image_id}", load_image(samples[pick].path)
        )
        cols = st.columns(len(steps))
        for col, name, cam in zip(cols, steps, r.maps[:, pick], strict=False):
            col.image(
                render.overlay(picture, cam, opacity=0.5),
                caption=name,
                width="stretch",
                alt=f"The map after the step '{name}', over sample {samples[pick].image_id}.",
            )
        st.caption(
            "Each map is scaled to its own maximum (viridis: dark = 0, bright yellow = "
            "its maximum; the photo shows through where the map is 0)."
        )


def _audit_section() -> None:
    st.header("Artefact audit of this image")
    if sel.image is None or not sel.ready:
        st.info("Choose an image in the sidebar to audit its map.")
        return
    with st.spinner("Computing the maps …"):
        ex = sel.explain(methods=DEFAULT_METHODS)
    method = st.radio(
        "Map",
        DEFAULT_METHODS,
        format_func=lambda k: REGISTRY[k].label,
        horizontal=True,
        key="trust:audit_method",
    )
    upload = st.file_uploader(
        "Lesion mask (PNG, white lesion on black); automatic when none",
        type=["png"],
        key="trust:mask",
    )
    mode = st.radio(
        "Hide a region by",
        ("fill", "blur"),
        horizontal=True,
        key="trust:mode",
        format_func=lambda m: {"fill": "skin-colour fill", "blur": "strong blur"}[m],
    )
    box = None
    if st.checkbox("Also hide a box of my own", key="trust:use_box"):
        w, h = sel.image.size
        c = st.columns(4)
        box = (
            c[0].number_input("x0 (px)", 0, w, 0, key="trust:x0"),
            c[1].number_input("y0 (px)", 0, h, 0, key="trust:y0"),
            c[2].number_input("x1 (px)", 0, w, w // 4, key="trust:x1"),
            c[3].number_input("y1 (px)", 0, h, h // 4, key="trust:y1"),
        )
    mask = None
    if upload is not None:
        with guard("reading the mask"):
            size = (sel.image.height, sel.image.width)
            mask, note = load_mask_noted(upload.getvalue(), size, image_size=size)
            if note:
                st.info(note, icon=":material/aspect_ratio:")
    t = int(sel.target)
    with st.spinner("Outlining the lesion and re-scoring the image with regions hidden …"):
        result = audit(
            sel.bundle,
            sel.image,
            ex.maps[method][0],
            t,
            extra_inputs=sel.extra,
            mask=mask,
            box=box,
            mode=mode,
        )
    shown = render.overlay(np.asarray(sel.image.convert("RGB")), ex.maps[method][0], opacity=0.45)
    how = (
        "uploaded mask"
        if result.stability is None
        else f"automatic; stability {result.stability:.2f} = IoU of the outlines at a stricter and a looser "
        f"threshold, 1 = a sharp border" + ("; dashed: uncertain" if result.uncertain else "")
    )
    left, right = st.columns(2)
    left.image(
        marks.draw_contour(shown, result.lesion, dashed=result.uncertain),
        width="stretch",
        caption=f"{REGISTRY[method].label} with the lesion outline in white ({how})",
        alt=f"The {REGISTRY[method].label} map over the image, the lesion outlined in white.",
    )
    right.dataframe(
        pd.DataFrame(
            {
                "region": list(REGIONS),
                "share of the map's energy (%)": [
                    round(100 * result.energy[k], 1) for k in REGIONS
                ],
                "share of the image (%)": [
                    round(100 * result.regions[k].mean(), 1) for k in REGIONS
                ],
            }
        ),
        hide_index=True,
    )
    right.caption(
        "A region's energy share above its share of the image means the map dwells on it. "
        "The automatic mask is a classical pipeline, not checked against expert outlines."
    )
    for e in result.edits:
        st.markdown(f"- {e.sentence(plain(sel.class_label(t)))}")
    if result.uncertain:
        st.caption(
            f"Why the outline counts as uncertain (either is enough): its stability is "
            f"{result.stability:.2f} (unstable below {STABLE_IOU}); {100 * result.edge_share:.0f} % of "
            f"the map's high area outside it lies within {result.edge_width} px of it, one cell of the "
            f"map's grid (from {100 * EDGE_SHARE:.0f} % on, a lesion rim the outline missed and a "
            "shortcut look the same at the map's resolution)."
        )
    if result.mask_source == "auto":
        st.caption(
            "The high-map area outside an automatic outline often holds lesion tissue the outline "
            "missed, and a large fill is itself unlike any training image: a drop there is not by "
            "itself a shortcut. Upload an expert mask for a fair test."
        )


if sel.bundle is None:
    st.info("No model is loaded: see the message above, or choose another model in the sidebar.")
else:
    with guard("running the sanity check"):
        _sanity_section()
    with guard("auditing the image"):
        _audit_section()
