"""Benchmark: how much does explaining cost compared with the pass it cannot avoid?

Measured in one process, so the figures are ratios that carry across machines:
- ``ours``: ``explain(..., n_samples=16, target=1)`` (Grad-CAM and Grad-CAM++) for
  one image (and the same with ``target=None``, which adds a forward pass of the clean image
  to pick its top class);
- ``plain``: one forward + backward pass of the same 16 (noisy) images to the same layer, the
  textbook Keras way (``keras.Model(inputs, [layer.output, model.output])`` under one tape,
  compiled with ``tf.function``) — the least any gradient-based map of 16 samples must cost;
- ``xplique``: xplique's ``GradCAMPP`` of the same 16 noisy images in one batch, when
  xplique can be imported (optional: see docs/BENCHMARKS.md);
- ``nested``: the seed article's approach: three nested ``GradientTape``s per image, one image
  at a time, eagerly, for the same 16 samples.

``python -m explainers bench extended`` measures the method registry, each against the plain
passes it cannot avoid, interleaved round by round in one process:
- every gradient CAM method together (Grad-CAM, Grad-CAM++, HiResCAM, XGrad-CAM, LayerCAM,
  counterfactual: one shared tape pass) vs Grad-CAM alone (goal: at most 1.1);
- guided backprop vs one plain compiled input-gradient pass of the same images (goal 1.3);
- Score-CAM with K = 64 channels vs 64 plain compiled forward passes (goal 1.2).

Run: ``python -m explainers bench [extended]`` (MobileNetV2 at 224x224, random weights: timing
does not depend on the weights).
"""

from __future__ import annotations

import statistics

import keras
import numpy as np
import tensorflow as tf

from explainers.bench.machine import clock, clock_name, machine
from explainers.engine.adapter import resolve_layer
from explainers.engine.capture import FORWARD_CHUNK_SIZE
from explainers.engine.core import explain
from explainers.methods import REGISTRY, TapeTerms, method_keys
from explainers.methods.cam_weights import weighted_map


def _timeit(fn, repeats: int) -> float:
    fn()  # warm-up (tracing)
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


def run_benchmark(
    model_name: str = "MobileNetV2",
    samples: int = 16,
    repeats: int = 5,
    nested_repeats: int = 1,
    skip_nested: bool = False,
) -> dict:
    """Time ours / plain / nested; returns the figures (seconds and ratios)."""
    constructor = getattr(keras.applications, model_name)
    model = constructor(weights=None)
    size = tuple(model.inputs[0].shape[1:3])
    layer = resolve_layer(model)
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (1, *size, 3)).astype(np.float32)
    noisy = image + 0.15 * 2 * rng.standard_normal((samples, *image.shape[1:])).astype(np.float32)
    target = 1

    grad_model = keras.Model(model.inputs[0], [model.get_layer(layer.name).output, model.output])

    @tf.function(input_signature=[tf.TensorSpec((None, *size, 3), tf.float32)])
    def plain_step(x):
        with tf.GradientTape() as tape:
            conv, preds = grad_model(x, training=False)
            score = tf.reduce_sum(preds[:, target])
        return conv, tape.gradient(score, conv)

    def plain():
        conv, grads = plain_step(noisy)
        conv.numpy(), grads.numpy()

    def ours():
        explain(model, image, target=target, n_samples=samples, sigma=0.15, seed=0)

    def ours_top_class():
        explain(model, image, n_samples=samples, sigma=0.15, seed=0)

    xplique_step = _xplique_gradcampp(model, layer.name, noisy, target)

    def nested():
        for i in range(samples):
            x = noisy[i : i + 1]
            with tf.GradientTape() as t1:
                with tf.GradientTape() as t2:
                    with tf.GradientTape() as t3:
                        conv, preds = grad_model(x, training=False)
                        score = preds[:, target]
                    g1 = t3.gradient(score, conv)
                g2 = t2.gradient(g1, conv)
            g3 = t1.gradient(g2, conv)
            _ = (g1.numpy(), None if g2 is None else g2.numpy(), None if g3 is None else g3.numpy())

    result = {
        "model": model_name,
        "input": f"{size[0]}x{size[1]}",
        "layer": layer.path,
        "samples": samples,
        "repeats": repeats,
        "machine": machine(),
    }
    # Interleaved, so that a change in the machine's load hits both alike; the ratio is the
    # median of the per-round ratios.
    baseline_xplique = xplique_step or (lambda: None)
    plain(), ours(), ours_top_class(), baseline_xplique()  # warm-up (tracing)
    rounds = []
    for _ in range(repeats):
        t0 = clock()
        plain()
        t1 = clock()
        ours()
        t2 = clock()
        ours_top_class()
        t3 = clock()
        baseline_xplique()
        t4 = clock()
        rounds.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3))
    result["plain_s"] = statistics.median(r[0] for r in rounds)
    result["ours_s"] = statistics.median(r[1] for r in rounds)
    result["ratio"] = statistics.median(r[1] / r[0] for r in rounds)
    result["ours_top_s"] = statistics.median(r[2] for r in rounds)
    result["ratio_top"] = statistics.median(r[2] / r[0] for r in rounds)
    if xplique_step is not None:
        result["xplique_s"] = statistics.median(r[3] for r in rounds)
        result["ratio_xplique"] = statistics.median(r[1] / r[3] for r in rounds)
    if not skip_nested:
        result["nested_s"] = _timeit(nested, nested_repeats)
        result["speedup_vs_nested"] = result["nested_s"] / result["ours_s"]
    return result


def _xplique_gradcampp(model, layer_name: str, noisy: np.ndarray, target: int):
    """xplique's Grad-CAM++ of the same noisy images in one batch (one tape pass, powers of
    the gradient), as a callable; None when xplique is not importable. Optional: xplique pins
    an older TensorFlow, so docs/BENCHMARKS.md installs it beside this one (``--no-deps``)."""
    try:
        from xplique.attributions import GradCAMPP
    except Exception:  # noqa: BLE001 - not installed, or it cannot load beside this TensorFlow
        return None
    explainer = GradCAMPP(model, batch_size=len(noisy), conv_layer=layer_name)
    targets = np.zeros((len(noisy), int(model.outputs[0].shape[-1])), np.float32)
    targets[:, target] = 1.0
    return lambda: np.asarray(explainer.explain(noisy, targets))


def _interleaved(pairs: dict, repeats: int) -> dict:
    """{name: (ours, baseline)} -> {name: (ours_s, baseline_s, median ratio)}, every function
    warmed up first, then all timed round by round; odd rounds run ours first and even rounds
    the baseline first, so neither always follows the other."""
    for ours, base in pairs.values():
        ours(), base()
    rounds: dict = {name: [] for name in pairs}
    for r in range(repeats):
        for name, (ours, base) in pairs.items():
            seconds = {}
            for label, fn in (
                (("ours", ours), ("base", base)) if r % 2 else (("base", base), ("ours", ours))
            ):
                t0 = clock()
                fn()
                seconds[label] = clock() - t0
            rounds[name].append((seconds["ours"], seconds["base"]))
    return {
        name: (
            statistics.median(r[0] for r in rs),
            statistics.median(r[1] for r in rs),
            statistics.median(r[0] / r[1] for r in rs),
        )
        for name, rs in rounds.items()
    }


def _formula_seconds(shape: tuple, keys: tuple, repeats: int = 50) -> tuple[float, float]:
    """NumPy time of the formulas after the tape pass: (all ``keys``, Grad-CAM alone), on
    random arrays of the layer's shape: what asking for every tape method adds."""
    rng = np.random.default_rng(0)
    a = rng.random((1, *shape))
    g = rng.normal(size=a.shape)
    out = []
    for chosen in (keys, keys[:1]):
        t0 = clock()
        for _ in range(repeats):
            terms = TapeTerms(a, g, g * g, g * g * g)
            _ = terms.alpha
            for key in chosen:
                weighted_map(a, REGISTRY[key].compute(terms))
        out.append((clock() - t0) / repeats)
    return out[0], out[1]


def run_extended(
    model_name: str = "MobileNetV2", samples: int = 16, repeats: int = 5, channels: int = 64
) -> dict:
    """The registry's three ratios (see the module docstring)."""
    model = getattr(keras.applications, model_name)(weights=None)
    size = tuple(model.inputs[0].shape[1:3])
    layer = resolve_layer(model)
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (1, *size, 3)).astype(np.float32)
    batch = rng.uniform(-1, 1, (samples, *size, 3)).astype(np.float32)
    masked = rng.uniform(-1, 1, (channels, *size, 3)).astype(np.float32)
    target = 1
    tape_keys = method_keys(needs="tape", family="cam")
    guided = next(k for k in method_keys() if REGISTRY[k].needs == ("guided",))
    scorecam = method_keys(needs="forward")[0]
    spec = [tf.TensorSpec((None, *size, 3), tf.float32)]

    @tf.function(input_signature=spec)
    def plain_input_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = tf.reduce_sum(model(x, training=False)[:, target])
        return tape.gradient(score, x)

    @tf.function(input_signature=spec)
    def plain_forward(x):
        return model(x, training=False)

    def forwards():  # in the chunks the compiled forward takes (measured fastest on a CPU)
        for start in range(0, channels, FORWARD_CHUNK_SIZE):
            plain_forward(masked[start : start + FORWARD_CHUNK_SIZE]).numpy()

    pairs = {
        "cam_family": (
            lambda: explain(
                model, image, target=target, methods=tape_keys, n_samples=samples, seed=0
            ),
            lambda: explain(
                model, image, target=target, methods=tape_keys[:1], n_samples=samples, seed=0
            ),
        ),
        "guided": (
            lambda: explain(model, batch, target=target, methods=guided),
            lambda: plain_input_gradient(batch).numpy(),
        ),
        "masked_forwards": (
            lambda: explain(model, image, target=target, methods=scorecam, max_channels=channels),
            forwards,
        ),
    }
    timed = _interleaved(pairs, repeats)
    formulas = _formula_seconds(tuple(layer.output_shape[1:]), tape_keys)
    return {
        "formulas": formulas,
        "model": model_name,
        "input": f"{size[0]}x{size[1]}",
        "layer": layer.path,
        "channels": int(layer.channels),
        "samples": samples,
        "repeats": repeats,
        "k": channels,
        "tape_methods": tape_keys,
        "machine": machine(),
        "timed": timed,
    }


def format_extended(r: dict) -> str:
    t = r["timed"]
    n = r["samples"]
    rows = [
        (
            "cam_family",
            (
                f"all gradient CAM methods together ({', '.join(r['tape_methods'])}), "
                f"{n} noise samples"
            ),
            f"Grad-CAM alone, {n} noise samples",
            1.1,
        ),
        (
            "guided",
            f"guided backprop of {n} images",
            f"one plain compiled input-gradient pass of {n} images",
            1.3,
        ),
        (
            "masked_forwards",
            f"Score-CAM, K = {r['k']} of {r['channels']} channels",
            f"{r['k']} plain compiled forward passes (chunks of {FORWARD_CHUNK_SIZE})",
            1.2,
        ),
    ]
    lines = [
        f"machine: {r['machine']}; timed in {clock_name()}",
        (
            f"model: {r['model']} {r['input']}, layer {r['layer']}; medians of {r['repeats']} "
            "interleaved rounds, ratio = median of the per-round ratios"
        ),
    ]
    for key, ours, base, goal in rows:
        o, b, ratio = t[key]
        lines.append(
            f"{ours}: {o * 1000:.1f} ms; {base}: {b * 1000:.1f} ms; "
            f"ratio {ratio:.2f} (goal: at most {goal})"
        )
    every, alone = r["formulas"]
    lines.append(
        f"the formulas after the shared tape pass: all gradient CAM methods "
        f"{every * 1000:.1f} ms, Grad-CAM alone {alone * 1000:.1f} ms (what asking for all "
        "of them adds to the pass)"
    )
    return "\n".join(lines)


def format_result(r: dict) -> str:
    lines = [
        f"machine: {r['machine']}; timed in {clock_name()}",
        f"model: {r['model']} {r['input']}, layer {r['layer']}, {r['samples']} noise samples",
        f"plain forward+backward of {r['samples']} images: {r['plain_s'] * 1000:8.1f} ms",
        f"ours (Grad-CAM + Grad-CAM++, smoothed):  {r['ours_s'] * 1000:8.1f} ms",
        (
            f"ratio ours / plain (median of {r['repeats']} interleaved rounds): {r['ratio']:.2f} "
            "(goal: at most 1.05)"
        ),
        (
            f"ours with target=None (one more forward pass of the clean image to pick the top "
            f"class): {r['ours_top_s'] * 1000:.1f} ms, ratio {r['ratio_top']:.2f}"
        ),
    ]
    if "xplique_s" in r:
        lines.append(
            f"xplique's Grad-CAM++ of the same {r['samples']} noisy images in one batch: "
            f"{r['xplique_s'] * 1000:.1f} ms; ratio ours / xplique {r['ratio_xplique']:.2f} "
            "(goal: at most 0.90)"
        )
    else:
        lines.append("xplique: not importable here (docs/BENCHMARKS.md: how to add it)")
    if "nested_s" in r:
        lines.append(
            f"three nested tapes, one image at a time: {r['nested_s'] * 1000:8.1f} ms "
            f"-> speed-up {r['speedup_vs_nested']:.1f}x"
        )
    return "\n".join(lines)
