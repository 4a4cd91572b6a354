"""The dashboard: ``streamlit run app.py`` (or ``bash run.sh dashboard``).

Pages: Explain (the start page), Filters and neurons, How it works, and Evaluate. The sidebar
(model, image, patient data, layer, class) is drawn here, once, so every page shows and uses
the same current selection. No math here or in ``pages/``: they call ``explainers``.
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import streamlit as st  # noqa: E402

from dashboard.bootstrap import ensure_navigation  # noqa: E402

ensure_navigation()  # before anything is drawn: see dashboard/bootstrap.py

st.set_page_config(
    page_title="Grad-CAM explorer",
    page_icon=":material/biotech:",
    layout="wide",
    initial_sidebar_state="expanded",
)

from dashboard import sidebar  # noqa: E402
from dashboard.errors import guard  # noqa: E402

HERE = Path(__file__).resolve().parent

# Each url_path is its file's name, so that a first visit straight to a page (before Streamlit
# has seen st.navigation; see dashboard/bootstrap.py) lands on the same page.

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

page = st.navigation(pages)
with guard("drawing the sidebar"):
    sidebar.render()
with guard(f"showing the page {page.title}"):
    page.run()
