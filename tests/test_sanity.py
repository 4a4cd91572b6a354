"""Sanity checks (Adebayo et al. 2018): Spearman and SSIM against known values, the cascade on
tiny models (head randomisation must change Grad-CAM; the cached model is never touched),
a class-insensitive map fails, the CLI's JSON shape and its one-line errors."""

import json

import keras
import numpy as np
import pytest

from explainers import cli, explain
from explainers.trust.cascade import cascade_steps, model_copy
from explainers.trust.sanity import (
    CASCADE_PASS,
    Step,
    run_sanity,
    verdict,
)
from explainers.trust.similarity import mean_pairwise_spearman, rank, spearman, ssim


def test_rank_averages_ties_and_spearman_matches_the_hand_computed_value():
    assert rank([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    # ranks (1..5) and (1, 2, 3.5, 5, 3.5): 8 / sqrt(10 * 9.5)
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / np.sqrt(95), abs=1e-12)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman(np.ones((4, 4)), np.arange(16).reshape(4, 4)) == 0.0  # no order, no NaN
    x = np.arange(27.0).reshape(3, 3, 3)
    assert mean_pairwise_spearman(np.stack([x[0], x[1], -x[2]])) == pytest.approx((1 - 1 - 1) / 3)


def _ssim_one_window(x, y):
    """The SSIM formula written out for one 7x7 window (sample covariances, range 1)."""
    x, y = x.ravel(), y.ravel()
    c1, c2 = 0.01**2, 0.03**2
    vx, vy = x.var(ddof=1), y.var(ddof=1)
    cov = ((x - x.mean()) * (y - y.mean())).sum() / (x.size - 1)
    return ((2 * x.mean() * y.mean() + c1) * (2 * cov + c2)) / (
        (x.mean() ** 2 + y.mean() ** 2 + c1) * (vx + vy + c2)
    )


def test_ssim_against_the_formula_and_its_bounds():
    rng = np.random.default_rng(0)
    a = rng.random((7, 7))
    a[0, 0], a[1, 1] = 0.0, 1.0  # already on 0..1, so scaling keeps it
    b = rng.random((7, 7))
    b[0, 0], b[1, 1] = 0.0, 1.0
    assert ssim(a, b, side=None) == pytest.approx(_ssim_one_window(a, b), rel=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, 1 - a) < 0


def tiny_model(classes=3, same_head=False, seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((24, 24, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="block1_conv")(inp)
    x = keras.layers.BatchNormalization(name="block1_bn")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="block2_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(classes, activation="softmax", name="head")(x)
    model = keras.Model(inp, out)
    if same_head:  # every class weighs the channels alike (up to a positive scale)
        column = np.abs(np.random.default_rng(1).normal(size=(8, 1))) + 0.1
        model.get_layer("head").set_weights([column * np.arange(1, classes + 1), np.zeros(classes)])
    return model


def images(n=3):
    return np.random.default_rng(2).uniform(0, 255, (n, 24, 24, 3)).astype(np.float32)


def test_steps_go_top_down_and_accumulate():
    model = tiny_model()
    steps = cascade_steps(model, "block2_conv")
    assert [name for name, _ in steps] == ["head", "head + block2", "whole model"]
    assert [[l.name for l in layers] for _, layers in steps] == [
        ["head"],
        ["head", "block2_conv"],
        ["head", "block1_conv", "block1_bn", "block2_conv"],
    ]


def test_head_randomisation_changes_gradcam_and_the_original_is_untouched():
    model = tiny_model()
    before = [w.copy() for w in model.get_weights()]
    x = images()
    trained = explain(model, x, layer="block2_conv", methods=("gradcam",))["gradcam"]
    report = run_sanity(model, x, layer="block2_conv", methods=("gradcam",))
    m = report.methods["gradcam"]
    assert [s.step for s in m.cascade] == ["head", "head + block2", "whole model"]
    assert m.cascade[0].spearman < 0.9  # the head alone decides Grad-CAM's channel weights
    assert m.maps.shape == (4, 3, *trained.shape[1:])
    np.testing.assert_allclose(m.maps[0], trained, rtol=1e-5)  # first row: the trained maps
    for w0, w1 in zip(before, model.get_weights(), strict=False):
        np.testing.assert_array_equal(w0, w1)
    np.testing.assert_allclose(
        explain(model, x, layer="block2_conv", methods=("gradcam",))["gradcam"], trained, rtol=1e-6
    )


def test_copy_shares_no_variable_and_bn_goes_to_identity():
    model = tiny_model()
    copy = model_copy(model)
    assert not {id(v) for v in model.weights} & {id(v) for v in copy.weights}
    from explainers.trust.cascade import _reinitialise

    _reinitialise(copy.get_layer("block1_bn"), np.random.default_rng(0))
    gamma, beta, mean, var = (np.asarray(w) for w in copy.get_layer("block1_bn").get_weights())
    assert (gamma == 1).all() and (beta == 0).all() and (mean == 0).all() and (var == 1).all()
    k0 = model.get_layer("block2_conv").get_weights()[0]
    _reinitialise(copy.get_layer("block2_conv"), np.random.default_rng(0))
    k1 = copy.get_layer("block2_conv").get_weights()[0]
    assert not np.allclose(k0, k1) and k1.std() == pytest.approx(k0.std(), rel=0.2)


def test_class_insensitive_map_fails_random_logit():
    model = tiny_model(same_head=True)
    report = run_sanity(model, images(), layer="block2_conv", methods=("gradcam",))
    m = report.methods["gradcam"]
    assert m.random_logit_spearman == pytest.approx(1.0)
    assert m.verdict == "fail"


def test_verdict_rule():
    low = [Step("head", 0.6, 0.5), Step("head + b", 0.3, 0.2)]
    assert verdict(low, 0.5) == "pass"
    assert verdict(low, 0.95) == "fail"  # class-insensitive
    assert verdict([Step("head", 0.2, 0), Step("head + b", CASCADE_PASS, 0)], 0.1) == "fail"
    # Empty maps rank as 0 against anything: a method whose maps are mostly empty cannot pass.
    assert verdict(low, 0.5, empty_share=0.5) == "fail"
    assert verdict(low, 0.5, empty_share=0.25) == "pass"


def test_mostly_empty_maps_fail_and_say_so():
    from explainers.trust.sanity import MethodSanity

    trained = np.zeros((1, 4, 3, 3), np.float32)
    trained[0, 0, 1, 1] = 1.0  # one of four trained maps has anything in it
    result = MethodSanity(
        "gradcam",
        [Step("head", 0.0, 0.0), Step("head + b", 0.0, 0.0)],
        0.0,
        np.concatenate([trained, trained]),
    )
    assert result.empty_share == pytest.approx(0.75)
    assert result.verdict == "fail" and result.to_json()["verdict"] == "fail"


@pytest.fixture
def model_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAINERS_SANITY_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "tiny.keras"
    tiny_model().save(path)
    return path


def test_cli_json_shape_and_cache(model_file, tmp_path, capfd):
    argv = [
        "sanity",
        "--model",
        str(model_file),
        "--samples",
        "2",
        "--method",
        "gradcam,gradcam++",
        "--json",
    ]
    assert cli.main(argv) == 0
    out = capfd.readouterr().out
    report = json.loads(out)
    assert out.count("\n") == 1
    assert set(report) == {"model", "layer", "images", "methods"}
    assert report["layer"] == "block2_conv" and len(report["images"]) == 2
    assert list(report["methods"]) == ["gradcam", "gradcam++"]
    for entry in report["methods"].values():
        assert set(entry) == {"cascade", "random_logit_spearman", "verdict"}
        assert entry["verdict"] in ("pass", "fail")
        assert [set(s) for s in entry["cascade"]] == [{"step", "spearman", "ssim"}] * 3
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2
    assert cli.main(argv) == 0  # the second run reads the cache: the same figures
    assert json.loads(capfd.readouterr().out) == report


def test_cli_bad_model_is_one_error_line(tmp_path, capfd):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a model")
    assert cli.main(["sanity", "--model", str(bad)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert cli.main(["sanity", "--model", "no-such-model"]) == 2
    assert capfd.readouterr().err.startswith("error: ")
