"""The Trust page and the trust section of Explain, driven with AppTest on the default model:
verdicts read from the disk cache only, the cascade strip, the audit panel and its edits."""

import numpy as np
import pytest

from explainers import zoo
from explainers.trust import sanity
from tests.helpers import open_page, run, set_noise

pytestmark = pytest.mark.slow
PAGE = "pages/trust.py"


def texts(at) -> str:
    return "\n".join(
        [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    )


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAINERS_SANITY_CACHE", str(tmp_path / "sanity"))
    return tmp_path / "sanity"


def _seed_cache(bundle, verdicts):
    """Cache entries as the check writes them (figures chosen to give each verdict)."""
    ids = [s.image_id for s in zoo.list_samples()[: sanity.DEFAULT_SAMPLES]]
    layer = "xception/block14_sepconv2_act"
    fp = sanity.model_fingerprint(bundle)
    results = {}
    for key, (head, logit) in verdicts.items():
        steps = [sanity.Step("head", head, 0.3), sanity.Step("head + block14", head, 0.2)]
        results[key] = sanity.MethodSanity(
            key, steps, logit, np.random.default_rng(0).random((3, 8, 8, 8))
        )
    report = sanity.SanityReport("skin-lesion", layer, ids, results)
    for key in verdicts:
        sanity.save_cached(sanity.cache_key(fp, layer, key, 0, 0.15, 0, ids), report, key)


def test_nothing_is_computed_without_the_button_and_the_audit_runs(cache):
    at = open_page(PAGE)
    assert at.title[0].value == "Can these maps be trusted?"
    shown = texts(at)
    # Plain words first; with an empty cache the default model's verdicts come from the
    # shipped measurement, said as such, with the same sentences as on Explain (no strip:
    # the shipped figures carry no maps) and a button that runs the check here.
    assert "do not read it as evidence" in shown
    assert "Passed the checks: it changes with the model and with the class." in shown
    assert "Do not read this map as evidence: it stays the same" in shown
    assert "shipped with the app; run it here to see the maps of each step" in shown
    assert "trained" not in [c for img in at.image for c in img.captions]
    assert [b for b in at.button if b.key == "trust:run"]
    assert "Not checked yet" not in shown
    assert not list(cache.glob("*.json"))  # never computed implicitly
    # Fewer images than the shipped measurement used: not known, and it says so.
    at.slider(key="trust:images").set_value(4)
    run(at)
    assert "Not checked yet for this model and layer: Grad-CAM, Grad-CAM++" in texts(at)
    assert not list(cache.glob("*.json"))
    assert "hiding the high-map area outside the lesion" in shown and " moves P(" in shown
    # The audit figure names the automatic outline's stability; an uncertain outline (the
    # default sample's) turns the outside edit into a possibility and says why.
    from explainers.images import load_image
    from explainers.trust.segmentation import outline

    auto = outline(load_image(zoo.list_samples()[0].path))
    captions = [c for img in at.image for c in img.captions]
    assert any(
        f"with the lesion outline in white (automatic; stability {auto.stability:.2f}" in c
        for c in captions
    )
    if auto.uncertain:
        assert "hiding the high-map area outside the lesion outline moves P(" in shown
        assert "Why the outline counts as uncertain (either is enough)" in shown
    frame = at.dataframe[0].value
    assert list(frame["region"]) == ["lesion", "border", "skin", "corners"]
    assert frame["share of the map's energy (%)"].sum() == pytest.approx(100, abs=0.2)


def test_cached_verdicts_show_on_trust_and_explain(cache):
    bundle = zoo.load_model("skin-lesion")
    _seed_cache(bundle, {"gradcam": (0.1, 0.3), "gradcam++": (0.95, 0.97)})
    at = open_page(PAGE)
    shown = texts(at)
    assert "Passed the checks: it changes with the model and with the class." in shown
    assert "Do not read this map as evidence: it stays the same" in shown
    assert "Measured on this server (kept on disk)." in shown
    assert not [b for b in at.button if b.key == "trust:run"]  # nothing left to run
    assert "trained" in [c for img in at.image for c in img.captions]  # the strip is drawn
    at.switch_page("pages/explain.py")
    run(at)
    shown = texts(at)
    # Explain says it in one plain sentence per map; the cache (measured here) wins over the
    # shipped file
    assert "Passed the checks: it changes with the model and with the class." in shown
    assert (
        "Do not read this map as evidence: it stays the same when the model's weights are "
        "random and is the same for every class."
    ) in shown
    assert "measured here (disk cache)" in shown
    assert "Class sensitivity" in shown and "Centre-prior likeness" in shown


def test_explain_knows_the_default_verdicts_when_nothing_is_cached(cache):
    at = open_page("pages/explain.py")
    shown = texts(at)
    # the shipped measurement: known at once, nothing computed, nothing written
    assert (
        ":red[**Do not read this map as evidence: it stays the same when the model's weights "
        in shown
    )
    assert ":green[Passed the checks: it changes with the model and with the class.]" in shown
    assert "from the measurement shipped with the app" in shown
    assert "not checked yet" not in shown.lower()
    at.checkbox(key="trust:all_classes").check()
    run(at)
    frame = next(d.value for d in at.dataframe if len(d.value) == 6)  # the other 6 classes
    assert "nv — melanocytic nevus" in list(frame["class"])
    assert (
        "Energy in the lesion" in shown and "the centre prior alone gets" in shown
    )  # automatic outline
    from explainers.images import load_image
    from explainers.trust.segmentation import outline

    auto = outline(
        load_image(zoo.list_samples()[0].path)
    )  # drawn white on the figures; says when uncertain
    assert "Lesion figures use the automatic outline (white on the figures" in shown
    assert (
        f"Here the outline is uncertain (dashed; stability {auto.stability:.2f}" in shown
    ) == auto.uncertain
    assert "Two-sided map: Grad-CAM" in shown
    assert "Evidence for (red) and against (blue) the class" in [
        c for img in at.image for c in img.captions
    ]
    assert not list(cache.glob("*.json"))


def test_sanity_check_runs_on_an_uploaded_model(cache, tmp_path):
    from tests.helpers import small_cnn
    from tests.test_app_explain import _upload_model

    small_cnn().save(tmp_path / "cnn.keras")
    at = _upload_model(open_page(PAGE), "cnn.keras", (tmp_path / "cnn.keras").read_bytes())
    assert "Not checked yet" in texts(at)
    at.multiselect(key="trust:methods").set_value(["gradcam"])
    at.slider(key="trust:images").set_value(2)
    run(at)
    next(b for b in at.button if b.key == "trust:run").click()
    run(at)
    shown = texts(at)
    assert ("Passed the checks" in shown) or ("Do not read this map as evidence" in shown)
    assert "Measured on this server (kept on disk)." in shown
    assert len(list(cache.glob("*.json"))) == 1
    assert "trained" in [c for img in at.image for c in img.captions]


def test_seed_agreement_and_uncertainty_overlay_on_request(cache):
    at = open_page("pages/explain.py")
    set_noise(at, samples=2)
    assert "Seed agreement" not in texts(at)  # the heavier part waits for the box
    at.checkbox(key="trust:seeds").check()
    run(at)
    assert "Seed agreement" in texts(at)
    assert any(
        c.startswith("Uncertainty: per-pixel standard deviation across 3 noise draws")
        for img in at.image
        for c in img.captions
    )
    assert not at.error
