"""``bash run.sh dashboard`` runs ``python -m dashboard.frame.serve``: Streamlit's own ``run`` command,
with the warm-up (TensorFlow, the default model, its traces) started first, so that a cold
start's work begins with the server instead of at the first visit."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import streamlit.web.cli

from dashboard.frame import bootstrap, serve

ROOT = Path(__file__).resolve().parents[1]


def test_serve_starts_the_warmup_then_streamlit_run_with_the_options(monkeypatch):
    order = []
    monkeypatch.setattr(bootstrap, "start_warmup", lambda: order.append("warm-up"))
    monkeypatch.setattr(
        streamlit.web.cli, "main", lambda: order.append(("streamlit", list(sys.argv)))
    )
    monkeypatch.setattr(sys, "argv", ["serve.py", "--server.port", "8599"])
    serve.main()
    for handler in logging.getLogger("dashboard").handlers[:]:
        logging.getLogger("dashboard").removeHandler(handler)
    assert order == [
        "warm-up",
        ("streamlit", ["streamlit", "run", str(ROOT / "app.py"), "--server.port", "8599"]),
    ]


def test_run_sh_starts_the_dashboard_through_serve():
    text = (ROOT / "run.sh").read_text()
    assert 'exec "$VENV/bin/python" -m dashboard.frame.serve "$@"' in text


def test_a_finished_run_keeps_tensorflow_state_and_still_closes_pyplot_figures(monkeypatch):
    """Streamlit calls ``keras.backend.clear_session()`` after every run: the next map then took
    5-7x longer (TensorFlow's kernel cache emptied). With the server's hook it is not called."""
    import keras
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from keras.src.backend.common import global_state
    from streamlit.runtime.scriptrunner import script_runner

    monkeypatch.setattr(
        script_runner, "_clean_problem_modules", script_runner._clean_problem_modules
    )
    cleared = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: cleared.append(True))
    assert bootstrap.keep_tensorflow_state() is True
    global_state.set_global_attribute("explainers_test_marker", 42)
    plt.figure()
    script_runner._clean_problem_modules()
    assert cleared == []
    assert global_state.get_global_attribute("explainers_test_marker") == 42
    assert plt.get_fignums() == []
    global_state.set_global_attribute("explainers_test_marker", None)
