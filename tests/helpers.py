"""Helpers shared by the test modules: driving the app with AppTest, and a small user model."""

from pathlib import Path

import keras
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 300  # model load ~10 s and the first explanation a few s on a busy 2-core CPU


def new_app(**query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at


def run(at: AppTest) -> AppTest:
    """One script run that must not raise."""
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def set_noise(
    at: AppTest, samples: int | None = None, sigma: float | None = None, seed: int | None = None
) -> AppTest:
    """Move the noise controls and press "Apply noise" (they sit in a form), then run."""
    if samples is not None:
        at.slider(key="w:n_samples").set_value(samples)
    if sigma is not None:
        at.slider(key="w:sigma").set_value(sigma)
    if seed is not None:
        at.number_input(key="w:seed").set_value(seed)
    at.button(key="w:noise_apply").click()
    return run(at)


def open_page(page: str, **query) -> AppTest:
    """The app opened (with URL ``query``), then switched to ``page``."""
    at = run(new_app(**query))
    at.switch_page(page)
    return run(at)


def small_cnn(input_shape=(32, 32, 3), classes=3, lam=False) -> keras.Model:
    """A user's model in miniature; ``lam`` adds a Lambda layer (code in the file)."""
    inp = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    if lam:
        x = keras.layers.Lambda(lambda t: t * 2.0, name="code")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(classes, activation="softmax")(x))
