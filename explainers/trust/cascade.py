"""The randomisation cascade of Adebayo et al. (2018): which layers each step re-draws (the
head, then block after block towards the input), and the model copy they are re-drawn in,
so that the shared, cached model is never touched."""

from __future__ import annotations

import re

import keras
import numpy as np

from explainers.errors import ExplainerError


def _flat_layers(model) -> list:
    """Every leaf layer in order, sub-models opened (Xception nested in the skin-lesion model)."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            out.extend(_flat_layers(layer))
        else:
            out.append(layer)
    return out


def _block_of(name: str) -> str | None:
    match = re.match(r"(block\d+)_", name)
    return match.group(1) if match else None


def cascade_steps(model, layer_name: str) -> list[tuple[str, list]]:
    """Cumulative groups of layers to re-initialise, top down: ``[(step name, layers)]``.
    Only layers with trainable weights (fixed preprocessing such as Normalization stays)."""
    layers = [l for l in _flat_layers(model) if l.trainable_weights]
    names = [l.name for l in _flat_layers(model)]
    if layer_name not in names:
        raise ExplainerError(f"layer '{layer_name}' not found in the model")
    cut = names.index(layer_name)
    position = {id(l): i for i, l in enumerate(_flat_layers(model))}
    head = [l for l in layers if position[id(l)] > cut]
    backbone = [l for l in layers if position[id(l)] <= cut]
    units: list[tuple[str, list]] = []  # consecutive blocks; unnamed layers join the previous
    for l in backbone:
        block = _block_of(l.name)
        if (block is None and units) or (units and units[-1][0] == (block or l.name)):
            units[-1][1].append(l)
        else:
            units.append((block or l.name, [l]))
    steps: list[tuple[str, list]] = []
    if head:
        steps.append(("head", list(head)))
    n = len(units)
    counts = sorted({c for c in (1, 2, -(-n // 3), -(-2 * n // 3), n) if 1 <= c <= n})
    for c in counts:
        chosen = units[n - c :]
        if c == n:
            name = "whole model"
        elif c == 1:
            name = f"head + {chosen[0][0]}" if head else chosen[0][0]
        else:
            name = f"{'head + ' if head else ''}{chosen[0][0]}…{chosen[-1][0]}"
        steps.append((name, list(head) + [l for _, group in chosen for l in group]))
    return steps


def _reinitialise(layer, rng: np.random.Generator) -> None:
    """Batch-norm to identity; every other trainable variable from N(0, its own std)."""
    if isinstance(layer, keras.layers.BatchNormalization):
        for v in layer.weights:
            name = v.path.rsplit("/", 1)[-1]
            value = 1.0 if name in ("gamma", "moving_variance") else 0.0
            v.assign(np.full(v.shape, value, dtype=v.dtype))
        return
    for v in layer.trainable_weights:
        current = np.asarray(v.numpy(), dtype=np.float64)
        std = float(current.std())
        v.assign(rng.normal(0.0, std, size=current.shape).astype(v.dtype))


def model_copy(model):
    """A separate model with the same architecture and the trained weights; shares nothing."""
    try:
        clone = keras.models.clone_model(model, recursive=True)
    except Exception as exc:  # noqa: BLE001 - Keras fails to clone in many ways; each is one plain line
        raise ExplainerError(
            f"this model cannot be copied for the randomisation test ({exc})"
        ) from None
    clone.set_weights(model.get_weights())
    originals = {id(v) for v in model.weights}
    if any(id(v) in originals for v in clone.weights):  # pragma: no cover - Keras guarantee
        raise ExplainerError("the model copy shares weights with the original")
    return clone
