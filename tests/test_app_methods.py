"""Explain draws any method of the registry: the choice, its link, the boxes, and the guided
maps (computed apart, so a model without ReLUs loses only those)."""

import pytest

from tests.helpers import new_app, run

pytestmark = pytest.mark.slow


def captions(at) -> list[str]:
    return [c for img in at.image for c in img.captions]


def test_more_methods_are_drawn_with_their_raw_maxima_and_kept_in_the_link():
    at = run(new_app())
    at.multiselect(key="w:methods").set_value(
        ["gradcam", "hirescam", "layercam", "guided-backprop"]
    )
    run(at)
    assert not at.error, [e.value for e in at.error]
    caps = captions(at)
    for label in ("Grad-CAM", "HiResCAM", "LayerCAM", "Guided Backprop"):
        assert label in caps, caps
    assert "Grad-CAM++" not in caps  # not chosen
    raw = [c.value for c in at.caption if c.value.startswith("raw max")]
    assert len(raw) == 3  # one per heatmap; the guided map states its own scale
    assert any("grey = 0" in c.value for c in at.caption)
    assert at.query_params["methods"] in (
        "gradcam,hirescam,layercam,guided-backprop",
        ["gradcam,hirescam,layercam,guided-backprop"],
    )
    # The same link opens the same view in a new session.
    again = run(new_app(methods="gradcam,hirescam,layercam,guided-backprop"))
    assert at.multiselect(key="w:methods").value == again.multiselect(key="w:methods").value


def test_a_bad_methods_link_falls_back_with_a_notice():
    at = run(new_app(methods="gradcam,not-a-method"))
    assert at.multiselect(key="w:methods").value == ["gradcam", "gradcam++"]
    notes = " ".join(
        x.value
        for x in list(at.info)
        + list(at.warning)
        + list(at.caption)
        + list(at.markdown)
        + [t.value for t in at.toast]
    )
    assert "methods" in notes.lower()


def test_the_box_toggle_reaches_the_link_and_the_maps_are_still_drawn():
    """The box's own numbers are known-answer tested in test_methods_extras.py."""
    at = run(new_app())
    at.toggle(key="w:box").set_value(True)
    run(at)
    assert at.query_params["box"] in ("1", ["1"])
    assert not at.error
    assert "Grad-CAM" in captions(at) and "Grad-CAM++" in captions(at)
    assert run(new_app(box="1")).toggle(key="w:box").value is True
