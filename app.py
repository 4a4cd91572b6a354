"""The dashboard: ``bash run.sh dashboard`` (``python -m dashboard.frame.serve``) or ``streamlit run app.py``.

Pages: Explain (the start page), Filters and neurons, How it works, and Evaluate. The sidebar
(model, image, patient data, layer, class) is drawn here, once, so every page shows and uses
the same current selection. No math here or in ``pages/``: they call ``explainers``.

Order matters for the first visit after a server start: the page list and a status line are
drawn before TensorFlow is imported, and the default model is loaded and traced in a background
thread (``dashboard.frame.bootstrap.start_warmup``): started with the server by ``dashboard.frame.serve``,
or here at the first visit under plain ``streamlit run``.
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import streamlit as st  # noqa: E402

from dashboard.frame.bootstrap import ensure_navigation, start_warmup  # noqa: E402

ensure_navigation()  # before anything is drawn: see dashboard/frame/bootstrap.py
warmup = start_warmup()  # once per server process; returns at once

st.set_page_config(
    page_title="Grad-CAM explorer",
    page_icon=":material/biotech:",
    layout="wide",
    initial_sidebar_state=400,  # "auto", 400 px wide: a layer's or sample's name fits
)

HERE = Path(__file__).resolve().parent

# Each url_path is its file's name, so that a first visit straight to a page (before Streamlit
# has seen st.navigation; see dashboard/frame/bootstrap.py) lands on the same page.

pages = [
    st.Page(str(HERE / "pages" / "explain.py"), title="Explain", icon=":material/visibility:",
            default=True),
    st.Page(str(HERE / "pages" / "filters_neurons.py"), title="Filters and neurons",
            icon=":material/grid_on:", url_path="filters_neurons"),
    st.Page(str(HERE / "pages" / "how_it_works.py"), title="How it works",
            icon=":material/school:", url_path="how_it_works"),
    st.Page(str(HERE / "pages" / "compare.py"), title="Compare methods",
            icon=":material/compare:", url_path="compare"),
]
if (HERE / "pages" / "evaluate.py").is_file():  # written separately; the app runs without it
    pages.append(st.Page(str(HERE / "pages" / "evaluate.py"), title="Evaluate",
                         icon=":material/fact_check:", url_path="evaluate"))

pages.append(st.Page(str(HERE / "pages" / "trust.py"), title="Trust", icon=":material/verified:", url_path="trust"))
pages.append(st.Page(str(HERE / "pages" / "audit.py"), title="Audit a dataset",
                     icon=":material/checklist:", url_path="audit"))

page = st.navigation(pages)  # its own list is hidden (.streamlit/config.toml): the links below
with st.sidebar:
    for p in pages:
        st.page_link(p)
    share_box = st.container()

status = st.empty()
if not warmup.done():
    status.info("**Grad-CAM explorer** is starting: loading TensorFlow and the skin-lesion "
                "model (about 10 s after a server start) ...", icon=":material/hourglass_top:")

from dashboard.frame import share, state  # noqa: E402  (imports TensorFlow)
from dashboard.widgets import sidebar
from dashboard.frame.errors import guard  # noqa: E402

with guard("drawing the sidebar"):
    sidebar.render()
status.empty()
with guard(f"showing the page {page.title}"):
    page.run()
state.sync_url()  # settings the page changed (a region, positions) reach the link too
with guard("making the link to this view"):
    share.share_link(share_box)
state.end_of_run()
