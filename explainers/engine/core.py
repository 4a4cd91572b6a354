"""``explain()``: every registered method (``explainers.methods``) from the fewest passes.

Flow: validate the user's arrays → the passes the chosen methods need, each run once:
``capture.GradientCapture.stats`` (the one tape: activations and derivative terms, averaged
over noisy copies when ``n_samples > 0``) for every tape method together; the clean
activations and chunks of masked forward passes for Score-CAM; the guided input gradient
(``guided.py``) for the guided methods → select filters and neurons → each method's pure
formula → maps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from explainers.engine.adapter import LayerInfo, ModelFacts, model_facts
from explainers.engine.capture import ProgressFn, get_capture, get_runner
from explainers.engine.guided_gradient import get_guided
from explainers.errors import ExplainerError
from explainers.methods import DEFAULT_METHODS, REGISTRY, TapeTerms, method_label
from explainers.methods.cam_weights import per_channel_maps, weighted_map
from explainers.settings import ExplainSettings, settings_from

#: The default pair (Grad-CAM, Grad-CAM++); every key is in ``explainers.methods.REGISTRY``.
METHODS = DEFAULT_METHODS
__all__ = [
    "METHODS",
    "Explanation",
    "Prediction",
    "explain",
    "explain_details",
    "method_label",
    "predict",
]


@dataclass
class Explanation:
    """All the numbers behind the maps, for the pages that teach how they are made.

    ``maps[key]``: ``(N, h, w)`` for CAM-family methods, ``(N, H, W, C)`` for the pixel
    methods (guided). ``weights[key]``: ``(N, K)`` channel weights of the methods that have
    them; HiResCAM and LayerCAM weigh each position, ``position_weights[key] (N, h, w, K)``.
    ``activations``, ``gradients`` and ``alpha`` are None when only guided backprop ran.
    ``seconds[key]``: wall time of the passes the method needed plus its formula (shared
    passes are counted for each method that used them)."""

    maps: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]
    activations: np.ndarray | None
    gradients: np.ndarray | None
    alpha: np.ndarray | None
    targets: np.ndarray
    clean_logits: np.ndarray | None
    layer: LayerInfo
    channel_mask: np.ndarray
    position_mask: np.ndarray
    n_samples: int = 0
    sigma: float = 0.15
    methods: tuple[str, ...] = field(default_factory=tuple)
    position_weights: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    logits_source: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def logits(self) -> np.ndarray:
        """Pre-softmax scores of the clean images, float32 ``(N, C)``; computed on first use
        when the smoothed pass did not need them (an explicit target)."""
        if self.clean_logits is None and self.logits_source is not None:
            self.clean_logits = np.asarray(self.logits_source(), dtype=np.float32)
            self.logits_source = None
        return self.clean_logits

    def __getstate__(self) -> dict:
        """Picklable (the dashboard caches explanations): the logits are materialised."""
        _ = self.logits
        state = dict(self.__dict__)
        state["logits_source"] = None
        return state

    def filter_maps(self, method: str, channels: Iterable[int]) -> np.ndarray:
        """w_k A_k for each chosen channel (w_ijk A_ijk for the per-position methods): float32
        ``(N, len(channels), h, w)``, signed."""
        channels = np.asarray(list(channels), dtype=int)
        if method in self.position_weights:
            per_position = self.position_weights[method]
        elif method in self.weights:
            per_position = None
        else:
            raise ExplainerError(f"method '{method}' was not computed or has no filter weights")
        k = self.activations.shape[-1]
        if channels.size and (channels.min() < 0 or channels.max() >= k):
            raise ExplainerError(f"filter indices must be between 0 and {k - 1}")
        if per_position is not None:
            maps = self.activations[..., channels] * per_position[..., channels]
            return np.moveaxis(maps, -1, -3).astype(np.float32)
        return per_channel_maps(self.activations, self.weights[method], channels).astype(np.float32)


@dataclass
class Prediction:
    """Pre-softmax scores and probabilities (softmax of the logits for softmax heads,
    computed in float64 so they never overflow to NaN)."""

    logits: np.ndarray
    probabilities: np.ndarray
    softmax_head: bool


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _as_images(images: np.ndarray, facts: ModelFacts) -> np.ndarray:
    try:
        arr = np.asarray(images, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ExplainerError(f"images must be a numeric array: {exc}") from None
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise ExplainerError(
            f"images must have shape (N, height, width, channels), got {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ExplainerError("no images given")
    expected = facts.image_shape
    for got, want in zip(arr.shape[1:], expected, strict=False):
        if want is not None and got != want:
            raise ExplainerError(
                f"images have shape {arr.shape[1:]} but the model expects {expected}; "
                "resize and preprocess them first"
            )
    if not np.isfinite(arr).all():
        raise ExplainerError("images contain NaN or infinite values")
    return arr


def _as_extra_inputs(facts: ModelFacts, extra_inputs: Sequence[np.ndarray] | None, n: int) -> list:
    others = facts.extra_inputs
    if extra_inputs is None:
        extra_inputs = []
    elif isinstance(extra_inputs, np.ndarray):
        extra_inputs = [extra_inputs]
    extra_inputs = list(extra_inputs)
    if len(extra_inputs) != len(others):
        names = ", ".join(f"{t.name} {tuple(t.shape)}" for t in others) or "none"
        raise ExplainerError(
            f"the model has {len(others)} input(s) besides the image ({names}) but "
            f"{len(extra_inputs)} extra input(s) were given"
        )
    out = []
    for tensor, value in zip(others, extra_inputs, strict=False):
        arr = np.asarray(value, dtype=tensor.dtype or "float32")
        if arr.ndim == len(tensor.shape) - 1:
            arr = arr[None]
        if arr.shape[0] == 1 and n > 1:
            arr = np.repeat(arr, n, axis=0)
        if arr.shape[0] != n or any(
            w is not None and g != w for g, w in zip(arr.shape[1:], tensor.shape[1:], strict=False)
        ):
            raise ExplainerError(
                f"extra input '{tensor.name}' must have shape {(n, *tuple(tensor.shape[1:]))}, "
                f"got {arr.shape}"
            )
        out.append(arr)
    return out


def _as_targets(target: int | Sequence[int] | None, n: int, n_classes: int | None) -> np.ndarray:
    if target is None:
        return np.full(n, -1, dtype=np.int32)
    arr = np.atleast_1d(np.asarray(target))
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise ExplainerError(f"target must be a class index, got {target!r}")
    arr = arr.astype(np.int64)
    if arr.size == 1 and n > 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise ExplainerError(f"give one target or one per image ({n}), got {arr.size}")
    if n_classes is not None and (arr.min() < 0 or arr.max() >= n_classes):
        raise ExplainerError(
            f"target {int(arr[(arr < 0) | (arr >= n_classes)][0])} is outside the model's "
            f"classes (0 to {n_classes - 1})"
        )
    return arr.astype(np.int32)


def _channel_mask(filters: Iterable[int] | None, k: int) -> np.ndarray:
    mask = np.ones(k, dtype=bool)
    if filters is None:
        return mask
    idx = np.asarray(list(filters), dtype=np.int64).ravel()
    if idx.size == 0:
        raise ExplainerError("the filter selection is empty")
    if idx.min() < 0 or idx.max() >= k:
        raise ExplainerError(
            f"filter indices must be between 0 and {k - 1} (this layer has {k} filters)"
        )
    mask[:] = False
    mask[idx] = True
    return mask


def _position_mask(
    neurons: Sequence[Sequence[int]] | None, region: bool, h: int, w: int
) -> np.ndarray:
    mask = np.ones((h, w), dtype=bool)
    if neurons is None:
        return mask
    try:
        pos = np.asarray(list(neurons), dtype=np.int64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise ExplainerError("neurons must be (row, col) positions on the layer's grid") from None
    if pos.size == 0:
        raise ExplainerError("the neuron selection is empty")
    if pos[:, 0].min() < 0 or pos[:, 0].max() >= h or pos[:, 1].min() < 0 or pos[:, 1].max() >= w:
        raise ExplainerError(
            f"neuron positions must lie on the layer's {h}x{w} grid (rows 0-{h - 1}, columns 0-{w - 1})"
        )
    mask[:] = False
    if region:
        if len(pos) != 2:
            raise ExplainerError("a region is given by exactly two corner positions")
        (r0, c0), (r1, c1) = pos
        mask[min(r0, r1) : max(r0, r1) + 1, min(c0, c1) : max(c0, c1) + 1] = True
    else:
        mask[pos[:, 0], pos[:, 1]] = True
    return mask


def predict(
    model: keras.Model, images: np.ndarray, extra_inputs: Sequence[np.ndarray] | None = None
) -> Prediction:
    """Pre-softmax scores and probabilities for preprocessed images."""
    facts = model_facts(model)
    arr = _as_images(images, facts)
    extra = _as_extra_inputs(facts, extra_inputs, len(arr))
    runner = get_runner(model)
    logits = runner.logits(facts.inputs(arr, extra))
    if runner.softmax_head:
        probs = _softmax(logits)
    else:
        # No softmax to undo: the model's own outputs are its scores.
        probs = np.nan_to_num(np.asarray(logits, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return Prediction(logits=logits, probabilities=probs, softmax_head=runner.softmax_head)


def explain_details(
    model: keras.Model,
    images: np.ndarray,
    settings: ExplainSettings | None = None,
    *,
    extra_inputs: Sequence[np.ndarray] | None = None,
    progress: ProgressFn | None = None,
    **choices: Any,
) -> Explanation:
    """Like ``explain`` but returns every intermediate array (see ``Explanation``)."""
    settings = settings_from(settings, **choices)
    methods, n_samples, sigma, seed = (
        settings.methods,
        settings.n_samples,
        settings.sigma,
        settings.seed,
    )
    filters, neurons, region = settings.filters, settings.neurons, settings.region
    target, max_channels, layer = settings.target, settings.max_channels, settings.layer
    wanted = [REGISTRY[k] for k in methods]
    needed = list(dict.fromkeys(u for m in wanted for u in m.uses if u not in methods))
    run = [REGISTRY[k] for k in needed] + wanted  # building blocks first
    needs = {n for m in run for n in m.needs}

    capture = get_capture(model, layer)
    facts = model_facts(model)
    arr = _as_images(images, facts)
    n = len(arr)
    extra = _as_extra_inputs(facts, extra_inputs, n)
    targets = _as_targets(target, n, capture.n_classes)
    _, h, w, k = capture.layer.output_shape
    channel_mask = _channel_mask(filters, k) if k is not None else None
    maps: dict[str, np.ndarray] = {}
    weights: dict[str, np.ndarray] = {}
    position_weights: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    stats = terms = clean = None
    acts = position_mask = None
    tape_seconds = 0.0
    guided_gradient = guided_seconds = None

    if needs & {"tape", "forward"}:
        t0 = time.perf_counter()
        smooth = n_samples if "tape" in needs else 0
        stats = capture.stats(
            arr, extra, targets, n_samples=smooth, sigma=sigma, seed=seed, progress=progress
        )
        tape_seconds = time.perf_counter() - t0
        h, w, k = stats.activations.shape[1:]
        if channel_mask is None:
            channel_mask = _channel_mask(filters, k)
        position_mask = _position_mask(neurons, region, h, w)
        targets = np.asarray(stats.targets, dtype=np.int32)
        # The selection: activations outside the chosen neurons are zero; channels outside
        # the chosen filters do not contribute.
        acts = stats.activations * position_mask[None, :, :, None]
        terms = TapeTerms(acts, stats.d1, stats.d2, stats.d3)
        if smooth == 0:
            clean = acts

    for method in run:
        t0 = time.perf_counter()
        if method.needs == ("tape",):
            wk = np.where(channel_mask, method.compute(terms), 0.0)
            (weights if wk.ndim == 2 else position_weights)[method.key] = wk
            maps[method.key] = weighted_map(acts, wk).astype(np.float32)
            seconds[method.key] = tape_seconds + time.perf_counter() - t0
        elif "forward" in method.needs:
            if clean is None:  # the tape was smoothed: Score-CAM uses the clean activations
                plain = capture.stats(arr, extra, targets, n_samples=0)
                clean = plain.activations * position_mask[None, :, :, None]
            forward = _forward_scores(model, extra)
            wk = method.compute(
                clean,
                arr,
                forward,
                targets,
                channel_mask,
                max_channels,
                chunk_size=get_runner(model).chunk_size,
                progress=progress,
            )
            weights[method.key] = wk
            maps[method.key] = weighted_map(clean, wk).astype(np.float32)
            seconds[method.key] = tape_seconds + time.perf_counter() - t0
        else:  # guided: the input gradient through guided ReLUs, computed once
            if guided_gradient is None:
                inputs = facts.inputs(arr, extra)
                guided_gradient, chosen = get_guided(model)(inputs, targets)
                if stats is None:
                    targets = chosen.astype(np.int32)
                guided_seconds = time.perf_counter() - t0
                t0 = time.perf_counter()
            built_from = [maps[u] for u in method.uses]
            maps[method.key] = method.compute(guided_gradient, *built_from)
            seconds[method.key] = (
                guided_seconds + time.perf_counter() - t0 + sum(seconds[u] for u in method.uses)
            )
    for key in needed:  # computed only as a building block
        maps.pop(key, None)
        weights.pop(key, None)
        seconds.pop(key, None)
    if position_mask is None:
        position_mask = _position_mask(neurons, region, h, w) if h and w else np.ones((0, 0), bool)
    if channel_mask is None:
        channel_mask = np.ones(0, bool)
    return Explanation(
        maps=maps,
        weights=weights,
        activations=None if acts is None else acts.astype(np.float32),
        gradients=None if stats is None else stats.d1.astype(np.float32),
        alpha=None if terms is None else terms.alpha,
        targets=np.asarray(targets, dtype=int),
        clean_logits=None
        if stats is None or stats.logits is None
        else np.asarray(stats.logits, np.float32),
        logits_source=lambda: get_runner(model).logits(facts.inputs(arr, extra)),
        layer=capture.layer,
        channel_mask=channel_mask,
        position_mask=position_mask,
        n_samples=n_samples,
        sigma=sigma,
        methods=methods,
        position_weights=position_weights,
        seconds=seconds,
    )


def _forward_scores(model: keras.Model, extra: Sequence[np.ndarray]) -> Callable:
    """(masked inputs of image i) -> their pre-softmax scores, through the compiled forward."""
    runner, facts = get_runner(model), model_facts(model)

    def score(batch: np.ndarray, i: int) -> np.ndarray:
        rows = np.full(len(batch), i)
        return runner.logits(facts.inputs(batch, [x[rows] for x in extra]))

    return score


def explain(
    model: keras.Model,
    images: np.ndarray,
    settings: ExplainSettings | None = None,
    *,
    extra_inputs: Sequence[np.ndarray] | None = None,
    **choices: Any,
) -> dict[str, np.ndarray]:
    """Maps ``{method: float32}`` of the chosen methods (any key of
    ``explainers.methods.REGISTRY``, or ``"all"``; default Grad-CAM and Grad-CAM++).
    CAM-family maps are ``(N, h, w)`` at the layer's grid, non-negative, finite, not
    normalised; guided maps are ``(N, H, W, C)`` at the model input's size, signed.

    ``images`` are preprocessed ``(N, H, W, C)``. The choices come as an ``ExplainSettings``
    or as its fields by keyword (``layer=``, ``target=``, ``methods=``, ``n_samples=``,
    ``sigma=``, ``seed=``, ``filters=``, ``neurons=``, ``region=``, ``max_channels=``):
    ``target`` None explains each image's top class by its pre-softmax score;
    ``n_samples > 0`` smooths the tape methods (Omeiza et al. 2019) with noise of standard
    deviation ``sigma × (max − min)`` of each image; ``filters`` restricts the channels,
    ``neurons`` (with ``region``) the positions; ``max_channels`` is Score-CAM's K.
    """
    return explain_details(model, images, settings, extra_inputs=extra_inputs, **choices).maps
