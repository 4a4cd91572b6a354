"""The sidebar's model box: a catalogue model, random weights when ImageNet's cannot be
downloaded (with the way out said in words), or the user's own ``.keras``/``.h5`` file with an
optional class-names file. Apart from ``sidebar`` so that each file holds one concept."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import streamlit as st

from dashboard.frame import loaders, state
from dashboard.frame.errors import guard, message
from explainers import zoo
from explainers.errors import ExplainerError

MODEL_TYPES = ["keras", "h5", "hdf5"]
_FAILURES = "_model_failures"  # {model key: message} of failed ImageNet loads, this session


# --- callbacks (run before the next script run) ---------------------------------------------------
def _model_changed() -> None:
    state.set(state.LAYER, None)
    state.set(state.TARGET, None)
    state.set(state.REGION, None)
    state.set(state.POSITIONS, [])


@state.safe
def _accept_random(key: str) -> None:
    ok = list(state.get(state.RANDOM_OK) or [])
    if key not in ok:
        ok.append(key)
    st.session_state[state.RANDOM_OK] = ok


@state.safe
def _retry_download(key: str) -> None:
    st.session_state.get(_FAILURES, {}).pop(key, None)


# --- the box ------------------------------------------------------------------------------------
def model_section(sel: Any, notices, on_class_names: Callable[[], None]) -> None:
    """The model box; loads the chosen model into ``sel`` (``bundle``, ``model_token``), or
    says in ``notices`` why it cannot (offline ImageNet weights, a bad file)."""
    choices = loaders.model_choices()
    labels = {c.key: c.label for c in choices}
    # The box shows the name only (the whole description was cut in the sidebar); the rest
    # is the caption under it.
    names = {k: re.split(r" \(| — ", v, maxsplit=1)[0] for k, v in labels.items()}
    key = st.selectbox(
        "Model",
        list(labels),
        format_func=names.get,
        **state.bind(state.MODEL, options=list(labels), labels=names.get, on_change=_model_changed),
    )
    if labels.get(key, "") != names.get(key, ""):
        st.caption(labels[key])
    if key == state.UPLOAD_MODEL:
        _uploaded_model(sel, on_class_names)
        return
    random_ok = key in (state.get(state.RANDOM_OK) or [])
    failures = st.session_state.setdefault(_FAILURES, {})
    if key in failures and not random_ok:
        _offline_notice(key, failures[key], notices)
        return
    try:
        spinner = (
            f"Loading {key} with ImageNet weights (downloaded on first use) ..."
            if key != zoo.SKIN_LESION and not random_ok
            else f"Loading the {key} model ..."
        )
        with notices, st.spinner(spinner):
            bundle = loaders.catalogue_model(key, random_ok)
    except ExplainerError as exc:
        if key != zoo.SKIN_LESION and not random_ok:
            failures[key] = str(exc)
            _offline_notice(key, str(exc), notices)
        else:
            notices.error(f"Problem loading the model: {state.plain(exc)}", icon=":material/error:")
        return
    except Exception as exc:
        notices.error(message(exc, "loading the model"), icon=":material/error:")
        return
    sel.bundle = bundle
    sel.model_token = f"{key}:{bundle.weights}"


def _offline_notice(key: str, detail: str, notices) -> None:
    spec = zoo.APPLICATIONS.get(key)
    file_name = spec.weights_file if spec else "the weights file"
    with notices:
        st.warning(
            f"**The ImageNet weights for {key} could not be downloaded** (this machine seems to "
            f"be offline). To use the real model, either connect to the internet and click "
            f"*Try the download again*, or copy the file `{file_name}` into "
            f"`{zoo._home_short(zoo.keras_cache_dir())}/` and click *Try the download again*. "
            "Or continue with random weights: the heatmaps then show how the architecture "
            "computes them, but every prediction is meaningless.\n\n"
            f"Details: {state.plain(detail)}",
            icon=":material/cloud_off:",
        )
        c1, c2 = st.columns(2)
        c1.button(
            "Continue with random weights",
            key=f"random:{key}",
            on_click=_accept_random,
            args=(key,),
            type="primary",
        )
        c2.button(
            "Try the download again", key=f"retry:{key}", on_click=_retry_download, args=(key,)
        )


def _uploaded_model(sel: Any, on_class_names: Callable[[], None]) -> None:
    up = st.file_uploader(
        "Model file (.keras or .h5)",
        type=MODEL_TYPES,
        key="w:model_file",
        help="Loaded with safe_mode=True: a file that would run code is refused. "
        "It is held in memory and a private temporary copy is deleted at once.",
    )
    names_up = st.file_uploader(
        "Class names (optional, one per line)",
        type=["txt", "csv"],
        key="w:class_names",
        on_change=on_class_names,
    )
    preprocess = st.selectbox(
        "Input scaling",
        list(zoo.PREPROCESS_CHOICES),
        format_func=lambda k: f"{k}: {zoo.PREPROCESS_HELP.get(k, '')}",
        key="w:preprocess",
    )
    if up is None:
        st.info("Upload a Keras model file to explain it.")
        return
    with guard("loading your model file"):
        data = up.getvalue()
        file_digest = loaders.digest(data)
        bundle = loaders.uploaded_model(file_digest, up.name, None, preprocess, _data=data)
        sel.bundle = bundle
        sel.model_token = f"file:{file_digest}:{preprocess}"
    if sel.bundle is not None and names_up is not None:
        with guard("reading the class-names file"):
            names = zoo.parse_class_names(names_up.getvalue(), sel.bundle.n_classes)
            sel.bundle = dataclasses.replace(sel.bundle, class_names=names, class_descriptions=None)
