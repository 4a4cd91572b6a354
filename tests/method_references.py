"""NumPy references for every method, on two small models whose forward pass, gradients and
guided gradients are written out here by hand (no GradientTape, no explainers code).

Upsampling uses ``tf.image.resize`` (bilinear, half-pixel centres) on purpose: Score-CAM and
Guided Grad-CAM are defined by it.
"""

import keras
import numpy as np
import tensorflow as tf

# --- the two models ------------------------------------------------------------------------


def functional_model():
    """conv(relu, same) -> flatten -> dense(relu) -> dense(softmax); layer 'conv'."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((6, 6, 2))
    a = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(inp)
    f = keras.layers.Flatten()(a)
    h = keras.layers.Dense(4, activation="relu", name="hidden")(f)
    out = keras.layers.Dense(3, activation="softmax", name="probs")(h)
    model = keras.Model(inp, out)
    _spread_biases(model)
    return model


def nested_model():
    """Rescaling -> nested backbone (conv_a relu, conv_b relu; valid) -> GAP -> concat with a
    second input -> dense(relu) -> dense(softmax); layer 'backbone/conv_b'."""
    keras.utils.set_random_seed(6)
    b_in = keras.Input((9, 9, 3))
    b = keras.layers.Conv2D(4, 3, activation="relu", name="conv_a")(b_in)
    b = keras.layers.Conv2D(5, 3, activation="relu", name="conv_b")(b)
    backbone = keras.Model(b_in, b, name="backbone")
    img = keras.Input((9, 9, 3), name="image")
    meta = keras.Input((2,), name="meta")
    x = keras.layers.Rescaling(1 / 255.0)(img)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Concatenate()([x, meta])
    x = keras.layers.Dense(4, activation="relu", name="hidden")(x)
    out = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    model = keras.Model([img, meta], out)
    _spread_biases(model)
    return model


def _spread_biases(model):
    """Small non-zero biases, so that ReLUs are off in places and constants matter."""
    rng = np.random.default_rng(0)
    layers = list(model.layers)
    while layers:
        layer = layers.pop(0)
        if isinstance(layer, keras.Model):
            layers.extend(layer.layers)
        elif getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape).astype("float32"))


def _weights(layer):
    return [v.numpy().astype(np.float64) for v in layer.weights]


# --- convolution by hand -------------------------------------------------------------------


def conv(x, kernel, bias, same):
    """(H, W, C) -> (H', W', O), stride 1."""
    kh, kw = kernel.shape[:2]
    if same:
        x = np.pad(x, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    ho, wo = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    out = np.zeros((ho, wo, kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            out += x[i : i + ho, j : j + wo] @ kernel[i, j]
    return out + bias


def conv_input_grad(dout, kernel, in_shape, same):
    """Gradient of sum(dout * conv(x)) with respect to x (H, W, C)."""
    kh, kw = kernel.shape[:2]
    ph, pw = (kh // 2, kw // 2) if same else (0, 0)
    dx = np.zeros((in_shape[0] + 2 * ph, in_shape[1] + 2 * pw, in_shape[2]))
    ho, wo = dout.shape[:2]
    for i in range(kh):
        for j in range(kw):
            dx[i : i + ho, j : j + wo] += dout @ kernel[i, j].T
    return dx[ph : ph + in_shape[0], pw : pw + in_shape[1]]


def relu(v):
    return np.maximum(v, 0.0)


# --- forward, gradient and guided gradient of one image ------------------------------------


def run_functional(model, x, target=None):
    """A, g, logits, guided input gradient for one image of the functional model."""
    kc, bc = _weights(model.get_layer("conv"))
    w1, b1 = _weights(model.get_layer("hidden"))
    w2, b2 = _weights(model.get_layer("probs"))
    pre1 = conv(x.astype(np.float64), kc, bc, same=True)
    a = relu(pre1)
    pre2 = a.ravel() @ w1 + b1
    logits = relu(pre2) @ w2 + b2
    t = int(np.argmax(logits)) if target is None else int(target)
    g = ((w2[:, t] * (pre2 > 0)) @ w1.T).reshape(a.shape)
    d_pre2 = relu(w2[:, t]) * (pre2 > 0)  # guided through the hidden ReLU
    d_pre1 = relu((d_pre2 @ w1.T).reshape(a.shape)) * (pre1 > 0)  # and through the conv's
    guided = conv_input_grad(d_pre1, kc, x.shape, same=True)
    return a, g, logits, guided


def run_nested(model, x, meta, target=None):
    backbone = model.get_layer("backbone")
    ka, ba = _weights(backbone.get_layer("conv_a"))
    kb, bb = _weights(backbone.get_layer("conv_b"))
    w1, b1 = _weights(model.get_layer("hidden"))
    w2, b2 = _weights(model.get_layer("probs"))
    z = x.astype(np.float64) / 255.0
    p1 = conv(z, ka, ba, same=False)
    a1 = relu(p1)
    p2 = conv(a1, kb, bb, same=False)
    a = relu(p2)
    h, w, k = a.shape
    zc = np.concatenate([a.mean(axis=(0, 1)), np.asarray(meta, np.float64)])
    p3 = zc @ w1 + b1
    logits = relu(p3) @ w2 + b2
    t = int(np.argmax(logits)) if target is None else int(target)
    dz = (w2[:, t] * (p3 > 0)) @ w1.T
    g = np.broadcast_to(dz[:k] / (h * w), a.shape).copy()
    d_zc = (relu(w2[:, t]) * (p3 > 0)) @ w1.T
    d_p2 = relu(np.broadcast_to(d_zc[:k] / (h * w), a.shape)) * (p2 > 0)
    d_p1 = relu(conv_input_grad(d_p2, kb, a1.shape, same=False)) * (p1 > 0)
    guided = conv_input_grad(d_p1, ka, z.shape, same=False) / 255.0
    return a, g, logits, guided


class Case:
    """One model with its inputs and the hand-written pass, for N images."""

    def __init__(self, name, model, x, meta=None):
        self.name, self.model, self.x, self.meta = name, model, x, meta
        self.extra = None if meta is None else [meta]

    def one(self, x, i, target=None):
        if self.meta is None:
            return run_functional(self.model, x, target)
        return run_nested(self.model, x, self.meta[i], target)

    def passes(self):
        out = [self.one(self.x[i], i) for i in range(len(self.x))]
        return [np.stack(v) for v in zip(*out, strict=False)]  # A, g, logits, guided

    def logits_of(self, x, i):
        return self.one(x, i)[2]


# --- the formulas --------------------------------------------------------------------------


def cam(a, w):
    w = np.asarray(w)
    if w.ndim == a.ndim:
        return relu((a * w).sum(-1))
    return relu(np.einsum("nhwk,nk->nhw", a, w))


def gradcampp_w(a, g):
    s = a.sum(axis=(1, 2), keepdims=True)
    den = 2 * g**2 + s * g**3
    alpha = np.where(den != 0, g**2 / np.where(den != 0, den, 1), 0.0)
    return (alpha * relu(g)).sum(axis=(1, 2))


def resize(maps, size):
    """tf.image.resize, bilinear, half-pixel centres: (N, h, w) -> (N, H, W)."""
    return tf.image.resize(np.asarray(maps, np.float64)[..., None], size, "bilinear").numpy()[
        ..., 0
    ]


def scorecam(case, a, targets, channels=None):
    n, _h, _w, k = a.shape
    size = case.x.shape[1:3]
    weights = np.zeros((n, k))
    for i in range(n):
        chosen = range(k) if channels is None else channels[i]
        scores = []
        for c in chosen:
            up = resize(a[i : i + 1, :, :, c], size)[0]
            span = up.max() - up.min()
            mask = (up - up.min()) / span if span > 0 else np.zeros_like(up)
            scores.append(case.logits_of(case.x[i] * mask[..., None], i)[targets[i]])
        e = np.exp(np.array(scores) - max(scores))
        weights[i, list(chosen)] = e / e.sum()
    return cam(a, weights)


def reference(method, case):
    """The reference map of ``method`` for every image of ``case``, top class."""
    a, g, logits, guided = case.passes()
    targets = logits.argmax(axis=1)
    gradcam = cam(a, g.mean(axis=(1, 2)))
    formulas = {
        "gradcam": lambda: gradcam,
        "gradcam++": lambda: cam(a, gradcampp_w(a, g)),
        "hirescam": lambda: relu((g * a).sum(-1)),
        "xgradcam": lambda: cam(
            a, (a / (a.sum(axis=(1, 2), keepdims=True) + 1e-7) * g).sum(axis=(1, 2))
        ),
        "layercam": lambda: relu((relu(g) * a).sum(-1)),
        "counterfactual": lambda: cam(a, (-g).mean(axis=(1, 2))),
        "scorecam": lambda: scorecam(case, a, targets),
        "guided-backprop": lambda: guided,
        "guided-gradcam": lambda: guided * resize(gradcam, case.x.shape[1:3])[..., None],
    }
    return formulas[method]()


#: Every registered method must have a reference here (tests/test_methods.py checks it).
METHODS_WITH_REFERENCE = (
    "gradcam",
    "gradcam++",
    "hirescam",
    "xgradcam",
    "layercam",
    "counterfactual",
    "scorecam",
    "guided-backprop",
    "guided-gradcam",
)
