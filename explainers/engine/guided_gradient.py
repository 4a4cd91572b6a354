"""The input gradient of the pre-softmax class score through guided ReLUs (Springenberg et
al. 2015), without changing the user's model.

Guided backprop passes back, at every ReLU, only positive gradient where the ReLU's input was
positive: grad_in = relu(grad_out) · [x > 0]. The ordinary backward pass of a ReLU already
multiplies by [x > 0] (for ReLU6 by [0 < x < 6]); so it is enough to put, right after every
ReLU output, an identity whose gradient is relu(grad_out). That works the same for ReLU
layers, ``Activation("relu")``, ReLU6, ``keras.ops.relu`` and ``activation="relu"`` fused into
Conv/Dense layers (whose pre-activation is never exposed), in nested sub-models too. The graph
is re-run through ``adapter.run_graph`` with that hook: nothing on the shared model is built
or changed, so dashboard sessions explaining the same model at once are unaffected.

One ``GuidedGradient`` per model, compiled once (batch dimension ``None``; inputs in fixed
chunks), kept in a weak cache that ends with the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from explainers.engine.adapter import PerModel, run_graph
from explainers.engine.capture import (
    PASS_SLOTS,
    ProgressFn,
    _input_specs,
    get_runner,
    gradient_chunk_size,
)
from explainers.errors import ExplainerError

RELU_NAMES = ("relu", "relu6")


def _activation_name(fn: Any) -> str:
    name = getattr(fn, "__name__", "") or ""
    return name.lower()


def is_relu(op: Any) -> bool:
    """Whether the operation's output is a ReLU of something: a ReLU layer, an Activation
    layer or a layer with a fused relu / relu6 activation, or the ``keras.ops.relu`` op."""
    if isinstance(op, keras.Model):
        return False
    if isinstance(op, keras.layers.ReLU):
        return True
    if type(op).__name__ in ("Relu", "Relu6"):
        return True
    return _activation_name(getattr(op, "activation", None)) in RELU_NAMES


def _operations(model: keras.Model):
    """Every layer and ``keras.ops`` operation of the model's graph, nested models included."""
    for op in getattr(model, "operations", None) or model.layers:
        yield op
        if isinstance(op, keras.Model):
            yield from _operations(op)


def count_relus(model: keras.Model) -> int:
    """How many operations of the model (nested ones included) end in a ReLU."""
    return sum(1 for op in _operations(model) if is_relu(op))


@tf.custom_gradient
def _positive_gradient(x: tf.Tensor):
    """Identity forward; backward lets only positive gradient through."""

    def grad(dy: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu(dy)

    return tf.identity(x), grad


def _guide(op: Any, out: Any) -> Any:
    if is_relu(op) and isinstance(out, tf.Tensor):
        return _positive_gradient(out)
    return out


class GuidedGradient:
    """∂S_c/∂input through guided ReLUs (``guided=True``) or plain (``guided=False``, the
    baseline the benchmark compares with), one compiled function each."""

    def __init__(self, model: keras.Model, chunk_size: int | None = None):
        self.model = model
        self.chunk_size = int(chunk_size or gradient_chunk_size(model))  # back to the input
        self.image_index = get_runner(model).image_index
        self.n_relus = count_relus(model)
        specs = [*_input_specs(model), tf.TensorSpec([None], tf.int32)]
        image_index = self.image_index

        def make(guided: bool):
            def step(*args: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                inputs, targets = list(args[:-1]), args[-1]
                with tf.GradientTape() as tape:
                    tape.watch(inputs[image_index])
                    logits = tf.cast(
                        run_graph(model, inputs, logits=True, after_op=_guide if guided else None),
                        tf.float32,
                    )
                    top = tf.argmax(logits, axis=-1, output_type=tf.int32)
                    chosen = tf.where(targets < 0, top, targets)
                    score = tf.reduce_sum(tf.gather(logits, chosen, axis=1, batch_dims=1))
                grad = tape.gradient(score, inputs[image_index])
                if grad is None:
                    grad = tf.zeros_like(inputs[image_index])
                return tf.cast(grad, tf.float32), chosen

            return tf.function(step, input_signature=specs)

        self._guided = make(True)
        self._plain = make(False)

    def __call__(
        self,
        inputs: Sequence[np.ndarray],
        targets: np.ndarray,
        guided: bool = True,
        progress: ProgressFn | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The input gradient ``(N, H, W, C)`` float32 for ``inputs`` (``model.inputs`` order)
        and ``targets`` (-1: each image's top class), and the classes explained ``(N,)``."""
        if guided and self.n_relus == 0:
            raise ExplainerError(
                "guided backpropagation needs ReLU activations, and this model has none "
                "(no ReLU layer, relu / relu6 activation or keras.ops.relu)"
            )
        fn = self._guided if guided else self._plain
        n = len(inputs[0])
        grads, chosen = [], []
        for start in range(0, n, self.chunk_size):
            chunk = [np.asarray(x[start : start + self.chunk_size]) for x in inputs]
            with PASS_SLOTS:
                grad, classes = fn(
                    *chunk,
                    tf.constant(np.asarray(targets[start : start + self.chunk_size], np.int32)),
                )
                grads.append(grad.numpy())
                chosen.append(classes.numpy())
            if progress:
                progress(min(n, start + self.chunk_size), n)
        return np.concatenate(grads, axis=0), np.concatenate(chosen, axis=0)


_cache = PerModel(GuidedGradient)


def get_guided(model: keras.Model) -> GuidedGradient:
    """The model's cached ``GuidedGradient`` (built once under a lock; gone with the model)."""
    return _cache.get(model)
