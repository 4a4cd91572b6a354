"""The dashboard: ``bash run.sh dashboard`` (``python -m dashboard.frame.serve``) or ``streamlit run app.py``.

Pages: Explain (the start page), Filters and neurons, How it works, Compare methods, Evaluate,
Trust, and Audit a dataset. The sidebar
(model, image, patient data, layer, class) is drawn here, once, so every page shows and uses
the same current selection. No math here or in ``pages/``: they call ``explainers``.

Order matters. With sign-in configured (``dashboard.frame.auth``), a signed-out visitor's run stops
at the sign-in page before anything else. For the first visit after a server start: the page
list and a status line are drawn before TensorFlow is imported, and the default model is
loaded and traced in a background thread (``dashboard.frame.bootstrap.start_warmup``): started with
the server by ``dashboard.frame.serve``, or here at the first visit under plain ``streamlit run``.
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from explainers.engine.allocator import prefer_system_allocator

prefer_system_allocator()  # before TensorFlow loads (plain `streamlit run app.py` starts here)

import streamlit as st  # noqa: E402

from dashboard.frame import auth, first_view  # noqa: E402  (small: no TensorFlow)
from dashboard.frame.bootstrap import (  # noqa: E402
    ensure_navigation,
    keep_tensorflow_state,
    start_warmup,
)

HERE = Path(__file__).resolve().parent

ensure_navigation()  # before anything is drawn: see dashboard/frame/bootstrap.py
keep_tensorflow_state()  # plain `streamlit run app.py`: from this run's end on
st.set_page_config(
    page_title="Grad-CAM explorer",
    # A local file: a ":material/...:" icon makes the browser fetch it from fonts.gstatic.com.
    page_icon=str(HERE / "dashboard" / "static" / "favicon.png"),
    layout="wide",
    initial_sidebar_state=400,  # "auto", 400 px wide: a layer's or sample's name fits
)
# With [auth] in .streamlit/secrets.toml, a signed-out visitor gets the sign-in page only and
# the run stops here: no page list, no warm-up started for them (docs/DEPLOY.md).
auth.require_sign_in()
warmup = start_warmup()  # once per server process; returns at once

# Each url_path is its file's name, so that a first visit straight to a page (before Streamlit
# has seen st.navigation; see dashboard/frame/bootstrap.py) lands on the same page.

#: (file in pages/, title, icon): the page list, in the sidebar's order; Explain is the start page.
PAGES = (
    ("explain", "Explain", ":material/visibility:"),
    ("filters_neurons", "Filters and neurons", ":material/grid_on:"),
    ("how_it_works", "How it works", ":material/school:"),
    ("compare", "Compare methods", ":material/compare:"),
    ("evaluate", "Evaluate", ":material/fact_check:"),
    ("trust", "Trust", ":material/verified:"),
    ("audit", "Audit a dataset", ":material/checklist:"),
)
pages = [
    st.Page(
        str(HERE / "pages" / f"{name}.py"),
        title=title,
        icon=icon,
        **({"default": True} if i == 0 else {"url_path": name}),
    )
    for i, (name, title, icon) in enumerate(PAGES)
]

page = st.navigation(pages)  # its own list is hidden (.streamlit/config.toml): the links below
with st.sidebar:
    auth.account_box()  # who is signed in, and Sign out (only with sign-in configured)
    for p in pages:
        st.page_link(p)
    share_box = st.container()

status = st.empty()
# A session's plain first visit draws the default view: while the server warms up, the view
# saved at an earlier start is shown (dashboard/frame/first_view.py), and the live one saved.
plain_visit = first_view.mark_run()
if not warmup.done():
    with status.container():
        st.info(
            "**Grad-CAM explorer** is starting: loading TensorFlow and the skin-lesion "
            "model (about 10 s after a server start) ...",
            icon=":material/hourglass_top:",
        )
        if plain_visit and page.title == PAGES[0][1]:
            first_view.show()

from dashboard.frame import share, state  # noqa: E402  (imports TensorFlow)
from dashboard.frame.errors import guard  # noqa: E402
from dashboard.widgets import sidebar  # noqa: E402

with guard("drawing the sidebar"):
    sidebar.render()
status.empty()
auth.note_run(page.title, st.session_state.get(state.SELECTION), state.get(state.IMAGE_SOURCE))
with guard(f"showing the page {page.title}"):
    page.run()
state.sync_url()  # settings the page changed (a region, positions) reach the link too
with guard("making the link to this view"):
    share.share_link(share_box)
state.end_of_run()
