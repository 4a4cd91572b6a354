"""``python -m dashboard.frame.serve [streamlit options]``: ``streamlit run app.py`` with the warm-up
started at the same moment as the server (``bash run.sh dashboard`` runs this).

Why: ``streamlit run`` executes nothing of the app before the first visitor's session opens, so
the first visitor waited for TensorFlow's import, the model file's loading and the first traces
(about 11 s on a 2-core CPU, docs/BENCHMARKS.md). Started here, that work overlaps Streamlit's
own start and the browser's first request. The warm-up is the one ``app.py`` uses
(``dashboard.frame.bootstrap.start_warmup``, a cached resource): the first run finds it under way or
done and waits for nothing it has not already started. Plain ``streamlit run app.py`` still
works; it starts the same warm-up at the first visit.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app.py"


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from explainers.engine.allocator import prefer_system_allocator

    prefer_system_allocator()  # before the warm-up imports TensorFlow: memory returned after each call
    # The warm-up says in the server's log where a cold start's seconds went (or why it failed).
    log = logging.getLogger("dashboard")
    log.setLevel(logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s dashboard: %(message)s"))
    log.addHandler(handler)
    from streamlit.web import cli

    from dashboard.frame.bootstrap import start_warmup

    start_warmup()  # a background thread: returns at once
    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    cli.main()  # Streamlit's own command line: it parses the options and serves until stopped


if __name__ == "__main__":
    main()
