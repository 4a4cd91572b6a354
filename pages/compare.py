"""Compare: one image, every method in one grid, with the same layer, class and noise; each
map with its time, its localisation box and (with a mask) its localisation scores; when
methods coincide at this layer, the page says so and why. No math here."""

import pandas as pd
import streamlit as st

from dashboard.frame import fair_share, loaders
from dashboard.frame.errors import guard
from dashboard.frame.notices import code, plain
from dashboard.page_parts import compare_loaders, evaluate_helpers
from dashboard.widgets import sidebar, verdict_views, views
from explainers import marks, render
from explainers.evaluation import scoring as metrics
from explainers.evaluation.localisation import DEFAULT_THRESHOLD, box_scores, cam_box
from explainers.methods import REGISTRY, method_keys, method_label
from explainers.methods.agreement import coinciding_groups, gradient_constant_per_channel
from explainers.methods.guided import to_image
from explainers.methods.scorecam import DEFAULT_MAX_CHANNELS
from explainers.textual import NEEDS as TEXT_NEEDS
from explainers.textual import describe
from explainers.trust.verdicts import UNKNOWN

SCORECAM_REQUEST = "_compare_scorecam"  # the settings Score-CAM was asked for
FAITHFULNESS = "_compare_faithfulness"  # (settings, scores) of the last faithfulness run
TAPE = [k for k in method_keys() if REGISTRY[k].needs == ("tape",)]  # one shared pass
GUIDED = list(method_keys(needs="guided"))
FORWARD = list(method_keys(needs="forward"))

sel = sidebar.selection()
st.title("Compare the methods")
st.caption(
    "One image, every method, the same layer, class and noise. Each map is shown with "
    "the time it took, its localisation box (the largest region above a share of the "
    "map's maximum, Grad-CAM §4.1) and, with a lesion mask, where it points."
)


def settings():
    n_samples, sigma, seed = views.noise_controls()
    cmap, opacity, scale, abs_max = views.display_controls()
    c1, c2 = st.columns(2)
    threshold = c1.slider(
        "Box threshold (fraction of each map's maximum)",
        0.05,
        0.9,
        DEFAULT_THRESHOLD,
        0.05,
        key="w:compare_box",
    )
    k_total = int(sel.layer.channels or 1)
    k = int(
        c2.number_input(
            f"Score-CAM channels K (of {k_total})",
            1,
            k_total,
            min(DEFAULT_MAX_CHANNELS, k_total),
            key="w:compare_k",
            help="The K channels whose activations vary most: one forward pass each.",
        )
    )
    return n_samples, sigma, seed, (cmap, opacity, scale, abs_max), threshold, min(k, k_total)


def scorecam_wanted(k: int, token: tuple) -> bool:
    with guard("measuring a forward pass"):
        t1 = compare_loaders.forward_seconds(
            sel.model_token, sel.image_digest, _bundle=sel.bundle, _x=sel.x, _extra=sel.extra
        )
        st.caption(
            f"Score-CAM with K = {k}: {k} forward passes of the model, about "
            f"{k * t1:.1f} s on this machine (one forward pass of this image measured at "
            f"{t1 * 1000:.0f} ms)."
        )
    if st.button(f"Compute Score-CAM (K = {k})", key="w:compare_run_scorecam"):
        st.session_state[SCORECAM_REQUEST] = (*token, k)
    return st.session_state.get(SCORECAM_REQUEST) == (*token, k)


def compute(n_samples, sigma, seed, k, with_scorecam):
    maps, seconds, tape = {}, {}, None
    groups = [("the gradient methods", TAPE, None), ("the guided methods", GUIDED, None)]
    if with_scorecam:
        groups.append(("Score-CAM", FORWARD, k))
    for what, keys, max_channels in groups:
        if not keys:
            continue
        with guard(f"computing {what}"):
            fair_share.check_settings(
                n_samples,
                grid=sel.layer.grid,
                input_size=sel.x.shape[1:3],
                channels=max_channels,
                total_channels=sel.layer.channels if keys is FORWARD else None,
            )
            settings = sel.settings(
                methods=tuple(keys),
                n_samples=n_samples,
                sigma=sigma,
                seed=seed,
                max_channels=max_channels,
            )
            ex = compare_loaders.explanation(
                sel.model_token,
                sel.image_digest,
                sel.extra_token,
                settings,
                _bundle=sel.bundle,
                _x=sel.x,
                _extra=sel.extra,
            )
            maps.update({m: ex.maps[m][0] for m in keys})
            seconds.update(ex.seconds)
            if keys is TAPE:
                tape = ex
    return maps, seconds, tape


def coincidences(maps, tape):
    if tape is not None and gradient_constant_per_channel(tape.gradients):
        st.info(
            f"At layer {code(sel.layer.path)} the gradient of the class score is the same at "
            "every position of each channel (the layer is followed directly by global "
            "average pooling), so HiResCAM equals Grad-CAM and XGrad-CAM has Grad-CAM's shape."
        )
    cams = {m: v for m, v in maps.items() if REGISTRY[m].cam}
    for group in coinciding_groups(cams):
        names = ", ".join(REGISTRY[m].label for m in group)
        st.caption(f"Identical maps here (each divided by its maximum, within 0.01 %): {names}.")


def mask_upload():
    up = st.file_uploader(
        "Lesion mask (optional): a black-and-white PNG, lesion in white",
        type=["png", "bmp", "gif", "tif", "tiff"],
        key="w:compare_mask",
    )
    if up is None:
        return None, None
    mask = None
    with guard(f"reading the mask {up.name}"):
        digest = loaders.digest(up.getvalue())
        mask, note = evaluate_helpers.mask_from_upload(
            digest,
            tuple(sel.bundle.input_size),
            up.getvalue(),
            up.name,
            (sel.image.height, sel.image.width),
        )
        if note:
            st.info(note, icon=":material/aspect_ratio:")
    return mask, (digest if mask is not None else None)


def same_as(maps) -> dict[str, list[str]]:
    """For each heatmap, the other methods whose map has the same shape here."""
    cams = {m: v for m, v in maps.items() if REGISTRY[m].cam and render.peak_of(v) > 0}
    out: dict[str, list[str]] = {}
    for group in coinciding_groups(cams):
        for m in group:
            out[m] = [REGISTRY[o].label for o in group if o != m]
    return out


def grid(maps, seconds, n_samples, sigma, display, threshold, mask):
    cmap, opacity, scale, abs_max = display
    disp = loaders.display_image(sel.image_digest, sel.image)
    size = (sel.image.height, sel.image.width)
    peaks = {m: render.peak_of(maps[m]) for m in maps if REGISTRY[m].cam}
    tops = render.scale_peaks(peaks, scale, abs_max)
    twins = same_as(maps)
    class_text = sel.class_label(sel.target)
    # The same plain sentence as under Explain's maps (red only for "do not rely on it").
    judged = verdict_views.verdicts_for(sel, list(peaks), n_samples, sigma)
    cols = st.columns(3)
    for i, m in enumerate(k for k in method_keys() if k in maps):
        col = cols[i % 3]
        title = method_label(m, n_samples, sigma)
        lines = [f"**{title}** · {seconds.get(m, 0.0):.2f} s"]
        if REGISTRY[m].cam and peaks[m] <= 0:
            col.info(views.blank_note(m, REGISTRY[m].label), icon=":material/block:")
            lines.append(f"raw max 0 {render.RAW_UNIT}")
        elif REGISTRY[m].cam:
            box = cam_box(maps[m], size, threshold)
            shown = cam_box(maps[m], disp.shape[:2], threshold)
            pic = render.overlay(
                disp, maps[m], cmap=cmap, opacity=opacity, peak=None if scale == "own" else tops[m]
            )
            col.image(
                marks.draw_box(pic, shown),
                width="stretch",
                alt=views.alt_text(views.MapItem(m, title, maps[m]), class_text, peaks[m])
                + (f" Box {list(box)} px." if box else ""),
            )
            lines.append(f"raw max {peaks[m]:.3g} {render.RAW_UNIT}")
            lines.append(
                "box [x0, y0, x1, y1] = " + (f"{list(box)} px" if box else "none (all-zero map)")
            )
            if mask is not None:
                scores = box_scores(maps[m], mask, threshold)
                lines.append(
                    f"pointing {'hit' if metrics.pointing_game(maps[m], mask) else 'miss'} · "
                    f"energy in mask {metrics.energy_in_mask(maps[m], mask):.2f} (1 = chance) · "
                    f"box IoU {scores['box_iou']:.2f} (0–1; < 0.5 = localisation error)"
                )
        else:
            col.image(
                to_image(maps[m]),
                width="stretch",
                alt=f"{title}: the input gradient at the image's size; grey is 0, bright "
                "is positive, dark is negative.",
            )
            lines.append("input gradient: grey = 0, bright = positive, dark = negative")
        col.markdown("  \n".join(lines))
        about = REGISTRY[m].summary
        if m in twins:
            about += f" Here the same map as {', '.join(twins[m])}."
        col.caption(about)
        if REGISTRY[m].cam:
            verdict = judged[m][0]
            col.markdown(verdict_views.sentence_markdown(verdict))
            if verdict.level == UNKNOWN:
                col.caption("The Trust page runs the check for this model and layer.")
    if peaks:
        views.colorbar(views.Drawn(peaks, tops, [], scale), cmap)


def textual(tape, mask):
    """Grad-CAM §7: the top and bottom filters, their numbers, where they fire, one sentence."""
    if tape is None or TEXT_NEEDS not in tape.weights:
        return
    st.subheader("In words")
    text = describe(tape, mask=mask, class_name=plain(sel.class_label(sel.target)))
    st.markdown(text.sentence)
    facts = text.top + text.bottom
    cols = st.columns(max(1, len(facts)))
    for col, f in zip(cols, facts, strict=False):
        thumb = render.colorize(
            render.normalize(render.upsample(f.activation, (48, 48))), "viridis"
        )
        col.image(
            thumb,
            width="stretch",
            alt=f"Filter {f.index}'s activation on the layer's grid: strongest {f.where}.",
        )
        col.caption(
            f"#{f.index} · w = {f.weight:.3g} · {f.share * 100:.1f} % of the map · "
            f"{f.where} ({f.where_fraction * 100:.0f} % of its activation)"
        )
    st.caption(
        "Thumbnails: each filter's activation on the layer's grid (bright = strong). "
        "Share: the filter's part of the Grad-CAM map (all filters' shares add up to 100 %)."
    )


def faithfulness(maps, token, mask, mask_digest):
    cams = {m: v for m, v in maps.items() if REGISTRY[m].cam}
    key = (*token, tuple(cams), mask_digest)
    if st.button("Score faithfulness (Average Drop, deletion, insertion)", key="w:compare_faith"):
        with (
            guard("scoring the maps"),
            st.spinner("Scoring: two batched forward passes per map ..."),
        ):
            raw = evaluate_helpers.raw_image(
                sel.model_token, sel.image_digest, sel.bundle, sel.image
            )
            with fair_share.heavy():
                ev = metrics.evaluate_details(
                    sel.bundle, raw, cams, int(sel.target), extra_inputs=sel.extra, mask=mask
                )
            st.session_state[FAITHFULNESS] = (key, ev.scores)
    stored = st.session_state.get(FAITHFULNESS)
    if stored and stored[0] == key:
        labels = {m: REGISTRY[m].label for m in cams}
        frame = pd.DataFrame(metrics.score_table(stored[1], labels))
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            column_config=evaluate_helpers.column_config(frame),
        )
        st.caption("↑ higher is better · ↓ lower is better (hover a column's name for more).")


if sel.bundle is None:
    st.info("No model is loaded: see the message above, or choose another model in the sidebar.")
elif sel.image is None:
    st.info("Choose an image in the sidebar: a sample, your upload or a camera photo.")
elif not sel.ready:
    st.info("The model could not be run on this image; see the message above.")
else:
    n_samples, sigma, seed, display, threshold, k = settings()
    token = (
        sel.model_token,
        sel.image_digest,
        sel.extra_token,
        sel.layer.path,
        int(sel.target),
        int(n_samples),
        round(float(sigma), 4),
        int(seed),
    )
    with_scorecam = scorecam_wanted(k, token)
    mask, mask_digest = mask_upload()
    maps, seconds, tape = compute(n_samples, sigma, seed, k, with_scorecam)
    st.caption(
        f"Class explained: **{plain(sel.target_text())}** · layer {code(sel.layer.path)} · times "
        "include the passes each method needs (shared passes count for each)."
    )
    coincidences(maps, tape)
    with guard("drawing the maps"):
        grid(maps, seconds, n_samples, sigma, display, threshold, mask)
    with guard("writing the textual explanation"):
        textual(tape, mask)
    if maps:
        faithfulness(maps, token, mask, mask_digest)
