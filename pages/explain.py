"""Explain: the prediction in one line, the input beside its maps (Grad-CAM and Grad-CAM++ by
default, any method of the registry on request), each map with its sanity verdict in one plain
sentence (first, so they are above the fold), the methods and noise controls; then, collapsed,
the details for the technical reader, further checks, the prediction table with the recorded
diagnosis and the sample gallery."""

import streamlit as st

from dashboard.frame import first_view, state
from dashboard.frame.errors import guard
from dashboard.frame.notices import plain
from dashboard.widgets import maps_panel, method_views, sidebar, trust_views, views

sel = sidebar.selection()
st.title("Explain a prediction")

if sel.bundle is None:
    st.info("No model is loaded: see the message above, or choose another model in the sidebar.")
elif sel.image is None:
    st.info("Choose an image in the sidebar: a sample, your upload or a camera photo.")
    views.gallery(sel)
elif not sel.ready:
    st.info("The model could not be run on this image; see the message above.")
else:
    # The default view of a plain first visit is saved for the next server start to show.
    saved = first_view.recorder(
        sel.bundle.key == state.DEFAULT_MODEL and sel.meaningful and sel.sample is not None
    )
    with guard("showing the prediction"):
        summary = views.prediction_summary(sel)
        st.markdown(summary)
        if saved is not None:
            saved.summary = summary
    n_samples, sigma, seed = (
        int(state.get(state.N_SAMPLES)),
        float(state.get(state.SIGMA)),
        int(state.get(state.SEED)),
    )
    st.subheader("Heatmaps")
    # One fixed slot above the maps: the spinner (and the progress bar of noisy samples) goes
    # here, so the previous maps stay in place, faded, until the new ones replace them.
    status = st.empty()
    cams, pixels = method_views.split(state.get(state.METHODS) or ())
    ex = pixel_ex = None
    with guard("computing the heatmaps"), status.container():
        with st.spinner(f"Computing the maps for {plain(sel.class_label(sel.target))} …"):
            ex = sel.explain(n_samples=n_samples, sigma=sigma, seed=seed, methods=cams)
    if pixels and ex is not None:
        with (
            guard("computing the guided maps"),
            status.container(),
            st.spinner("Guided backprop …"),
        ):
            pixel_ex = sel.explain(n_samples=n_samples, sigma=sigma, seed=seed, methods=pixels)
    status.caption(
        "Where the model found evidence for the class, one map per method, and under "
        "each map whether it can be read as evidence at all."
    )
    if ex is not None:
        later: dict = {}  # filled by the trust section below, read by the report button on click
        with guard("drawing the heatmaps"):
            maps_panel.maps_panel(
                ex,
                sel,
                pixel_ex,
                boxes=bool(state.get(state.BOX)),
                report_extras=later,
                recorder=saved,
            )
            if saved is not None:
                saved.save()
    method_views.method_controls()
    views.noise_controls()
    if ex is not None:
        with guard("checking how far to trust the maps"):
            trust_views.explain_trust_section(sel, ex, n_samples, sigma, seed, report_extras=later)
    with (
        guard("showing the prediction"),
        st.expander("Prediction of every class and the recorded diagnosis"),
    ):
        views.prediction_block(sel)
    views.gallery(sel)
