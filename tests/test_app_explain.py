"""The Explain page (and the shared sidebar) driven with Streamlit's AppTest: the default view on
the real skin-lesion model, every setting, and every bad upload."""

import io
import struct
import zlib

import keras
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from explainers import zoo
from tests.helpers import new_app, run, set_noise, small_cnn

pytestmark = pytest.mark.slow


def captions(at: AppTest) -> list[str]:
    return [c for img in at.image for c in img.captions]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def texts(at: AppTest) -> str:
    return "\n".join(
        [m.value for m in at.markdown]
        + [c.value for c in at.caption]
        + [w.value for w in at.warning]
        + [i.value for i in at.info]
    )


def assert_page_works(at: AppTest) -> None:
    """The rest of the page still renders after an error."""
    assert at.title[0].value == "Explain a prediction"
    assert at.selectbox(key="w:model").value is not None
    assert at.radio(key="w:image_source").value in ("sample", "upload", "camera")


@pytest.fixture(scope="module")
def default_app():
    return run(new_app())


# --- the default view ---------------------------------------------------------------------------
def test_default_view_shows_prediction_diagnosis_and_both_heatmaps(default_app):
    at = default_app
    assert not errors(at)
    caps = captions(at)
    assert "Grad-CAM" in caps and "Grad-CAM++" in caps
    assert any(c.startswith("Input (600×450 px") for c in caps)
    assert at.selectbox(key="w:model").value == "skin-lesion"
    sample = at.selectbox(key="w:sample").value
    first = zoo.list_samples()[0]
    assert sample == first.image_id
    # the prediction table: every class (7), short names, probabilities in %, full names last
    table = at.dataframe[0].value
    assert list(table.columns) == ["rank", "class", "probability (%)", "score (logit)", "full name"]
    assert len(table) == 7
    assert set(table["class"]) == set(zoo.SKIN_CLASSES)
    assert set(table["full name"]) == {zoo.SKIN_CLASS_NAMES[c] for c in zoo.SKIN_CLASSES}
    assert 0 < table["probability (%)"].iloc[0] <= 100
    assert (table["probability (%)"].diff().dropna() <= 0).all()
    # the recorded diagnosis beside the prediction
    text = texts(at)
    assert f"**{first.dx} — {first.dx_name}**" in text
    assert "Recorded diagnosis" in [s.value for s in at.subheader]
    # the metadata is prefilled from the sample's record
    assert at.selectbox(key="w:sex").value == first.sex
    assert at.selectbox(key="w:site").value == zoo.site_for_localization(first.localization)
    assert at.number_input(key="w:age_years").value == int(first.age)
    assert at.checkbox(key="w:age").value is False
    # layer: every spatial layer, nested ones included, with shapes; default the last
    layer = at.selectbox(key="w:layer")
    assert layer.value == "xception/block14_sepconv2_act"
    # Layers of the nested backbone too, listed by their own names (short enough for a phone).
    assert any(o.startswith("block1_conv1 (") for o in layer.options)
    assert "block14_sepconv2_act (8×8×2048) · last" in layer.options
    assert any("(8×8×2048)" in o for o in layer.options)
    # target: top-1 by default
    assert at.selectbox(key="w:target").value == -1  # the "top-1" entry
    assert at.selectbox(key="w:target").options[0].startswith("top-1: ")
    # sliders: samples 0..50 default 0, sigma 0..1 default 0.15
    samples, sigma = at.slider(key="w:n_samples"), at.slider(key="w:sigma")
    assert (samples.value, samples.min, samples.max) == (0, 0, 50)
    assert (sigma.value, sigma.min, sigma.max) == (0.15, 0.0, 1.0)
    # colour bar, downloads
    assert sum(c.value.startswith("raw max **") for c in at.caption) == 2
    labels = [b.label for b in at.get("download_button")]
    assert "Grad-CAM (PNG)" in labels
    assert "Grad-CAM++ (PNG)" in labels
    assert "Raw maps (NPZ)" in labels


def test_samples_and_sigma_turn_both_maps_smooth():
    at = run(new_app())
    set_noise(at, samples=3)
    caps = captions(at)
    assert "Smooth Grad-CAM (3 samples, σ=0.15)" in caps
    assert "Smooth Grad-CAM++ (3 samples, σ=0.15)" in caps
    set_noise(at, sigma=0.3)
    caps = captions(at)
    assert "Smooth Grad-CAM++ (3 samples, σ=0.30)" in caps
    assert at.query_params["samples"] == ["3"] or at.query_params["samples"] == "3"
    assert not errors(at)
    set_noise(at, samples=0)
    assert "Grad-CAM" in captions(at) and "Grad-CAM++" in captions(at)


def test_colormap_and_opacity_recompute_nothing(monkeypatch):
    import dashboard.frame.loaders as loaders

    at = run(new_app())
    calls = []
    real = loaders.explain_details

    def counting(model, x, settings=None, **k):
        calls.append(settings.n_samples)  # the dashboard passes one ExplainSettings
        return real(model, x, settings, **k)

    monkeypatch.setattr(loaders, "explain_details", counting)
    assert at.selectbox(key="w:cmap").value == "viridis"  # the default: perceptually uniform
    at.selectbox(key="w:cmap").set_value("inferno")
    run(at)
    at.slider(key="w:opacity").set_value(0.8)
    run(at)
    assert calls == []
    assert at.query_params["cmap"] in ("inferno", ["inferno"])
    assert at.query_params["opacity"] in ("0.80", ["0.80"])
    assert at.selectbox(key="w:cmap").value == "inferno" and at.slider(key="w:opacity").value == 0.8
    assert "Grad-CAM" in captions(at)
    # changing the noise recomputes the maps (and only them: the model is cached)
    set_noise(at, samples=2)
    assert calls == [2]


def test_change_image_layer_and_target():
    at = run(new_app())
    other = next(s for s in zoo.list_samples() if s.dx == "bcc")
    at.selectbox(key="w:sample").set_value(other.image_id)
    run(at)
    assert f"**bcc — {other.dx_name}**" in texts(at)
    assert at.number_input(key="w:age_years").value == int(other.age)
    assert at.selectbox(key="w:site").value == zoo.site_for_localization(other.localization)
    assert at.query_params["sample"] in (other.image_id, [other.image_id])

    at.selectbox(key="w:layer").set_value("xception/block13_sepconv2_act")
    run(at)
    assert any("layer `xception/block13_sepconv2_act`" in c.value for c in at.caption)
    assert "Grad-CAM" in captions(at) and "Grad-CAM++" in captions(at)

    target = at.selectbox(key="w:target")
    assert target.options[0].startswith("top-1: ")
    probs = [float(o.rsplit("(", 1)[1].split(" %")[0]) for o in target.options[1:]]
    assert probs == sorted(probs, reverse=True)  # most probable first, full names
    assert any(o.startswith("nv — melanocytic nevus (") for o in target.options)
    target.set_value(5)
    run(at)
    assert any("Class explained: **nv — melanocytic nevus" in c.value for c in at.caption)
    assert not errors(at)


def test_metadata_changes_the_prediction_input():
    at = run(new_app())
    at.checkbox(key="w:age").check()
    run(at)
    assert any("age unknown" in c.value for c in at.caption)
    at.selectbox(key="w:sex").set_value("unknown")
    at.selectbox(key="w:site").set_value("unknown")
    run(at)
    assert any(
        "Patient data given to the model: age unknown, unknown, unknown" in c.value
        for c in at.caption
    )
    assert len(at.dataframe[0].value) == 7 and not errors(at)


def test_settings_come_from_the_url():
    at = run(
        new_app(samples="2", sigma="0.25", cmap="inferno", layer="xception/block14_sepconv1_act")
    )
    assert at.slider(key="w:n_samples").value == 2
    assert at.slider(key="w:sigma").value == 0.25
    assert at.selectbox(key="w:cmap").value == "inferno"
    assert at.selectbox(key="w:layer").value == "xception/block14_sepconv1_act"
    assert "Smooth Grad-CAM++ (2 samples, σ=0.25)" in captions(at)


def test_bad_url_values_fall_back_to_defaults():
    at = run(new_app(samples="many", sigma="7", model="NoSuchNet", layer="nope", sex="x"))
    notes = [i.value for i in at.info]
    assert any(
        n.startswith("The link's sex=x, samples=many, sigma=7 are not valid") for n in notes
    ), notes
    assert any("NoSuchNet" in n for n in notes) and any("nope" in n for n in notes), notes
    assert at.selectbox(key="w:sex").value == "female"  # the sample's recorded data instead
    assert at.slider(key="w:n_samples").value == 0
    assert at.slider(key="w:sigma").value == 0.15
    assert at.selectbox(key="w:model").value == "skin-lesion"
    assert at.selectbox(key="w:layer").value == "xception/block14_sepconv2_act"
    assert "Grad-CAM" in captions(at)


def test_unexpected_errors_become_a_plain_message(monkeypatch):
    import dashboard.frame.loaders as loaders

    def broken(*a, **k):
        raise RuntimeError("internal detail that must not be shown")

    monkeypatch.setattr(loaders, "explain_details", broken)
    at = run(new_app(samples="7", sigma="0.33"))  # a combination no other test has cached
    msgs = errors(at)
    assert any(m.startswith("Something went wrong while computing the heatmaps") for m in msgs)
    assert not any("internal detail" in m for m in msgs)
    assert_page_works(at)
    assert len(at.dataframe[0].value) == 7  # the prediction still shows (every class)


# --- Keras Applications: offline, then random weights ---------------------------------------------
def test_keras_application_offline_warns_then_continues_with_random_weights(monkeypatch):
    spec = zoo.APPLICATIONS["MobileNetV2"]
    if zoo._cached_weights(spec) is not None:
        pytest.skip("MobileNetV2's ImageNet weights are in the Keras cache here: no offline case")
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # no network, whatever the machine has
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    at = run(new_app())
    at.selectbox(key="w:model").set_value("MobileNetV2")
    run(at)
    warn = "\n".join(w.value for w in at.warning)
    assert "The ImageNet weights for MobileNetV2 could not be downloaded" in warn
    assert spec.weights_file in warn and ".keras/models" in warn
    assert "connect to the internet" in warn
    assert not at.exception
    assert_page_works(at)
    at.button(key="random:MobileNetV2").click()
    run(at)
    warn = "\n".join(w.value for w in at.warning)
    assert "MobileNetV2 has random weights — every prediction is meaningless" in warn
    assert any("random weights — meaningless" in s.value for s in at.subheader)
    assert "Grad-CAM" in captions(at) and "Grad-CAM++" in captions(at)
    assert len(at.dataframe[0].value) == 5
    assert at.selectbox(key="w:layer").value == "out_relu"
    assert "This model's classes are not the HAM10000 diagnoses." in [c.value for c in at.caption]
    assert not errors(at)
    # back to the skin-lesion model: no random-weights banner any more
    at.selectbox(key="w:model").set_value("skin-lesion")
    run(at)
    assert not any("random weights" in w.value for w in at.warning)


# --- images: upload, camera, bad files ------------------------------------------------------------
def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _sample_jpeg() -> bytes:
    return zoo.list_samples()[2].path.read_bytes()


def _bomb_png(width=100_000, height=100_000) -> bytes:
    """A tiny PNG whose header declares 10 gigapixels."""
    data = _png(Image.new("L", (1, 1)))
    ihdr = data.find(b"IHDR")
    body = struct.pack(">II", width, height) + data[ihdr + 12 : ihdr + 17]
    chunk = b"IHDR" + body
    patched = data[:ihdr] + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return patched + data[ihdr + len(chunk) + 4 :]


def _choose_upload(at: AppTest) -> AppTest:
    at.radio(key="w:image_source").set_value("upload")
    return run(at)


def test_uploaded_image_is_explained_without_a_diagnosis():
    at = _choose_upload(run(new_app()))
    assert "Upload an image to explain it." in [i.value for i in at.info]
    rgba = Image.new("RGBA", (300, 200), (200, 120, 90, 128))
    at.file_uploader(key="w:image_file").set_value(("mole.png", _png(rgba), "image/png"))
    run(at)
    assert not errors(at)
    assert "Grad-CAM" in captions(at) and "Grad-CAM++" in captions(at)
    assert any(c.startswith("Input (300×200 px") for c in captions(at))
    assert "No recorded diagnosis: this image is not one of the bundled samples." in [
        c.value for c in at.caption
    ]
    assert [b.label for b in at.get("download_button")]


def test_grayscale_upload_and_camera_photo():
    at = _choose_upload(run(new_app()))
    gray = Image.fromarray((np.arange(64 * 80) % 251).astype(np.uint8).reshape(64, 80), "L")
    at.file_uploader(key="w:image_file").set_value(("gray.png", _png(gray), "image/png"))
    run(at)
    assert not errors(at) and "Grad-CAM++" in captions(at)
    at.radio(key="w:image_source").set_value("camera")
    run(at)
    assert "Take a photo to explain it." in [i.value for i in at.info]
    at.camera_input(key="w:camera").set_value(("shot.jpg", _sample_jpeg(), "image/jpeg"))
    run(at)
    assert not errors(at)
    assert "Grad-CAM" in captions(at) and "Grad-CAM++" in captions(at)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "notes.png",
            b"these are my notes, not a picture\n" * 20,
            "Problem reading notes.png: notes.png is not an image file Pillow can read",
        ),
        ("cut.jpg", None, "Problem reading cut.jpg: cut.jpg is truncated or damaged"),
        ("bomb.png", None, "refusing it as a possible decompression bomb"),
    ],
)
def test_bad_image_uploads_give_a_plain_error_and_the_page_keeps_working(name, data, message):
    if name == "cut.jpg":
        full = _sample_jpeg()
        data = full[: len(full) // 2]
    elif name == "bomb.png":
        data = _bomb_png()
    at = _choose_upload(run(new_app()))
    at.file_uploader(key="w:image_file").set_value((name, data, "image/png"))
    run(at)
    msgs = errors(at)
    assert len(msgs) == 1 and message in msgs[0], msgs
    assert_page_works(at)
    assert "Choose an image in the sidebar: a sample, your upload or a camera photo." in [
        i.value for i in at.info
    ]
    # and recovering: back to a sample, everything is there again
    at.radio(key="w:image_source").set_value("sample")
    run(at)
    assert not errors(at) and "Grad-CAM++" in captions(at)


# --- the user's own model -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user_models")
    small_cnn().save(folder / "cnn.keras")
    small_cnn(lam=True).save(folder / "lambda.keras")
    inp = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inp)
    keras.Model(inp, keras.layers.Dense(3)(pooled)).save(folder / "nospatial.keras")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _upload_model(at: AppTest, name: str, data: bytes, names: bytes | None = None) -> AppTest:
    at.selectbox(key="w:model").set_value("upload")
    run(at)
    assert "Upload a Keras model file to explain it." in [i.value for i in at.info]
    at.file_uploader(key="w:model_file").set_value((name, data, "application/octet-stream"))
    if names is not None:
        at.file_uploader(key="w:class_names").set_value(("names.txt", names, "text/plain"))
    return run(at)


def test_user_model_with_class_names(model_bytes):
    at = _upload_model(run(new_app()), "cnn.keras", model_bytes["cnn.keras"], b"cat\ndog\nbird\n")
    assert not errors(at)
    assert "Grad-CAM" in captions(at) and "Grad-CAM++" in captions(at)
    assert set(at.dataframe[0].value["class"]) == {"cat", "dog", "bird"}
    assert at.selectbox(key="w:layer").value == "conv"
    assert "(30×30×4)" in at.selectbox(key="w:layer").options[0]
    assert "model" not in at.query_params  # an upload cannot be restored from a link


@pytest.mark.parametrize(
    ("name", "key", "names", "message"),
    [
        ("junk.keras", None, None, "junk.keras is not a Keras model file"),
        ("lambda.keras", "lambda.keras", None, "lambda.keras contains Python code"),
        (
            "nospatial.keras",
            "nospatial.keras",
            None,
            "the model has no layer with a spatial output",
        ),
        (
            "cnn.keras",
            "cnn.keras",
            b"cat\ndog\n",
            "the class-names file has 2 names but the model has 3 outputs",
        ),
    ],
)
def test_bad_model_uploads_give_a_plain_error_and_the_page_keeps_working(
    model_bytes, name, key, names, message
):
    data = model_bytes[key] if key else b"this is not a model at all" * 10
    at = _upload_model(run(new_app()), name, data, names)
    msgs = errors(at)
    assert len(msgs) == 1 and message in msgs[0], msgs
    assert_page_works(at)
    if names is not None:
        # a wrong names file only loses the names: the model is still explained
        assert "Grad-CAM++" in captions(at)
        assert set(at.dataframe[0].value["class"]) == {"class 0", "class 1", "class 2"}
    else:
        assert (
            "No model is loaded: see the message above, or choose another model in the sidebar."
            in [i.value for i in at.info]
        )
    # the other models still work
    at.selectbox(key="w:model").set_value("skin-lesion")
    run(at)
    assert not errors(at) and "Grad-CAM++" in captions(at)


def test_progress_bar_while_noisy_samples_compute(monkeypatch):
    import streamlit as st

    updates = []
    real = st.progress

    def recording(value, text=None, **kw):
        bar = real(value, text=text, **kw)
        updates.append((value, text))
        original = bar.progress

        def progress(v, text=None, **k):
            updates.append((v, text))
            return original(v, text=text, **k)

        bar.progress = progress
        return bar

    monkeypatch.setattr(st, "progress", recording)
    at = run(new_app(samples="5", sigma="0.37"))  # a combination no other test has cached
    assert updates[0] == (0.0, "Computing 5 noisy samples ...")
    assert updates[-1] == (1.0, "Computing noisy samples: 5 of 5")
    assert "Smooth Grad-CAM++ (5 samples, σ=0.37)" in captions(at)
    assert not at.get("progress")  # removed once the maps are there


def test_explain_the_recorded_diagnosis_when_the_model_differs():
    """Issue 11 item 4: beside "differs", one click explains the recorded diagnosis."""
    at = run(new_app())
    for sample in zoo.list_samples():
        at.selectbox(key="w:sample").set_value(sample.image_id)
        run(at)
        if any("— :orange[differs]" in m.value for m in at.markdown):
            break
    else:
        pytest.skip("the model agrees with every bundled sample's recorded diagnosis")
    button = at.button(key="w:explain_recorded")
    assert button.label == f"Explain the recorded diagnosis ({sample.dx})"
    button.click()
    run(at)
    assert any(c.value.startswith(f"Class explained: **{sample.dx} — ") for c in at.caption)
    assert at.query_params["target"] in (
        str(zoo.SKIN_CLASSES.index(sample.dx)),
        [str(zoo.SKIN_CLASSES.index(sample.dx))],
    )
    assert not [b for b in at.button if b.key == "w:explain_recorded"]  # done: no second click


def test_noise_is_applied_with_the_button_only(monkeypatch):
    """Moving a noise slider recomputes nothing; "Apply noise" commits all three at once."""
    import dashboard.frame.loaders as loaders

    at = run(new_app())
    calls = []
    real = loaders.explain_details

    def counting(model, x, settings=None, **k):
        calls.append((settings.n_samples, settings.sigma))  # one ExplainSettings per call
        return real(model, x, settings, **k)

    monkeypatch.setattr(loaders, "explain_details", counting)
    at.slider(key="w:n_samples").set_value(2)
    at.slider(key="w:sigma").set_value(0.3)
    run(at)  # a rerun without the button (another widget): the form's values are not sent
    assert calls == [] and "Grad-CAM++" in captions(at)
    set_noise(at, samples=2, sigma=0.3)
    assert calls == [(2, 0.3)]
    assert "Smooth Grad-CAM++ (2 samples, σ=0.30)" in captions(at)
    assert at.slider(key="w:n_samples").value == 2


def test_an_upload_resets_the_patient_data_with_a_notice():
    """Issue 17: an upload silently kept the previous sample's age, sex and site."""
    at = run(new_app())
    assert at.selectbox(key="w:sex").value != "unknown"  # the first sample's recorded data
    at = _choose_upload(at)
    assert any("patient data (age, sex, body site) is set to unknown" in i.value for i in at.info)
    assert (at.selectbox(key="w:sex").value, at.selectbox(key="w:site").value) == (
        "unknown",
        "unknown",
    )
    assert at.checkbox(key="w:age").value is True  # "Age unknown"
    at.selectbox(key="w:sex").set_value("male")
    run(at)
    at.file_uploader(key="w:image_file").set_value(
        ("mole.png", _png(Image.new("RGB", (64, 48), (180, 90, 60))), "image/png")
    )
    run(at)
    assert at.selectbox(key="w:sex").value == "unknown"  # a new photo: nobody's record
    assert any(
        "Patient data given to the model: age unknown, unknown, unknown" in c.value
        for c in at.caption
    )
    at.radio(key="w:image_source").set_value("sample")
    run(at)
    assert at.selectbox(key="w:sex").value != "unknown"  # the sample's recorded data is back
