"""Evaluate: which map to trust? Faithfulness scores (Average Drop, Increase in Confidence,
deletion / insertion) of Grad-CAM, Grad-CAM++ and their smoothed versions, localisation
against an uploaded mask, and the same table over several images. No math here: every number
comes from ``explainers.evaluation.scoring``."""

import streamlit as st

from dashboard.frame import fair_share, loaders, state
from dashboard.frame.errors import guard
from dashboard.frame.notices import code
from dashboard.frame.notices import plain as plain_text
from dashboard.page_parts import evaluate_helpers
from dashboard.widgets import sidebar, views
from explainers import zoo
from explainers.evaluation import scoring as metrics

sel = sidebar.selection()
MAX_UPLOADS = 32  # images evaluated in one go from uploads (each costs ~140 forward passes)

st.title("Evaluate the maps")
st.caption(
    "A heatmap that looks plausible is not yet a faithful one. These scores check whether the "
    "model's confidence follows the map (Chattopadhay et al. 2018; Petsiuk et al. 2018) and, "
    "with a lesion mask, whether the map points at the lesion."
)

with st.expander("What the scores mean"):
    st.markdown(
        "- **Average Drop (%)** — the model sees only the image × map (the map scaled to 0–1). "
        "How much of the class probability is lost, on average: *lower is better*.\n"
        "- **Increase in Confidence (%)** — share of images whose probability *rises* when only "
        "the map's region is shown: *higher is better* (for one image: 0 or 100).\n"
        "- **Deletion AUC (0–1)** — pixels are blacked out, most important first, in equal "
        "steps; area under the probability curve: *lower is better* (the evidence went first).\n"
        "- **Insertion AUC (0–1)** — pixels are revealed on a blurred copy, most important "
        "first: *higher is better*.\n"
        "- With a mask: **Energy in mask** (share of the map inside the mask ÷ the mask's share "
        "of the image; 1 = chance), **Pointing game** (is the map's maximum inside the mask?) "
        "and **IoU** of the map's region above 50 % of its maximum with the mask."
    )


def settings_row():
    """Noise settings (shared with the other pages) and the number of deletion steps."""
    n_samples, sigma, seed = views.noise_controls()
    smooth = evaluate_helpers.smooth_samples(n_samples)
    steps = st.select_slider(
        "Deletion / insertion steps",
        options=list(evaluate_helpers.STEP_CHOICES),
        **state.bind(state.EVAL_STEPS, options=evaluate_helpers.STEP_CHOICES, labels=str),
        help="Each curve is one batched pass of steps + 1 images.",
    )
    if n_samples == 0:
        st.caption(f"Noise samples is 0, so the smoothed maps use {smooth} samples.")
    return smooth, sigma, seed, int(steps)


SCORED = "_eval_scored"  # the settings this session asked to score (bounded, newest last)


def scored_on_request(token: tuple) -> bool:
    """Whether to score now: only after the button was pressed for these settings (the
    scores take 20–50 s on a CPU, so opening the page never starts them); settings scored
    before in this session are shown again at once (cached)."""
    asked = list(st.session_state.get(SCORED) or [])
    if token in asked:
        return True
    st.info(
        "Scoring takes a few forward passes per map (20–50 s on a 2-core CPU): press the "
        "button to start. Nothing runs until then.",
        icon=":material/timer:",
    )
    if st.button(
        "Score this image", type="primary", key="w:eval_single_go", icon=":material/play_arrow:"
    ):
        st.session_state[SCORED] = ([*asked, token])[-16:]
        return True
    return False


def single_image(smooth: int, sigma: float, seed: int, steps: int) -> None:
    labels = metrics.variant_labels(smooth, None)  # short names; σ is in the caption
    h, w = sel.bundle.input_size
    mask, mask_digest = None, None
    up = st.file_uploader(
        "Lesion mask (optional): a black-and-white PNG, lesion in white",
        type=["png", "bmp", "gif", "tif", "tiff"],
        key="w:eval_mask",
        help="Resized to the image. Gives the localisation scores and is outlined on the maps.",
    )
    if up is not None:
        with guard(f"reading the mask {up.name}"):
            data = up.getvalue()
            mask_digest = loaders.digest(data)
            mask, note = evaluate_helpers.mask_from_upload(
                mask_digest, (h, w), data, up.name, (sel.image.height, sel.image.width)
            )
            if note:
                st.info(note, icon=":material/aspect_ratio:")
        if mask is not None and not mask.any():
            st.warning("The mask is empty (no white pixels): localisation scores are 0.")

    token = (
        sel.model_token,
        sel.image_digest,
        sel.extra_token,
        sel.layer.path,
        int(sel.target),
        smooth,
        round(float(sigma), 4),
        int(seed),
        steps,
        mask_digest if mask is not None else None,
    )
    if not scored_on_request(token):
        return
    maps, ev, raw = None, None, None
    with guard("computing the maps"), st.spinner("Computing the plain and smoothed maps ..."):
        plain = sel.explain(n_samples=0, sigma=sigma, seed=seed)
        smoothed = sel.explain(n_samples=smooth, sigma=sigma, seed=seed)
        maps = {
            key: (smoothed if is_smooth else plain).maps[method][0]
            for key, method, is_smooth in metrics.VARIANTS
        }
    if maps is None:
        return
    with (
        guard("scoring the maps"),
        st.spinner("Scoring the maps (a few batched forward passes) ..."),
    ):
        raw = evaluate_helpers.raw_image(sel.model_token, sel.image_digest, sel.bundle, sel.image)
        ev = evaluate_helpers.evaluation(
            *token,  # the same small values that key the button's "scored already" check
            _bundle=sel.bundle,
            _raw=raw,
            _maps=maps,
            _extra=sel.extra,
            _mask=mask,
        )
    if ev is None:
        return

    st.subheader("Scores for this image")
    frame = evaluate_helpers.score_frame(ev.scores, labels)
    st.dataframe(
        frame, hide_index=True, width="stretch", column_config=evaluate_helpers.column_config(frame)
    )
    st.caption(
        f"Class explained: **{plain_text(sel.target_text())}** · layer {code(sel.layer.path)} · "
        f"smoothing σ = {sigma:.2f}, seed {seed} · {steps} deletion / insertion steps. One image gives a noisy verdict; use "
        "*Several images* below for a fairer comparison."
    )
    st.markdown(evaluate_helpers.best_text(ev.scores, labels))
    st.download_button(
        "Download this table (CSV)",
        evaluate_helpers.csv_bytes(frame),
        file_name=f"{views.image_stem(sel)}_scores.csv",
        mime="text/csv",
        key="dl:eval_single",
        on_click="ignore",
    )

    st.subheader("Deletion and insertion curves")
    with guard("drawing the curves"):
        st.pyplot(
            evaluate_helpers.curves_figure(
                ev.curves, labels, sel.class_label(sel.target), views.theme_text_color()
            ),
            clear_figure=False,
            alt=evaluate_helpers.curves_alt(ev.curves, labels),
        )

    st.subheader("The maps" + (" with the mask outlined" if mask is not None else ""))
    with guard("drawing the maps"):
        pictures = evaluate_helpers.overlays_with_mask(
            raw, maps, mask, state.get(state.CMAP), float(state.get(state.OPACITY))
        )
        cols = st.columns(4)
        for col, (key, picture) in zip(cols, pictures.items(), strict=False):
            col.image(
                picture,
                caption=labels[key],
                width="stretch",
                alt=f"The {labels[key]} map over the image"
                + (", the lesion mask outlined in white." if mask is not None else "."),
            )


def several_images(smooth: int, sigma: float, seed: int, steps: int) -> None:
    source_labels = {"samples": "Sample gallery", "upload": "Upload several images"}
    source = st.radio(
        "Images",
        list(state.EVAL_SOURCES),
        horizontal=True,
        format_func=source_labels.get,
        **state.bind(state.EVAL_SOURCE, options=state.EVAL_SOURCES, labels=source_labels.get),
    )
    items = []
    if source == "samples":
        samples = loaders.samples()
        by_id = {s.image_id: s for s in samples}
        first = list(by_id)[:4]
        chosen = st.multiselect(
            "Samples",
            list(by_id),
            format_func=lambda i: f"{i} ({by_id[i].dx})",
            **state.bind(
                state.EVAL_SAMPLES,
                to_widget=lambda v: first if v is None else [i for i in v if i in by_id],
                from_widget=lambda v: None if list(v) == first else list(v),
            ),
        )
        for i in chosen:
            s = by_id[i]
            extra = [s.metadata()] if sel.bundle.metadata_input else None
            items.append((f"{i}.jpg", str(s.path), extra))
        if sel.bundle.metadata_input:
            st.caption("Each sample is given its recorded patient data.")
    else:
        ups = st.file_uploader(
            "Images",
            type=sidebar.IMAGE_TYPES,
            accept_multiple_files=True,
            key="w:eval_uploads",
            help=f"At most {MAX_UPLOADS} at a time.",
        )
        if len(ups or []) > MAX_UPLOADS:
            st.error(
                f"{len(ups)} images were uploaded; evaluate at most {MAX_UPLOADS} at a time "
                "(remove some, or use the batch command for a whole folder).",
                icon=":material/error:",
            )
            return
        for up in ups or []:
            items.append((up.name, up.getvalue(), zoo.default_extra_inputs(sel.bundle)))
        if sel.bundle.metadata_input:
            st.caption("Uploaded images are given unknown patient data.")
    if not items:
        st.info("Choose at least one image.")
        return
    st.caption(
        f"Each image is explained at its own top-1 class, layer {code(sel.layer.path)}; per "
        f"image that is {smooth} noisy gradient passes and {1 + 8 * (steps + 1) + 4} "
        "forward passes, so this takes a while on a CPU."
    )
    token = (
        sel.model_token,
        sel.layer.path,
        tuple(name for name, _, _ in items),
        smooth,
        round(float(sigma), 4),
        int(seed),
        steps,
    )
    if st.button(
        f"Evaluate {len(items)} image{'s' if len(items) != 1 else ''}",
        type="primary",
        key="w:eval_many_go",
    ):
        bar = st.progress(0.0, text="Starting ...")

        def progress(done: int, total: int, name: str) -> None:
            text = f"Evaluated {done} of {total}" + (f" — now {name}" if name else "")
            bar.progress(min(1.0, done / max(total, 1)), text=text)

        with guard("evaluating the images"):
            fair_share.check_settings(smooth, grid=sel.layer.grid, input_size=sel.bundle.input_size)
            rows, scores, errors = evaluate_helpers.evaluate_many(
                sel.bundle,
                items,
                layer=sel.layer.path,
                n_samples=smooth,
                sigma=sigma,
                seed=seed,
                n_steps=steps,
                on_progress=progress,
            )
            st.session_state["_eval_many"] = (token, rows, scores, errors)
        bar.empty()
    stored = st.session_state.get("_eval_many")
    if not stored:
        return
    if stored[0] != token:
        st.info(
            "The settings or images changed since the last evaluation: press the button to "
            "evaluate again."
        )
        return
    _, rows, scores, errors = stored
    for message in errors:
        st.error(f"Skipped {message}")
    if not scores:
        return
    labels = metrics.variant_labels(smooth, None)
    agg = metrics.aggregate(scores)
    frame = evaluate_helpers.score_frame(agg, labels)
    st.subheader(f"Averaged over {len(scores)} image{'s' if len(scores) != 1 else ''}")
    st.dataframe(
        frame, hide_index=True, width="stretch", column_config=evaluate_helpers.column_config(frame)
    )
    st.caption(
        f"Smoothing σ = {sigma:.2f}, seed {seed} · {steps} deletion / insertion steps · "
        "each image explained at its own top-1 class."
    )
    st.markdown(evaluate_helpers.best_text(agg, labels))
    per_image = evaluate_helpers.rows_frame(rows)
    c1, c2 = st.columns(2)
    c1.download_button(
        "Download the averaged table (CSV)",
        evaluate_helpers.csv_bytes(frame),
        file_name="evaluation_summary.csv",
        mime="text/csv",
        key="dl:eval_summary",
        on_click="ignore",
        width="stretch",
    )
    c2.download_button(
        "Download the per-image scores (CSV)",
        evaluate_helpers.csv_bytes(per_image),
        file_name="evaluation_per_image.csv",
        mime="text/csv",
        key="dl:eval_rows",
        on_click="ignore",
        width="stretch",
    )
    with st.expander("Per-image scores"):
        st.dataframe(
            per_image,
            hide_index=True,
            width="stretch",
            column_config=evaluate_helpers.column_config(per_image),
        )


if sel.bundle is None:
    st.info("Choose a model in the sidebar to start.")
elif sel.image is None and sel.layer is None:
    st.info("Choose an image in the sidebar: a sample, your upload or a camera photo.")
else:
    if not sel.meaningful:
        st.warning("This model has random weights: its scores say nothing about real maps.")
    smooth, sigma, seed, steps = settings_row()
    mode_labels = {"this": "This image", "several": "Several images"}
    mode = st.radio(
        "Evaluate",
        list(state.EVAL_MODES),
        horizontal=True,
        format_func=mode_labels.get,
        **state.bind(state.EVAL_MODE, options=state.EVAL_MODES, labels=mode_labels.get),
    )
    if mode == "this":
        if sel.image is None:
            st.info("Choose an image in the sidebar: a sample, your upload or a camera photo.")
        elif not sel.ready:
            st.info("The model could not be run on this image; see the message above.")
        else:
            single_image(smooth, sigma, seed, steps)
    elif sel.layer is None:
        st.info("The model has no layer to explain; see the message above.")
    else:
        several_images(smooth, sigma, seed, steps)
