"""The dashboard's settings: one place for every session-state key, its default, and which
ones live in the URL.

Why two kinds of keys
---------------------
Streamlit deletes a widget's own session-state entry when a run does not draw that widget
(for instance on another page). So every setting lives under a **persistent key** (the names
below, plain ``st.session_state`` values that no widget owns), and each widget uses the
derived key ``widget_key(KEY)`` (``"w:" + KEY``). ``bind(KEY)`` seeds the widget from the
persistent value before the widget is drawn and returns the keyword arguments (``key``,
``on_change``) that copy the widget's value back when the user changes it::

    from dashboard import state
    state.init()                                    # once per run, before any widget
    n = st.slider("Noise samples", 0, 50, **state.bind(state.N_SAMPLES))
    state.get(state.N_SAMPLES)                      # same value, on every page
    state.set(state.LAYER, None)                    # only before that widget is drawn,
                                                    # or inside a callback

Persistent keys (value type, default)
-------------------------------------
MODEL          str   "skin-lesion"   model catalogue key (``explainers.zoo``), or UPLOAD_MODEL
                                     for the user's own ``.keras``/``.h5`` file
RANDOM_OK      list  []              catalogue keys for which the user chose to continue with
                                     random weights because ImageNet weights could not be fetched
IMAGE_SOURCE   str   "sample"        "sample" | "upload" | "camera"
SAMPLE         str   first sample    bundled sample id (file stem, e.g. "ISIC_0024338")
AGE            int|None  from sample patient age in years; None = unknown
SEX            str   from sample     "female" | "male" | "unknown"
SITE           str   from sample     body site: "arm" | "head-or-neck" | "leg-or-genital" |
                                     "trunk" | "unknown"
LAYER          str|None  None        layer path ("xception/block14_sepconv2_act"); None = the
                                     model's last spatial layer
TARGET         int|None  None        class index to explain; None = top-1 prediction
N_SAMPLES      int   0               noise samples (0 = plain Grad-CAM / Grad-CAM++), 0..50
SIGMA          float 0.15            noise standard deviation as a fraction of the image range
SEED           int   0               noise seed (same seed, same smoothed maps)
CMAP           str   "viridis"       colour map of the overlays
OPACITY        float 0.5             overlay opacity, 0..1
FILTER_MODE    str   "top k"         "top k" (by Grad-CAM++ weight) | "list"
FILTERS        str   "0-15"          filter indices as typed: "3, 10, 32" or "0-15, 40"
TOP_K          int   8               k for "top k"
NEURON_MODE    str   "all"           "all" | "region" | "positions"
REGION         list|None None        [row0, col0, row1, col1] on the layer's grid (inclusive)
POSITIONS      list  []              [[row, col], ...] on the layer's grid
SCALE          str   "own"           map colour scale: "own" (each map ÷ its maximum) | "shared"
                                     (one maximum for the maps on screen) | "absolute" (raw values)

Per-run (not settings)
----------------------
SELECTION      the ``dashboard.sidebar.Selection`` built by the sidebar in the current run
               (model bundle, image, extra inputs, layer, target, prediction). Pages read it
               with ``dashboard.sidebar.selection()``; never write it yourself.

URL
---
``URL_KEYS`` are mirrored in ``st.query_params`` (``?model=skin-lesion&sample=...&samples=8``)
so a reload or a shared link restores them; ``init()`` reads them once per session and
``sync_url()`` (called by the sidebar each run) writes them back. Values from the URL are
validated leniently: anything unparsable falls back to the default.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import streamlit as st

# --- persistent keys -------------------------------------------------------------------------
MODEL = "model"
RANDOM_OK = "random_ok"
IMAGE_SOURCE = "image_source"
SAMPLE = "sample"
AGE = "age"
SEX = "sex"
SITE = "site"
LAYER = "layer"
TARGET = "target"
N_SAMPLES = "n_samples"
SIGMA = "sigma"
SEED = "seed"
CMAP = "cmap"
OPACITY = "opacity"
FILTER_MODE = "filter_mode"
FILTERS = "filters"
TOP_K = "top_k"
NEURON_MODE = "neuron_mode"
REGION = "region"
POSITIONS = "positions"
SCALE = "scale"

SELECTION = "_selection"
_INITIALISED = "_state_initialised"

DEFAULT_MODEL = "skin-lesion"
UPLOAD_MODEL = "upload"
IMAGE_SOURCES = ("sample", "upload", "camera")
SEXES = ("female", "male", "unknown")
SITES = ("arm", "head-or-neck", "leg-or-genital", "trunk", "unknown")
CMAPS = ("jet", "turbo", "viridis", "inferno", "magma", "plasma", "hot", "gray")
FILTER_MODES = ("top k", "list")
NEURON_MODES = ("all", "region", "positions")
MAX_SAMPLES = 50
SCALES = ("own", "shared", "absolute")

DEFAULTS: dict[str, Any] = {
    MODEL: DEFAULT_MODEL,
    RANDOM_OK: [],
    IMAGE_SOURCE: "sample",
    SAMPLE: None,  # the sidebar picks the first bundled sample
    AGE: None,
    SEX: "unknown",
    SITE: "unknown",
    LAYER: None,
    TARGET: None,
    N_SAMPLES: 0,
    SIGMA: 0.15,
    SEED: 0,
    CMAP: "viridis",
    OPACITY: 0.5,
    FILTER_MODE: "top k",
    FILTERS: "0-15",
    TOP_K: 8,
    NEURON_MODE: "all",
    REGION: None,
    POSITIONS: [],
    SCALE: "own",
}


# --- URL parsing: str -> value, or raise ValueError ---------------------------------------------
def _opt_int(text: str) -> int | None:
    return None if text in ("", "none", "top1") else int(text)


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not lo <= value <= hi:
            raise ValueError(text)
        return value
    return parse


def _float_range(lo: float, hi: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = round(float(text), 2)
        if not lo <= value <= hi:
            raise ValueError(text)
        return value
    return parse


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(text)
        return text
    return parse


def _nonempty(text: str) -> str:
    if not text or len(text) > 200:
        raise ValueError(text)
    return text


def _opt_str(text: str) -> str | None:
    return None if text in ("", "none", "last") else _nonempty(text)


URL_KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    # persistent key: (URL name, parser)
    MODEL: ("model", _nonempty),
    SAMPLE: ("sample", _nonempty),
    AGE: ("age", lambda t: None if t in ("", "unknown") else _int_range(0, 120)(t)),
    SEX: ("sex", _choice(SEXES)),
    SITE: ("site", _choice(SITES)),
    LAYER: ("layer", _opt_str),
    TARGET: ("target", _opt_int),
    N_SAMPLES: ("samples", _int_range(0, MAX_SAMPLES)),
    SIGMA: ("sigma", _float_range(0.0, 1.0)),
    SEED: ("seed", _int_range(0, 2**31 - 1)),
    CMAP: ("cmap", _choice(CMAPS)),
    OPACITY: ("opacity", _float_range(0.0, 1.0)),
    SCALE: ("scale", _choice(SCALES)),
}


def _url_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


# --- API ----------------------------------------------------------------------------------------
def init() -> None:
    """Fill in every missing setting: from the URL on a session's first run, else the default.
    Safe to call on every run and from every page."""
    ss = st.session_state
    first = not ss.get(_INITIALISED, False)
    from_url: dict[str, Any] = {}
    if first:
        try:
            params = st.query_params.to_dict()
        except Exception:  # no URL (bare script run)
            params = {}
        for key, (name, parse) in URL_KEYS.items():
            if name in params:
                try:
                    from_url[key] = parse(str(params[name]))
                except (TypeError, ValueError):
                    pass  # a bad value in a hand-edited link: keep the default
        ss[_INITIALISED] = True
    for key, default in DEFAULTS.items():
        if key in from_url:
            ss[key] = from_url[key]
        elif key not in ss:
            ss[key] = json.loads(json.dumps(default))  # a fresh copy of lists


def get(key: str) -> Any:
    """The current value of a setting (its default if ``init`` has not run)."""
    return st.session_state.get(key, DEFAULTS.get(key))


def widget_key(key: str) -> str:
    return "w:" + key


def set(key: str, value: Any) -> None:  # noqa: A001 - the natural name here
    """Change a setting and its widget. Call it before that widget is drawn in this run, or
    from a widget callback (Streamlit forbids changing a drawn widget's value)."""
    st.session_state[key] = value
    wk = widget_key(key)
    if wk in st.session_state:
        try:
            st.session_state[wk] = value
        except Exception:  # the widget was already drawn this run: it catches up next run
            pass


def _commit(key: str, convert: Callable[[Any], Any] | None) -> None:
    value = st.session_state.get(widget_key(key))
    st.session_state[key] = convert(value) if convert else value


def bind(key: str, *, to_widget: Callable[[Any], Any] | None = None,
         from_widget: Callable[[Any], Any] | None = None,
         on_change: Callable[[], None] | None = None) -> dict[str, Any]:
    """Keyword arguments for a widget showing setting ``key``: ``st.slider(..., **bind(KEY))``.

    Seeds the widget from the persistent value (converted by ``to_widget``, e.g. ``None`` to a
    label) and copies the widget's value back (through ``from_widget``) when the user changes
    it; ``on_change`` runs afterwards. Do not also pass ``value=``/``index=`` to the widget.
    """
    wk = widget_key(key)
    value = get(key)
    seeded = to_widget(value) if to_widget else value
    # Always re-assert the widget's value from the setting (Streamlit's documented way to keep
    # widget state): the widget may not have been drawn in the last run (another page), the
    # setting may have been changed by code, and a widget's internal id can change between the
    # first and the second run of a multipage app, which would otherwise reset it.
    st.session_state[wk] = seeded

    def changed() -> None:
        _commit(key, from_widget)
        if on_change is not None:
            on_change()

    return {"key": wk, "on_change": changed}


def sync_url() -> None:
    """Write ``URL_KEYS`` into ``st.query_params`` (only the ones that differ from the URL).
    Settings at their default are left out, so the plain URL opens the default view."""
    try:
        current = st.query_params.to_dict()
    except Exception:
        return
    for key, (name, _parse) in URL_KEYS.items():
        value = get(key)
        text = None if value == DEFAULTS.get(key) else _url_text(value)
        if key == MODEL and value == UPLOAD_MODEL:
            text = None  # an uploaded file cannot be restored from a link
        try:
            if text is None:
                if name in current:
                    del st.query_params[name]
            elif current.get(name) != text:
                st.query_params[name] = text
        except Exception:
            pass
