"""Every registered method against its NumPy reference (tests/method_references.py), on a
small functional model and on a nested model with a second input and a softmax head; guided
backprop against the chain rule by hand; what the methods cannot do, said clearly."""

import keras
import numpy as np
import pytest

from explainers import ExplainerError, explain, explain_details
from explainers.engine.capture import GradientCapture
from explainers.methods import REGISTRY, method_keys, method_label, resolve_methods, scorecam
from tests import method_references as ref


@pytest.fixture(scope="module")
def cases():
    rng = np.random.default_rng(7)
    f = ref.Case(
        "functional", ref.functional_model(), rng.normal(0, 1, (2, 6, 6, 2)).astype("float32")
    )
    n = ref.Case(
        "nested",
        ref.nested_model(),
        rng.uniform(0, 255, (2, 9, 9, 3)).astype("float32"),
        rng.uniform(0, 1, (2, 2)).astype("float32"),
    )
    return {"functional": f, "nested": n}


def assert_close(got, want, rtol=2e-4, what=""):
    scale = max(float(np.abs(want).max()), 1e-30)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def test_every_registered_method_has_a_reference():
    assert set(method_keys()) == set(ref.METHODS_WITH_REFERENCE)


@pytest.mark.parametrize("model_name", ["functional", "nested"])
@pytest.mark.parametrize("method", ref.METHODS_WITH_REFERENCE)
def test_method_matches_numpy_reference(cases, method, model_name):
    case = cases[model_name]
    ex = explain_details(case.model, case.x, extra_inputs=case.extra, methods=[method])
    want = ref.reference(method, case)
    got = ex.maps[method]
    assert got.dtype == np.float32 and np.isfinite(got).all()
    if REGISTRY[method].cam:
        assert (
            got.shape
            == want.shape
            == (
                2,
                *case.model.get_layer(
                    "conv" if model_name == "functional" else "backbone"
                ).output.shape[1:3],
            )
        )
        assert (got >= 0).all()
    else:
        assert got.shape == case.x.shape
    assert np.abs(want).max() > 0, "a reference of all zeros would test nothing"
    assert_close(got, want, what=f"{method} on the {model_name} model")
    assert ex.seconds[method] > 0


def test_all_tape_methods_share_one_pass(cases, monkeypatch):
    case = cases["nested"]
    calls = []
    original = GradientCapture.stats
    monkeypatch.setattr(
        GradientCapture, "stats", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    maps = explain(
        case.model,
        case.x,
        extra_inputs=case.extra,
        methods=method_keys(needs="tape"),
        n_samples=3,
        seed=0,
    )
    assert len(calls) == 1 and set(maps) == set(method_keys(needs="tape"))


def test_smoothing_averages_the_terms_of_every_tape_method(cases):
    """n_samples > 0: the formulas applied to A and g averaged over the noisy copies."""
    from tests.test_core import reference_noise

    case = cases["functional"]
    n, sigma, seed = 4, 0.2, 3
    targets = case.passes()[2].argmax(axis=1)
    noise = reference_noise(2, n, case.x.shape[1:], seed)
    a = np.zeros((2, 6, 6, 3))
    g = np.zeros_like(a)
    for i in range(2):
        span = case.x[i].max() - case.x[i].min()
        for s in range(n):
            ai, gi, _, _ = ref.run_functional(
                case.model, case.x[i] + sigma * span * noise[i, s], targets[i]
            )
            a[i] += ai / n
            g[i] += gi / n
    got = explain(
        case.model,
        case.x,
        methods=["hirescam", "xgradcam", "layercam", "counterfactual"],
        n_samples=n,
        sigma=sigma,
        seed=seed,
    )
    assert_close(got["hirescam"], ref.relu((g * a).sum(-1)), 1e-3)
    assert_close(got["layercam"], ref.relu((ref.relu(g) * a).sum(-1)), 1e-3)
    assert_close(got["counterfactual"], ref.cam(a, -g.mean(axis=(1, 2))), 1e-3)
    xw = (a / (a.sum(axis=(1, 2), keepdims=True) + 1e-7) * g).sum(axis=(1, 2))
    assert_close(got["xgradcam"], ref.cam(a, xw), 1e-3)


def test_filters_and_neurons_apply_to_every_cam_method(cases):
    case = cases["functional"]
    keys = method_keys(family="cam")
    ex = explain_details(
        case.model, case.x, methods=keys, filters=[0, 2], neurons=[(1, 1), (4, 3)], region=True
    )
    a, g, logits, _ = case.passes()
    inside = np.zeros((6, 6), bool)
    inside[1:5, 1:4] = True
    a = a * inside[None, :, :, None]
    a[..., 1] = 0.0  # filter 1 left out: it contributes nothing (a zero weight or zero A)
    assert_close(ex.maps["hirescam"], ref.relu((g * a).sum(-1)))
    assert_close(ex.maps["counterfactual"], ref.cam(a, -g.mean(axis=(1, 2))))
    case_masked = ref.scorecam(case, a, logits.argmax(1), channels=[[0, 2], [0, 2]])
    assert_close(ex.maps["scorecam"], case_masked)
    for key in keys:
        assert (ex.maps[key][:, ~inside] == 0).all(), key
    assert ex.weights["scorecam"][:, 1].max() == 0


def test_scorecam_keeps_the_channels_of_largest_variance(cases):
    case = cases["nested"]
    a, _, logits, _ = case.passes()
    k = 2
    channels = [
        np.sort(np.argsort(-a[i].reshape(-1, 5).var(axis=0), kind="stable")[:k]) for i in range(2)
    ]
    progress = []
    ex = explain_details(
        case.model,
        case.x,
        extra_inputs=case.extra,
        methods="scorecam",
        max_channels=k,
        progress=lambda d, t: progress.append((d, t)),
    )
    assert_close(ex.maps["scorecam"], ref.scorecam(case, a, logits.argmax(1), channels))
    assert [(np.flatnonzero(w)).tolist() for w in ex.weights["scorecam"]] == [
        c.tolist() for c in channels
    ]
    assert progress[-1] == (4, 4)
    with pytest.raises(ExplainerError, match="max_channels must be at least 1"):
        explain(case.model, case.x, extra_inputs=case.extra, methods="scorecam", max_channels=0)


def test_scorecam_runs_fixed_size_chunks():
    a = np.random.default_rng(0).random((1, 2, 2, 5))
    x = np.ones((1, 4, 4, 1), np.float32)
    shapes = []

    def score_fn(batch, i):
        shapes.append(batch.shape)
        return np.tile(batch.sum(axis=(1, 2, 3))[:, None], (1, 2))

    w = scorecam.compute(a, x, score_fn, np.array([1]), chunk_size=2)
    assert shapes == [(2, 4, 4, 1)] * 3  # 5 channels: chunks of 2, the last one padded
    assert np.isclose(w.sum(), 1.0) and (w > 0).all()


def test_upsampling_is_tf_image_resize():
    a = np.random.default_rng(1).random((3, 4, 2)).astype("float32")
    masks = scorecam.channel_masks(a, (7, 9), np.array([0, 1]))
    up = ref.resize(np.moveaxis(a, -1, 0), (7, 9))
    lo, hi = up.min(axis=(1, 2), keepdims=True), up.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(masks, (up - lo) / (hi - lo), atol=1e-6)
    flat = scorecam.channel_masks(np.ones((3, 4, 1)), (7, 9), np.array([0]))
    assert (flat == 0).all()  # a constant channel: an all-zero mask, never NaN


# --- guided backprop -------------------------------------------------------------------------


def relu_variants_model():
    """Every way a ReLU is written: fused in Conv/Dense, ReLU layer, ReLU6, Activation, and
    inside a nested Sequential."""
    keras.utils.set_random_seed(9)
    inner = keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(3, 3, padding="same", name="c1"),
            keras.layers.ReLU(name="r1"),
        ],
        name="inner",
    )
    inp = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="c0")(inp)
    x = inner(x)
    x = keras.layers.Conv2D(3, 1, name="c2")(x)
    x = keras.layers.ReLU(max_value=6.0, name="r6")(x)
    x = keras.layers.Conv2D(2, 1, name="c3")(x)
    x = keras.layers.Activation("relu", name="act")(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(inp, out)


def _guided_by_hand(model, x, t):
    """The chain rule for relu_variants_model, one image, guided at every ReLU."""
    w = {
        l: [v.numpy().astype(np.float64) for v in layer.weights]
        for l, layer in [
            ("c0", model.get_layer("c0")),
            ("c1", model.get_layer("inner").get_layer("c1")),
            ("c2", model.get_layer("c2")),
            ("c3", model.get_layer("c3")),
            ("d", model.layers[-1]),
        ]
    }
    p0 = ref.conv(x.astype(np.float64), *w["c0"], same=True)
    a0 = ref.relu(p0)
    p1 = ref.conv(a0, *w["c1"], same=True)
    a1 = ref.relu(p1)
    p2 = ref.conv(a1, *w["c2"], same=True)
    a2 = np.clip(p2, 0, 6)
    p3 = ref.conv(a2, *w["c3"], same=True)
    a3 = ref.relu(p3)
    d = w["d"][0][:, t].reshape(a3.shape)
    d = ref.relu(d) * (p3 > 0)
    d = ref.relu(ref.conv_input_grad(d, w["c3"][0], a2.shape, True)) * ((p2 > 0) & (p2 < 6))
    d = ref.relu(ref.conv_input_grad(d, w["c2"][0], a1.shape, True)) * (p1 > 0)
    d = ref.relu(ref.conv_input_grad(d, w["c1"][0], a0.shape, True)) * (p0 > 0)
    return ref.conv_input_grad(d, w["c0"][0], x.shape, True)


def test_guided_backprop_follows_the_chain_rule_through_every_kind_of_relu():
    model = relu_variants_model()
    for layer in (model.get_layer("c2"), model.get_layer("c3"), model.get_layer("c0")):
        layer.bias.assign(np.full(layer.bias.shape, 0.05, np.float32))
    x = np.random.default_rng(3).normal(0, 2, (2, 6, 6, 2)).astype("float32")
    got = explain(model, x, methods="guided-backprop", target=[0, 2])["guided-backprop"]
    want = np.stack([_guided_by_hand(model, x[i], t) for i, t in enumerate([0, 2])])
    assert np.abs(want).max() > 0
    assert_close(got, want)


def test_guided_backprop_leaves_the_model_as_it_was(cases):
    case = cases["functional"]
    model = case.model
    before = [v.numpy().copy() for v in model.weights]
    activations = {l.name: l.activation for l in model.layers if hasattr(l, "activation")}
    explain(model, case.x, methods=["guided-backprop", "gradcam"])
    after = explain(model, case.x, methods="gradcam")["gradcam"]
    assert all(np.array_equal(b, v.numpy()) for b, v in zip(before, model.weights, strict=False))
    assert {l.name: l.activation for l in model.layers if hasattr(l, "activation")} == activations
    assert_close(after, ref.reference("gradcam", case))  # plain gradients unaffected
    np.testing.assert_allclose(
        model.predict(case.x, verbose=0),
        keras.Model(model.inputs, model.outputs).predict(case.x, verbose=0),
    )


def test_guided_backprop_through_keras_ops_relu():
    inp = keras.Input((5, 5, 1))
    pre = keras.layers.Conv2D(2, 3, name="c")(inp)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(keras.ops.relu(pre)))
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).normal(0, 1, (1, 5, 5, 1)).astype("float32")
    kc, bc = (v.numpy().astype(np.float64) for v in model.get_layer("c").weights)
    p = ref.conv(x[0].astype(np.float64), kc, bc, same=False)
    d = ref.relu(model.layers[-1].kernel.numpy()[:, 1].reshape(p.shape)) * (p > 0)
    want = ref.conv_input_grad(d, kc, x.shape[1:], same=False)
    got = explain(model, x, methods="guided-backprop", target=1)["guided-backprop"][0]
    assert_close(got, want)


def test_guided_backprop_on_a_model_without_relu_is_a_clear_error():
    inp = keras.Input((5, 5, 1))
    x = keras.layers.Conv2D(2, 3, activation="tanh")(inp)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    model = keras.Model(inp, out)
    for method in ("guided-backprop", "guided-gradcam"):
        with pytest.raises(ExplainerError, match="needs ReLU activations") as info:
            explain(model, np.zeros((1, 5, 5, 1), np.float32), methods=method)
        assert "\n" not in str(info.value)


# --- the registry ----------------------------------------------------------------------------


def test_registry_lookups_and_labels():
    assert resolve_methods("all") == method_keys()
    assert resolve_methods(["gradcam", "all"])[0] == "gradcam"
    assert method_label("gradcam++", 16, 0.15) == "Smooth Grad-CAM++ (16 samples, σ=0.15)"
    assert method_label("scorecam", 16, 0.15) == "Score-CAM"  # never smoothed
    assert set(method_keys(family="pixel")) == {"guided-backprop", "guided-gradcam"}
    assert "scorecam" in method_keys(needs="forward")
    with pytest.raises(ExplainerError, match="unknown method 'nope'"):
        resolve_methods(["nope"])


def test_filter_maps_of_channel_and_position_weights(cases):
    case = cases["functional"]
    ex = explain_details(case.model, case.x, methods=["gradcam", "hirescam"])
    a, g = ex.activations.astype(np.float64), ex.gradients.astype(np.float64)
    per_position = ex.filter_maps("hirescam", [0, 2])
    assert_close(per_position, np.moveaxis((g * a)[..., [0, 2]], -1, 1))
    per_channel = ex.filter_maps("gradcam", [1])
    assert_close(
        per_channel, np.moveaxis(a[..., [1]] * g.mean(axis=(1, 2))[:, None, None, [1]], -1, 1)
    )
    assert_close(ex.filter_maps("hirescam", range(3)).sum(1), (g * a).sum(-1))


@pytest.mark.slow
def test_every_method_on_the_skin_lesion_model(skin_lesion_model):
    """The real model: nested Xception (Activation("relu") layers), metadata input, softmax."""
    from PIL import Image

    from tests.conftest import ROOT

    path = min((ROOT / "explainers" / "data" / "samples").glob("*.jpg"))
    img = np.asarray(Image.open(path).convert("RGB").resize((254, 254)), np.float32)[None]
    meta = np.zeros((1, 10), np.float32)
    meta[0, [2, 7, 9]] = 1
    weights = [v.numpy().copy() for v in skin_lesion_model.weights[:5]]
    ex = explain_details(skin_lesion_model, img, extra_inputs=[meta], methods="all", max_channels=8)
    for key in method_keys():
        m = ex.maps[key]
        assert (np.isfinite(m).all() and np.abs(m).max() > 0) or key == "counterfactual", key
        assert m.shape == ((1, 8, 8) if REGISTRY[key].cam else (1, 254, 254, 3)), key
    assert_close(ex.maps["hirescam"], ex.maps["gradcam"])  # block14_sepconv2_act -> global pooling
    assert (ex.weights["scorecam"] > 0).sum() == 8
    assert all(
        np.array_equal(w, v.numpy())
        for w, v in zip(weights, skin_lesion_model.weights[:5], strict=False)
    )
