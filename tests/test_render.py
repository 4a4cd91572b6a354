"""Rendering: bilinear upsampling, max-normalisation, colour maps, overlays, the colour bar."""

import io

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from explainers.errors import ExplainerError
from explainers.methods import comparable_peak
from explainers.render import (
    colorbar_figure,
    colorize,
    nice_ceiling,
    normalize,
    overlay,
    peak_of,
    scale_peaks,
    scale_to,
    side_by_side,
    upsample,
    weak_maps,
)


def test_upsample_matches_tensorflow_bilinear_for_a_stack():
    import tensorflow as tf

    maps = np.random.default_rng(0).random((3, 7, 5)).astype(np.float32)
    ours = upsample(maps, (33, 21))
    ref = tf.image.resize(maps[..., None], (33, 21), method="bilinear").numpy()[..., 0]
    assert ours.shape == (3, 33, 21) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    # the stack is the same as each map on its own
    np.testing.assert_allclose(ours[1], upsample(maps[1], (33, 21)), atol=1e-7)


def test_upsample_known_values_and_identity():
    m = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32)
    up = upsample(m, (4, 4))
    # pixel centres aligned: the corners keep the corner values, the middle is the mean
    assert up[0, 0] == 0.0 and up[-1, -1] == 3.0
    assert up[1:3, 1:3].mean() == pytest.approx(1.5)
    np.testing.assert_array_equal(upsample(m, (2, 2)), m)
    with pytest.raises(ExplainerError):
        upsample(np.zeros((2, 2, 2, 2)), (4, 4))


def test_upsample_never_spreads_nan():
    m = np.array([[np.nan, 1.0], [np.inf, 0.5]], dtype=np.float32)
    assert np.isfinite(upsample(m, (9, 9))).all()


def test_normalize_divides_each_map_by_its_own_maximum():
    maps = np.array([[[0.0, 2.0], [1.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]], [[3.0, 3.0], [3.0, 6.0]]])
    out = normalize(maps)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], [[0.0, 0.5], [0.25, 1.0]])
    np.testing.assert_array_equal(out[1], np.zeros((2, 2)))  # all-zero stays zero, not NaN
    np.testing.assert_allclose(
        out[2], [[0.5, 0.5], [0.5, 1.0]]
    )  # min is not subtracted: 0 means none


def test_normalize_is_always_finite_and_in_range():
    m = np.array([[np.nan, -np.inf, -5.0], [1e-40, 2.0, np.inf]])
    out = normalize(m)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert out[0, 0] == 0 and out[0, 2] == 0 and out[1, 2] == 1
    assert normalize(np.full((3, 3), -1.0)).max() == 0


def test_colorize_uses_the_matplotlib_colormap():
    m = np.array([[0.0, 0.5, 1.0]])
    out = colorize(m, "viridis")
    assert out.shape == (1, 3, 3) and out.dtype == np.uint8
    expected = matplotlib.colormaps["viridis"](m, bytes=True)[..., :3]
    np.testing.assert_array_equal(out, expected)
    assert colorize(np.array([[1.0]]), "jet")[0, 0, 0] > 100  # jet's top is red
    with pytest.raises(ExplainerError, match="unknown colour map"):
        colorize(m, "no-such-map")


def test_overlay_blends_the_upsampled_map_at_the_chosen_opacity():
    image = np.full((20, 30, 3), 100, dtype=np.uint8)
    cam = np.array([[0.0, 0.0], [0.0, 8.0]], dtype=np.float32)  # raw, not normalised
    np.testing.assert_array_equal(overlay(image, cam, opacity=0.0), image)
    full = overlay(image, cam, "jet", opacity=1.0, fade="none")
    heat = colorize(normalize(upsample(cam, (20, 30))), "jet")
    np.testing.assert_array_equal(full, heat)
    half = overlay(image, cam, "jet", opacity=0.5, fade="none")
    assert half.shape == (20, 30, 3) and half.dtype == np.uint8
    np.testing.assert_allclose(half.astype(float), 0.5 * image + 0.5 * heat, atol=1)
    # the hot corner is redder than the cold one
    assert half[-1, -1, 0] > half[0, 0, 0] and half[-1, -1, 2] < half[0, 0, 2]


def test_overlay_rejects_bad_opacity_and_shapes():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ExplainerError, match="opacity"):
        overlay(image, np.ones((2, 2)), opacity=1.5)
    with pytest.raises(ExplainerError):
        overlay(image, np.ones((2, 2, 2)))
    with pytest.raises(ExplainerError):
        overlay(np.zeros((8, 8, 5)), np.ones((2, 2)))


def test_overlay_fades_with_the_map_value_so_the_photo_shows_where_there_is_no_evidence():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    cam = np.zeros((4, 4), dtype=np.float32)
    cam[3, 3] = 5.0
    out = overlay(image, cam, "viridis", opacity=0.6)  # default: opacity x value
    v = normalize(upsample(cam, (16, 16)))
    heat = colorize(v, "viridis").astype(float)
    alpha = 0.6 * v[..., None]
    np.testing.assert_allclose(out.astype(float), (1 - alpha) * image + alpha * heat, atol=1)
    cold = v == 0
    assert cold.any()
    np.testing.assert_array_equal(out[cold], image[cold])  # untinted where the map is 0
    # a threshold leaves every pixel below it untinted too
    thr = overlay(image, cam, "viridis", opacity=0.6, threshold=0.5)
    np.testing.assert_array_equal(thr[v < 0.5], image[v < 0.5])
    with pytest.raises(ExplainerError, match="fade"):
        overlay(image, cam, fade="sometimes")


def test_overlay_at_a_shared_peak_draws_a_weak_map_faintly():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    strong = np.full((2, 2), 10.0)
    weak = np.full((2, 2), 0.5)
    own = overlay(image, weak, "gray", opacity=1.0, fade="none")
    shared = overlay(image, weak, "gray", opacity=1.0, fade="none", peak=10.0)
    assert own.max() == 255  # on its own scale a weak map looks as strong as any
    assert abs(int(shared.max()) - 255 * 0.05) <= 1  # shared scale: 1/20 of the strong one
    np.testing.assert_array_equal(
        overlay(image, strong, "gray", opacity=1.0, fade="none", peak=10.0), own
    )


def test_scale_peaks_own_shared_absolute():
    peaks = {"a": 2.0, "b": 0.5, "c": 0.0}
    assert scale_peaks(peaks, "own") == peaks
    assert scale_peaks(peaks, "shared") == {"a": 2.0, "b": 2.0, "c": 2.0}
    assert scale_peaks(peaks, "absolute", 5) == {"a": 5.0, "b": 5.0, "c": 5.0}
    assert scale_peaks({"a": float("nan"), "b": 1.0}, "shared") == {"a": 1.0, "b": 1.0}
    for bad in (None, 0, -1, float("inf")):
        with pytest.raises(ExplainerError, match="absolute"):
            scale_peaks(peaks, "absolute", bad)
    with pytest.raises(ExplainerError, match="unknown scale"):
        scale_peaks(peaks, "log")


def test_scale_to_and_peak_of_are_finite():
    m = np.array([[np.nan, -1.0], [np.inf, 4.0]])
    np.testing.assert_allclose(scale_to(m, 8.0), [[0, 0], [1, 0.5]])
    np.testing.assert_array_equal(scale_to(m, 0.0), np.zeros((2, 2)))
    assert peak_of(m) == 4.0 and peak_of(np.full((2, 2), -3.0)) == 0.0
    assert peak_of(np.full((2, 2), np.nan)) == 0.0


def test_weak_maps_flags_tiny_evidence_in_comparable_units():
    # the case: smoothed Grad-CAM 0.00225 beside smoothed Grad-CAM++ 6.61 on an 8x8 grid
    z = 64
    peaks = {
        "gc": comparable_peak("gradcam", 0.00225, z),
        "pp": comparable_peak("gradcam++", 6.61, z),
    }
    assert peaks["pp"] == pytest.approx(6.61 / 32)
    assert weak_maps(peaks) == ["gc"]
    # a healthy pair (measured on the bundled melanoma: 0.284 and 12) is not flagged
    assert (
        weak_maps(
            {
                "gc": comparable_peak("gradcam", 0.284, z),
                "pp": comparable_peak("gradcam++", 12.0, z),
            }
        )
        == []
    )
    # same-method maps compare directly; the threshold is 5 %
    assert weak_maps({"f1": 1.0, "f2": 0.049, "f3": 0.05}) == ["f2"]
    assert weak_maps({"a": 0.0, "b": 0.0}) == [] and weak_maps({}) == []
    assert weak_maps({"a": 1.0, "b": float("nan")}) == ["b"]


def test_nice_ceiling():
    assert [nice_ceiling(v) for v in (0.284, 12.0, 1.0, 0.0021, 7.0)] == [
        0.5,
        20.0,
        1.0,
        0.0025,
        10.0,
    ]
    assert nice_ceiling(0) == 1.0 and nice_ceiling(float("nan")) == 1.0


def test_colorbar_in_raw_values_on_a_transparent_background():
    fig = colorbar_figure("viridis", "", vmax=12.0, text_color="#fafafa")
    ax = fig.axes[0]
    ticks = [float(t.get_text()) for t in ax.get_xticklabels()]
    assert ticks[0] == 0 and ticks[-1] == 12.0 and len(ticks) == 5
    assert ax.get_xlabel() == "raw map value (class-score units)"
    assert ax.xaxis.label.get_color() == "#fafafa"
    assert all(t.get_color() == "#fafafa" for t in ax.get_xticklabels())
    assert fig.patch.get_alpha() == 0.0
    assert min(t.get_fontsize() for t in ax.get_xticklabels()) >= 12  # readable on a projector
    buf = io.BytesIO()
    fig.savefig(buf, format="png", transparent=True)
    from PIL import Image

    corner = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGBA"))[0, 0]
    assert corner[3] == 0  # the background is see-through: the page's theme shows


def test_colorbar_states_the_scale():
    fig = colorbar_figure("inferno", "relative importance")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == "0 (none)" and labels[-1] == "1 (map maximum)"
    assert ax.get_xlabel() == "relative importance"
    buf = io.BytesIO()
    fig.savefig(buf, format="png")  # renders without pyplot
    assert buf.getvalue().startswith(b"\x89PNG")
    width, height = fig.get_size_inches()
    assert width > 3 * height  # horizontal and small


def test_side_by_side_puts_panels_in_a_row_with_captions():
    a = np.zeros((10, 12, 3), dtype=np.uint8)
    b = np.full((10, 8, 3), 255, dtype=np.uint8)
    out = side_by_side([a, b], ["input", "Grad-CAM"], gap=2)
    assert out.shape[1] == 12 + 2 + 8 and out.shape[0] > 10
    assert out[-1, 0].tolist() == [0, 0, 0] and out[-1, -1].tolist() == [255, 255, 255]
