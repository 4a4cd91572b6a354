"""The verdict sentences on Explain, driven with AppTest: known on a fresh install (empty sanity
cache) from the shipped measurement, their figures in the collapsed details, and, for a model
nobody has checked, a button that runs the check in place."""

import pytest

from explainers.trust import verdicts
from tests.helpers import new_app, run, small_cnn

pytestmark = pytest.mark.slow

FAILS = (
    "Do not read this map as evidence: it stays the same when the model's weights are random "
    "and is the same for every class."
)
PASSES = "Passed the checks: it changes with the model and with the class."


def texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAINERS_SANITY_CACHE", str(tmp_path / "sanity"))
    return tmp_path / "sanity"


def test_fresh_install_knows_both_verdicts_without_a_click(cache):
    at = run(new_app())
    shown = texts(at)
    # red only for "do not rely on it", next to the map it is about (its column)
    assert f":red[**{FAILS}**]" in shown and f":green[{PASSES}]" in shown
    assert not [b for b in at.button if str(b.key).startswith("sanity:run:")]
    # the figures behind the sentences, from the shipped file, in the details for the technical reader
    data = verdicts.read_default()
    pp = verdicts.result_from_record("gradcam++", data["methods"]["gradcam++"])
    decisive = pp.cascade[1]
    assert f"Spearman rank correlation {decisive.spearman:.2f} with the trained map" in shown
    assert f"Random logit: Spearman {pp.random_logit_spearman:.2f}" in shown
    assert f"from the measurement shipped with the app ({data['created']}" in shown
    # why Grad-CAM++ behaves so at this layer, in words
    assert "Grad-CAM equals HiResCAM" in shown and "α ≈ 0.5 everywhere" in shown
    # neutral figures: no trust-card figure is painted red
    assert not [m.value for m in at.markdown if m.value.startswith(":red[**Centre-prior")]
    assert not cache.exists() or not list(cache.glob("*.json"))  # nothing computed


def test_another_layer_offers_the_check_in_place(cache):
    at = run(new_app())
    at.selectbox(key="w:layer").set_value("xception/block13_sepconv2_act")
    run(at)
    shown = texts(at)
    assert shown.count("Not checked yet for this model and layer") == 2
    keys = sorted(b.key for b in at.button if str(b.key).startswith("sanity:run:"))
    assert keys == ["sanity:run:gradcam", "sanity:run:gradcam++"]
    assert FAILS not in shown and PASSES not in shown  # the shipped file is for block14 only


def test_the_button_checks_an_uploaded_model_here(cache, tmp_path):
    from tests.test_app_explain import _upload_model

    small_cnn().save(tmp_path / "cnn.keras")
    at = _upload_model(run(new_app()), "cnn.keras", (tmp_path / "cnn.keras").read_bytes())
    assert texts(at).count("Not checked yet for this model and layer") == 2
    next(b for b in at.button if b.key == "sanity:run:gradcam").click()
    run(at)
    shown = texts(at)
    assert "Not checked yet" not in shown
    assert sum(s in shown for s in ("Passed the checks", "Do not read this map as evidence")) >= 1
