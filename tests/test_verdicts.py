"""The sanity verdict in words, the mark on a failing map, the pooling note, and the shipped
measurement of the default model (its provenance, and, slow, a fresh run that must agree)."""

import json

import numpy as np
import pytest

from explainers import marks
from explainers.trust import sanity, verdicts
from explainers.trust.sanity import MethodSanity, Step

DEFAULT_LAYER = "xception/block14_sepconv2_act"


def _result(head: float, block: float, logit: float, empty: float | None = None) -> MethodSanity:
    maps = np.random.default_rng(0).random((3, 4, 5, 5)).astype(np.float32)
    return MethodSanity(
        "gradcam++",
        [Step("head", head, 0.3), Step("head + block14", block, 0.2)],
        logit,
        maps,
        recorded_empty_share=empty,
    )


# --- the sentences --------------------------------------------------------------------------------
def test_sentences_follow_the_measurements():
    both = verdicts.plain_verdict(_result(0.66, 0.54, 0.98))
    assert both.level == "fail"
    assert both.sentence == (
        "Do not read this map as evidence: it stays the same when the model's "
        "weights are random and is the same for every class."
    )
    cascade = verdicts.plain_verdict(_result(0.9, 0.7, 0.3))
    assert cascade.sentence == (
        "Do not read this map as evidence: it stays the same when the model's weights are random."
    )
    logit = verdicts.plain_verdict(_result(0.3, 0.1, 0.95))
    assert logit.sentence == "Do not read this map as evidence: it is the same for every class."
    passed = verdicts.plain_verdict(_result(0.38, -0.15, 0.31), "shipped measurement")
    assert passed.level == "pass" and passed.source == "shipped measurement"
    assert passed.sentence == "Passed the checks: it changes with the model and with the class."
    # the decisive step is the second (head + last block): a high first step alone still passes
    assert verdicts.plain_verdict(_result(0.9, 0.2, 0.3)).level == "pass"
    empty = verdicts.plain_verdict(_result(0.0, 0.0, 0.0, empty=0.875))
    assert empty.level == "fail" and "could not be checked" in empty.sentence
    unknown = verdicts.plain_verdict(None)
    assert unknown.level == "unknown" and unknown.sentence.startswith("Not checked yet")


def test_technical_lines_carry_the_figures_with_their_meaning():
    lines = verdicts.technical_lines(_result(0.66, 0.54, 0.98))
    assert lines[0].startswith(
        "Model randomisation (head + block14 random): Spearman rank correlation 0.54"
    )
    assert "passes below 0.5" in lines[0]
    assert "Random logit: Spearman 0.98" in lines[1] and "passes below 0.9" in lines[1]
    assert verdicts.technical_lines(None) == []


# --- the mark drawn onto a failing map -------------------------------------------------------------
def test_mark_unreliable_draws_a_red_border_and_a_label_on_a_copy():
    rng = np.random.default_rng(1)
    img = (rng.random((120, 160, 3)) * 200).astype(np.uint8)
    before = img.copy()
    out = marks.mark_unreliable(img)
    assert np.array_equal(img, before)  # the input is untouched
    assert out.shape == img.shape and out.dtype == np.uint8
    red = np.array(marks.ALARM_RGB, np.uint8)
    t = max(2, round(120 * 0.025))
    for edge in (out[-t:], out[:, :t], out[:, -t:]):
        assert (edge == red).all()
    band = max(12, round(120 * 0.085))
    top = out[:band]
    white = (top.min(axis=-1) > 180).sum()  # antialiased white letters
    assert white > 20 and ((top == red).all(axis=-1).mean() > 0.5)  # a red band with white text
    inner = (slice(band + 1, 120 - t), slice(t, 160 - t))
    assert np.array_equal(out[inner], img[inner])  # the map itself is still readable
    assert marks.mark_unreliable(img[:20, :24]).shape == (20, 24, 3)  # tiny pictures too


# --- the note when methods coincide -----------------------------------------------------------------
def test_pooling_note_only_where_the_gradient_is_constant_per_channel():
    g = np.ones((1, 4, 4, 3)) * np.array([0.1, -0.2, 0.3])
    alpha = np.full((1, 4, 4, 3), 0.5)
    note = verdicts.pooling_note(g, alpha)
    assert "Grad-CAM equals HiResCAM" in note and "α ≈ 0.5 everywhere" in note
    assert "α" not in verdicts.pooling_note(g, np.full((1, 4, 4, 3), 0.9))
    varying = g * np.random.default_rng(0).random((1, 4, 4, 1))
    assert verdicts.pooling_note(varying, alpha) == ""
    assert verdicts.pooling_note(None, None) == ""


# --- the shipped file ---------------------------------------------------------------------------------
def test_shipped_file_says_what_made_it():
    data = verdicts.read_default()
    assert data is not None
    for key in (
        "model",
        "model_fingerprint",
        "model_file_sha256",
        "layer",
        "cache_version",
        "created",
        "command",
        "images",
        "rule",
    ):
        assert data[key] not in (None, "", [])
    assert (
        data["model"] == "skin-lesion" and data["layer"] == DEFAULT_LAYER and data["n_samples"] == 0
    )
    assert (
        data["command"].startswith("python -m explainers sanity")
        and "--write-default" in data["command"]
    )
    assert set(data["methods"]) == set(verdicts.shipped_methods())
    for key, entry in data["methods"].items():  # the verdict follows from the figures by the rule
        result = verdicts.result_from_record(key, entry)
        assert result.verdict == entry["verdict"]
    assert data["methods"]["gradcam"]["verdict"] == "pass"
    assert data["methods"]["gradcam++"]["verdict"] == "fail"


def test_shipped_result_only_for_exactly_its_model_layer_and_plain_maps(tmp_path):
    data = verdicts.read_default()
    ids, fp = data["images"], data["model_fingerprint"]
    got = verdicts.shipped_result(fp, DEFAULT_LAYER, "gradcam++", 0, 0, ids)
    assert got is not None and got.verdict == "fail"
    assert verdicts.shipped_result("0" * 64, DEFAULT_LAYER, "gradcam++", 0, 0, ids) is None
    assert (
        verdicts.shipped_result(fp, "xception/block13_sepconv2_act", "gradcam++", 0, 0, ids) is None
    )
    assert verdicts.shipped_result(fp, DEFAULT_LAYER, "gradcam++", 8, 0, ids) is None  # smoothed
    assert verdicts.shipped_result(fp, DEFAULT_LAYER, "gradcam++", 0, 0, ids[:2]) is None
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert verdicts.shipped_result(fp, DEFAULT_LAYER, "gradcam", 0, 0, ids, path=broken) is None


def test_write_default_refuses_another_model(tmp_path, capfd):
    from explainers import cli
    from tests.test_sanity import tiny_model

    path = tmp_path / "tiny.keras"
    tiny_model().save(path)
    capfd.readouterr()
    assert cli.main(["sanity", "--model", str(path), "--write-default"]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --write-default measures the default model")


@pytest.mark.slow
def test_default_model_reads_the_shipped_file_on_an_empty_cache(tmp_path, monkeypatch):
    from explainers import zoo

    monkeypatch.setenv("EXPLAINERS_SANITY_CACHE", str(tmp_path / "empty"))
    bundle = zoo.load_model("skin-lesion")
    data = verdicts.read_default()
    assert (
        sanity.model_fingerprint(bundle) == data["model_fingerprint"]
    )  # measured on this very file
    from explainers.report import file_sha256

    assert file_sha256(zoo.skin_lesion_model_path()) == data["model_file_sha256"]
    result, source = verdicts.known_result(bundle, DEFAULT_LAYER, "gradcam++")
    assert source == "shipped measurement" and result.verdict == "fail"
    assert verdicts.known_result(bundle, "xception/block13_sepconv2_act", "gradcam++") == (None, "")
    assert not list((tmp_path / "empty").glob("*.json")) if (tmp_path / "empty").exists() else True


@pytest.mark.slow
def test_a_fresh_run_agrees_with_the_shipped_file(tmp_path, monkeypatch):
    """Re-measures (about 40 s on a quiet 2-core CPU, minutes on a busy one): same verdicts,
    figures within 0.05 (TensorFlow's CPU reductions are not bit-reproducible across builds)."""
    from explainers import zoo

    monkeypatch.setenv("EXPLAINERS_SANITY_CACHE", str(tmp_path / "cache"))
    data = verdicts.read_default()
    bundle = zoo.load_model("skin-lesion")
    report = sanity.sanity_for_bundle(
        bundle, layer=data["layer"], methods=tuple(data["methods"]), n_samples=0, use_cache=False
    )
    fresh = json.loads(
        json.dumps(verdicts.default_record(report, data["model_fingerprint"], data["command"]))
    )
    assert fresh["images"] == data["images"]
    for key, shipped in data["methods"].items():
        now = fresh["methods"][key]
        assert now["verdict"] == shipped["verdict"], key
        assert now["random_logit_spearman"] == pytest.approx(
            shipped["random_logit_spearman"], abs=0.05
        )
        assert now["empty_share"] == pytest.approx(shipped["empty_share"], abs=0.05)
        assert [s["step"] for s in now["cascade"]] == [s["step"] for s in shipped["cascade"]]
        for a, b in zip(now["cascade"], shipped["cascade"], strict=False):
            assert a["spearman"] == pytest.approx(b["spearman"], abs=0.05), (key, a["step"])
