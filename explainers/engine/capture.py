"""Capture of activations and gradients: one batched ``tf.function`` + ``GradientTape`` pass
per fixed-size chunk, for plain images or noisy copies of them.

Why this shape:
- One tape gives the first gradient g of the pre-softmax score; Grad-CAM++'s second and
  third derivative terms are its powers (see weights.py), so no nested tapes are needed.
- The per-chunk function has a batch dimension of ``None`` and takes the class indices as a
  tensor, so it is traced once per (model, layer): changing the number of noise samples,
  the target or the number of images never retraces.
- Chunks of a bounded number of items (``gradient_chunk_size``, ``FORWARD_CHUNK_SIZE``), and
  at most ``PASS_SLOTS`` chunks in flight at once in the whole process, bound the memory one
  explanation needs at its peak however many samples or sessions ask (``CALL_BUDGET`` per
  call). With TensorFlow on the system allocator (``engine/allocator.py``) that peak is
  returned when the call ends; on oneDNN's default pool it would stay resident for the life
  of the process.
- The graph is re-run through ``adapter.run_graph`` without building or changing anything on
  the shared model, so several threads (dashboard sessions) can use one capture at once.
"""

from __future__ import annotations

import gc
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

from explainers.engine.adapter import (
    LayerInfo,
    PerModel,
    _output_shape,
    iter_layers,
    model_facts,
    resolve_layer,
    run_graph,
)
from explainers.errors import ExplainerError

ProgressFn = Callable[[int, int], None]

#: Items per call of the compiled passes: as many as one call's memory budget allows, since
#: larger calls are faster per item (a fixed cost per call, ~8 ms on a 2-core CPU). Measured
#: with the system allocator (docs/BENCHMARKS.md, "Items per call"): a call's transient peak
#: is about 100-150 MB plus, per item, 15 MB for a last-layer gradient (both models), 43 MB
#: for MobileNetV2's guided (input) gradient, 13 MB for its forward pass, and 150 MB for the
#: skin-lesion Xception's block2 gradient (its 4 items: 707 MB; 8: 1363 MB).
CALL_BUDGET = 768 * 2**20  # bytes one compiled call may take at its peak
FORWARD_CHUNK_SIZE = 8  # forward passes (prediction, evaluation, Score-CAM): ~13-20 MB per item
GRADIENT_CHUNK_SIZE = 4  # gradient passes where the model's layer sizes are unknown
MAX_GRADIENT_CHUNK = 16  # beyond this, no faster per item on a CPU
#: Compiled calls running at once in this process (dashboard sessions, threads): more would
#: not be faster on a CPU whose cores one call already uses, and each adds its peak (up to
#: ``CALL_BUDGET``) to the process's memory at that moment.
PASS_SLOTS = threading.BoundedSemaphore(2)
#: Called before each compiled call takes a slot: where a server that shares the process among
#: several people hands the next call to whoever's turn it is (``dashboard.frame.fair_share``).
_before_pass: Callable[[], None] | None = None


def set_before_pass(hook: Callable[[], None] | None) -> None:
    """Install ``hook`` (None: none), called before every chunk's compiled call in this process."""
    global _before_pass
    _before_pass = hook


def _take_turn() -> None:
    if _before_pass is not None:
        _before_pass()


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
        shape = [None, *list(tensor.shape[1:])]
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
            _take_turn()
            with PASS_SLOTS:
                out.append(self._forward(*chunk).numpy())
        return np.concatenate(out, axis=0) if out else np.zeros((0, 0), np.float32)


class GradientCapture:
    """Activations of one layer and gradients of a class score with respect to them."""

    def __init__(
        self,
        model: keras.Model,
        layer: LayerInfo | str | None = None,
        chunk_size: int | None = None,
    ):
        self.model = model
        self.layer = resolve_layer(model, layer)
        self.chunk_size = int(chunk_size or gradient_chunk_size(model, self.layer.parts))
        self.runner = get_runner(model)
        self.image_index = self.runner.image_index
        self.n_classes = model_facts(model).n_classes
        path = self.layer.parts

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

        image_index, chunk_size = self.image_index, self.chunk_size
        pass_specs = [
            *_input_specs(model),
            tf.TensorSpec([None], tf.int32),  # targets (-1: the item's top class)
            tf.TensorSpec([None], tf.float32),  # noise standard deviation per item (0: none)
            tf.TensorSpec([chunk_size, 2], tf.int64),  # each item's seed (item_seeds), padded
            tf.TensorSpec([None], tf.int32),  # segment (image) of each item within the chunk
            tf.TensorSpec([], tf.int32),  # number of segments
        ]

        def one_pass(*args: tf.Tensor) -> tuple[tf.Tensor, ...]:
            """Items (noisy copies made on the device, or the images themselves with a noise
            of 0) and their A, g, g², g³ summed per segment in float64 (g³ of a small float32
            gradient underflows; float64 does not), plus each item's logits and class."""
            n_inputs = len(pass_specs) - 5
            inputs = list(args[:n_inputs])
            targets, stds, seeds, segments, n_segments = args[n_inputs:]
            image = inputs[image_index]
            noise = tf.cond(
                tf.reduce_any(stds > 0),
                lambda: batch_noise(tf.shape(image), seeds, chunk_size),
                lambda: tf.zeros_like(image),
            )
            inputs[image_index] = image + tf.reshape(stds, [-1, 1, 1, 1]) * noise
            a, g, logits, chosen = step(*inputs, targets)
            a64, g64 = tf.cast(a, tf.float64), tf.cast(g, tf.float64)
            g2 = g64 * g64

            def seg(x: tf.Tensor) -> tf.Tensor:
                return tf.math.unsorted_segment_sum(x, segments, n_segments)

            return seg(a64), seg(g64), seg(g2), seg(g2 * g64), logits, chosen

        # One compiled graph per (model, layer) serves plain and smoothed maps alike: half the
        # tracing time and the resident graph memory of a plain step beside a smoothed one.
        self._pass = tf.function(one_pass, input_signature=pass_specs)

    @property
    def tracing_count(self) -> int:
        """How many times the compiled pass was traced: at most once, whatever the number of
        images, samples, targets or the seed, plain or smoothed."""
        return self._pass.experimental_get_tracing_count()

    def _run(
        self,
        inputs: list[np.ndarray],
        targets: np.ndarray,
        stds: np.ndarray,
        seeds: np.ndarray,
        segments: np.ndarray,
        n_segments: int,
    ) -> list[np.ndarray]:
        """One chunk through the compiled pass (in one of the process's ``PASS_SLOTS``)."""
        _take_turn()
        with PASS_SLOTS:
            return [
                t.numpy()
                for t in self._pass(
                    *inputs,
                    tf.constant(targets, tf.int32),
                    tf.constant(stds, tf.float32),
                    tf.constant(seeds, tf.int64),
                    tf.constant(segments, tf.int32),
                    tf.constant(n_segments, tf.int32),
                )
            ]

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
        ``sigma * (max - min)`` of each image; copy s of image i is item i*n_samples+s and
        draws ``item_noise`` from (seed, i, s) alone, so a seed gives the same maps whatever
        the items per call."""
        n = len(images)
        if targets is None:
            targets = np.full(n, -1, dtype=np.int32)
        targets = np.asarray(targets, dtype=np.int32)
        extra = [np.asarray(x) for x in extra_inputs]

        def assemble(image_rows: np.ndarray, batch: np.ndarray) -> list[np.ndarray]:
            inputs = [x[image_rows] for x in extra]
            inputs.insert(self.image_index, batch)
            return inputs

        if n_samples <= 0:  # each image its own segment, with no noise
            parts_all = []
            for start in range(0, n, self.chunk_size):
                rows = np.arange(start, min(n, start + self.chunk_size))
                parts_all.append(
                    self._run(
                        assemble(rows, images[rows]),
                        targets[rows],
                        np.zeros(len(rows), np.float32),
                        np.zeros((self.chunk_size, 2), np.int64),
                        np.arange(len(rows)),
                        len(rows),
                    )
                )
                if progress:
                    progress(int(rows[-1]) + 1, n)
            a, d1, d2, d3, logits, chosen = (
                np.concatenate(p) for p in zip(*parts_all, strict=False)
            )
            return GradientStats(a, d1, d2, d3, chosen, logits)

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
        for start in range(0, total, self.chunk_size):
            items = np.arange(start, min(total, start + self.chunk_size))
            rows = items // n_samples  # the image each noisy copy comes from
            image_rows, segments = np.unique(rows, return_inverse=True)
            parts = self._run(
                assemble(rows, images[rows]),
                targets[rows],
                stds[rows],
                _padded(item_seeds(seed, rows, items % n_samples), self.chunk_size),
                segments,
                len(image_rows),
            )[:4]
            if sums is None:
                shape = (n, *tuple(parts[0].shape[1:]))
                sums = [np.zeros(shape, np.float64) for _ in range(4)]
            for acc, part in zip(sums, parts, strict=False):
                acc[image_rows] += part
            if progress:
                progress(int(items[-1]) + 1, total)
        sum_a, sum_1, sum_2, sum_3 = sums
        scale = 1.0 / n_samples
        return GradientStats(
            sum_a * scale, sum_1 * scale, sum_2 * scale, sum_3 * scale, targets, clean_logits
        )


def gradient_chunk_size(model: keras.Model, path: Sequence[str] | None = None) -> int:
    """Items per gradient call for the layer at ``path`` (None: the model input, as guided
    backprop needs): the largest power of two (1 to ``MAX_GRADIENT_CHUNK``) whose estimated
    peak fits ``CALL_BUDGET``. One item's peak: 4 bytes x (3 x the largest layer output, the
    forward pass's transient tensors, + 0.93 x the outputs from the layer to the model's
    output, kept for the backward pass). Fitted on the measured peaks (system allocator,
    docs/BENCHMARKS.md) of the skin-lesion Xception at 254: last layer 23 estimated / 15-27 MB
    measured, block2 150 / 133-164 MB per item; it over-estimates MobileNetV2's guided pass
    (91 / 43 MB: separable convolutions keep more than their outputs). Result: 16 items at
    both models' last layers, 8 for MobileNetV2's guided backprop, 4 for the skin-lesion
    model's block2 and guided backprop."""
    sizes, start = [], None
    for parts, layer in iter_layers(model):
        if path is not None and tuple(parts) == tuple(path):
            start = len(sizes)
        shape = _output_shape(layer)
        known = shape is not None and len(shape) > 1 and all(isinstance(d, int) for d in shape[1:])
        sizes.append(int(np.prod(shape[1:])) if known else 0)
    if path is None:
        start = 0
    if start is None or not any(sizes):
        return GRADIENT_CHUNK_SIZE
    per_item = 4.0 * (3 * max(sizes) + 0.93 * sum(sizes[start:]))
    fits = int(max(1, min(MAX_GRADIENT_CHUNK, CALL_BUDGET // per_item)))
    return 1 << (fits.bit_length() - 1)  # a power of two: 8 or 16 noise samples split evenly


def item_seeds(seed: int, images: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """The stateless seed of noisy copy ``samples[j]`` of image ``images[j]``: (seed, image
    << 32 | sample). Philox keyed by the seed, each item its own block of counters: items never
    share noise, and an item's noise depends on nothing else (not the chunk, the thread or
    the number of images or sessions)."""
    images = np.asarray(images, np.int64)
    samples = np.asarray(samples, np.int64)
    out = np.empty((len(images), 2), np.int64)
    out[:, 0] = int(seed) % 2**63
    out[:, 1] = (images << 32) | (samples & 0xFFFFFFFF)
    return out


def _padded(seeds: np.ndarray, rows: int) -> np.ndarray:
    """``seeds`` with zero rows appended up to ``rows`` (the compiled pass takes a fixed count)."""
    out = np.zeros((rows, 2), np.int64)
    out[: len(seeds)] = seeds
    return out


def item_noise(shape: Sequence[int] | tf.Tensor, seed: Sequence[int] | tf.Tensor) -> tf.Tensor:
    """Standard normal noise of one item (``shape`` without the batch axis) from its
    ``item_seeds`` row: stateless, so the same seed always gives the same noise."""
    return tf.random.stateless_normal(shape, seed=seed, dtype=tf.float32)


def batch_noise(shape: tf.Tensor, seeds: tf.Tensor, count: int) -> tf.Tensor:
    """``item_noise`` of the first ``shape[0]`` items of a chunk, stacked; ``seeds`` holds
    ``count`` rows (the chunk size). One op per item, unrolled: they run in parallel, and as
    fast as one op for the whole chunk (a ``map_fn`` loop was several times slower)."""
    items = [item_noise(shape[1:], seeds[j]) for j in range(count)]
    return tf.stack(items)[: shape[0]]


# --- caches: one runner per model, the captures of its last few layers ---------------------------
#: Compiled gradient steps kept per model, least recently used dropped. Each is a traced graph
#: of the model's forward and backward pass: about 35 MB resident for the skin-lesion model,
#: returned when it is dropped (measured: six layers +210 MB, back to the start once dropped),
#: so a dashboard session stepping through every layer does not keep one per layer visited.
#: A dropped layer is traced again on its next use (about 1 s on a 2-core CPU). Two: the layer
#: in use and the one before it (a session uses one layer at a time on every page).
TRACED_LAYERS = 2

_lock = threading.RLock()
_runners = PerModel(ModelRunner)
_captures = PerModel(lambda model: OrderedDict())


def get_runner(model: keras.Model) -> ModelRunner:
    """The model's cached pre-softmax forward pass (built once, under a lock)."""
    return _runners.get(model)


def get_capture(model: keras.Model, layer: LayerInfo | str | None = None) -> GradientCapture:
    """The cached ``GradientCapture`` for (model, layer): built once, shared by threads; at most
    ``TRACED_LAYERS`` per model are kept (a caller still using a dropped one keeps it alive)."""
    info = resolve_layer(model, layer)
    dropped = False
    with _lock:
        per_model = _captures.get(model)
        capture = per_model.get(info.path)
        if capture is None:
            capture = GradientCapture(model, info)
            per_model[info.path] = capture
        per_model.move_to_end(info.path)
        while len(per_model) > TRACED_LAYERS:
            per_model.popitem(last=False)
            dropped = True
    if dropped:
        gc.collect()  # a capture and its traced functions refer to each other: a cycle
    return capture
