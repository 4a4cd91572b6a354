"""The Explain page's default view, kept on disk so that the next server start shows it at once.

Why: after a server start the first visitor waits for TensorFlow's import, the model file and
the first traces (9–13 s on a 2-core CPU, docs/BENCHMARKS.md) before any map. The default
view (a plain visit: no link parameters, so the skin-lesion model, the first bundled sample
and every setting at its default) is the same for everyone and depends only on the model file
and the code. So the run that draws it records what it drew (the prediction line, the
pictures with their captions and verdict sentences), and while the next start warms up, the
page shows that record, labelled as saved, until the live page replaces it.

A record is believed only when this installation signed it (``explainers.trust.signing``)
and it was made from the same model file and the same code (``fingerprint``). One file, so the
cache is bounded; it holds only what the bundled sample gives, never anything a visitor sent.
Nothing here imports TensorFlow (it runs while TensorFlow loads) and nothing here raises.
Folder: ``EXPLAINERS_FIRST_VIEW`` or ~/.cache/explainers/first_view.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import io
import logging
import os
from pathlib import Path
from typing import Any

import streamlit as st

from explainers.trust.signing import read_signed, write_signed

log = logging.getLogger("dashboard")
ROOT = Path(__file__).resolve().parents[2]
FILE_NAME = "explain.json"
PLAIN_RUN = "_first_view_plain_run"  # session key: this run draws the default view
SAVED_NOTE = (
    "Saved at an earlier start of this server, for this model file and this version of the "
    "app. The live page, with its controls, replaces it in a few seconds."
)
#: What a record may replay into a column, and the most steps it may hold.
KINDS = ("image", "markdown", "caption", "info")
MAX_COLUMNS, MAX_STEPS = 4, 12
#: Fingerprints whose record this process saved or found valid: nothing more to record.
_RECORDED: set[str] = set()
_SETTINGS_KEY = "_state_initialised"  # dashboard.frame.state._INITIALISED (not imported: TF)


def path() -> Path:
    folder = os.environ.get("EXPLAINERS_FIRST_VIEW")
    return (
        Path(folder) if folder else Path.home() / ".cache" / "explainers" / "first_view"
    ) / FILE_NAME


@functools.cache
def fingerprint() -> str | None:
    """Model file (size, time) + the app's code and bundled data (the samples, the shipped
    verdicts) + Streamlit's version; None without the model."""
    try:
        spec = importlib.util.find_spec("sklesion")
        model = Path(next(iter(spec.submodule_search_locations))) / "model.keras"
        info = model.stat()
        h = hashlib.sha256(f"{model.name}:{info.st_size}:{info.st_mtime_ns}".encode())
        h.update(st.__version__.encode())
        code = [ROOT / "app.py"]
        for folder in ("explainers", "dashboard", "pages"):
            code += (ROOT / folder).rglob("*.py")
        code += (p for p in (ROOT / "explainers" / "data").rglob("*") if p.is_file())
        for file in sorted(code):
            h.update(str(file.relative_to(ROOT)).encode())
            h.update(file.read_bytes())
    except (AttributeError, ImportError, StopIteration, TypeError, ValueError, OSError):
        return None
    return h.hexdigest()


def mark_run() -> bool:
    """Call once per run before the settings are read: remembers whether this run is a
    session's plain first visit (no link parameters, no settings yet), i.e. the default view."""
    try:
        plain = not st.query_params.to_dict() and _SETTINGS_KEY not in st.session_state
    except Exception:  # no URL (a bare script run)
        plain = False
    st.session_state[PLAIN_RUN] = plain
    return plain


# --- showing ------------------------------------------------------------------------------------
def _png(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return data if data.startswith(b"\x89PNG\r\n\x1a\n") else None


def load() -> dict | None:
    """The saved view when it is valid for this model file and code, else None."""
    key = fingerprint()
    data = read_signed(path(), key) if key else None
    if not isinstance(data, dict) or not isinstance(data.get("summary"), str):
        return None
    columns = data.get("columns")
    if not isinstance(columns, list) or not 1 < len(columns) <= MAX_COLUMNS:
        return None
    for steps in columns:
        if not isinstance(steps, list) or len(steps) > MAX_STEPS:
            return None
        for step in steps:
            if not (isinstance(step, dict) and step.get("kind") in KINDS):
                return None
            if not isinstance(step.get("text"), str):
                return None
            if step["kind"] == "image" and _png(step.get("png")) is None:
                return None
    if not isinstance(data.get("note", ""), str):
        return None
    return data


def show() -> bool:
    """Draw the saved default view here (title, prediction, the pictures); False when there is
    none for this model file and code."""
    data = load()
    if data is None:
        return False
    st.title("Explain a prediction")
    st.markdown(data["summary"])
    st.subheader("Heatmaps")
    st.caption(f":material/history: {SAVED_NOTE}")
    for col, steps in zip(st.columns(3), data["columns"], strict=False):
        for step in steps:
            if step["kind"] == "image":
                col.image(
                    _png(step["png"]),
                    caption=step["text"] or None,
                    width="stretch",
                    alt=step.get("alt") if isinstance(step.get("alt"), str) else None,
                )
            else:
                getattr(col, step["kind"])(step["text"])
    if data.get("note"):
        st.caption(data["note"])
    return True


# --- recording ----------------------------------------------------------------------------------
class Recorder:
    """Collects what the default view's run draws, then saves it once (``save``)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.summary: str | None = None
        self.note = ""
        self.columns: list[list[dict]] = []
        self.usable = True
        self.open = True

    def column(self, col: Any) -> Any:
        """``col``, with its image, markdown, caption and info calls recorded."""
        if not self.open or len(self.columns) >= MAX_COLUMNS:
            return col
        steps: list[dict] = []
        self.columns.append(steps)
        return _RecordedColumn(col, steps, self)

    def save(self) -> bool:
        """Write the record once (later calls, e.g. from a fragment's rerun, do nothing); the
        pictures are dropped then (the fragment keeps this object until the next full run)."""
        if not self.open:
            return False
        self.open = False
        data = {"summary": self.summary, "note": self.note, "columns": self.columns}
        self.columns = []
        if not (self.usable and data["summary"] and len(data["columns"]) > 1):
            return False
        saved = write_signed(path(), self.key, data)
        if saved:
            _RECORDED.add(self.key)
            log.info("first view saved for the next start (%s)", path())
        return saved


class _RecordedColumn:
    def __init__(self, col: Any, steps: list[dict], recorder: Recorder) -> None:
        self._col, self._steps, self._recorder = col, steps, recorder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._col, name)

    def __enter__(self) -> Any:
        return self._col.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._col.__exit__(*exc)

    def _add(self, step: dict) -> None:
        if len(self._steps) < MAX_STEPS:
            self._steps.append(step)
        else:
            self._recorder.usable = False

    def image(self, image: Any, caption: str | None = None, **kwargs: Any) -> Any:
        png = _encode(image) if self._recorder.open else None
        if png is None:
            self._recorder.usable = False
        else:
            alt = kwargs.get("alt")
            self._add({"kind": "image", "png": png, "text": caption or "", "alt": alt or ""})
        return self._col.image(image, caption=caption, **kwargs)

    def markdown(self, text: str, **kwargs: Any) -> Any:
        self._add({"kind": "markdown", "text": str(text)})
        return self._col.markdown(text, **kwargs)

    def caption(self, text: str, **kwargs: Any) -> Any:
        self._add({"kind": "caption", "text": str(text)})
        return self._col.caption(text, **kwargs)

    def info(self, text: str, **kwargs: Any) -> Any:
        self._add({"kind": "info", "text": str(text)})
        return self._col.info(text, **kwargs)


def _encode(image: Any) -> str | None:
    """A uint8 RGB picture (array or PIL image) as base64 PNG; None for anything else."""
    import numpy as np
    from PIL import Image

    try:
        if not isinstance(image, Image.Image):
            array = np.asarray(image)
            if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (3, 4):
                return None
            image = Image.fromarray(array)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=False, compress_level=3)
    except (TypeError, ValueError, OSError):
        return None
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def recorder(is_default_model: bool) -> Recorder | None:
    """A recorder when this run draws the default view of the real default model and no valid
    record exists yet; else None (the common case: nothing to do)."""
    if not (is_default_model and st.session_state.get(PLAIN_RUN)):
        return None
    key = fingerprint()
    if key is None or key in _RECORDED:
        return None
    if load() is not None:  # saved by an earlier start: read once per process
        _RECORDED.add(key)
        return None
    return Recorder(key)
