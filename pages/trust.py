"""Trust: the sanity checks of Adebayo et al. (2018) for the current model and layer, with the
cascade strip of maps and the curves, and the artefact audit of the current image."""

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard.frame import fair_share, loaders
from dashboard.frame.errors import guard
from dashboard.frame.notices import plain
from dashboard.widgets import sidebar, verdict_views
from explainers import marks, render
from explainers.evaluation.scoring import load_mask_noted
from explainers.methods import DEFAULT_METHODS, REGISTRY, method_label
from explainers.trust import sanity
from explainers.trust.artefact_audit import EDGE_SHARE, REGIONS, audit
from explainers.trust.segmentation import STABLE_IOU
from explainers.trust.verdicts import plain_verdict, read_default

CAM_METHODS = [k for k in REGISTRY if REGISTRY[k].cam and "forward" not in REGISTRY[k].needs]

sel = sidebar.selection()
st.title("Can these maps be trusted?")
st.markdown(
    "A map can only explain the model if it **changes when the model's learned weights are "
    "replaced by random ones**, and **differs from class to class**. A map that passes neither "
    "shows the photo's edges, not the model's reasons: do not read it as evidence."
)
with st.expander("How the verdict is decided"):
    st.markdown(
        "Two sanity checks (Adebayo et al. 2018). **Model randomisation**: the weights of a copy "
        "of the model are re-drawn from the top down; a map that explains the model must change. "
        "**Random logit**: the map for another class must differ from the map for the predicted "
        f"one. Pass when the Spearman rank correlation (−1..1, 1 = same ranking of pixels) with "
        f"the trained map is below {sanity.CASCADE_PASS} once the head and the last block are "
        f"random, the random-logit Spearman is below {sanity.LOGIT_PASS}, and fewer than half of "
        "the trained maps are empty (an empty map has nothing to rank, so it cannot pass)."
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
    # Known without computing (the same verdicts Explain shows): this server's disk cache (with
    # the maps of every step), else the measurement shipped for the default model and layer.
    judged = (
        verdict_views.verdicts_for(sel, methods, 0, 0.15)
        if n_images == sanity.DEFAULT_SAMPLES
        else {}
    )
    results = {m: r for m, (_, r) in judged.items() if r is not None}
    verdicts = {m: v for m, (v, _) in judged.items()}
    complete = len(results) == len(methods)
    with_maps = complete and all(r.maps.size for r in results.values())
    label = (
        "Run the sanity check"
        if not complete
        else "Run it here too (about a minute): shows the maps of each step"
    )
    if not with_maps and st.button(label, type="primary", key="trust:run"):
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
        verdicts = {m: plain_verdict(r, "measured here") for m, r in results.items()}
    elif not complete:
        missing = ", ".join(REGISTRY[m].label for m in methods if m not in results)
        st.info(
            f"Not checked yet for this model and layer: {missing}. The check re-draws the weights "
            "of a copy of the model about 6 times and recomputes the maps of the bundled images."
        )
        return
    _show_results(results, verdicts, n_images)


def _provenance(source: str, shipped: dict) -> str:
    if source != "shipped measurement":
        return "Measured on this server (kept on disk)."
    return (
        f"Measured with `{shipped.get('command', '?')}` on "
        f"{len(shipped.get('images', []))} bundled images ({shipped.get('created', '?')}) and "
        "shipped with the app; run it here to see the maps of each step."
    )


def _cascade_chart(table: pd.DataFrame) -> alt.Chart:
    """Spearman and SSIM after each step, in the cascade's order, every label whole, with the
    pass line of the randomisation check."""
    long = table.melt("randomised", var_name="figure", value_name="value")
    lines = (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "randomised:N",
                sort=list(table["randomised"]),
                title="Randomised so far (top down)",
                axis=alt.Axis(labelAngle=-40, labelLimit=240, labelOverlap=False),
            ),
            y=alt.Y(
                "value:Q",
                title="Likeness (−1..1)",
                scale=alt.Scale(domain=[-1, 1]),
                axis=alt.Axis(values=[-1, -0.5, 0, 0.5, 1]),
            ),
            color=alt.Color("figure:N", title=None, legend=alt.Legend(orient="bottom")),
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"y": [sanity.CASCADE_PASS]}))
        .mark_rule(strokeDash=[4, 4], color="gray")
        .encode(y="y:Q")
    )
    return (lines + rule).properties(height=320)


def _show_results(results: dict, verdicts: dict, n_images: int) -> None:
    from explainers.images import load_image
    from explainers.zoo import list_samples

    samples = list_samples()[:n_images]
    shipped = read_default() or {}
    for key, r in results.items():
        st.subheader(method_label(key, 0, 0.15))
        st.markdown(verdict_views.sentence_markdown(verdicts[key]))
        st.caption(_provenance(verdicts[key].source, shipped))
        steps = ["trained"] + [s.step for s in r.cascade]
        table = pd.DataFrame(
            {
                "randomised": steps[1:],
                "Spearman (−1..1)": [round(s.spearman, 2) for s in r.cascade],
                "SSIM (−1..1)": [round(s.ssim, 2) for s in r.cascade],
            }
        )
        st.altair_chart(_cascade_chart(table), width="stretch")
        st.caption(
            f"Dashed line: {sanity.CASCADE_PASS}. Once the head and the last block are random, "
            "a map that explains the model falls below it (1 = the trained map unchanged)."
        )
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={
                "randomised": st.column_config.TextColumn("Randomised so far"),
                "Spearman (−1..1)": st.column_config.NumberColumn(
                    help="Rank correlation with the trained map; 1 = the same ranking of pixels"
                ),
                "SSIM (−1..1)": st.column_config.NumberColumn(
                    help="Structural similarity with the trained map; 1 = the same picture"
                ),
            },
        )
        st.caption(
            f"Random logit: Spearman {r.random_logit_spearman:.2f} between the map for the "
            f"predicted class and the maps for other classes (below {sanity.LOGIT_PASS}: "
            "the map depends on the class)."
        )
        if not r.maps.size:  # the shipped figures carry no maps
            continue
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
        column_config={  # short headers: the table sits in half the page
            "share of the map's energy (%)": st.column_config.NumberColumn(
                "map (%)", help="The region's share of the map's total energy"
            ),
            "share of the image (%)": st.column_config.NumberColumn(
                "image (%)", help="The region's share of the image's area"
            ),
        },
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
