"""Cached loading and computing for the pages.

Models are shared resources (``st.cache_resource``; the compiled gradient capture per model
and layer is cached by ``explainers.get_capture`` itself); decoded images, predictions and explanations are data
(``st.cache_data``) keyed on small hashable tokens: the model token, the SHA-1 of the image
bytes, the metadata, the layer path, target, methods, samples, sigma, seed, filters, neurons.
Large objects (the bundle, the preprocessed array) are passed as ``_``-prefixed arguments,
which Streamlit does not hash, so a cache lookup costs microseconds.

Memory: every cache has a bound (``max_entries``, and ``ttl`` for per-image data); the
explanations, whose size depends on the layer, are held within a byte budget
(``ByteBudgetCache``) and hold float32 arrays only. After a new explanation, and at the end of
every script run, the C heap is trimmed (``heap.release_memory``): TensorFlow's large, short-lived
buffers otherwise stay in glibc's arenas as free but resident memory, and the server's resident
memory only grows (at block2, +100–170 MB that stayed).

No math here: everything is a call into ``explainers``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from dashboard.frame import fair_share, state
from dashboard.frame.heap import release_memory, tune_malloc
from explainers import LayerInfo, candidate_layers, explain_details, predict, render, zoo
from explainers.engine.capture import set_before_pass
from explainers.errors import ExplainerError
from explainers.images import load_image
from explainers.settings import ExplainSettings

_DATA_TTL = 3600  # seconds an image's decoded pixels, input, prediction or maps stay cached


tune_malloc()  # at import: before TensorFlow's first pass in this process
# Every chunk's compiled call is a point where a waiting person's step may go first.
set_before_pass(fair_share.checkpoint)


def digest(data: bytes) -> str:
    """A short content hash: the cache key of uploaded bytes."""
    return hashlib.sha1(data).hexdigest()[:16]


# --- models -------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=4)
def catalogue_model(key: str, random_weights: bool = False) -> zoo.ModelBundle:
    """A catalogue model (``"skin-lesion"``, ``"MobileNetV2"``, ...). ImageNet weights are
    downloaded on first use; offline this raises ``ExplainerError`` naming the file to copy."""
    return zoo.load_model(key, weights=None if random_weights else "imagenet")


@st.cache_resource(show_spinner=False, max_entries=2)
def uploaded_model(
    file_digest: str, filename: str, class_names_text: str | None, preprocess: str, _data: bytes
) -> zoo.ModelBundle:
    """The user's ``.keras``/``.h5`` upload, loaded with ``safe_mode=True`` (via zoo, which
    uses a private temporary file that it deletes at once)."""
    return zoo.load_model_file(
        _data, filename=filename, class_names=class_names_text, preprocess=preprocess
    )


@st.cache_data(show_spinner=False, max_entries=16)
def layers(model_token: str, _model: Any) -> list[LayerInfo]:
    """Every layer with a spatial output, nested backbones included, in graph order."""
    return candidate_layers(_model)


# --- images -------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=1)
def samples() -> list[zoo.Sample]:
    return zoo.list_samples()


@st.cache_data(show_spinner=False, max_entries=16)
def sample_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@st.cache_data(show_spinner=False, max_entries=8, ttl=_DATA_TTL)
def decode(image_digest: str, _data: bytes, name: str = "the image") -> Image.Image:
    """Bytes → RGB PIL image, with the decompression-bomb and truncation checks of
    ``explainers.images.load_image``. Kept in memory only: nothing is written to disk."""
    buf = io.BytesIO(_data)
    buf.name = name
    return load_image(buf)


@st.cache_data(show_spinner=False, max_entries=8, ttl=_DATA_TTL)
def display_image(image_digest: str, _image: Image.Image, max_side: int = 512) -> np.ndarray:
    """The image as uint8 RGB, at most ``max_side`` pixels on its longer side (aspect kept):
    what the overlays are drawn on."""
    im = _image
    scale = min(1.0, max_side / max(im.size))
    if scale < 1.0:
        im = im.resize(
            (max(1, round(im.width * scale)), max(1, round(im.height * scale))),
            Image.Resampling.LANCZOS,
        )
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


@st.cache_data(show_spinner=False, max_entries=8, ttl=_DATA_TTL)
def model_input(
    model_token: str, image_digest: str, _bundle: zoo.ModelBundle, _image: Image.Image
) -> np.ndarray:
    """The image resized and preprocessed for the model: float32 (1, H, W, C)."""
    return zoo.prepare(_bundle, _image)


# --- predictions and explanations ---------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=32, ttl=_DATA_TTL)
def prediction(
    model_token: str,
    image_digest: str,
    extra_token: tuple,
    _bundle: zoo.ModelBundle,
    _x: np.ndarray,
    _extra: Sequence[np.ndarray] | None,
):
    """``explainers.predict``: pre-softmax scores and probabilities."""
    return predict(_bundle.model, _x, _extra)


#: A pause after showing a progress bar, before the computation starts: TensorFlow then takes
#: every core, and the server's thread that sends the bar to the browser waited seconds for
#: one on a busy machine (the bar appeared 2–4 s after the click; issue 17).
SEND_FIRST_S = 0.05


def _explanation_uncached(bundle, x, extra, settings: ExplainSettings, show_progress: bool):
    n_samples = settings.n_samples
    bar = None
    if show_progress and n_samples > 0:
        bar = st.progress(0.0, text=f"Computing {n_samples} noisy samples ...")
        time.sleep(SEND_FIRST_S)  # see SEND_FIRST_S

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.progress(
                min(1.0, done / max(total, 1)), text=f"Computing noisy samples: {done} of {total}"
            )
        fair_share.checkpoint()  # between chunks: let a waiting person's step go first

    try:
        with fair_share.heavy():  # one per user at a time, users in turn
            ex = explain_details(bundle.model, x, settings, extra_inputs=extra, progress=progress)
        return _compact(ex)
    finally:
        if bar is not None:
            bar.empty()
        release_memory()


def _compact(ex):
    """The explanation with float32 arrays only (what is cached): the float64 alpha of an
    early layer is megabytes per entry, and nothing shown needs more than float32."""
    _ = ex.logits  # materialised, so the cached object holds no reference to the model
    small = {
        f.name: getattr(ex, f.name).astype(np.float32)
        for f in dataclasses.fields(ex)
        if isinstance(getattr(ex, f.name), np.ndarray) and getattr(ex, f.name).dtype == np.float64
    }
    return dataclasses.replace(ex, **small)


class ByteBudgetCache:
    """A process-wide LRU cache bounded by the bytes of the NumPy arrays it holds (and by age):
    an explanation at an early layer is tens of MB, at the last layer a few hundred kB, so a
    count of entries is no bound on memory. One computation per key at a time: sessions asking
    for the same maps at once (a cold server) wait for the first instead of repeating it."""

    def __init__(self, budget_bytes: int, ttl_s: float) -> None:
        self.budget_bytes = budget_bytes
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._items: OrderedDict = OrderedDict()  # key -> (time stored, bytes, value)
        self._computing: dict = {}  # key -> lock held while it is computed

    @staticmethod
    def nbytes(value: Any) -> int:
        total = 0
        for item in vars(value).values() if hasattr(value, "__dict__") else ():
            if isinstance(item, np.ndarray):
                total += item.nbytes
            elif isinstance(item, dict):
                total += sum(v.nbytes for v in item.values() if isinstance(v, np.ndarray))
        return total

    @property
    def bytes_held(self) -> int:
        with self._lock:
            return sum(size for _, size, _ in self._items.values())

    def _lookup(self, key: Any) -> Any:
        item = self._items.get(key)
        if item is None:
            return None
        if time.monotonic() - item[0] > self.ttl_s:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[2]

    def get_or_compute(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._lookup(key)
            if hit is not None:
                return hit
            key_lock = self._computing.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                hit = self._lookup(key)
            if hit is not None:
                return hit
            try:
                value = compute()
            finally:
                with self._lock:
                    self._computing.pop(key, None)
            with self._lock:
                self._items[key] = (time.monotonic(), self.nbytes(value), value)
                total = sum(size for _, size, _ in self._items.values())
                while total > self.budget_bytes and len(self._items) > 1:
                    _, (_, size, _) = self._items.popitem(last=False)
                    total -= size
            return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


#: The explanations of all sessions: at most 32 MB of arrays (an early layer's is 20-40 MB, the
#: last layer's under 1 MB; the newest is always kept), none older than an hour.
EXPLANATIONS = ByteBudgetCache(32 * 2**20, _DATA_TTL)


def explanation(
    model_token: str,
    image_digest: str,
    extra_token: tuple,
    settings: ExplainSettings,
    *,
    _bundle: zoo.ModelBundle,
    _x: np.ndarray,
    _extra: Sequence[np.ndarray] | None,
    show_progress: bool = True,
):
    """``explainers.explain_details`` for one image: an ``Explanation`` (maps, weights,
    activations, gradients, alpha, logits), cached in ``EXPLANATIONS`` by the small tokens and
    the settings (shared, never to be modified). While noisy samples are computed a progress
    bar is shown; it is created and removed inside the computation, so a cache hit shows
    nothing. On a shared server a setting too heavy for it raises ``fair_share.Refused`` (a
    plain sentence)."""
    if fair_share.shared_mode():
        info = next(
            (i for i in layers(model_token, _bundle.model) if i.path == settings.layer), None
        )
        fair_share.check_settings(
            settings.n_samples, grid=info.grid if info else None, input_size=tuple(_x.shape[1:3])
        )
    key = (model_token, image_digest, extra_token, settings)
    return EXPLANATIONS.get_or_compute(
        key, lambda: _explanation_uncached(_bundle, _x, _extra, settings, show_progress)
    )


# --- rendering (display only: never recomputes a map) -------------------------------------------
@st.cache_data(show_spinner=False, max_entries=16)
def colorbar_png(cmap: str, label: str) -> bytes:
    """The colour bar stating the scale, as PNG bytes."""
    fig = render.colorbar_figure(cmap, label)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def npz_bytes(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


@dataclass(frozen=True)
class ModelChoice:
    """What the model select box offers."""

    key: str
    label: str


def model_choices() -> list[ModelChoice]:
    out = [ModelChoice(k, zoo.MODEL_DESCRIPTIONS.get(k, k)) for k in zoo.model_names()]
    out.append(ModelChoice(state.UPLOAD_MODEL, "Your own model (.keras / .h5 upload)"))
    return out


__all__ = [
    "ExplainerError",
    "catalogue_model",
    "colorbar_png",
    "decode",
    "digest",
    "display_image",
    "explanation",
    "layers",
    "model_choices",
    "model_input",
    "npz_bytes",
    "png_bytes",
    "prediction",
    "sample_bytes",
    "samples",
    "uploaded_model",
]
