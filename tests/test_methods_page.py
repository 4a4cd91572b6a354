"""The Compare page through the real app, with a tiny uploaded model and image: every method
in the grid with its time and box, the coincidence note, Score-CAM on request with its cost
shown first, mask scores and faithfulness on demand."""

import io
import re

import keras
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from explainers.methods import REGISTRY, method_keys
from tests.conftest import ROOT

SIZE = 24


def _png(array) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _by_key(widgets, key):
    return next(w for w in widgets if w.key == key)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    p = keras.layers.GlobalAveragePooling2D()(a)
    out = keras.layers.Dense(3, activation="softmax", name="head")(p)
    path = tmp_path_factory.mktemp("compare") / "tiny.keras"
    keras.Model(inp, out).save(path)
    rng = np.random.default_rng(0)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["model"] = "upload"
    at.session_state["image_source"] = "upload"
    at.switch_page("pages/compare.py")
    at.run()
    _by_key(at.file_uploader, "w:model_file").upload("tiny.keras", path.read_bytes())
    _by_key(at.file_uploader, "w:image_file").upload(
        "lesion.png", _png(rng.integers(0, 256, (30, 40, 3))), "image/png"
    )
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at):
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


def test_every_method_but_scorecam_is_shown_with_time_and_box(app):
    text = _text(app)
    for key in method_keys():
        label = REGISTRY[key].label
        if key == "scorecam":
            assert f"**{label}**" not in text  # only on request
        else:
            assert f"**{label}** · " in text and " s" in text, label
    assert text.count("box [x0, y0, x1, y1] = [") >= 5  # in the pixels of the 40x30 upload
    assert "Score-CAM with K = 4: 4 forward passes of the model, about" in text
    assert any("HiResCAM equals Grad-CAM" in i.value for i in app.info)
    assert "Identical maps here" in text and "Grad-CAM, HiResCAM, XGrad-CAM" in text
    assert re.search(r"the (\d filters|filter) with the largest Grad-CAM weight", text)
    assert "% of the map ·" in text  # each filter's share under its thumbnail
    assert not app.error, [e.value for e in app.error]


def test_each_map_says_in_one_line_what_it_shows(app):
    """Issue 17: five of the eight methods were explained nowhere in the product."""
    captions = [c.value for c in app.caption]
    for key in method_keys():
        if key != "scorecam":
            assert any(c.startswith(REGISTRY[key].summary) for c in captions), key
    # at this layer (followed by global average pooling) HiResCAM's map is Grad-CAM's
    hires = next(c for c in captions if c.startswith(REGISTRY["hirescam"].summary))
    assert "Here the same map as Grad-CAM" in hires, hires
    # Each CAM map's verdict in Explain's plain words; an uploaded model is not checked yet,
    # and the page says where to check it.
    text = _text(app)
    n_cam = sum(REGISTRY[k].cam for k in method_keys() if k != "scorecam")
    assert text.count("Not checked yet for this model and layer") == n_cam
    assert "Spearman" not in text
    assert captions.count("The Trust page runs the check for this model and layer.") == n_cam


def test_a_map_with_no_evidence_says_so_instead_of_a_blank_photo(tmp_path):
    """A head with only positive weights: every channel's gradient is positive, so nothing
    argues against the class and the counterfactual map is 0 everywhere."""
    keras.utils.set_random_seed(2)
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    p = keras.layers.GlobalAveragePooling2D()(a)
    out = keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant(0.5), name="head")(p)
    path = tmp_path / "positive.keras"
    keras.Model(inp, out).save(path)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["model"] = "upload"
    at.session_state["image_source"] = "upload"
    at.switch_page("pages/compare.py")
    at.run()
    _by_key(at.file_uploader, "w:model_file").upload("positive.keras", path.read_bytes())
    _by_key(at.file_uploader, "w:image_file").upload(
        "x.png", _png(np.random.default_rng(3).integers(0, 256, (24, 24, 3))), "image/png"
    )
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    notes = [i.value for i in at.info if "No evidence" in i.value]
    assert notes == [
        (
            "**No evidence against the class** at this layer: the Counterfactual "
            "Grad-CAM map is 0 everywhere (nothing here would raise the class score "
            "if removed)."
        )
    ], notes
    alts = [i.alt for im in at.image for i in im.proto.imgs]
    assert not any(a.startswith("Counterfactual") for a in alts)  # no untinted photo for it
    assert any(a.startswith("Grad-CAM heatmap") for a in alts)


def test_scorecam_on_request_then_mask_and_faithfulness(app):
    _by_key(app.number_input, "w:compare_k").set_value(2)
    app.run()
    _by_key(app.button, "w:compare_run_scorecam").click()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert "**Score-CAM** · " in _text(app)
    mask = np.zeros((30, 40), np.uint8)
    mask[5:25, 10:30] = 255
    _by_key(app.file_uploader, "w:compare_mask").upload("mask.png", _png(mask), "image/png")
    app.run()
    text = _text(app)
    blank = sum("No evidence" in i.value for i in app.info)  # an all-zero map has no box
    assert text.count("box IoU ") == len(method_keys(family="cam")) - blank
    assert "energy in mask" in text and ("pointing hit" in text or "pointing miss" in text)
    _by_key(app.button, "w:compare_faith").click()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    table = app.dataframe[-1].value
    assert list(table["Method"]) == [REGISTRY[k].label for k in method_keys(family="cam")]
    assert "Average Drop (%)" in table.columns and "Pointing game (% hits)" in table.columns
    # each score's direction is in its header: ↓ lower is better, ↑ higher is better
    config = app.dataframe[-1].proto.columns
    assert '"Average Drop (%) \\u2193"' in config or "Average Drop (%) ↓" in config, config
    assert "Insertion AUC (0–1) ↑" in config or '"Insertion AUC (0\\u20131) \\u2191"' in config, (
        config
    )
    assert not app.error, [e.value for e in app.error]


def test_a_model_without_relu_gets_a_plain_error_for_the_guided_methods_only(tmp_path):
    keras.utils.set_random_seed(1)
    inp = keras.Input((SIZE, SIZE, 3))
    a = keras.layers.Conv2D(3, 3, activation="tanh", name="conv")(inp)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(a))
    path = tmp_path / "tanh.keras"
    keras.Model(inp, out).save(path)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["model"] = "upload"
    at.session_state["image_source"] = "upload"
    at.switch_page("pages/compare.py")
    at.run()
    _by_key(at.file_uploader, "w:model_file").upload("tanh.keras", path.read_bytes())
    _by_key(at.file_uploader, "w:image_file").upload(
        "x.png", _png(np.full((24, 24, 3), 90)), "image/png"
    )
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [
        (
            "Problem computing the guided methods: guided backpropagation needs ReLU activations, "
            "and this model has none (no ReLU layer, relu / relu6 activation or keras.ops.relu)"
        )
    ]
    assert "**Grad-CAM** · " in _text(at)  # the rest of the page still works
