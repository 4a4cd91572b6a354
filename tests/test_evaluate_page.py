"""The Evaluate page through the real app (``app.py``, its sidebar and navigation), with a
tiny uploaded model and image so it runs in seconds: the score table, its columns and
values, and a plain st.error for a bad mask."""

import io

import keras
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from explainers.evaluation import scoring as metrics
from tests.conftest import ROOT

SIZE = 24


def _png(array) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    p = keras.layers.GlobalAveragePooling2D()(a)
    out = keras.layers.Dense(3, activation="softmax", name="head")(p)
    path = tmp_path_factory.mktemp("page") / "tiny.keras"
    keras.Model(inp, out).save(path)
    rng = np.random.default_rng(0)
    image = _png(rng.integers(0, 256, (30, 30, 3)))
    mask = np.zeros((30, 30), np.uint8)
    mask[8:22, 8:22] = 255
    return path.read_bytes(), image, _png(mask), _png(rng.integers(0, 256, (30, 30, 3)))


def _by_key(widgets, key):
    return next(w for w in widgets if w.key == key)


@pytest.fixture(scope="module")
def app(files):
    model_bytes, image_bytes, _, _ = files
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["model"] = "upload"  # dashboard.frame.state.MODEL / UPLOAD_MODEL
    at.session_state["image_source"] = "upload"  # dashboard.frame.state.IMAGE_SOURCE
    at.session_state["n_samples"] = 2  # dashboard.frame.state.N_SAMPLES: keeps smoothing cheap
    at.switch_page("pages/evaluate.py")
    at.run()
    _by_key(at.file_uploader, "w:model_file").upload("tiny.keras", model_bytes)
    _by_key(at.file_uploader, "w:image_file").upload("lesion.png", image_bytes, "image/png")
    at.run()
    # Opening the page computes nothing: the scores wait for the button.
    assert not at.dataframe and any("press the button" in i.value for i in at.info)
    _by_key(at.button, "w:eval_single_go").click()
    at.run()
    return at


def test_table_compares_the_four_maps_on_every_faithfulness_score(app):
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert app.title[0].value == "Evaluate the maps"
    frame = app.dataframe[0].value
    assert list(frame["Method"]) == [
        "Grad-CAM",
        "Grad-CAM++",
        "Smooth Grad-CAM (2 samples)",
        "Smooth Grad-CAM++ (2 samples)",
    ]
    for key in metrics.FAITHFULNESS_SCORES:
        assert metrics.SCORE_LABELS[key] in frame.columns
    assert "Average Drop (%)" in frame.columns and "Deletion AUC (0–1)" in frame.columns
    assert frame["Average Drop (%)"].between(0, 100).all()
    assert frame["Increase in Confidence (%)"].isin([0.0, 100.0]).all()
    assert frame["Deletion AUC (0–1)"].between(0, 1).all()
    assert frame["Insertion AUC (0–1)"].between(0, 1).all()
    assert "IoU at 50% of max (0–1)" not in frame.columns  # no mask yet
    assert any("Deletion and insertion curves" in s.value for s in app.subheader)


def test_mask_adds_localisation_scores_and_bad_mask_is_a_plain_error(app, files):
    _, _, mask_bytes, photo_bytes = files
    uploader = _by_key(app.file_uploader, "w:eval_mask")
    uploader.upload("mask.png", mask_bytes, "image/png")
    app.run()
    _by_key(app.button, "w:eval_single_go").click()  # another mask: scored on request again
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    frame = app.dataframe[0].value
    for key in metrics.LOCALISATION_SCORES:
        assert metrics.SCORE_LABELS[key] in frame.columns
    assert frame["Pointing game (% hits)"].isin([0.0, 100.0]).all()
    assert any("mask outlined" in s.value for s in app.subheader)

    _by_key(app.file_uploader, "w:eval_mask").set_value(("photo.png", photo_bytes, "image/png"))
    app.run()
    assert not app.exception
    errors = [e.value for e in app.error]
    assert any("not black and white" in e for e in errors), errors
    _by_key(app.file_uploader, "w:eval_mask").set_value(("mask.png", b"garbage", "image/png"))
    app.run()
    assert not app.exception
    assert any("mask" in e.lower() for e in (e.value for e in app.error))
    # The table is still there without the localisation columns.
    assert "Pointing game (% hits)" not in app.dataframe[0].value.columns


def test_a_mask_of_another_size_is_scaled_with_a_note_and_of_other_proportions_refused(app, files):
    _, _, _mask_bytes, _ = files
    twice = np.zeros((60, 60), np.uint8)
    twice[16:44, 16:44] = 255  # the same mask, drawn at twice the image's size
    _by_key(app.file_uploader, "w:eval_mask").set_value(("mask2x.png", _png(twice), "image/png"))
    app.run()
    _by_key(app.button, "w:eval_single_go").click()  # a new mask is scored on the button
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert "The mask (60×60 pixels) was scaled to the image (30×30)." in [i.value for i in app.info]
    assert "Pointing game (% hits)" in app.dataframe[0].value.columns
    wide = np.zeros((30, 60), np.uint8)
    wide[8:22, 8:40] = 255
    _by_key(app.file_uploader, "w:eval_mask").set_value(("wide.png", _png(wide), "image/png"))
    app.run()  # refused at once, before any scoring
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and "the mask is 60×30 pixels but the image is 30×30" in errors[0], (
        errors
    )
    assert "Pointing game (% hits)" not in app.dataframe[0].value.columns  # never stretched


def test_several_images_aggregates_with_a_download(app, files):
    _, image_bytes, _, photo_bytes = files
    _by_key(app.file_uploader, "w:eval_mask").clear()
    _by_key(app.radio, "w:eval_mode").set_value("several")
    app.run()
    _by_key(app.radio, "w:eval_source").set_value("upload")
    app.run()
    _by_key(app.file_uploader, "w:eval_uploads").set_value(
        [
            ("a.png", image_bytes, "image/png"),
            ("b.png", photo_bytes, "image/png"),
            ("broken.png", b"not a png", "image/png"),
        ]
    )
    app.run()
    _by_key(app.button, "w:eval_many_go").click()
    app.run()
    assert not app.exception, app.exception
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and "broken.png" in errors[0], (
        errors,
        [i.value for i in app.info],
        [m.value for m in app.markdown][:20],
    )
    summary = app.dataframe[0].value
    assert list(summary["Images"]) == [2, 2, 2, 2]
    assert "Average Drop (%)" in summary.columns
    labels = [b.label for b in app.get("download_button")]
    assert "Download the averaged table (CSV)" in labels


def test_too_many_uploaded_images_are_refused_in_one_line(app, files):
    _, image_bytes, _, _ = files
    _by_key(app.radio, "w:eval_mode").set_value("several")
    app.run()
    _by_key(app.radio, "w:eval_source").set_value("upload")
    app.run()
    _by_key(app.file_uploader, "w:eval_uploads").set_value(
        [(f"i{i}.png", image_bytes, "image/png") for i in range(33)]
    )
    app.run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        (
            "33 images were uploaded; evaluate at most 32 at a time (remove some, or use the batch "
            "command for a whole folder)."
        )
    ]
    assert not [b for b in app.button if b.key == "w:eval_many_go"]
    _by_key(app.file_uploader, "w:eval_uploads").set_value(
        [(f"i{i}.png", image_bytes, "image/png") for i in range(2)]
    )
    app.run()
    assert not app.error and [b for b in app.button if b.key == "w:eval_many_go"]
