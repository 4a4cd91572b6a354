"""Every image on every page has a text alternative (the README promises it; issue 17 found 18
of 19 images on Compare and 5 of 5 on Evaluate without one). Driven with AppTest on a tiny
uploaded model, so every page, Evaluate's scores included, runs in seconds."""

import io

import keras
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

PAGES = [
    "pages/explain.py",
    "pages/filters_neurons.py",
    "pages/how_it_works.py",
    "pages/compare.py",
    "pages/evaluate.py",
    "pages/trust.py",
    "pages/audit.py",
]


def _png(array) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _model_bytes(tmp_path) -> bytes:
    keras.utils.set_random_seed(0)
    inp = keras.Input((24, 24, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    p = keras.layers.GlobalAveragePooling2D()(a)
    out = keras.layers.Dense(3, activation="softmax", name="head")(p)
    path = tmp_path / "tiny.keras"
    keras.Model(inp, out).save(path)
    return path.read_bytes()


def _by_key(widgets, key):
    return next(w for w in widgets if w.key == key)


def images_without_alt(at: AppTest) -> list[str]:
    """Each image (st.image, st.pyplot) and chart whose text alternative is empty, by caption."""
    missing = [
        img.caption or "(no caption)"
        for im in at.image
        for img in im.proto.imgs
        if not img.alt.strip()
    ]
    for chart in at.get("arrow_vega_lite_chart"):
        alt = getattr(chart.proto, "alt", None)
        if alt is not None and not str(alt).strip():
            missing.append("(a chart)")
    return missing


def test_every_image_on_every_page_has_a_text_alternative(tmp_path):
    model = _model_bytes(tmp_path)
    image = _png(np.random.default_rng(0).integers(0, 256, (30, 30, 3)))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.session_state["model"] = "upload"  # dashboard.frame.state.MODEL / UPLOAD_MODEL
    at.session_state["image_source"] = "upload"  # dashboard.frame.state.IMAGE_SOURCE
    seen = {}
    for page in PAGES:
        at.switch_page(page)
        at.run()
        # An upload box the page shows empty gets the files again, as a user would.
        for key, name, data in (
            ("w:model_file", "tiny.keras", model),
            ("w:image_file", "lesion.png", image),
        ):
            box = next((w for w in at.file_uploader if w.key == key), None)
            if box is not None and not box.value:
                box.upload(name, data, "image/png" if name.endswith(".png") else None)
                at.run()
        if page == "pages/evaluate.py":  # the scores (a figure and four maps) wait for a button
            _by_key(at.button, "w:eval_single_go").click()
            at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        seen[page] = sum(len(im.proto.imgs) for im in at.image)
        assert images_without_alt(at) == [], page
    # The pages that show images did show them (the check above is not vacuous).
    for page in (
        "pages/explain.py",
        "pages/compare.py",
        "pages/evaluate.py",
        "pages/filters_neurons.py",
    ):
        assert seen[page] > 0, seen
    assert seen["pages/evaluate.py"] >= 5, seen  # the curves and the four maps
