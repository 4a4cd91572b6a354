"""Known answers for explainers.evaluation.scoring, computed by hand on 2x2 images and fake models whose
probability is a plain function of the pixels; then the same wiring through a real Keras
model and ``explainers.predict``."""

import io

import keras
import numpy as np
import pytest
from PIL import Image

from explainers import ExplainerError
from explainers.evaluation import baselines
from explainers.evaluation import scoring as M

WHITE = np.full((2, 2, 3), 255.0)
#: Importance order of this map: (0,0) > (0,1) > (1,0) > (1,1).
CAM_DESC = np.array([[4.0, 3.0], [2.0, 1.0]])
#: The reverse order: (1,1) first, (0,0) last.
CAM_ASC = np.array([[1.0, 3.0], [2.0, 4.0]])


def top_left(batch):
    """A fake model: the probability is the top-left pixel's red value / 255."""
    return np.asarray(batch)[:, 0, 0, 0] / 255.0


def mean_pixel(batch):
    return np.asarray(batch).mean(axis=(1, 2, 3)) / 255.0


# --- Average Drop / Increase in Confidence ----------------------------------------------------


def test_average_drop_by_hand():
    # drops: (0.8-0.4)/0.8 = 0.5, none (0.6 > 0.5), Y=0 counts 0  -> mean 1/6 -> 16.67 %
    assert M.average_drop([0.8, 0.5, 0.0], [0.4, 0.6, 0.1]) == pytest.approx(100 / 6)
    assert M.average_drop([0.5], [0.5]) == 0.0
    assert M.average_drop([0.5], [0.0]) == pytest.approx(100.0)


def test_increase_in_confidence_by_hand():
    # O > Y strictly: 0.6 > 0.5 yes, 0.4 > 0.8 no, 0.3 = 0.3 no, 0.1 > 0 yes -> 2 of 4
    assert M.increase_in_confidence([0.8, 0.5, 0.3, 0.0], [0.4, 0.6, 0.3, 0.1]) == pytest.approx(
        50.0
    )


def test_drop_and_increase_edge_cases_are_finite():
    assert M.average_drop([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert M.average_drop([np.nan], [0.2]) == 0.0
    with pytest.raises(ExplainerError):
        M.average_drop([], [])
    with pytest.raises(ExplainerError):
        M.increase_in_confidence([0.1, 0.2], [0.1])


# --- masked image -------------------------------------------------------------------------------


def test_masked_image_multiplies_in_raw_space_then_preprocesses():
    img = np.full((2, 2, 3), 200.0)
    out = M.masked_image(img, CAM_DESC)  # map / max = [[1, .75], [.5, .25]]
    np.testing.assert_allclose(out[0, ..., 0], [[200, 150], [100, 50]])

    # With a -1..1 preprocessing the hidden part is black (-1), not the preprocessed zero.
    def pre(x):
        return x / 127.5 - 1.0

    out = M.masked_image(img, np.array([[1.0, 0.0], [0.0, 0.0]]), preprocess=pre)
    np.testing.assert_allclose(out[0, ..., 0], [[200 / 127.5 - 1, -1], [-1, -1]], rtol=1e-6)


def test_masked_image_upsamples_the_map_to_the_image():
    img = np.full((4, 4, 3), 100.0)
    out = M.masked_image(img, np.ones((2, 2)))
    assert out.shape == (1, 4, 4, 3)
    np.testing.assert_allclose(out, 100.0)
    assert np.all(M.masked_image(img, np.zeros((2, 2))) == 0)  # all-zero map hides everything


# --- deletion / insertion ------------------------------------------------------------------------


def test_deletion_curve_and_area_by_hand():
    # Map points at the pixel the model uses first: 1, 0, 0, 0, 0 -> area 0.125.
    c = M.deletion(top_left, WHITE, CAM_DESC, n_steps=4)
    np.testing.assert_allclose(c.fractions, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(c.probabilities, [1, 0, 0, 0, 0])
    assert c.auc == pytest.approx(0.125)
    # It removes that pixel last: 1, 1, 1, 1, 0 -> area 0.875 (a worse map: higher deletion).
    assert M.deletion(top_left, WHITE, CAM_ASC, n_steps=4).auc == pytest.approx(0.875)


def test_insertion_curve_and_area_by_hand():
    c = M.insertion(top_left, WHITE, CAM_DESC, n_steps=4, baseline="zeros")
    np.testing.assert_allclose(c.probabilities, [0, 1, 1, 1, 1])
    assert c.auc == pytest.approx(0.875)
    assert M.insertion(top_left, WHITE, CAM_ASC, n_steps=4, baseline="zeros").auc == pytest.approx(
        0.125
    )


def test_linear_model_gives_half_and_two_steps_group_pixels():
    # Mean pixel: each removed pixel costs 1/4 -> straight line -> area 0.5.
    assert M.deletion(mean_pixel, WHITE, CAM_DESC, n_steps=4).auc == pytest.approx(0.5)
    # 2 steps over 4 pixels: 0, 2, 4 pixels removed -> 1, 0.5, 0 -> area 0.5.
    c = M.deletion(mean_pixel, WHITE, CAM_DESC, n_steps=2)
    np.testing.assert_allclose(c.probabilities, [1, 0.5, 0])
    # 3 steps over 4 pixels: floor(i*4/3) = 0, 1, 2, 4 pixels.
    np.testing.assert_array_equal(M.step_counts(4, 3), [0, 1, 2, 4])


def test_ties_keep_raster_order_and_all_zero_map_is_finite():
    order = M.pixel_order(np.zeros((2, 2)), (2, 2))
    np.testing.assert_array_equal(order, [0, 1, 2, 3])
    c = M.deletion(top_left, WHITE, np.zeros((2, 2)), n_steps=4)
    np.testing.assert_allclose(c.probabilities, [1, 0, 0, 0, 0])  # raster order: (0,0) first
    assert np.isfinite(c.auc)


def test_curve_is_one_batched_call():
    calls = []

    def counting(batch):
        calls.append(len(batch))
        return mean_pixel(batch)

    M.deletion(
        counting, np.full((8, 8, 3), 50.0), np.random.default_rng(0).random((4, 4)), n_steps=16
    )
    M.insertion(
        counting, np.full((8, 8, 3), 50.0), np.random.default_rng(0).random((4, 4)), n_steps=16
    )
    assert calls == [17, 17]


def test_insertion_starts_from_the_blur_and_ends_at_the_image():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (6, 6, 3))
    stack = M.perturbation_stack(img, rng.random((3, 3)), "insertion", n_steps=4)
    np.testing.assert_allclose(stack[0], M.gaussian_blur(img), rtol=1e-5)
    np.testing.assert_allclose(stack[-1], img, rtol=1e-6)
    stack = M.perturbation_stack(img, rng.random((3, 3)), "deletion", n_steps=4)
    np.testing.assert_allclose(stack[0], img, rtol=1e-6)
    assert np.all(stack[-1] == 0)


def test_gaussian_blur_keeps_constants_and_the_mean_of_a_symmetric_image():
    flat = np.full((5, 7, 3), 42.0)
    np.testing.assert_allclose(M.gaussian_blur(flat, 2.0), flat, rtol=1e-6)
    img = np.zeros((9, 9, 1))
    img[4, 4] = 81.0
    blurred = M.gaussian_blur(img, 1.0)
    assert blurred[4, 4, 0] < 81 and blurred[4, 4, 0] == blurred.max()
    np.testing.assert_allclose(blurred.sum(), 81.0, rtol=1e-3)


def test_bad_steps_and_baselines_are_user_errors():
    with pytest.raises(ExplainerError):
        M.deletion(top_left, WHITE, CAM_DESC, n_steps=0)
    with pytest.raises(ExplainerError):
        M.deletion(top_left, WHITE, CAM_DESC, baseline="purple")


def test_auc_trapezoid():
    assert M.auc([0, 0.5, 1], [1, 1, 0]) == pytest.approx(0.75)
    assert M.auc([0], [1]) == 0.0


# --- localisation --------------------------------------------------------------------------------


MASK_TL = np.array([[1, 0], [0, 0]], dtype=bool)


def test_energy_in_mask_by_hand():
    # Normalised map [[1, .75], [.5, .25]]: energy 2.5, 1 inside -> 0.4 of it on 1/4 of the image.
    assert M.energy_in_mask(CAM_DESC, MASK_TL) == pytest.approx(0.4 / 0.25)
    assert M.energy_in_mask(np.ones((2, 2)), MASK_TL) == pytest.approx(1.0)  # chance level
    assert M.energy_in_mask(np.ones((2, 2)), np.ones((2, 2), bool)) == pytest.approx(1.0)


def test_pointing_game_by_hand():
    assert M.pointing_game(CAM_DESC, MASK_TL) == 1.0
    assert M.pointing_game(CAM_ASC, MASK_TL) == 0.0


def test_iou_at_half_maximum_by_hand():
    # >= 0.5 of max: (0,0), (0,1), (1,0) -> 3 pixels, 1 shared with the mask -> 1/3.
    assert M.iou_at(CAM_DESC, MASK_TL) == pytest.approx(1 / 3)
    assert M.iou_at(CAM_DESC, np.array([[1, 1], [1, 0]], bool)) == pytest.approx(1.0)


def test_localisation_edge_cases_are_zero_not_nan():
    zero, empty = np.zeros((2, 2)), np.zeros((2, 2), bool)
    for fn in (M.energy_in_mask, M.pointing_game, M.iou_at):
        assert fn(zero, MASK_TL) == 0.0
        assert fn(CAM_DESC, empty) == 0.0
        assert fn(zero, empty) == 0.0


def test_localisation_upsamples_the_map_to_the_mask():
    mask = np.zeros((8, 8), bool)
    mask[:4, :4] = True
    cam = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert M.pointing_game(cam, mask) == 1.0
    assert M.energy_in_mask(cam, mask) > 1.0


def _png(array, mode="L"):
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8), mode).save(buf, format="PNG")
    return buf.getvalue()


def test_load_mask_resizes_and_refuses_photos_and_non_images():
    mask = np.zeros((4, 6), np.uint8)
    mask[:2, :3] = 255
    got = M.load_mask(_png(mask), (8, 12))
    assert got.shape == (8, 12) and got.dtype == bool
    assert got[:4, :6].all() and not got[4:, :].any() and not got[:, 6:].any()
    photo = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    with pytest.raises(ExplainerError, match="not black and white"):
        M.load_mask(_png(photo))
    with pytest.raises(ExplainerError):
        M.load_mask(b"not an image at all")


def test_mask_outline_is_the_border():
    mask = np.zeros((6, 6), bool)
    mask[1:5, 1:5] = True
    edge = M.mask_outline(mask, width=1)
    assert edge.sum() == 12 and not edge[2:4, 2:4].any() and not edge[0].any()
    drawn = M.draw_outline(np.zeros((6, 6, 3), np.uint8), mask, color=(255, 0, 0), width=1)
    assert (drawn[edge] == [255, 0, 0]).all() and (drawn[~edge] == 0).all()


# --- evaluate / aggregate ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pixel_model():
    """Input 2x2x3 -> flatten -> Dense(2, softmax) with the logit of class 0 equal to
    (top-left red value) / 25.5 and class 1's logit 0: p0 = sigmoid(red / 25.5)."""
    inp = keras.Input((2, 2, 3))
    x = keras.layers.Conv2D(1, 1, use_bias=False, name="conv")(inp)
    f = keras.layers.Flatten()(x)
    out = keras.layers.Dense(2, activation="softmax", name="head")(f)
    model = keras.Model(inp, out)
    model.get_layer("conv").set_weights([np.array([1.0, 0.0, 0.0]).reshape(1, 1, 3, 1)])
    kernel = np.zeros((4, 2))
    kernel[0, 0] = 1 / 25.5
    model.get_layer("head").set_weights([kernel, np.zeros(2)])
    return model


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_evaluate_through_a_keras_model_by_hand(pixel_model):
    maps = {"good": CAM_DESC, "bad": CAM_ASC}
    ev = M.evaluate_details(
        pixel_model, WHITE, maps, target=0, n_steps=4, insertion_baseline="zeros", mask=MASK_TL
    )
    y = sigmoid(10.0)  # full image: red 255 -> logit 10
    half = 0.5  # top-left black -> logit 0
    good, bad = ev.scores["good"], ev.scores["bad"]
    assert good["probability_full"] == pytest.approx(y, rel=1e-5)
    # good: masked top-left keeps weight 1 -> O = Y; bad: weight 1/4 -> logit 2.5
    assert good["average_drop_pct"] == pytest.approx(0.0, abs=1e-4)
    assert bad["average_drop_pct"] == pytest.approx((y - sigmoid(2.5)) / y * 100, rel=1e-4)
    assert good["increase_in_confidence_pct"] == 0.0
    # deletion: good: y, .5, .5, .5, .5 ; bad: y, y, y, y, .5
    fr = 0.25
    assert good["deletion_auc"] == pytest.approx(fr * ((y + half) / 2 + 3 * half), rel=1e-4)
    assert bad["deletion_auc"] == pytest.approx(fr * (3 * y + (y + half) / 2), rel=1e-4)
    assert good["insertion_auc"] == pytest.approx(fr * ((half + y) / 2 + 3 * y), rel=1e-4)
    assert good["pointing_game_pct"] == 100.0 and bad["pointing_game_pct"] == 0.0
    assert good["iou"] == pytest.approx(1 / 3)
    # The weakly-supervised box (>= 15 % of the max: all four pixels) is the whole 2x2 image;
    # the mask's box is the top-left pixel: box IoU 1/4, a localisation error (IoU < 0.5).
    assert good["box_iou"] == pytest.approx(1 / 4)
    assert good["localisation_error_pct"] == 100.0
    np.testing.assert_allclose(
        ev.curves["bad"]["deletion"].probabilities, [y, y, y, y, half], rtol=1e-5
    )
    # target None: the top class of the full image (class 0 here); no mask: no localisation keys
    plain = M.evaluate(pixel_model, WHITE, maps, n_steps=4)
    assert set(plain["good"]) >= set(M.FAITHFULNESS_SCORES)
    assert "iou" not in plain["good"]
    for row in plain.values():
        assert all(np.isfinite(v) for v in row.values())


def test_evaluate_handles_an_all_zero_map(pixel_model):
    scores = M.evaluate(
        pixel_model,
        WHITE,
        {"zero": np.zeros((2, 2))},
        target=0,
        n_steps=4,
        mask=np.zeros((2, 2), bool),
    )["zero"]
    assert all(np.isfinite(v) for v in scores.values())
    assert scores["average_drop_pct"] == pytest.approx(
        (sigmoid(10) - 0.5) / sigmoid(10) * 100, rel=1e-4
    )
    assert scores["energy_in_mask_ratio"] == 0.0 and scores["iou"] == 0.0


def test_aggregate_means_and_tables():
    rows = [
        {
            "gc": {
                "average_drop_pct": 10.0,
                "increase_in_confidence_pct": 100.0,
                "deletion_auc": 0.2,
                "insertion_auc": 0.6,
                "iou": 0.5,
            }
        },
        {
            "gc": {
                "average_drop_pct": 30.0,
                "increase_in_confidence_pct": 0.0,
                "deletion_auc": 0.4,
                "insertion_auc": 0.8,
            }
        },
    ]
    agg = M.aggregate(rows)["gc"]
    assert agg["average_drop_pct"] == pytest.approx(20.0)
    assert agg["increase_in_confidence_pct"] == pytest.approx(50.0)
    assert agg["deletion_auc"] == pytest.approx(0.3)
    assert agg["iou"] == pytest.approx(0.5) and agg["n_masks"] == 1 and agg["n_images"] == 2
    table = M.score_table(M.aggregate(rows), {"gc": "Grad-CAM"})
    assert table[0]["Method"] == "Grad-CAM"
    assert table[0]["Average Drop (%)"] == 20.0 and table[0]["Images"] == 2
    assert "Deletion AUC (0–1)" in table[0]
    assert M.best_methods({"a": {"deletion_auc": 0.1}, "b": {"deletion_auc": 0.2}})[
        "deletion_auc"
    ] == ["a"]


@pytest.mark.slow
def test_evaluate_on_the_skin_lesion_model_uses_its_metadata(skin_lesion_model):
    """The real two-input model with a nested backbone: scores are finite and the full-image
    probability is the one ``predict`` gives with the patient's metadata."""
    from explainers import explain, predict
    from explainers.zoo import SKIN_CLASSES, ModelBundle, list_samples

    # The session's copy of the model (no second load), fed as zoo's bundle feeds it.
    bundle = ModelBundle(
        key="skin-lesion",
        label="skin lesions",
        model=skin_lesion_model,
        input_size=(254, 254),
        class_names=list(SKIN_CLASSES),
        preprocess=lambda x: np.asarray(x, np.float32),
        weights="bundled",
        metadata_input=True,
        resize_method="tf-bilinear",
    )
    sample = list_samples()[0]
    raw = M.raw_image_for(bundle, sample.path)
    extra = [sample.metadata()]
    maps = explain(bundle.model, raw[None], extra_inputs=extra, methods=("gradcam",))
    ev = M.evaluate_details(
        bundle, raw, {"gradcam": maps["gradcam"][0]}, extra_inputs=extra, n_steps=4
    )
    probs = predict(bundle.model, raw[None], extra).probabilities[0]
    assert ev.target == int(np.argmax(probs))
    assert ev.probability == pytest.approx(float(probs[ev.target]), rel=1e-4)
    scores = ev.scores["gradcam"]
    assert all(np.isfinite(v) for v in scores.values())
    # Deleting every pixel leaves a black image; revealing every pixel gives back the image.
    assert ev.curves["gradcam"]["insertion"].probabilities[-1] == pytest.approx(
        ev.probability, rel=1e-4
    )


def test_reference_maps():
    c = baselines.centre_prior((5, 5))
    assert c.shape == (5, 5) and np.unravel_index(np.argmax(c), c.shape) == (2, 2)
    np.testing.assert_allclose(c, c.T)
    r1, r2 = baselines.random_map((4, 4), seed=1), baselines.random_map((4, 4), seed=1)
    np.testing.assert_array_equal(r1, r2)
    assert not np.array_equal(r1, baselines.random_map((4, 4), seed=2))


def test_mask_fit_scales_copies_with_a_note_and_refuses_other_proportions():
    assert M.mask_fit((30, 40), (30, 40)) is None
    assert (
        M.mask_fit((60, 80), (30, 40)) == "The mask (80×60 pixels) was scaled to the image (40×30)."
    )
    assert M.mask_fit((1365, 2048), (1364, 2048)) is not None  # rounding of a scaled copy
    with pytest.raises(ExplainerError, match="the mask is 40×40 pixels but the image is 40×30"):
        M.mask_fit((40, 40), (30, 40))
    mask = np.zeros((60, 80), np.uint8)
    mask[10:50, 20:60] = 255
    got, note = M.load_mask_noted(_png(mask), (30, 40), image_size=(30, 40))
    assert got.shape == (30, 40) and got[15, 20] and not got[0, 0] and "scaled" in note
    with pytest.raises(ExplainerError, match="proportions differ"):
        M.load_mask(_png(mask), (30, 40), image_size=(40, 40))
