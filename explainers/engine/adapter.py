"""Model adapter: find layers anywhere in a Keras model and run its graph so that one call
yields a chosen layer's activations together with the pre-softmax class scores.

Why not ``keras.Model(model.inputs, [layer.output, model.output])``? Transfer-learned models
nest their backbone as a sub-model, whose layers' symbolic outputs belong to the sub-model's
own graph, not the outer one: that construction fails ("not connected to inputs"). Instead
we re-run the outer graph node by node (as ``Functional.call`` itself does) and, when the
node is the nested backbone, run *its* graph the same way, recording the activation on the
way. Nothing is built or mutated on the shared model, so this is safe from several threads.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from explainers.engine.allocator import prefer_system_allocator
from explainers.errors import ExplainerError

prefer_system_allocator()  # this module is where the package's engine first imports TensorFlow

import keras  # noqa: E402  (after the allocator is chosen)


@dataclass(frozen=True)
class LayerInfo:
    """A layer a map can be computed at: its name, its path through nested sub-models
    (``"xception/block14_sepconv2_act"``) and its output shape ``(None, h, w, channels)``."""

    name: str
    path: str
    output_shape: tuple

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))

    @property
    def grid(self) -> tuple[int | None, int | None]:
        """Height and width of the layer's feature-map grid."""
        return self.output_shape[1], self.output_shape[2]

    @property
    def channels(self) -> int | None:
        return self.output_shape[3]


def _is_model(layer: Any) -> bool:
    return isinstance(layer, keras.Model)


def _output_shape(layer: Any) -> tuple | None:
    """The layer's (first) output shape, or None when it has none or several call sites."""
    try:
        out = layer.output
    except Exception:  # noqa: BLE001 - a layer called several times, or never built: Keras says so in several ways
        return None
    if isinstance(out, (list, tuple)):
        if len(out) != 1:
            return None
        out = out[0]
    shape = getattr(out, "shape", None)
    return tuple(shape) if shape is not None else None


def iter_layers(
    model: keras.Model, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every layer of ``model`` in graph order, descending into nested sub-models."""
    for layer in model.layers:
        path = (*prefix, layer.name)
        yield path, layer
        if _is_model(layer):
            yield from iter_layers(layer, path)


def _is_spatial(shape: tuple | None) -> bool:
    if shape is None or len(shape) != 4:
        return False
    h, w = shape[1], shape[2]
    return (h is None or h > 1) and (w is None or w > 1)


def candidate_layers(model: keras.Model) -> list[LayerInfo]:
    """Layers whose output is a 4-D feature map with a spatial size above 1, nested ones too,
    in graph order (the last one is the default: the most semantic, still spatial, layer)."""
    found = []
    for path, layer in iter_layers(model):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = _output_shape(layer)
        if _is_spatial(shape):
            found.append(LayerInfo(layer.name, "/".join(path), shape))
    return found


def resolve_layer(model: keras.Model, layer: str | LayerInfo | None = None) -> LayerInfo:
    """The layer to explain at: ``None`` picks the last spatial layer; a name is looked up
    anywhere in the model; a name used twice must be given as a path ``outer/inner``."""
    if isinstance(layer, LayerInfo):
        return layer
    if layer is None:
        candidates = candidate_layers(model)
        if not candidates:
            raise ExplainerError(
                "the model has no layer with a spatial output (4-D: batch, height, width, "
                "channels), so there is nothing to draw a heatmap on"
            )
        return candidates[-1]
    if not isinstance(layer, str) or not layer.strip():
        raise ExplainerError(f"layer must be a layer name, got {layer!r}")
    wanted = layer.strip().strip("/")
    if "/" in wanted:
        matches = [(p, l) for p, l in iter_layers(model) if "/".join(p) == wanted]
        if not matches:  # allow a path that leaves out outer levels
            matches = [(p, l) for p, l in iter_layers(model) if "/".join(p).endswith("/" + wanted)]
    else:
        matches = [(p, l) for p, l in iter_layers(model) if p[-1] == wanted]
    if not matches:
        raise ExplainerError(
            f"no layer named '{wanted}' in the model (list them with: python -m explainers layers)"
        )
    if len(matches) > 1:
        paths = ", ".join("/".join(p) for p, _ in matches[:4])
        raise ExplainerError(f"several layers are named '{wanted}' ({paths}); give the full path")
    path, found = matches[0]
    shape = _output_shape(found)
    if not _is_spatial(shape):
        raise ExplainerError(
            f"layer '{'/'.join(path)}' has output shape {shape}; a heatmap needs a 4-D "
            "(batch, height, width, channels) output with height and width above 1"
        )
    return LayerInfo(found.name, "/".join(path), shape)


def image_input_index(model: keras.Model) -> int:
    """Index in ``model.inputs`` of the image: the first 4-D input."""
    for i, tensor in enumerate(model.inputs):
        if len(tensor.shape) == 4:
            return i
    raise ExplainerError(
        "the model has no image input (none of its inputs is 4-D: batch, height, width, channels)"
    )


# --- the model's facts, worked out once ------------------------------------------------------


@dataclass(frozen=True)
class ModelFacts:
    """What the explainer needs to know about a model's inputs and output, worked out once per
    model (``model_facts``) and carried by ``core`` and ``capture`` instead of being re-derived
    by every helper: which input is the image, the other inputs, the head's kind, the classes."""

    image_index: int
    image_shape: tuple  # (H, W, C) of the image input, None where the model leaves it open
    extra_inputs: tuple  # the other inputs' Keras tensors, in ``model.inputs`` order
    head: str  # ``head_kind(model)``
    n_classes: int | None

    @property
    def softmax_head(self) -> bool:
        return self.head != "linear"

    def inputs(self, images: Any, extra: Sequence[Any]) -> list:
        """The model's inputs in ``model.inputs`` order: the extra inputs with the images at
        the image input's place."""
        out = list(extra)
        out.insert(self.image_index, images)
        return out


class PerModel:
    """One object per model, built once under a lock by ``factory(model)`` and dropped with the
    model (weakly keyed): the facts, the compiled forward pass, the guided gradient. Threads
    (dashboard sessions) share them; nothing is stored on the model itself."""

    def __init__(self, factory: Callable[[Any], Any]):
        self.factory = factory
        self._lock = threading.RLock()
        self._items: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def get(self, model: Any) -> Any:
        with self._lock:
            item = self._items.get(model)
            if item is None:
                item = self.factory(model)
                self._items[model] = item
            return item


def _facts_of(model: keras.Model) -> ModelFacts:
    index = image_input_index(model)
    outputs = getattr(model, "outputs", None) or []
    return ModelFacts(
        image_index=index,
        image_shape=tuple(model.inputs[index].shape[1:]),
        extra_inputs=tuple(t for i, t in enumerate(model.inputs) if i != index),
        head=head_kind(model),
        n_classes=int(outputs[0].shape[-1]) if outputs and outputs[0].shape[-1] else None,
    )


_facts = PerModel(_facts_of)


def model_facts(model: keras.Model) -> ModelFacts:
    """The model's ``ModelFacts`` (worked out once, kept for as long as the model lives)."""
    return _facts.get(model)


# --- the softmax head -----------------------------------------------------------------------


def _activation_name(fn: Any) -> str:
    return getattr(fn, "__name__", "") or ""


def _head_operation(model: keras.Model) -> Any:
    """The operation that produces the model's (first) output."""
    if isinstance(model, keras.Sequential):
        return model.layers[-1] if model.layers else None
    history = getattr(model.outputs[0], "_keras_history", None)
    return history[0] if history else None


def head_kind(model: keras.Model) -> str:
    """How the model's output relates to its logits: ``"softmax-dense"`` (a Dense layer with
    a softmax activation), ``"softmax-layer"`` (a separate Softmax / Activation layer),
    ``"nested"`` (the head sits inside a sub-model), ``"softmax-other"`` (another layer type
    with a softmax activation: scores become log-probabilities) or ``"linear"``."""
    op = _head_operation(model)
    if op is None:
        return "linear"
    if _is_model(op):
        inner = head_kind(op)
        return "nested" if inner != "linear" else "linear"
    if isinstance(op, keras.layers.Softmax):
        return "softmax-layer"
    if isinstance(op, keras.layers.Activation) and _activation_name(op.activation) == "softmax":
        return "softmax-layer"
    if _activation_name(getattr(op, "activation", None)) == "softmax":
        return "softmax-dense" if isinstance(op, keras.layers.Dense) else "softmax-other"
    return "linear"


def has_softmax_head(model: keras.Model) -> bool:
    return head_kind(model) != "linear"


def _dense_logits(layer: keras.layers.Dense, x: Any) -> Any:
    """The Dense layer's output before its softmax, with its own weights."""
    y = keras.ops.matmul(x, layer.kernel)
    if layer.use_bias:
        y = keras.ops.add(y, layer.bias)
    return y


# --- running the graph ----------------------------------------------------------------------


def _call(op: Any, args: Sequence[Any], kwargs: dict) -> Any:
    """Call one operation in inference mode (dropout off, batch-norm moving statistics)."""
    context = getattr(op, "_call_context_args", None)
    if context is not None:
        if "training" in context:
            kwargs = {**kwargs, "training": False}
    elif getattr(op, "_call_has_training_arg", False):
        kwargs = {**kwargs, "training": False}
    return op(*args, **kwargs)


def run_graph(
    model: keras.Model,
    inputs: Sequence[Any],
    path: Sequence[str] = (),
    on_capture: Callable[[Any], Any] | None = None,
    logits: bool = True,
    after_op: Callable[[Any, Any], Any] | None = None,
) -> Any:
    """Run ``model`` on ``inputs`` (a list in ``model.inputs`` order).

    ``path`` names the layer whose output is handed to ``on_capture`` (which may return a
    replacement tensor, e.g. one a GradientTape watches); with ``logits`` the softmax of the
    head is left out, so the result is the pre-softmax class scores. ``after_op(op, output)``,
    when given, sees the output of every operation, nested sub-models' layers included (they
    are then run layer by layer), and returns the tensor to go on with: guided backprop uses it
    to change the gradient of ReLU outputs without touching the model. Returns the output.
    """
    kind = head_kind(model) if logits else "linear"
    head = _head_operation(model) if kind != "linear" else None
    target = path[0] if path else None

    def wrap(op: Any) -> Callable:
        def call(*args: Any, **kwargs: Any) -> Any:
            if target is not None and getattr(op, "name", None) == target:
                if len(path) > 1:
                    x = args[0] if len(args) == 1 else list(args)
                    sub_inputs = x if isinstance(x, (list, tuple)) else [x]
                    out = run_graph(
                        op,
                        list(sub_inputs),
                        path[1:],
                        on_capture,
                        logits=logits and op is head,
                        after_op=after_op,
                    )
                    return out
                out = _call(op, args, kwargs)
                if on_capture is not None:
                    replaced = on_capture(out)
                    if replaced is not None:
                        out = replaced
                return out
            if op is head:
                if kind == "softmax-dense":
                    return _dense_logits(op, args[0])
                if kind == "softmax-layer":
                    return args[0]
                if kind == "nested":
                    x = args[0]
                    sub_inputs = x if isinstance(x, (list, tuple)) else [x]
                    return run_graph(op, list(sub_inputs), (), None, logits=True, after_op=after_op)
                if kind == "softmax-other":
                    probs = _call(op, args, kwargs)
                    return keras.ops.log(keras.ops.maximum(probs, 1e-30))
            if after_op is None:
                return _call(op, args, kwargs)
            if _is_model(op):
                x = args[0] if len(args) == 1 else list(args)
                sub_inputs = x if isinstance(x, (list, tuple)) else [x]
                return run_graph(op, list(sub_inputs), (), None, logits=False, after_op=after_op)
            return after_op(op, _call(op, args, kwargs))

        return call

    if isinstance(model, keras.Sequential):
        x = inputs[0] if len(inputs) == 1 else list(inputs)
        for layer in model.layers:
            x = wrap(layer)(x)
        return x
    given = inputs[0] if len(model.inputs) == 1 else list(inputs)
    outputs = model._run_through_graph(model._standardize_inputs(given), operation_fn=wrap)
    if isinstance(outputs, (list, tuple)):  # several outputs: the first is the class scores
        outputs = outputs[0]
    elif isinstance(outputs, dict):
        outputs = next(iter(outputs.values()))
    return outputs
