"""Explain: the input beside its Grad-CAM and Grad-CAM++ maps (first, so they are above the
fold), then the noise controls, the prediction table and the recorded diagnosis."""

import streamlit as st

from dashboard.bootstrap import ensure_navigation

ensure_navigation()  # a first run straight into this file goes back through app.py

from dashboard import sidebar, state, views
from dashboard.errors import guard

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
    with guard("showing the prediction"):
        st.markdown(views.prediction_summary(sel))
    n_samples, sigma, seed = (int(state.get(state.N_SAMPLES)), float(state.get(state.SIGMA)),
                              int(state.get(state.SEED)))
    st.subheader("Heatmaps")
    # One fixed slot above the maps: the spinner (and the progress bar of noisy samples) goes
    # here, so the previous maps stay in place, faded, until the new ones replace them.
    status = st.empty()
    ex = None
    with guard("computing the heatmaps"):
        with status.container():
            with st.spinner(f"Computing the maps for {sel.class_label(sel.target)} …"):
                ex = sel.explain(n_samples=n_samples, sigma=sigma, seed=seed)
    status.caption("Where the model finds evidence for the class: Grad-CAM and Grad-CAM++ side "
                   "by side (noise samples, below, smooth both).")
    if ex is not None:
        with guard("drawing the heatmaps"):
            views.maps_panel(ex, sel)
    st.subheader("Noise")
    views.noise_controls()
    with guard("showing the prediction"):
        views.prediction_block(sel)
    views.gallery(sel)
