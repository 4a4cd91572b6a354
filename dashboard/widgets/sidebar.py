"""The shared sidebar: model, image, patient metadata, layer and target.

``app.py`` calls ``render()`` once per run before the page runs, so every page shows (and
uses) the same current selection; a page gets it with ``selection()``. Messages about the
model (offline ImageNet weights, random weights) go to the top of the main area.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from dashboard.frame import loaders, state
from dashboard.frame.bootstrap import ensure_navigation
from dashboard.frame.errors import guard
from dashboard.widgets import patient
from dashboard.widgets.model_picker import model_section
from dashboard.widgets.patient import reset_patient
from explainers import LayerInfo, zoo
from explainers.errors import ExplainerError
from explainers.settings import ExplainSettings

IMAGE_TYPES = ["jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp"]
RANDOM_NOTE = "random weights — meaningless"
SOURCE_LABELS = {"sample": "Sample", "upload": "Upload", "camera": "Camera"}
_META_FILLED = "_metadata_filled"  # the first sample's recorded patient data was filled in
TOP1 = -1  # the target select box's "top-1 class" entry


@dataclass
class Selection:
    """Everything the pages need about the current choice. Fields stay None when a step
    failed (its error is already shown); ``ready`` says whether maps can be computed."""

    bundle: zoo.ModelBundle | None = None
    model_token: str | None = None
    image: Image.Image | None = None
    image_digest: str | None = None
    image_name: str = ""
    sample: zoo.Sample | None = None
    extra: list[np.ndarray] | None = None
    extra_token: tuple = ()
    metadata_text: str = ""
    x: np.ndarray | None = None
    layers: list[LayerInfo] = field(default_factory=list)
    layer: LayerInfo | None = None
    prediction: Any = None
    target: int | None = None
    target_is_top1: bool = True

    @property
    def ready(self) -> bool:
        return (
            self.bundle is not None
            and self.x is not None
            and self.layer is not None
            and self.prediction is not None
            and self.target is not None
        )

    @property
    def meaningful(self) -> bool:
        return self.bundle is not None and self.bundle.meaningful

    def class_label(self, index: int) -> str:
        return self.bundle.class_label(index) if self.bundle else str(index)

    def probability(self, index: int) -> float:
        return float(self.prediction.probabilities[0, index])

    def logit(self, index: int) -> float:
        return float(self.prediction.logits[0, index])

    def settings(self, sigma: float = 0.15, **choices: Any) -> ExplainSettings:
        """What to explain for the current layer and class, with the page's other choices
        (σ rounded, so that a slider's float noise does not miss the cache)."""
        return ExplainSettings(
            layer=self.layer.path, target=int(self.target), sigma=round(float(sigma), 4), **choices
        )

    def explain(self, *, show_progress: bool = True, **choices: Any):
        """The cached ``Explanation`` of the current image, model, layer and target, for the
        choices of ``settings`` (noise, methods, filters, neurons, region)."""
        return loaders.explanation(
            self.model_token,
            self.image_digest,
            self.extra_token,
            self.settings(**choices),
            _bundle=self.bundle,
            _x=self.x,
            _extra=self.extra,
            show_progress=show_progress,
        )

    def target_text(self) -> str:
        if self.target is None:
            return "no class"
        p = self.probability(self.target)
        note = f", {RANDOM_NOTE}" if not self.meaningful else ""
        return f"{self.class_label(self.target)} ({p * 100:.1f} %{note})"


def selection() -> Selection:
    """The selection the sidebar built in this run (rendering the sidebar if no one has).
    Every page calls it first, so a first visit straight to a page under plain ``streamlit
    run`` goes back through ``app.py`` here (``bootstrap.ensure_navigation``)."""
    ensure_navigation()
    sel = st.session_state.get(state.SELECTION)
    marker = _run_marker()
    if isinstance(sel, Selection) and (
        marker is None or st.session_state.get("_selection_run") is marker
    ):
        return sel
    return render()


#: An object unique to the current script run, so ``selection()`` knows whether the sidebar
#: was already drawn in this run.
_run_marker = state._run_id


# --- callbacks (run before the next script run; may change any widget's value) -------------------
def _image_changed() -> None:
    state.set(state.TARGET, None)


def _photo_changed() -> None:  # an upload or a camera photo arrived: nobody's record
    _image_changed()
    reset_patient()


def _source_changed() -> None:  # a sample brings its recorded data, an upload or photo none
    _image_changed()
    if state.get(state.IMAGE_SOURCE) != "sample":
        reset_patient()
    for s in loaders.samples() if state.get(state.IMAGE_SOURCE) == "sample" else ():
        if s.image_id == state.get(state.SAMPLE):
            prefill_metadata(s)


def prefill_metadata(sample: zoo.Sample, keep: Sequence[str] = ()) -> None:
    """Set age, sex and site to a sample's recorded values (except the settings in ``keep``:
    values a link gave explicitly)."""
    try:
        site = zoo.site_for_localization(sample.localization)
    except ExplainerError:
        site = "unknown"
    recorded = {
        state.AGE: None if sample.age is None else round(sample.age),
        state.SEX: sample.sex if sample.sex in state.SEXES else "unknown",
        state.SITE: site,
    }
    for key, value in recorded.items():
        if key not in keep:
            state.set(key, value)


def _choose_sample(image_id: str) -> None:
    state.set(state.IMAGE_SOURCE, "sample")
    state.set(state.SAMPLE, image_id)
    for s in loaders.samples():
        if s.image_id == image_id:
            prefill_metadata(s)
    _image_changed()


#: Callback: switch to a bundled sample (from the sidebar or the gallery).
choose_sample = state.safe(_choose_sample, "switching the sample")


def _sample_changed() -> None:
    _choose_sample(state.get(state.SAMPLE))


def _explain_class(index: int) -> None:
    state.set(state.TARGET, int(index))


#: Callback: explain class ``index`` (the "explain the recorded diagnosis" button).
explain_class = state.safe(_explain_class, "choosing the class")


_image_changed_cb = state.safe(_image_changed)
_photo_changed_cb = state.safe(_photo_changed, "reading the new image")


# --- sections -----------------------------------------------------------------------------------
def _image_section(sel: Selection) -> None:
    source = st.radio(
        "Source",
        list(state.IMAGE_SOURCES),
        format_func=SOURCE_LABELS.get,
        horizontal=True,
        **state.bind(
            state.IMAGE_SOURCE,
            options=state.IMAGE_SOURCES,
            labels=SOURCE_LABELS.get,
            on_change=_source_changed,
        ),
    )
    data, name = None, ""
    if source == "sample":
        samples = loaders.samples()
        by_id = {s.image_id: s for s in samples}
        asked = state.get(state.SAMPLE)
        if asked not in by_id:
            if asked is not None:
                state.notice(
                    f"There is no bundled sample {state.plain(repr(str(asked)[:40]))}; "
                    f"{samples[0].image_id} is shown instead."
                )
            state.set(state.SAMPLE, samples[0].image_id)
        if not st.session_state.get(_META_FILLED):
            # The first sample of a session brings its recorded patient data, as choosing it
            # does, except what the link itself says (a valid age, sex or site).
            keep = [k for k in (state.AGE, state.SEX, state.SITE) if state.from_url(k)]
            prefill_metadata(by_id[state.get(state.SAMPLE)], keep)
            st.session_state[_META_FILLED] = True

        def sample_label(i: str) -> str:  # short, so the sidebar does not cut it
            return f"{i} — {by_id[i].dx}"

        image_id = st.selectbox(
            "Sample dermoscopy image",
            list(by_id),
            format_func=sample_label,
            **state.bind(
                state.SAMPLE, options=list(by_id), labels=sample_label, on_change=_sample_changed
            ),
        )
        sel.sample = by_id[image_id]
        st.caption(f"Recorded diagnosis: {sel.sample.dx} = {sel.sample.dx_name}")
        data = loaders.sample_bytes(str(sel.sample.path))
        name = f"{image_id}.jpg"
        st.caption("HAM10000 images, CC BY-NC-SA 4.0 (see explainers/data/samples/LICENSE.md)")
    elif source == "upload":
        up = st.file_uploader(
            "Your image (JPEG, PNG, ...; any size)",
            type=IMAGE_TYPES,
            key="w:image_file",
            on_change=_photo_changed_cb,
            help="Held in memory only; never written to disk.",
        )
        if up is None:
            st.info("Upload an image to explain it.")
        else:
            data, name = up.getvalue(), up.name
    else:
        shot = st.camera_input("Take a photo", key="w:camera", on_change=_photo_changed_cb)
        if shot is None:
            st.info("Take a photo to explain it.")
        else:
            data, name = shot.getvalue(), "camera photo"
    if data is not None:
        with guard(f"reading {name}"):
            digest = loaders.digest(data)
            sel.image = loaders.decode(digest, data, name)
            sel.image_digest = digest
            sel.image_name = name


def _layer_section(sel: Selection) -> None:
    with guard("listing the model's layers"):
        sel.layers = loaders.layers(sel.model_token, sel.bundle.model)
    if not sel.layers:
        return
    by_path = {l.path: l for l in sel.layers}
    last = sel.layers[-1].path
    # Each layer by its own name, without the nested model it sits in ("xception/"), so that
    # the box is not cut in the sidebar on a phone; full paths when two names would collide.
    short = {p: p.rsplit("/", 1)[-1] for p in by_path}
    names = short if len(set(short.values())) == len(short) else {p: p for p in by_path}

    def label(path: str) -> str:
        shape = by_path[path].output_shape
        dims = "×".join("?" if d is None else str(d) for d in shape[1:])
        return f"{names[path]} ({dims}){' · last' if path == last else ''}"

    path = st.selectbox(
        f"Layer ({len(sel.layers)} with a spatial output)",
        list(by_path),
        format_func=label,
        help="Every layer whose output is a grid (height × width × channels), inside nested "
        "backbones too, by its own name (the caption under the maps gives its full path). "
        "The default is the last one, as in the Grad-CAM paper.",
        **state.bind(
            state.LAYER,
            options=list(by_path),
            labels=label,
            to_widget=lambda v: last if v is None else v,
            from_widget=lambda p: None if p == last else p,
        ),
    )
    sel.layer = by_path[path]


def _target_section(sel: Selection) -> None:
    pred = sel.prediction
    n = pred.logits.shape[-1]
    top1 = int(np.argmax(pred.logits[0]))  # the top class by pre-softmax score
    named = len(sel.bundle.class_names) == n

    def name(i: int) -> str:
        return sel.class_label(i) if named else f"class {i}"

    def label(i: int) -> str:
        if i == TOP1:
            return f"top-1: {name(top1)} ({pred.probabilities[0, top1] * 100:.1f} %)"
        return f"{name(i)} ({pred.probabilities[0, i] * 100:.1f} %)"

    # Options are class indices (TOP1 = -1 for "the top-1 class": a select box shows None as
    # empty), most probable first; the labels carry the full names and probabilities.
    order = [
        int(i) for i in np.argsort(-np.asarray(pred.logits[0], dtype=np.float64), kind="stable")
    ]
    options = [TOP1, *order]
    choice = st.selectbox(
        "Class to explain",
        options,
        format_func=label,
        help="Default: the top-1 prediction (by the pre-softmax score). Any "
        "class can be explained; the list is sorted by probability.",
        **state.bind(
            state.TARGET,
            options=options,
            labels=label,
            to_widget=lambda v: TOP1 if v is None else int(v),
            from_widget=lambda v: None if v == TOP1 else int(v),
        ),
    )
    sel.target = top1 if choice == TOP1 else int(choice)
    sel.target_is_top1 = choice == TOP1


# --- the whole sidebar ----------------------------------------------------------------------------
def render() -> Selection:
    """Draw the sidebar and return the current selection (also kept for ``selection()``)."""
    state.init()
    sel = Selection()
    # Registered first: if anything below fails, pages still get this (partial) selection
    # instead of drawing the sidebar a second time.
    st.session_state[state.SELECTION] = sel
    st.session_state["_selection_run"] = _run_marker()
    notices = st.container()
    state.notices_here(notices)
    with st.sidebar:
        st.header("Model")
        model_section(sel, notices, on_class_names=_image_changed_cb)
        st.header("Image")
        _image_section(sel)
        if sel.bundle is not None and sel.bundle.metadata_input:
            patient.patient_section(sel)
        if sel.bundle is not None and sel.image is not None:
            with guard("running the model on the image", notices):
                sel.x = loaders.model_input(
                    sel.model_token, sel.image_digest, sel.bundle, sel.image
                )
                if sel.bundle.metadata_input and sel.extra is None:
                    sel.extra = zoo.default_extra_inputs(sel.bundle)
                    sel.extra_token = ("meta", None, "unknown", "unknown")
                sel.prediction = loaders.prediction(
                    sel.model_token, sel.image_digest, sel.extra_token, sel.bundle, sel.x, sel.extra
                )
        if sel.bundle is not None:
            st.header("Explain")
            _layer_section(sel)
            if sel.prediction is not None:
                _target_section(sel)
    if sel.bundle is not None and not sel.bundle.meaningful:
        notices.warning(
            f"**{state.plain(sel.bundle.key)} has random weights — every prediction is meaningless.** "
            "The heatmaps only show how the architecture computes them.",
            icon=":material/casino:",
        )
    state.sync_url()
    return sel
