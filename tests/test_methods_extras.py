"""Localisation boxes (Grad-CAM §4.1), box IoU and localisation error, ``marks.draw_box`` and
the textual explanation (§7), against hand-made arrays."""

import numpy as np
import pytest

from explainers import ExplainerError, explain_details
from explainers.evaluation.localisation import (
    box_iou,
    box_scores,
    cam_box,
    largest_component,
    localisation_error,
    mask_box,
)
from explainers.marks import draw_box
from explainers.render import upsample
from explainers.textual import describe, zones
from tests import method_references as ref


def test_largest_component_is_4_connected():
    m = np.zeros((6, 7), bool)
    m[0, 0:3] = True  # 3 pixels
    m[1, 3] = True  # only diagonal to the run above: a separate segment
    m[2:5, 4:6] = True  # 6 pixels, the largest
    m[5, 0] = True
    out = largest_component(m)
    want = np.zeros_like(m)
    want[2:5, 4:6] = True
    np.testing.assert_array_equal(out, want)
    u = np.zeros((5, 5), bool)  # a U shape joins through its bottom row
    u[0:4, 0] = u[0:4, 4] = u[4, :] = True
    np.testing.assert_array_equal(largest_component(u), u)
    assert not largest_component(np.zeros((3, 3), bool)).any()


def test_cam_box_thresholds_upsampled_map_and_keeps_largest_segment():
    cam = np.zeros((4, 4), np.float32)
    cam[1, 1] = 1.0
    cam[3, 3] = 0.5  # a weaker blob, separate after upsampling at 40 %
    size = (40, 60)
    up = upsample(cam, size)
    for threshold in (0.15, 0.4):
        keep = largest_component(up >= threshold * up.max())
        rows, cols = np.flatnonzero(keep.any(1)), np.flatnonzero(keep.any(0))
        assert cam_box(cam, size, threshold) == (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    _x0, _y0, x1, y1 = cam_box(cam, size, 0.4)
    assert x1 <= 40 and y1 <= 25  # the strong blob only, in the given image's pixels
    assert cam_box(np.zeros((4, 4)), size) is None
    with pytest.raises(ExplainerError, match="between 0 and 1"):
        cam_box(cam, size, 1.5)


def test_box_iou_and_localisation_error():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 5, 5), (5, 5, 9, 9)) == 0.0  # touching, x1 exclusive
    assert box_iou(None, (0, 0, 1, 1)) == 0.0
    assert localisation_error((0, 0, 10, 10), (5, 0, 15, 10))
    assert not localisation_error((0, 0, 10, 10), (1, 0, 10, 10))
    mask = np.zeros((20, 30), bool)
    mask[5:15, 10:20] = True
    assert mask_box(mask) == (10, 5, 20, 15) and mask_box(np.zeros((2, 2), bool)) is None
    cam = np.zeros((2, 3), np.float32)
    cam[1, 1] = 1.0
    scores = box_scores(cam, mask)
    assert scores["mask_box"] == (10, 5, 20, 15)
    assert scores["box_iou"] == pytest.approx(box_iou(scores["box"], (10, 5, 20, 15)))
    assert scores["localisation_error"] == (scores["box_iou"] < 0.5)


def test_draw_box_outlines_exactly_the_box():
    img = np.zeros((10, 12, 3), np.uint8)
    out = draw_box(img, (2, 3, 8, 9), color=(255, 0, 0), width=1)
    red = (out == [255, 0, 0]).all(-1)
    want = np.zeros((10, 12), bool)
    want[3, 2:8] = want[8, 2:8] = want[3:9, 2] = want[3:9, 7] = True
    np.testing.assert_array_equal(red, want)
    assert (img == 0).all()  # the input is not drawn on
    np.testing.assert_array_equal(draw_box(img, None), img)


def test_zones_cover_the_grid_once():
    z = zones(8, 8)
    assert set(z) == {"centre", "border", "corners"}
    assert sum(v.astype(int) for v in z.values()).tolist() == np.ones((8, 8), int).tolist()
    assert z["centre"].sum() == 16 and z["corners"].sum() == 16
    mask = np.zeros((80, 80), bool)
    mask[20:60, 20:60] = True
    zm = zones(8, 8, mask)
    assert zm["lesion"].sum() == 16 and zm["skin"].sum() == 48


def test_textual_explanation_numbers_and_sentence():
    model = ref.functional_model()
    x = np.random.default_rng(4).normal(0, 1, (1, 6, 6, 2)).astype("float32")
    ex = explain_details(model, x, methods="gradcam")
    text = describe(ex, class_name="mel", k=2)
    w = ex.weights["gradcam"][0]
    a = ex.activations[0].astype(np.float64)
    cam = ex.maps["gradcam"][0].astype(np.float64)
    shares = (a * w)[cam > 0].sum(0) / cam.sum()
    assert [f.index for f in text.top] == [int(i) for i in np.argsort(-w)[:2] if w[i] > 0]
    assert [f.index for f in text.bottom] == [int(i) for i in np.argsort(w)[:2] if w[i] < 0]
    for f in text.top + text.bottom:
        assert f.weight == pytest.approx(w[f.index])
        assert f.share == pytest.approx(shares[f.index], rel=1e-5)
        assert f.activation.shape == (6, 6)
    assert shares.sum() == pytest.approx(1.0, rel=1e-5)  # every filter's share adds to the map
    assert text.sentence.startswith("For mel at layer conv, ")
    total = abs(sum(f.share for f in text.top)) * 100
    assert (
        f"{total:.0f} % of the map" if total >= 10 else f"{total:.1f} % of the map"
    ) in text.sentence
    for f in text.top + text.bottom:
        assert f"#{f.index}" in text.sentence
    with pytest.raises(ExplainerError, match="needs the Grad-CAM weights"):
        describe(explain_details(model, x, methods="layercam"))


def test_coinciding_methods_are_found_numerically():
    from explainers.methods.agreement import coinciding_groups, gradient_constant_per_channel

    g = np.broadcast_to(np.array([1.0, -2.0, 0.5]), (1, 4, 4, 3))
    assert gradient_constant_per_channel(g)
    g2 = g.copy()
    g2[0, 1, 1, 0] += 0.01
    assert not gradient_constant_per_channel(g2)
    a = np.random.default_rng(0).random((4, 4))
    groups = coinciding_groups(
        {"x": a, "y": 3 * a, "z": a**2, "w": np.zeros((4, 4)), "v": np.zeros((4, 4))}
    )
    assert groups == [["x", "y"], ["w", "v"]]


def test_at_a_layer_before_global_pooling_gradcam_equals_hirescam():
    from explainers.methods.agreement import coinciding_groups, gradient_constant_per_channel

    model = ref.nested_model()  # backbone/conv_b is followed directly by GAP
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (1, 9, 9, 3)).astype("float32")
    meta = rng.uniform(0, 1, (1, 2)).astype("float32")
    ex = explain_details(
        model, x, extra_inputs=[meta], methods=["gradcam", "hirescam", "xgradcam", "layercam"]
    )
    assert gradient_constant_per_channel(ex.gradients)
    group = coinciding_groups({k: v[0] for k, v in ex.maps.items()})[0]
    assert group[:3] == ["gradcam", "hirescam", "xgradcam"]
    f = ref.functional_model()  # conv -> flatten: the gradient varies over positions
    exf = explain_details(
        f, rng.normal(0, 1, (1, 6, 6, 2)).astype("float32"), methods=["gradcam", "hirescam"]
    )
    assert not gradient_constant_per_channel(exf.gradients)
    assert coinciding_groups({k: v[0] for k, v in exf.maps.items()}) == []
