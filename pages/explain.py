"""Explain: the prediction, and the input beside its Grad-CAM and Grad-CAM++ maps."""

import streamlit as st

from dashboard.bootstrap import ensure_navigation

ensure_navigation()  # a first run straight into this file goes back through app.py

from dashboard import sidebar, trust_views, views
from dashboard.errors import guard

sel = sidebar.selection()
st.title("Explain a prediction")
st.caption("Where in the image does the model find evidence for the class? Grad-CAM and "
           "Grad-CAM++ side by side; noise samples turn both into their smoothed versions.")

if sel.bundle is None:
    st.info("No model is loaded: see the message above, or choose another model in the sidebar.")
elif sel.image is None:
    st.info("Choose an image in the sidebar: a sample, your upload or a camera photo.")
    views.gallery(sel)
elif not sel.ready:
    st.info("The model could not be run on this image; see the message above.")
else:
    with guard("showing the prediction"):
        views.prediction_block(sel)
    st.subheader("Heatmaps")
    n_samples, sigma, seed = views.noise_controls()
    ex = None
    with guard("computing the heatmaps"):
        ex = sel.explain(n_samples=n_samples, sigma=sigma, seed=seed)
    if ex is not None:
        with guard("drawing the heatmaps"):
            views.maps_panel(ex, sel, n_samples, sigma)
        with guard("checking how far to trust the maps"):
            trust_views.explain_trust_section(sel, ex, n_samples, sigma, seed)
    views.gallery(sel)
