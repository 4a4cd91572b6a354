"""Make every run go through ``app.py``'s ``st.navigation``; keep TensorFlow's state between
runs; warm the default model up.

Streamlit decides per server process, before any script runs, whether the app is an old-style
multipage app: it is while a ``pages/`` folder sits beside ``app.py`` and ``st.navigation`` has
not been called yet (``PagesManager.uses_pages_directory``). In that mode a run starts from the
page file of the URL with an automatic page list. ``python -m dashboard.frame.serve`` (what
``bash run.sh dashboard`` runs) switches the mode off before the server starts
(``prefer_navigation``), so no run is ever in it. Under plain ``streamlit run app.py`` the
first run of the process switches it off (``ensure_navigation``, called by ``app.py`` and by
``sidebar.selection()``, which every page calls first): that one run still draws its page
(the sidebar comes from ``selection()``), and every later run goes through ``app.py``.
"""

import gc
import sys
import threading

import streamlit as st

from dashboard.frame import heap


def prefer_navigation() -> bool:
    """Tell Streamlit that the pages come from ``st.navigation``, not from the ``pages/``
    folder; False when this Streamlit has no such switch (nothing to correct then)."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:
        return False
    PagesManager.uses_pages_directory = False
    return True


def ensure_navigation() -> None:
    """Switch the pages-folder mode off for the runs after this one (no rerun: a rerun would
    drop a button click this run carries)."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # another Streamlit: nothing to correct
        return
    if PagesManager.uses_pages_directory:
        prefer_navigation()


# --- TensorFlow's state is kept between runs --------------------------------------------------
def keep_tensorflow_state() -> bool:
    """Stop Streamlit from calling ``keras.backend.clear_session()`` after every script run
    (``script_runner._clean_problem_modules``, meant for apps that build a model in their
    script); pyplot figures are still closed. That call empties TensorFlow's eager kernel cache,
    so the next map took 0.55–0.73 s instead of 0.11 s (skin-lesion model, this 2-core CPU),
    and runs a full garbage collection (0.27 s) during which the server answers nothing, not
    even the new overlay's image. Models here live in the shared model cache and are never
    rebuilt by a run, so there is nothing to clear. The hook that replaces it also hands the C
    heap's free memory back to the system (``_after_run``). False when this Streamlit has no
    such hook."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        return False
    if not hasattr(script_runner, "_clean_problem_modules"):
        return False
    script_runner._clean_problem_modules = _after_run
    return True


def _after_run() -> None:
    """What runs at the end of every script run (after Streamlit's own full collection):
    pyplot figures closed, then glibc's free memory returned (``heap.release_memory``). The
    trim after each new explanation comes too early for what is freed later in the run and by
    that collection: at block2 about 100-170 MB of free, still resident chunks stayed in
    malloc's arenas for the rest of the process (docs/BENCHMARKS.md)."""
    _close_pyplot_figures()
    heap.release_memory()


def _close_pyplot_figures() -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


# --- warm-up: the default model loaded and traced from the server's start -------------------
class Warmup:
    """The background warm-up of one server process: imports TensorFlow, loads the default
    model into the shared model cache and compiles its forward pass and the gradient step for
    the default layer, so the first visitor's maps need no trace of their own. Started with the
    server by ``dashboard.frame.serve`` (``bash run.sh dashboard``), else by the first run. A failure
    is only logged: the page then loads the same things itself and shows any error."""

    def __init__(self) -> None:
        self.finished = threading.Event()
        self.error: str | None = None
        self.seconds: dict[str, float] = {}  # import, model, traces: where a cold start goes
        self.thread = threading.Thread(target=self._run, name="dashboard-warmup", daemon=True)
        self.thread.start()

    def done(self) -> bool:
        return self.finished.is_set()

    def _run(self) -> None:
        import logging
        import time

        log = logging.getLogger("dashboard")
        last = time.perf_counter()

        def lap(name: str) -> None:  # seconds since the previous lap: where a cold start goes
            nonlocal last
            now = time.perf_counter()
            self.seconds[name], last = now - last, now

        try:
            import numpy as np

            from dashboard.frame import loaders
            from explainers import explain_details, predict, zoo

            lap("import")
            # The modules of TensorFlow, Keras and Streamlit are 370 000 objects that live as
            # long as the server: frozen out of the collector, the full collection Streamlit
            # runs after every script run (runner.postScriptGC) takes 10 ms instead of 0.2 s.
            # Frozen before the model loads: a model or traced pass dropped from its cache later
            # must stay collectable (a frozen cycle never is).
            gc.collect()
            gc.freeze()
            bundle = loaders.catalogue_model(zoo.SKIN_LESION, False)
            lap("model")
            # The compiled passes are traced once per model (and layer), whatever the batch;
            # target 0 on a blank image traces exactly what the default view runs. The forward
            # pass (the prediction) is traced beside the gradient pass, on the other core.
            x = np.zeros((1, *bundle.input_size, 3), np.float32)
            extra = zoo.default_extra_inputs(bundle)
            forward = threading.Thread(target=predict, args=(bundle.model, x, extra), daemon=True)
            forward.start()
            explain_details(bundle.model, x, target=0, extra_inputs=extra)
            forward.join()
            lap("traces")
            heap.release_memory()
            log.info(
                "warm-up done: %s", ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
            )
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("warm-up failed: %s", self.error)
        finally:
            self.finished.set()


def start_warmup() -> Warmup:
    """Start the warm-up once per server process (later calls return the same one)."""
    return _warmup()


@st.cache_resource(show_spinner=False, max_entries=1)
def _warmup() -> Warmup:
    return Warmup()
