"""Capture of activations and gradients: one batched ``tf.function`` + ``GradientTape`` pass
per fixed-size chunk, for plain images or noisy copies of them.

Why this shape:
- One tape gives the first gradient g of the pre-softmax score; Grad-CAM++'s second and
  third derivative terms are its powers (see weights.py), so no nested tapes are needed.
- The per-chunk function has a batch dimension of ``None`` and takes the class indices as a
  tensor, so it is traced once per (model, layer): changing the number of noise samples,
  the target or the number of images never retraces.
- Chunks of at most ``chunk_size`` items bound the memory however many samples are asked for.
- The graph is re-run through ``adapter.run_graph`` without building or changing anything on
  the shared model, so several threads (dashboard sessions) can use one capture at once.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from .adapter import LayerInfo, PerModel, model_facts, resolve_layer, run_graph  # noqa: E402
from .errors import ExplainerError  # noqa: E402

ProgressFn = Callable[[int, int], None]

DEFAULT_CHUNK_SIZE = 16
#: Images per call of the compiled forward pass. Measured on the skin-lesion model (254x254,
#: 2-core CPU): 106 ms per image in chunks of 8, 150 in 16, 200-320 in 32 (larger batches
#: fall out of the CPU caches); evaluation sends its 141 perturbed images through in these.
FORWARD_CHUNK_SIZE = 8


@dataclass
class GradientStats:
    """Per-image averages over the (noisy) copies: activations A and the first, second and
    third derivative terms g, g², g³ (float64), plus the clean images' logits."""

    activations: np.ndarray  # (N, h, w, K)
    d1: np.ndarray
    d2: np.ndarray
    d3: np.ndarray
    targets: np.ndarray  # (N,) int
    logits: np.ndarray | None  # (N, C) float32 of the clean images; None when not needed


def _input_specs(model: keras.Model) -> list[tf.TensorSpec]:
    specs = []
    for tensor in model.inputs:
        shape = [None] + list(tensor.shape[1:])
        specs.append(tf.TensorSpec(shape, dtype=tensor.dtype or "float32"))
    return specs


class ModelRunner:
    """Pre-softmax forward pass of a model, batched and traced once."""

    def __init__(self, model: keras.Model, chunk_size: int = FORWARD_CHUNK_SIZE):
        self.model = model
        self.chunk_size = chunk_size
        facts = model_facts(model)
        self.image_index = facts.image_index
        self.softmax_head = facts.softmax_head
        specs = _input_specs(model)

        def forward(*inputs: tf.Tensor) -> tf.Tensor:
            return tf.cast(run_graph(model, list(inputs), logits=True), tf.float32)

        self._forward = tf.function(forward, input_signature=specs)

    def logits(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        n = len(inputs[0])
        out = []
        for start in range(0, n, self.chunk_size):
            chunk = [np.asarray(x[start : start + self.chunk_size]) for x in inputs]
            out.append(self._forward(*chunk).numpy())
        return np.concatenate(out, axis=0) if out else np.zeros((0, 0), np.float32)


class GradientCapture:
    """Activations of one layer and gradients of a class score with respect to them."""

    def __init__(self, model: keras.Model, layer: LayerInfo | str | None = None,
                 chunk_size: int = DEFAULT_CHUNK_SIZE):
        self.model = model
        self.layer = resolve_layer(model, layer)
        self.chunk_size = int(chunk_size)
        self.runner = get_runner(model)
        self.image_index = self.runner.image_index
        self.n_classes = model_facts(model).n_classes
        path = self.layer.parts
        specs = _input_specs(model) + [tf.TensorSpec([None], tf.int32)]

        def step(*args: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
            inputs, targets = list(args[:-1]), args[-1]
            captured: list[tf.Tensor] = []
            with tf.GradientTape() as tape:

                def watch(activation: tf.Tensor) -> tf.Tensor:
                    tape.watch(activation)
                    captured.append(activation)
                    return activation

                logits = tf.cast(run_graph(model, inputs, path, on_capture=watch), tf.float32)
                top = tf.argmax(logits, axis=-1, output_type=tf.int32)
                chosen = tf.where(targets < 0, top, targets)
                score = tf.gather(logits, chosen, axis=1, batch_dims=1)
                total = tf.reduce_sum(score)
            if not captured:
                raise ExplainerError(f"layer '{self.layer.path}' is not on the path to the output")
            activation = captured[0]
            gradient = tape.gradient(total, activation)
            if gradient is None:
                gradient = tf.zeros_like(activation)
            return (tf.cast(activation, tf.float32), tf.cast(gradient, tf.float32), logits, chosen)

        self._step = tf.function(step, input_signature=specs)

        image_index = self.image_index
        smooth_specs = _input_specs(model) + [
            tf.TensorSpec([None], tf.int32),  # targets
            tf.TensorSpec([None], tf.float32),  # noise standard deviation per item
            tf.TensorSpec([2], tf.int64),  # stateless seed of this chunk
            tf.TensorSpec([None], tf.int32),  # segment (image) of each item within the chunk
            tf.TensorSpec([], tf.int32),  # number of segments
        ]

        def smooth_step(*args: tf.Tensor) -> tuple[tf.Tensor, ...]:
            """Noisy copies made on the device, their A, g, g², g³ summed per image in float64
            (g³ of a small float32 gradient underflows; float64 does not)."""
            n_inputs = len(smooth_specs) - 5
            inputs = list(args[:n_inputs])
            targets, stds, seed, segments, n_segments = args[n_inputs:]
            image = inputs[image_index]
            noise = chunk_noise(tf.shape(image), seed)
            inputs[image_index] = image + tf.reshape(stds, [-1, 1, 1, 1]) * noise
            a, g, _, _ = step(*inputs, targets)
            a64, g64 = tf.cast(a, tf.float64), tf.cast(g, tf.float64)
            g2 = g64 * g64

            def seg(x: tf.Tensor) -> tf.Tensor:
                return tf.math.unsorted_segment_sum(x, segments, n_segments)

            return seg(a64), seg(g64), seg(g2), seg(g2 * g64)

        self._smooth_step = tf.function(smooth_step, input_signature=smooth_specs)

    @property
    def tracing_count(self) -> int:
        """How many times the two compiled steps (plain, smoothed) were traced: each at most
        once, whatever the number of images, samples, targets or the seed."""
        return (self._step.experimental_get_tracing_count()
                + self._smooth_step.experimental_get_tracing_count())

    def capture(self, inputs: Sequence[np.ndarray], targets: np.ndarray) -> tuple[np.ndarray, ...]:
        """One chunk: (activations, gradients, logits, targets) as NumPy arrays."""
        a, g, logits, chosen = self._step(*inputs, tf.constant(targets, tf.int32))
        return a.numpy(), g.numpy(), logits.numpy(), chosen.numpy()

    def stats(
        self,
        images: np.ndarray,
        extra_inputs: Sequence[np.ndarray] = (),
        targets: np.ndarray | None = None,
        n_samples: int = 0,
        sigma: float = 0.15,
        seed: int | None = None,
        progress: ProgressFn | None = None,
    ) -> GradientStats:
        """Average A, g, g², g³ per image over ``n_samples`` noisy copies (or the image itself
        when ``n_samples`` is 0). ``targets`` of -1 (or None) mean each image's top class by
        the clean image's pre-softmax score. Noise: Gaussian with standard deviation
        ``sigma * (max - min)`` of each image; copy s of image i is item i*n_samples+s, and
        each chunk of items draws ``chunk_noise`` from (seed, chunk index)."""
        n = len(images)
        if targets is None:
            targets = np.full(n, -1, dtype=np.int32)
        targets = np.asarray(targets, dtype=np.int32)
        extra = [np.asarray(x) for x in extra_inputs]

        def assemble(image_rows: np.ndarray, batch: np.ndarray) -> list[np.ndarray]:
            inputs = [x[image_rows] for x in extra]
            inputs.insert(self.image_index, batch)
            return inputs

        if n_samples <= 0:
            acts, grads, logits_all, chosen_all = [], [], [], []
            total = n
            for start in range(0, n, self.chunk_size):
                rows = np.arange(start, min(n, start + self.chunk_size))
                a, g, logits, chosen = self.capture(assemble(rows, images[rows]), targets[rows])
                acts.append(a)
                grads.append(g)
                logits_all.append(logits)
                chosen_all.append(chosen)
                if progress:
                    progress(int(rows[-1]) + 1, total)
            a = np.concatenate(acts)
            g = np.concatenate(grads).astype(np.float64)
            return GradientStats(a.astype(np.float64), g, g * g, g * g * g,
                                 np.concatenate(chosen_all), np.concatenate(logits_all))

        # Smoothed: the target comes from the clean image, then every noisy copy is explained
        # for that same class.
        # (A clean forward pass is only spent when a target must be chosen from it.)
        clean_logits = None
        if (targets < 0).any():
            clean_logits = self.runner.logits(assemble(np.arange(n), images))
            targets = np.where(targets < 0, np.argmax(clean_logits, axis=-1), targets)
        targets = targets.astype(np.int32)
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31))
        flat = images.reshape(n, -1)
        stds = (float(sigma) * (flat.max(axis=1) - flat.min(axis=1))).astype(np.float32)
        sums = None
        total = n * n_samples
        for chunk_index, start in enumerate(range(0, total, self.chunk_size)):
            items = np.arange(start, min(total, start + self.chunk_size))
            rows = items // n_samples  # the image each noisy copy comes from
            image_rows, segments = np.unique(rows, return_inverse=True)
            parts = self._smooth_step(
                *assemble(rows, images[rows]),
                tf.constant(targets[rows], tf.int32),
                tf.constant(stds[rows], tf.float32),
                tf.constant([seed, chunk_index], tf.int64),
                tf.constant(segments.astype(np.int32)),
                tf.constant(len(image_rows), tf.int32),
            )
            if sums is None:
                shape = (n,) + tuple(parts[0].shape[1:])
                sums = [np.zeros(shape, np.float64) for _ in range(4)]
            for acc, part in zip(sums, parts):
                acc[image_rows] += part.numpy()
            if progress:
                progress(int(items[-1]) + 1, total)
        sum_a, sum_1, sum_2, sum_3 = sums
        scale = 1.0 / n_samples
        return GradientStats(sum_a * scale, sum_1 * scale, sum_2 * scale, sum_3 * scale,
                             targets, clean_logits)


def chunk_noise(shape: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Standard normal noise for one chunk: stateless, so the same (seed, chunk) always gives
    the same noise, on any thread, without shared RNG state."""
    return tf.random.stateless_normal(shape, seed=seed, dtype=tf.float32)


# --- caches: one runner per model, one capture per (model, layer) ----------------------------

_lock = threading.RLock()
_runners = PerModel(ModelRunner)
_captures = PerModel(lambda model: {})


def get_runner(model: keras.Model) -> ModelRunner:
    """The model's cached pre-softmax forward pass (built once, under a lock)."""
    return _runners.get(model)


def get_capture(model: keras.Model, layer: LayerInfo | str | None = None) -> GradientCapture:
    """The cached ``GradientCapture`` for (model, layer): built once, shared by threads."""
    info = resolve_layer(model, layer)
    with _lock:
        per_model = _captures.get(model)
        capture = per_model.get(info.path)
        if capture is None:
            capture = GradientCapture(model, info)
            per_model[info.path] = capture
        return capture
