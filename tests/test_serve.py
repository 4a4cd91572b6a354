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
