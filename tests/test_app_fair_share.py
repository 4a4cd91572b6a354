"""Shared mode on the real dashboard (AppTest): a refused setting shows its plain sentence and
the page stays usable; locally the same setting runs."""

import pytest

from dashboard.frame import fair_share
from tests.helpers import new_app, run

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
    at.slider(key="w:n_samples").set_value(9)
    run(at)
    assert errors(at) == ["Problem computing the heatmaps: This shared server computes at most 8 "
                          "noise samples per map; choose 8 or fewer (you asked for 9)."]
    assert at.title[0].value == "Explain a prediction"
    assert at.slider(key="w:n_samples").value == 9  # the controls are still there
    # Near the input (block1_conv1, 126×126 of 254×254) a quarter of the cap: 3 refused, 2 run.
    at.slider(key="w:n_samples").set_value(3)
    at.selectbox(key="w:layer").set_value("xception/block1_conv1")
    run(at)
    assert errors(at) == ["Problem computing the heatmaps: At a layer this close to the input "
                          "(126×126 positions) this shared server computes at most 2 noise "
                          "samples per map; choose 2 or fewer, or a later layer."]
    at.slider(key="w:n_samples").set_value(2)
    run(at)
    assert not errors(at)
    assert "Smooth Grad-CAM++ (2 samples, σ=0.15)" in captions(at)


def test_locally_the_same_setting_runs(monkeypatch):
    monkeypatch.delenv(fair_share.SHARED_ENV, raising=False)
    monkeypatch.setenv(fair_share.MAX_SAMPLES_ENV, "4")
    at = run(new_app())
    at.slider(key="w:n_samples").set_value(5)
    run(at)
    assert not errors(at)
    assert "Smooth Grad-CAM++ (5 samples, σ=0.15)" in captions(at)
