"""Make every run go through ``app.py``'s ``st.navigation``.

Streamlit decides per server process, before any script runs, whether the app is an old-style
multipage app: it is while a ``pages/`` folder sits beside ``app.py`` and ``st.navigation`` has
not been called yet. So the very first run after ``streamlit run`` would run the page file of
the URL on its own (``/evaluate`` → ``pages/evaluate.py``, with an automatic page list of file
names in the sidebar) and give the sidebar widgets other ids than later runs. ``ensure_navigation``
switches that mode off and reruns at once, so the first run is like every other.
"""

import threading

import streamlit as st

_lock = threading.Lock()
_corrected = False


def ensure_navigation() -> None:
    """Rerun once per server process, on its very first run (no widget has been touched yet,
    so nothing of the user's is lost). Not under Streamlit's test harness (``AppTest``), which
    runs each script run on its own and resets this mode before every run."""
    global _corrected
    try:
        from streamlit.runtime import Runtime
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # another Streamlit: nothing to correct
        return
    if not PagesManager.uses_pages_directory:
        return
    if type(getattr(Runtime, "_instance", None)).__name__ == "MagicMock":  # AppTest's runtime
        return
    PagesManager.uses_pages_directory = False
    with _lock:
        first, _corrected = not _corrected, True
    if first:
        st.rerun()
