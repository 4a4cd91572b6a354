"""Known-answer tests: explain() against a plain NumPy version of the formulas, on small
models whose gradients are written out by hand (no GradientTape in the reference)."""

import threading

import keras
import numpy as np
import pytest

from explainers import (
    ExplainerError,
    candidate_layers,
    explain,
    explain_details,
    get_capture,
    predict,
    resolve_layer,
)
from explainers.engine.capture import gradient_chunk_size, item_noise, item_seeds
from explainers.methods.cam_weights import gradcampp_alpha


def reference_noise(n_images, n_samples, shape, seed):
    """The standard normal noise of copy s of image i: drawn from (seed, i, s) alone."""
    out = np.zeros((n_images, n_samples, *tuple(shape)))
    for i in range(n_images):
        for s in range(n_samples):
            out[i, s] = item_noise(tuple(shape), item_seeds(seed, [i], [s])[0]).numpy()
    return out


# --- the NumPy reference ---------------------------------------------------------------------


def reference_maps(A, g, d2=None, d3=None, filters=None, position_mask=None):
    """Grad-CAM and Grad-CAM++ (Chattopadhay et al. Eq. 19) in float64, written plainly."""
    A = np.asarray(A, np.float64)
    g = np.asarray(g, np.float64)
    d2 = g**2 if d2 is None else d2
    d3 = g**3 if d3 is None else d3
    if position_mask is not None:
        A = A * position_mask[None, :, :, None]
    _n, _h, _w, k = A.shape
    gc_w = g.mean(axis=(1, 2))
    S = A.sum(axis=(1, 2))[:, None, None, :]
    den = 2 * d2 + S * d3
    alpha = np.where(den != 0, d2 / np.where(den != 0, den, 1), 0.0)
    pp_w = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    if filters is not None:
        keep = np.zeros(k, bool)
        keep[list(filters)] = True
        gc_w = gc_w * keep
        pp_w = pp_w * keep
    gc = np.maximum(np.einsum("nhwk,nk->nhw", A, gc_w), 0)
    pp = np.maximum(np.einsum("nhwk,nk->nhw", A, pp_w), 0)
    return {"gradcam": gc, "gradcam++": pp}


def assert_maps_close(got, want, rtol=2e-4):
    for method, ref in want.items():
        scale = max(np.abs(ref).max(), 1e-30)
        np.testing.assert_allclose(got[method], ref, rtol=rtol, atol=rtol * scale, err_msg=method)


# --- model 1: conv -> global average pool -> linear dense ------------------------------------


@pytest.fixture(scope="module")
def linear_model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv")(inp)
    p = keras.layers.GlobalAveragePooling2D()(a)
    out = keras.layers.Dense(4, name="head")(p)
    return keras.Model(inp, out)


def linear_reference(model, x, target):
    A = keras.Model(model.inputs, model.get_layer("conv").output).predict(x, verbose=0)
    W = model.get_layer("head").kernel.numpy()
    _n, h, w, _k = A.shape
    g = np.broadcast_to(W[:, target].T[:, None, None, :] / (h * w), A.shape)
    return A.astype(np.float64), g.astype(np.float64)


def test_linear_head_matches_numpy_reference(linear_model, rng):
    x = rng.uniform(0, 1, (3, 8, 8, 3)).astype("float32")
    target = np.array([0, 2, 3])
    maps = explain(linear_model, x, target=target)
    A, g = linear_reference(linear_model, x, target)
    assert_maps_close(maps, reference_maps(A, g))
    for m in maps.values():
        assert m.dtype == np.float32 and m.shape == (3, 8, 8)
        assert np.isfinite(m).all() and (m >= 0).all()


def test_filters_restrict_the_channels(linear_model, rng):
    x = rng.uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    maps = explain(linear_model, x, target=1, filters=[0, 3])
    A, g = linear_reference(linear_model, x, np.array([1, 1]))
    assert_maps_close(maps, reference_maps(A, g, filters=[0, 3]))
    full = explain(linear_model, x, target=1)
    assert not np.allclose(maps["gradcam++"], full["gradcam++"])


def test_neurons_individual_and_region(linear_model, rng):
    x = rng.uniform(0, 1, (1, 8, 8, 3)).astype("float32")
    A, g = linear_reference(linear_model, x, np.array([2]))
    mask = np.zeros((8, 8), bool)
    mask[1, 2] = mask[5, 6] = True
    maps = explain(linear_model, x, target=2, neurons=[(1, 2), (5, 6)])
    assert_maps_close(maps, reference_maps(A, g, position_mask=mask))
    assert (maps["gradcam"][0][~mask] == 0).all()

    box = np.zeros((8, 8), bool)
    box[2:5, 1:7] = True  # inclusive corners (4, 1) and (2, 6), given in any order
    maps = explain(linear_model, x, target=2, neurons=[(4, 1), (2, 6)], region=True)
    assert_maps_close(maps, reference_maps(A, g, position_mask=box))
    assert (maps["gradcam++"][0][~box] == 0).all()


# --- model 2: a non-linear head ending in softmax --------------------------------------------


@pytest.fixture(scope="module")
def softmax_model():
    keras.utils.set_random_seed(1)
    inp = keras.Input((6, 6, 2))
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inp)
    a = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv2")(a)
    f = keras.layers.Flatten()(a)
    h = keras.layers.Dense(5, activation="tanh", name="hidden")(f)
    out = keras.layers.Dense(3, activation="softmax", name="probs")(h)
    return keras.Model(inp, out)


def softmax_reference(model, x, target=None):
    """A and the gradient of the pre-softmax score, by the chain rule in NumPy."""
    A = (
        keras.Model(model.inputs, model.get_layer("conv2").output)
        .predict(x, verbose=0)
        .astype(np.float64)
    )
    W1, b1 = (v.numpy().astype(np.float64) for v in model.get_layer("hidden").weights)
    W2, b2 = (v.numpy().astype(np.float64) for v in model.get_layer("probs").weights)
    f = A.reshape(len(A), -1)
    h = np.tanh(f @ W1 + b1)
    logits = h @ W2 + b2
    if target is None:
        target = logits.argmax(axis=1)
    target = np.broadcast_to(target, (len(A),))
    g = ((W2[:, target].T * (1 - h**2)) @ W1.T).reshape(A.shape)
    return A, g, logits


def test_softmax_head_differentiates_the_logits(softmax_model, rng):
    x = rng.normal(0, 1, (4, 6, 6, 2)).astype("float32")
    A, g, logits = softmax_reference(softmax_model, x)
    details = explain_details(softmax_model, x)
    np.testing.assert_array_equal(details.targets, logits.argmax(axis=1))
    assert_maps_close(details.maps, reference_maps(A, g))
    np.testing.assert_allclose(details.logits, logits, rtol=1e-4, atol=1e-5)


def test_smoothing_matches_reference_and_repeats(softmax_model, rng):
    x = rng.normal(0, 1, (2, 6, 6, 2)).astype("float32")
    n, sigma, seed = 5, 0.2, 7
    _, _, clean_logits = softmax_reference(softmax_model, x)
    target = clean_logits.argmax(axis=1)
    noise = reference_noise(2, n, x.shape[1:], seed)
    terms = {k: np.zeros((2, 6, 6, 3)) for k in ("A", "d1", "d2", "d3")}
    for i in range(2):
        span = x[i].max() - x[i].min()
        for s in range(n):
            noisy = x[i] + sigma * span * noise[i, s]
            A, g, _ = softmax_reference(softmax_model, noisy[None].astype("float32"), target[i])
            terms["A"][i] += A[0] / n
            terms["d1"][i] += g[0] / n
            terms["d2"][i] += g[0] ** 2 / n
            terms["d3"][i] += g[0] ** 3 / n
    want = reference_maps(terms["A"], terms["d1"], terms["d2"], terms["d3"])
    got = explain(softmax_model, x, n_samples=n, sigma=sigma, seed=seed)
    assert_maps_close(got, want, rtol=1e-3)
    again = explain(softmax_model, x, n_samples=n, sigma=sigma, seed=seed)
    for m in got:
        np.testing.assert_array_equal(got[m], again[m])
    other = explain(softmax_model, x, n_samples=n, sigma=sigma, seed=seed + 1)
    assert not np.allclose(other["gradcam++"], got["gradcam++"])


def test_a_seed_gives_the_same_smoothed_maps_for_any_items_per_call(nested_model, rng, monkeypatch):
    """A seed means one map: each noisy copy draws its noise from (seed, image, copy), so the
    maps do not depend on how many items a compiled call takes (which follows the layer and
    may be retuned), nor on how many images are explained together."""
    from explainers.engine import capture

    x = rng.uniform(0, 255, (2, 10, 10, 3)).astype("float32")
    meta = rng.uniform(0, 1, (2, 2)).astype("float32")
    methods = ("gradcam", "gradcam++", "layercam")
    got = {}
    for size in (1, 3, 16):
        monkeypatch.setattr(capture, "gradient_chunk_size", lambda model, path=None, k=size: k)
        capture._captures.get(nested_model).clear()  # rebuilt with the patched size
        assert get_capture(nested_model).chunk_size == size
        got[size] = explain(
            nested_model, x, extra_inputs=[meta], methods=methods, n_samples=7, sigma=0.2, seed=11
        )
    monkeypatch.undo()
    capture._captures.get(nested_model).clear()
    for size in (3, 16):
        for m in methods:
            assert np.abs(got[1][m]).max() > 0
            np.testing.assert_allclose(
                got[size][m],
                got[1][m],
                rtol=1e-5,
                atol=1e-6 * np.abs(got[1][m]).max(),
                err_msg=f"{m}, {size}",
            )
    alone = explain(
        nested_model,
        x[:1],
        extra_inputs=[meta[:1]],
        methods=methods,
        n_samples=7,
        sigma=0.2,
        seed=11,
    )
    for m in methods:  # the first image alone: the same noise as in the pair
        np.testing.assert_allclose(
            alone[m][0], got[1][m][0], rtol=1e-5, atol=1e-6 * np.abs(got[1][m]).max(), err_msg=m
        )


def test_tiny_sigma_equals_the_plain_map(softmax_model, rng):
    x = rng.normal(0, 1, (1, 6, 6, 2)).astype("float32")
    plain = explain(softmax_model, x)
    smooth = explain(softmax_model, x, n_samples=4, sigma=1e-7, seed=0)
    assert_maps_close(smooth, plain, rtol=1e-3)


def test_saturated_softmax_gives_finite_maps_and_logit_targets():
    """Huge logits turn softmax into exact 0/1 (and its gradient into 0 or NaN); the
    explainer must work from the logits."""
    inp = keras.Input((4, 4, 1))
    a = keras.layers.Conv2D(
        2, 1, activation="relu", name="conv", kernel_initializer=keras.initializers.Constant(50.0)
    )(inp)
    f = keras.layers.Flatten()(a)
    out = keras.layers.Dense(3, activation="softmax", kernel_initializer="ones")(f)
    model = keras.Model(inp, out)
    w = model.layers[-1].kernel.numpy()
    w[:, 1] *= 2.0  # class 1 wins by thousands of logit units
    model.layers[-1].kernel.assign(w)
    x = np.full((1, 4, 4, 1), 10.0, np.float32)
    pred = predict(model, x)
    assert np.isfinite(pred.probabilities).all() and pred.probabilities[0].argmax() == 1
    assert pred.logits[0, 1] - pred.logits[0, 0] > 1000
    d = explain_details(model, x)
    assert d.targets[0] == 1
    for m in d.maps.values():
        assert np.isfinite(m).all() and m.max() > 0


# --- model 3: nested backbone with a second input (the skin-lesion model's shape) -----------


@pytest.fixture(scope="module")
def nested_model():
    keras.utils.set_random_seed(2)
    b_in = keras.Input((10, 10, 3))
    b = keras.layers.Conv2D(4, 3, activation="relu", name="conv_a")(b_in)
    b = keras.layers.Conv2D(6, 3, activation="relu", name="conv_b")(b)
    backbone = keras.Model(b_in, b, name="backbone")
    img = keras.Input((10, 10, 3), name="image")
    meta = keras.Input((2,), name="meta")
    x = keras.layers.Rescaling(1 / 255.0)(img)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Concatenate()([x, meta])
    x = keras.layers.Dense(4, activation="relu", name="hidden")(x)
    out = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    return keras.Model([img, meta], out)


def nested_reference(model, x, meta, target=None):
    backbone = model.get_layer("backbone")
    A = keras.Model(backbone.inputs, backbone.get_layer("conv_b").output).predict(
        x / 255.0, verbose=0
    )
    A = A.astype(np.float64)
    _n, h, w, k = A.shape
    W1, b1 = (v.numpy().astype(np.float64) for v in model.get_layer("hidden").weights)
    W2, b2 = (v.numpy().astype(np.float64) for v in model.get_layer("probs").weights)
    z = np.concatenate([A.mean(axis=(1, 2)), meta], axis=1)
    pre = z @ W1 + b1
    hid = np.maximum(pre, 0)
    logits = hid @ W2 + b2
    if target is None:
        target = logits.argmax(axis=1)
    dz = (W2[:, target].T * (pre > 0)) @ W1.T  # (n, k + 2)
    g = np.broadcast_to(dz[:, None, None, :k] / (h * w), A.shape)
    return A, g, logits


def test_nested_backbone_with_second_input(nested_model, rng):
    x = rng.uniform(0, 255, (3, 10, 10, 3)).astype("float32")
    meta = rng.uniform(0, 1, (3, 2)).astype("float32")
    assert resolve_layer(nested_model).path == "backbone/conv_b"
    assert resolve_layer(nested_model, "conv_a").path == "backbone/conv_a"
    A, g, logits = nested_reference(nested_model, x, meta)
    d = explain_details(nested_model, x, extra_inputs=[meta])
    np.testing.assert_array_equal(d.targets, logits.argmax(axis=1))
    assert_maps_close(d.maps, reference_maps(A, g))
    # The metadata is an input of the score: other metadata, other gradients.
    other = explain(nested_model, x, extra_inputs=[1 - meta], target=d.targets)
    A2, g2, _ = nested_reference(nested_model, x, 1 - meta, d.targets)
    assert_maps_close(other, reference_maps(A2, g2))


def test_nested_smoothing_holds_metadata_fixed(nested_model, rng):
    x = rng.uniform(0, 255, (1, 10, 10, 3)).astype("float32")
    meta = np.array([[0.3, 0.9]], np.float32)
    n, sigma, seed = 3, 0.1, 11
    _, _, logits = nested_reference(nested_model, x, meta)
    target = logits.argmax(axis=1)
    noise = reference_noise(1, n, x.shape[1:], seed)
    span = x[0].max() - x[0].min()
    acc = [np.zeros((1, 6, 6, 6)) for _ in range(4)]
    for s in range(n):
        noisy = (x[0] + sigma * span * noise[0, s])[None].astype("float32")
        A, g, _ = nested_reference(nested_model, noisy, meta, target)
        for j, term in enumerate((A, g, g**2, g**3)):
            acc[j] += term / n
    want = reference_maps(acc[0], acc[1], acc[2], acc[3])
    got = explain(nested_model, x, extra_inputs=[meta], n_samples=n, sigma=sigma, seed=seed)
    assert_maps_close(got, want, rtol=1e-3)


def test_skin_lesion_model_real_image(skin_lesion_model):
    """The real model: nested Xception, metadata input, softmax head."""
    from PIL import Image

    from tests.conftest import ROOT

    path = sorted((ROOT / "explainers" / "data" / "samples").glob("*.jpg"))
    if not path:
        pytest.skip("sample images not bundled yet")
    img = np.asarray(Image.open(path[0]).convert("RGB").resize((254, 254)), np.float32)[None]
    meta = np.zeros((1, 10), np.float32)
    meta[0, [2, 7, 9]] = 1  # sex unknown, site unknown, age unknown
    meta[0, 8] = 51.90 / 90
    assert resolve_layer(skin_lesion_model).path == "xception/block14_sepconv2_act"
    d = explain_details(skin_lesion_model, img, extra_inputs=[meta], n_samples=2, seed=0)
    pred = predict(skin_lesion_model, img, [meta])
    np.testing.assert_allclose(
        pred.probabilities, skin_lesion_model.predict([img, meta], verbose=0), atol=1e-5
    )
    assert d.targets[0] == pred.logits[0].argmax()
    for m in d.maps.values():
        assert m.shape == (1, 8, 8) and np.isfinite(m).all() and m.max() > 0


# --- numerical care, layers, speed-related behaviour, errors ---------------------------------


def test_alpha_does_not_underflow_for_tiny_gradients():
    g = np.full((1, 2, 2, 1), 1e-25, np.float32)  # a real gradient size deep in a network
    A = np.ones((1, 2, 2, 1), np.float32)
    with np.errstate(all="ignore"):
        naive = (g**2) / (2 * g**2 + A.sum() * g**3)  # float32: g**2 and g**3 underflow, 0/0
    assert np.isnan(naive).all()
    g64 = g.astype(np.float64)
    alpha = gradcampp_alpha(A, g64**2, g64**3)
    np.testing.assert_allclose(alpha, 0.5, rtol=1e-12)
    zero = gradcampp_alpha(A, np.zeros_like(g64), np.zeros_like(g64))
    assert (zero == 0).all()


def test_candidate_layers_and_defaults():
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))
    layers = candidate_layers(model)
    assert layers[-1].name == "out_relu" and layers[-1].output_shape == (None, 3, 3, 1280)
    assert all(len(info.output_shape) == 4 for info in layers)
    with pytest.raises(ExplainerError, match="no layer named 'nope'"):
        resolve_layer(model, "nope")
    with pytest.raises(ExplainerError, match="4-D"):
        resolve_layer(model, "predictions")


def test_model_without_spatial_layer_is_a_clear_error():
    inp = keras.Input((5,))
    model = keras.Model(inp, keras.layers.Dense(2)(inp))
    with pytest.raises(ExplainerError, match="no image input|no layer with a spatial output"):
        explain(model, np.zeros((1, 5), np.float32))


def test_sequential_model(rng):
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(3, 3, activation="relu", name="c"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax", name="d"),
        ]
    )
    x = rng.uniform(0, 1, (2, 8, 8, 1)).astype("float32")
    A = (
        keras.Model(model.inputs, model.get_layer("c").output)
        .predict(x, verbose=0)
        .astype(np.float64)
    )
    W = model.get_layer("d").kernel.numpy().astype(np.float64)
    g = np.broadcast_to(W[:, [1, 1]].T[:, None, None, :] / 36, A.shape)
    assert_maps_close(explain(model, x, target=1), reference_maps(A, g))


def test_bad_arguments_are_one_line_errors(linear_model):
    x = np.zeros((1, 8, 8, 3), np.float32)
    cases = [
        ({"target": 4}, "outside the model's classes"),
        ({"n_samples": -1}, "0 or more"),
        ({"sigma": -0.1}, "sigma must be 0 or more"),
        ({"methods": ("score-cam",)}, "unknown method"),
        ({"filters": [9]}, "between 0 and 4"),
        ({"neurons": [(8, 0)]}, "8x8 grid"),
        ({"neurons": [(0, 0)], "region": True}, "two corner"),
        ({"layer": "missing"}, "no layer named"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ExplainerError, match=message) as info:
            explain(linear_model, x, **kwargs)
        assert "\n" not in str(info.value)
    with pytest.raises(ExplainerError, match="NaN"):
        explain(linear_model, np.full((1, 8, 8, 3), np.nan, np.float32))
    with pytest.raises(ExplainerError, match="expects"):
        explain(linear_model, np.zeros((1, 9, 9, 3), np.float32))


def test_extra_inputs_are_checked(nested_model):
    x = np.zeros((1, 10, 10, 3), np.float32)
    with pytest.raises(ExplainerError, match="besides the image"):
        explain(nested_model, x)
    with pytest.raises(ExplainerError, match="must have shape"):
        explain(nested_model, x, extra_inputs=[np.zeros((1, 3))])


def test_no_retracing_across_sample_counts_and_batch_sizes(softmax_model, rng):
    capture = get_capture(softmax_model, "conv2")
    for n_images, n_samples in [(1, 0), (3, 0), (1, 5), (2, 20), (1, 37)]:
        x = rng.normal(0, 1, (n_images, 6, 6, 2)).astype("float32")
        explain(softmax_model, x, layer="conv2", n_samples=n_samples, seed=0)
    assert capture.tracing_count == 1  # one compiled pass serves plain and smoothed maps


def test_progress_is_reported_per_chunk(softmax_model, rng):
    calls = []
    x = rng.normal(0, 1, (1, 6, 6, 2)).astype("float32")
    explain_details(
        softmax_model, x, n_samples=40, seed=0, progress=lambda d, t: calls.append((d, t))
    )
    assert get_capture(softmax_model).chunk_size == 16  # a small model: the most per call
    assert calls == [(16, 40), (32, 40), (40, 40)]


def test_threads_sharing_one_model_get_their_own_results(nested_model, rng):
    x = rng.uniform(0, 255, (6, 10, 10, 3)).astype("float32")
    meta = rng.uniform(0, 1, (6, 2)).astype("float32")
    jobs = [{"target": i % 3, "n_samples": (i % 2) * 4, "seed": i} for i in range(6)]
    expected = [
        explain(nested_model, x[i : i + 1], extra_inputs=[meta[i : i + 1]], **job)
        for i, job in enumerate(jobs)
    ]
    results = [None] * 6
    barrier = threading.Barrier(6)

    def work(i):
        barrier.wait()
        for _ in range(3):
            results[i] = explain(
                nested_model, x[i : i + 1], extra_inputs=[meta[i : i + 1]], **jobs[i]
            )

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected, strict=False):
        for m in want:
            np.testing.assert_array_equal(got[m], want[m])


def test_at_most_two_compiled_passes_run_at_once(nested_model, rng, monkeypatch):
    """TensorFlow's CPU pool keeps the peak of whatever runs at once: six sessions asking at
    the same moment must not hold six chunks' tensors (explainers.engine.capture.PASS_SLOTS)."""
    from explainers.engine import capture

    slots = capture.PASS_SLOTS
    lock, running, most = threading.Lock(), [0], [0]

    class Counting:
        def __enter__(self):
            slots.acquire()
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])

        def __exit__(self, *exc):
            with lock:
                running[0] -= 1
            slots.release()

    monkeypatch.setattr(capture, "PASS_SLOTS", Counting())
    x = rng.uniform(0, 255, (6, 10, 10, 3)).astype("float32")
    meta = rng.uniform(0, 1, (6, 2)).astype("float32")
    barrier = threading.Barrier(6)

    def work(i):
        barrier.wait()
        explain(nested_model, x[i : i + 1], extra_inputs=[meta[i : i + 1]], n_samples=12, seed=i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= most[0] <= 2  # every pass went through a slot, never more than two at once


def test_only_the_last_few_layers_keep_their_compiled_steps(rng):
    """A session stepping through every layer must not keep one traced graph per layer (each
    is tens of MB for a real model): the least recently used are dropped, and a dropped layer
    is traced again, with the same maps, when it is used next."""
    from explainers.engine import capture

    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 2))
    a = inp
    for i in range(5):
        a = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name=f"c{i}")(a)
    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(a))
    model = keras.Model(inp, out)
    x = rng.normal(0, 1, (1, 8, 8, 2)).astype("float32")
    first = explain(model, x, layer="c0", target=1)
    held = [get_capture(model, f"c{i}") for i in range(5)]
    kept = capture._captures.get(model)
    assert list(kept) == ["c3", "c4"] and capture.TRACED_LAYERS == 2
    assert get_capture(model, "c4") is held[4]  # a kept layer is not traced again
    again = get_capture(model, "c0")
    assert again is not held[0] and list(kept) == ["c4", "c0"]
    np.testing.assert_allclose(
        explain(model, x, layer="c0", target=1)["gradcam++"], first["gradcam++"], rtol=1e-6
    )


def test_items_per_gradient_call_follow_the_layer_s_memory(skin_lesion_model):
    """One call's peak must fit capture.CALL_BUDGET (768 MB): the skin-lesion model's last
    layer (little kept for its backward pass, ~23 MB per item) takes 16 items per call, block2
    (nearly the whole network kept, ~150 MB) and guided backprop (back to the input) 4; a
    model of unknown sizes 4. Powers of two, so 8 or 16 noise samples split into equal calls."""
    from explainers.engine.capture import CALL_BUDGET, GRADIENT_CHUNK_SIZE, GradientCapture
    from explainers.engine.guided_gradient import get_guided

    model = skin_lesion_model
    assert CALL_BUDGET == 768 * 2**20
    assert get_capture(model).chunk_size == 16
    assert GradientCapture(model, "block2_sepconv2_act").chunk_size == 4
    assert get_guided(model).chunk_size == 4
    assert gradient_chunk_size(model, ("no", "such", "layer")) == GRADIENT_CHUNK_SIZE == 4
