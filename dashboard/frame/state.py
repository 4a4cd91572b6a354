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

    state.init()                                    # once per run, before any widget
    n = st.slider("Noise samples", 0, 50, **state.bind(state.N_SAMPLES))
    state.get(state.N_SAMPLES)                      # same value, on every page
    state.set(state.LAYER, None)                    # only before that widget is drawn,
                                                    # or inside a callback

Each key's value type, default and meaning, the URL mirror (``URL_KEYS``, ``sync_url``) and
why no widget can crash a page (``bind``, ``safe``) are in docs/ARCHITECTURE.md ("The
dashboard's settings"). ``SELECTION`` is per run, not a setting: the sidebar's ``Selection``,
read with ``dashboard.widgets.sidebar.selection()``, never written by a page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from dashboard.frame.errors import message
from dashboard.frame.notices import _page_id, _run_id, notice, notices_here, plain  # noqa: F401 - re-exported
from dashboard.frame.url_values import bounded as _bounded
from dashboard.frame.url_values import choice as _choice
from dashboard.frame.url_values import flag, fmt_positions, fmt_region, method_list
from dashboard.frame.url_values import float_range as _float_range
from dashboard.frame.url_values import ids as _ids
from dashboard.frame.url_values import int_range as _int_range
from dashboard.frame.url_values import nonempty as _nonempty
from dashboard.frame.url_values import opt_int as _opt_int
from dashboard.frame.url_values import opt_str as _opt_str
from dashboard.frame.url_values import positions as _positions
from dashboard.frame.url_values import region as _region
from explainers.methods import DEFAULT_METHODS, GRADCAMPP, method_keys

log = logging.getLogger("dashboard")

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
SCALE = "scale"
METHODS = "methods"
BOX = "box"
FILTER_METHOD = "filter_method"
FILTER_MODE = "filter_mode"
FILTERS = "filters"
TOP_K = "top_k"
NEURON_MODE = "neuron_mode"
REGION = "region"
POSITIONS = "positions"
EVAL_MODE = "eval_mode"
EVAL_SOURCE = "eval_source"
EVAL_SAMPLES = "eval_samples"
EVAL_STEPS = "eval_steps"

SELECTION = "_selection"
URL_GIVEN = "_url_given"  # the persistent keys a valid URL parameter set in this session
_INITIALISED = "_state_initialised"
_RUNS = "_runs"  # script runs since the page last changed (widget ids settle after the second)
SETTLING_RUNS = 2  # runs in which every bound widget is written from its setting
_MISSING = object()

DEFAULT_MODEL = "skin-lesion"
UPLOAD_MODEL = "upload"
IMAGE_SOURCES = ("sample", "upload", "camera")
SEXES = ("female", "male", "unknown")
SITES = ("arm", "head-or-neck", "leg-or-genital", "trunk", "unknown")
CMAPS = ("viridis", "inferno", "magma", "plasma", "cividis", "turbo", "jet", "hot", "gray")
SCALES = ("own", "shared", "absolute")
FILTER_MODES = ("top k", "list")
NEURON_MODES = ("all", "region", "positions")
EVAL_MODES = ("this", "several")
EVAL_SOURCES = ("samples", "upload")
EVAL_STEP_CHOICES = (8, 16, 32)
MAX_SAMPLES = 50

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
    SCALE: "own",
    METHODS: list(DEFAULT_METHODS),
    BOX: False,
    FILTER_METHOD: GRADCAMPP,
    FILTER_MODE: "top k",
    FILTERS: "0-15",
    TOP_K: 8,
    NEURON_MODE: "all",
    REGION: None,
    POSITIONS: [],
    EVAL_MODE: "this",
    EVAL_SOURCE: "samples",
    EVAL_SAMPLES: None,
    EVAL_STEPS: 16,
}


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
    METHODS: ("methods", method_list),
    BOX: ("box", flag),
    FILTER_METHOD: ("filter_method", _choice(method_keys(needs="tape", family="cam"))),
    FILTER_MODE: ("filter_mode", _choice(FILTER_MODES)),
    FILTERS: ("filters", _nonempty),
    TOP_K: ("top_k", _int_range(1, 64)),
    NEURON_MODE: ("neurons", _choice(NEURON_MODES)),
    REGION: ("region", _region),
    POSITIONS: ("positions", _positions),
    EVAL_MODE: ("evaluate", _choice(EVAL_MODES)),
    EVAL_SOURCE: ("eval_images", _choice(EVAL_SOURCES)),
    EVAL_SAMPLES: ("eval_samples", _ids),
    EVAL_STEPS: ("eval_steps", _choice(EVAL_STEP_CHOICES)),
}
#: Settings set by a slider or number box: re-checked on the server when the browser sends them.
FREE_NUMBERS = frozenset({AGE, N_SAMPLES, SIGMA, SEED, OPACITY, TOP_K})
_URL_FORMAT: dict[str, Callable[[Any], str]] = {
    REGION: fmt_region,
    POSITIONS: fmt_positions,
    EVAL_SAMPLES: ",".join,
    METHODS: ",".join,
    BOX: lambda v: "1" if v else "0",
}


def _url_text(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if key in _URL_FORMAT:
        return _URL_FORMAT[key](value)
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))  # a fresh copy of lists


# --- notices (dashboard/frame/notices.py) -------------------------------------------------------------
def safe(callback: Callable[..., None], what: str = "applying your change") -> Callable[..., None]:
    """``callback`` wrapped so that it cannot raise (Streamlit runs callbacks before the script,
    outside every guard): an exception becomes a plain error notice, and the URL is synced."""

    def run(*args: Any, **kwargs: Any) -> None:
        try:
            callback(*args, **kwargs)
        except Exception as exc:
            if exc.__class__.__name__ != "ExplainerError":
                log.exception("error in a widget callback while %s", what)
            notice(message(exc, what), "error")
        sync_url()

    return run


# --- API ----------------------------------------------------------------------------------------
def init() -> None:
    """Fill in every missing setting: from the URL on a session's first run, else the default.
    Safe to call on every run and from every page."""
    ss = st.session_state
    run = _run_id()
    if run is None or ss.get("_counted_run") is not run:
        ss["_counted_run"] = run
        page = _page_id()
        if ss.get("_page") != page:  # another page: its widgets have other ids
            ss["_page"], ss[_RUNS] = page, 0
        ss[_RUNS] = ss.get(_RUNS, 0) + 1
    first = not ss.get(_INITIALISED, False)
    from_url: dict[str, Any] = {}
    if first:
        try:
            params = st.query_params.to_dict()
        except Exception:  # no URL (bare script run)
            params = {}
        bad = []
        for key, (name, parse) in URL_KEYS.items():
            if name in params:
                try:
                    from_url[key] = _bounded(parse)(str(params[name]))
                except (TypeError, ValueError):
                    bad.append(f"{name}={plain(str(params[name])[:40])}")
        ss[_INITIALISED] = True
        ss[URL_GIVEN] = sorted(from_url)
        if bad:
            notice(
                f"The link's {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not valid; "
                "the default is used instead."
            )
    for key, default in DEFAULTS.items():
        if key in from_url:
            ss[key] = from_url[key]
        elif key not in ss:
            ss[key] = _copy(default)


def from_url(key: str) -> bool:
    """Whether a valid URL parameter set ``key`` in this session."""
    return key in (st.session_state.get(URL_GIVEN) or ())


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
            shown = _convert(_meta(key).get("to_widget"), value)
            if not _same(st.session_state[wk], shown):
                _meta(key)["stale"] = st.session_state[wk]  # see _commit
                st.session_state[wk] = shown
        except Exception:
            pass


def _meta(key: str) -> dict:
    return st.session_state.setdefault(
        f"_bind:{key}", {"options": None, "labels": {}, "stale": _MISSING}
    )


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False


def _convert(convert: Callable[[Any], Any] | None, value: Any) -> Any:
    return convert(value) if convert else value


def _commit(key: str, convert: Callable[[Any], Any] | None) -> bool:
    """Copy a widget's value into its setting; False when there was nothing to copy. A value
    that fits none of the options the widget offered (a stale label) is mapped back through the
    labels shown, else the setting falls back to its default with a notice; an emptied box
    (None, while typing in it) leaves the setting as it was. Never raises."""
    meta = _meta(key)
    raw = st.session_state.get(widget_key(key))
    stale, meta["stale"] = meta.get("stale", _MISSING), _MISSING
    if stale is not _MISSING and _same(raw, stale):
        # The browser sent back the value this run replaced (it had not yet seen the
        # replacement, e.g. the age of the previous sample): an echo, not the user's choice.
        return False
    options = meta["options"]
    if options is not None and raw not in options:
        if raw is None:
            return False
        if isinstance(raw, str) and raw in meta["labels"]:
            raw = meta["labels"][raw]
        else:
            st.session_state[key] = _copy(DEFAULTS.get(key))
            notice(
                f"That choice no longer fits the options; {key.replace('_', ' ')} is back "
                "at its default."
            )
            return True
    try:
        st.session_state[key] = _checked(key, _convert(convert, raw))
    except Exception:
        st.session_state[key] = _copy(DEFAULTS.get(key))
        notice(f"That value could not be used; {key.replace('_', ' ')} is back at its default.")
    return True


def _checked(key: str, value: Any) -> Any:
    """A slider's or number box's value passes a link's range check (``URL_KEYS``): only the
    browser enforces the widget's bounds, and a forged message could send any number."""
    text = _url_text(key, value) if key in FREE_NUMBERS else None
    if text is not None:
        URL_KEYS[key][1](text)  # raises ValueError when out of range
    return value


def bind(
    key: str,
    *,
    options: Sequence[Any] | None = None,
    labels: Callable[[Any], str] | None = None,
    to_widget: Callable[[Any], Any] | None = None,
    from_widget: Callable[[Any], Any] | None = None,
    on_change: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for a widget showing setting ``key``: ``st.slider(..., **bind(KEY))``,
    ``st.selectbox(label, opts, format_func=f, **bind(KEY, options=opts, labels=f))``.

    Seeds the widget from the setting (through ``to_widget``, e.g. ``None`` to a sentinel) and
    copies the widget's value back (through ``from_widget``) when the user changes it;
    ``on_change`` runs afterwards. With ``options`` a setting that fits none of them falls back
    to the default (or the first option) with a notice. Do not also pass ``value=``/``index=``.
    """
    ss = st.session_state
    wk = widget_key(key)
    value = get(key)
    _meta(key)["to_widget"] = to_widget
    try:
        seeded = _convert(to_widget, value)
    except Exception:
        seeded = _MISSING
    if options is not None:
        opts = list(options)
        meta = _meta(key)
        meta["options"] = opts
        if labels is not None:
            known = {**meta["labels"], **{str(labels(o)): o for o in opts}}
            meta["labels"] = dict(list(known.items())[-256:])  # bounded: recent labels only
        if seeded is _MISSING or seeded not in opts:
            default = DEFAULTS.get(key)
            fallback = _convert(to_widget, default)
            if fallback not in opts:
                fallback = opts[0] if opts else None
            if value is not None and value != default:
                notice(
                    f"{key.replace('_', ' ').capitalize()} {plain(repr(value)[:80])} is not "
                    "available here; "
                    f"{plain(labels(fallback) if labels and fallback is not None else fallback)} is used."
                )
            seeded = fallback
            ss[key] = _convert(from_widget, seeded) if seeded is not None else _copy(default)
    elif seeded is _MISSING:
        seeded = DEFAULTS.get(key)
    # Write the widget's value only when it does not already show the setting (first draw,
    # another page in between, a change by code). Writing it on every run re-sends the value to
    # the browser and undoes a change the user made meanwhile (a lost slider step). In the
    # first two runs of a session and after each page switch it is always written: a widget on
    # another page has another id, and would otherwise start at its first option or minimum
    # (the second run too: a first run through the pages folder, bootstrap.py, uses other ids).
    current = ss.get(wk, _MISSING) if wk in ss else _MISSING
    try:
        shows = current is not _MISSING and _convert(from_widget, current) == get(key)
    except Exception:
        shows = False
    relabelled = _relabelled(key, seeded, labels)
    if not shows or relabelled or ss.get(_RUNS, 0) <= SETTLING_RUNS:
        if current is not _MISSING and not _same(current, seeded):
            _meta(key)["stale"] = current  # what the browser may still send back once
        ss[wk] = seeded

    def changed() -> None:
        if _commit(key, from_widget) and on_change is not None:
            on_change()

    return {"key": wk, "on_change": safe(changed)}


def _relabelled(key: str, value: Any, labels: Callable[[Any], str] | None) -> bool:
    """Whether the label of the widget's value differs from the one last drawn (the class
    box's "top-1: bkl (98.7 %)" after the image changed). A select box's value travels as its
    label and the browser keeps the one it has unless the value is sent again, so such a
    widget must be written even though its value (top-1) is the same."""
    if labels is None or value is _MISSING or value is None:
        return False
    try:
        label = str(labels(value))
    except Exception:
        return False
    meta = _meta(key)
    before, meta["drawn_label"] = meta.get("drawn_label"), label
    return before is not None and before != label


STALE_KEYS = ["_age_years_stale"]  # other widgets' "value this run replaced" (see _commit)


def end_of_run() -> None:
    """Call last in a run that completed: the browser now has every value this run set, so no
    later message can be an echo of a replaced value. (A run cut short by the user's next click
    never gets here, and that click's echo is still recognised.)"""
    ss = st.session_state
    for name in list(ss.keys()):
        if str(name).startswith("_bind:"):
            ss[name]["stale"] = _MISSING
    for name in STALE_KEYS:
        ss.pop(name, None)


def sync_url() -> None:
    """Write ``URL_KEYS`` into ``st.query_params`` (only the ones that differ from the URL).
    Settings at their default are left out, so the plain URL opens the default view."""
    try:
        current = st.query_params.to_dict()
    except Exception:
        return
    for key, (name, _parse) in URL_KEYS.items():
        value = get(key)
        text = None if value == DEFAULTS.get(key) else _url_text(key, value)
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
