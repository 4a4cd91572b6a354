"""Shared mode on the real dashboard (AppTest): a refused setting shows its plain sentence and
the page stays usable; locally the same setting runs."""

import pytest

from dashboard.frame import fair_share
from tests.helpers import new_app, run, set_noise

pytestmark = pytest.mark.slow


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def captions(at) -> list[str]:
    return [c for img in at.image for c in img.captions]


def test_too_many_samples_are_refused_with_a_sentence_and_the_page_stays_usable(monkeypatch):
    monkeypatch.setenv(fair_share.SHARED_ENV, "1")
    monkeypatch.setenv(fair_share.MAX_SAMPLES_ENV, "8")
    at = run(new_app())
    assert not errors(at) and "Grad-CAM++" in captions(at)
    set_noise(at, samples=9)  # the noise is applied with its button
    assert errors(at) == [
        (
            "Problem computing the heatmaps: This shared server computes at most 8 "
            "noise samples per map; choose 8 or fewer (you asked for 9)."
        )
    ]
    assert at.title[0].value == "Explain a prediction"
    assert at.slider(key="w:n_samples").value == 9  # the controls are still there
    # Near the input (block1_conv1, 126×126 of 254×254) a quarter of the cap: 3 refused, 2 run.
    at.selectbox(key="w:layer").set_value("xception/block1_conv1")
    set_noise(at, samples=3)
    assert errors(at) == [
        (
            "Problem computing the heatmaps: At a layer this close to the input "
            "(126×126 positions) this shared server computes at most 2 noise "
            "samples per map; choose 2 or fewer, or a later layer."
        )
    ]
    set_noise(at, samples=2)
    assert not errors(at)
    assert "Smooth Grad-CAM++ (2 samples, σ=0.15)" in captions(at)


def test_locally_the_same_setting_runs(monkeypatch):
    monkeypatch.delenv(fair_share.SHARED_ENV, raising=False)
    monkeypatch.setenv(fair_share.MAX_SAMPLES_ENV, "4")
    at = run(new_app())
    set_noise(at, samples=5)
    assert not errors(at)
    assert "Smooth Grad-CAM++ (5 samples, σ=0.15)" in captions(at)


def test_scorecam_over_all_channels_is_refused_and_fewer_run(monkeypatch, tmp_path):
    """Compare with a tiny uploaded model of 4 channels and a cap of 2 (in shared mode)."""
    import io

    import keras
    import numpy as np
    from PIL import Image
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    monkeypatch.setenv(fair_share.SHARED_ENV, "1")
    monkeypatch.setenv(fair_share.MAX_CHANNELS_ENV, "2")
    keras.utils.set_random_seed(0)
    inp = keras.Input((24, 24, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(a))
    keras.Model(inp, out).save(tmp_path / "tiny.keras")
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(
        png, "PNG"
    )

    def by_key(widgets, key):
        return next(w for w in widgets if w.key == key)

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["model"] = "upload"
    at.session_state["image_source"] = "upload"
    at.switch_page("pages/compare.py")
    at.run()
    by_key(at.file_uploader, "w:model_file").upload(
        "tiny.keras", (tmp_path / "tiny.keras").read_bytes()
    )
    by_key(at.file_uploader, "w:image_file").upload("lesion.png", png.getvalue(), "image/png")
    run(at)
    assert not errors(at)
    by_key(at.number_input, "w:compare_k").set_value(4)
    run(at)
    by_key(at.button, "w:compare_run_scorecam").click()
    run(at)
    assert errors(at) == [
        (
            "Problem computing Score-CAM: This shared server runs Score-CAM over "
            "at most 2 channels (one forward pass each); choose K = 2 or fewer "
            "(you asked for 4 of 4)."
        )
    ]
    text = "\n".join(m.value for m in at.markdown)
    assert "**Grad-CAM++** · " in text  # the other methods' maps are still shown
    assert "**Score-CAM** · " not in text
    by_key(at.number_input, "w:compare_k").set_value(2)
    run(at)
    by_key(at.button, "w:compare_run_scorecam").click()
    run(at)
    assert not errors(at)
    assert "**Score-CAM** · " in "\n".join(m.value for m in at.markdown)
