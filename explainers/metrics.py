"""Scores that say whether a heatmap is faithful to the model and where it points.

A map that looks plausible is not yet a faithful one. Two families of scores:

* **Faithfulness** (does the model's confidence follow the map?):
  - *Average Drop %* and *Increase in Confidence %* (Chattopadhay et al. 2018, "Grad-CAM++",
    WACV): the model sees the image multiplied by the map; Y is the class probability for the
    full image, O for the masked one.
  - *Deletion* and *Insertion* (Petsiuk, Das & Saenko 2018, "RISE", BMVC): pixels are removed
    from (or revealed on) the image in the map's order, most important first, in ``n_steps``
    equal steps; the class probability after each step makes a curve whose area (trapezoid
    over the fraction of pixels, 0..1) is the score. Deletion: lower is better;
    insertion: higher is better.
* **Localisation** against a binary mask (e.g. a lesion segmentation): energy-in-mask ratio,
  pointing game (Zhang et al. 2016, "Top-down neural attention by excitation backprop",
  ECCV, without its 15-pixel tolerance) and IoU of the map thresholded at 50 % of its maximum.

The scoring functions take a ``score_fn`` mapping a batch of *model inputs* to the target
class's probability, so they can be checked by hand with a fake model; ``evaluate`` builds it
from ``explainers.predict`` (softmax of the pre-softmax scores for softmax heads, finite).
Maps are upsampled bilinearly to the image and divided by their maximum (``render``), the
same picture the user sees. Every score is finite: an all-zero map, an empty mask or Y = 0
give a documented number, never NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .errors import ExplainerError
from .render import normalize, upsample

ScoreFn = Callable[[np.ndarray], np.ndarray]
Preprocess = Callable[[np.ndarray], np.ndarray]

#: Default number of deletion / insertion steps: 16 steps = 17 points per curve, one batched
#: forward pass of 17 images. Petsiuk et al. use one step per 224 pixels (far more passes);
#: 16 keeps a 2-core CPU usable and changes the area by well under 0.01 on smooth curves.
DEFAULT_STEPS = 16
#: Standard deviation (pixels) of the Gaussian blur that insertion starts from. RISE used an
#: 11x11 kernel of sigma 5 at 224x224; sigma 5 with a 3-sigma radius is the same idea.
DEFAULT_BLUR_SIGMA = 5.0

#: Per-image score keys, in table order, with their column names (units included).
SCORE_LABELS: dict[str, str] = {
    "average_drop_pct": "Average Drop (%)",
    "increase_in_confidence_pct": "Increase in Confidence (%)",
    "deletion_auc": "Deletion AUC (0–1)",
    "insertion_auc": "Insertion AUC (0–1)",
    "energy_in_mask_ratio": "Energy in mask (ratio, 1 = chance)",
    "pointing_game_pct": "Pointing game (% hits)",
    "iou": "IoU at 50% of max (0–1)",
}
#: Whether a higher value of the score means a better map.
HIGHER_IS_BETTER: dict[str, bool] = {
    "average_drop_pct": False,
    "increase_in_confidence_pct": True,
    "deletion_auc": False,
    "insertion_auc": True,
    "energy_in_mask_ratio": True,
    "pointing_game_pct": True,
    "iou": True,
}
FAITHFULNESS_SCORES = ("average_drop_pct", "increase_in_confidence_pct", "deletion_auc", "insertion_auc")
LOCALISATION_SCORES = ("energy_in_mask_ratio", "pointing_game_pct", "iou")
#: Extra per-image numbers kept beside the scores (not averaged into the tables' score columns).
INFO_LABELS: dict[str, str] = {
    "probability_full": "Probability, full image (0–1)",
    "probability_masked": "Probability, image × map (0–1)",
}


# --- Average Drop and Increase in Confidence ------------------------------------------------


def _probabilities(values: Any, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64)).ravel()
    if arr.size == 0:
        raise ExplainerError(f"{name} is empty: give at least one probability")
    return np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)


def average_drop(y_full: Any, y_masked: Any) -> float:
    """Average Drop % (Chattopadhay et al. 2018): mean over images of
    ``max(0, Y − O) / Y × 100``. Lower is better: the map kept what the model needed.

    An image with ``Y <= 0`` has no confidence to lose and counts as a drop of 0 (not NaN).
    """
    y = _probabilities(y_full, "y_full")
    o = _probabilities(y_masked, "y_masked")
    if y.shape != o.shape:
        raise ExplainerError(f"y_full and y_masked differ in length ({y.size} and {o.size})")
    safe = np.where(y > 0, y, 1.0)
    drops = np.where(y > 0, np.maximum(0.0, y - o) / safe, 0.0)
    return float(drops.mean() * 100.0)


def increase_in_confidence(y_full: Any, y_masked: Any) -> float:
    """Increase in Confidence % (Chattopadhay et al. 2018): the share of images, in
    per cent, whose probability rises when only the map's region is shown (``O > Y``, strict).
    Higher is better."""
    y = _probabilities(y_full, "y_full")
    o = _probabilities(y_masked, "y_masked")
    if y.shape != o.shape:
        raise ExplainerError(f"y_full and y_masked differ in length ({y.size} and {o.size})")
    return float((o > y).mean() * 100.0)


# --- images and maps --------------------------------------------------------------------------


def _raw_image(image: Any) -> np.ndarray:
    """One raw RGB image as float32 (H, W, C), values 0..255."""
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ExplainerError(f"the image must be (height, width, channels), got shape {arr.shape}")
    return np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)


def _one_map(cam: Any) -> np.ndarray:
    arr = np.asarray(cam, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ExplainerError(f"a map must be (h, w), got shape {arr.shape}")
    return arr


def map_at(cam: Any, size: Sequence[int]) -> np.ndarray:
    """The map upsampled (bilinear) to ``size = (H, W)`` and divided by its maximum: float32
    in [0, 1], all zero for an all-zero map. What every score here looks at."""
    return normalize(upsample(_one_map(cam), size))


def masked_image(image: Any, cam: Any, preprocess: Preprocess | None = None) -> np.ndarray:
    """The model input for "only what the map shows": ``image × map`` (Chattopadhay et al.).

    The product is taken in the raw 0..255 RGB space, where 0 means black, and only then
    preprocessed: multiplying an already preprocessed input (e.g. scaled to -1..1) would push
    the hidden pixels to grey, not black, and mean something else for every model.
    Returns float32 ``(1, H, W, C)``.
    """
    raw = _raw_image(image)
    weights = map_at(cam, raw.shape[:2])
    out = (raw * weights[..., None])[None]
    return _preprocess(out, preprocess)


def _preprocess(batch: np.ndarray, preprocess: Preprocess | None) -> np.ndarray:
    if preprocess is None:
        return np.asarray(batch, dtype=np.float32)
    return np.asarray(preprocess(np.array(batch, dtype=np.float32, copy=True)), dtype=np.float32)


def gaussian_blur(image: Any, sigma: float = DEFAULT_BLUR_SIGMA) -> np.ndarray:
    """A separable Gaussian blur of an (H, W, C) image (reflected borders, radius 3 sigma):
    the canvas insertion starts from. Pure NumPy, float32."""
    raw = _raw_image(image)
    sigma = float(sigma)
    if not math.isfinite(sigma) or sigma < 0:
        raise ExplainerError(f"the blur sigma must be 0 or more, got {sigma}")
    if sigma == 0:
        return raw.copy()
    radius = max(1, int(math.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    out = raw.astype(np.float64)
    for axis in (0, 1):
        n = out.shape[axis]
        # Reflect-pad (repeatedly if the image is smaller than the kernel).
        idx = np.arange(-radius, n + radius)
        period = 2 * n if n > 1 else 1
        idx = np.mod(idx, period)
        idx = np.where(idx >= n, period - 1 - idx, idx) if n > 1 else np.zeros_like(idx)
        padded = np.take(out, idx, axis=axis)
        acc = np.zeros_like(out)
        for j, k in enumerate(kernel):
            sl = [slice(None)] * out.ndim
            sl[axis] = slice(j, j + n)
            acc += k * padded[tuple(sl)]
        out = acc
    return out.astype(np.float32)


def _baseline(kind: Any, raw: np.ndarray, blur_sigma: float) -> np.ndarray:
    if isinstance(kind, str):
        key = kind.strip().lower()
        if key in ("zeros", "zero", "black"):
            return np.zeros_like(raw)
        if key in ("blur", "blurred"):
            return gaussian_blur(raw, blur_sigma)
        if key in ("mean", "grey", "gray"):
            return np.broadcast_to(raw.mean(axis=(0, 1), keepdims=True), raw.shape).astype(np.float32)
        raise ExplainerError(f"unknown baseline '{kind}'; choose zeros, blur or mean")
    arr = np.asarray(kind, dtype=np.float32)
    try:
        return np.broadcast_to(arr, raw.shape).astype(np.float32)
    except ValueError:
        raise ExplainerError(
            f"a baseline image must have the image's shape {raw.shape}, got {arr.shape}"
        ) from None


# --- deletion and insertion -------------------------------------------------------------------


@dataclass
class Curve:
    """A deletion or insertion curve: the target probability after each step, and its area."""

    kind: str  # "deletion" | "insertion"
    fractions: np.ndarray  # (n_steps + 1,) share of pixels removed / revealed, 0..1
    probabilities: np.ndarray  # (n_steps + 1,)
    auc: float


def pixel_order(cam: Any, size: Sequence[int]) -> np.ndarray:
    """Flat pixel indices of the upsampled map, most important first. Ties keep raster order
    (a stable sort), so the order, and every curve, is reproducible."""
    m = map_at(cam, size).ravel()
    return np.argsort(-m, kind="stable")


def step_counts(n_pixels: int, n_steps: int) -> np.ndarray:
    """How many pixels are removed (or revealed) after each step: ``floor(i × P / n_steps)``
    for i = 0..n_steps, so the first point is the untouched image and the last covers all."""
    return (np.arange(n_steps + 1, dtype=np.int64) * int(n_pixels)) // int(n_steps)


def auc(fractions: Any, values: Any) -> float:
    """Trapezoid area under ``values`` over ``fractions`` (0..1)."""
    x = np.asarray(fractions, dtype=np.float64)
    y = np.nan_to_num(np.asarray(values, dtype=np.float64))
    if x.size < 2:
        return 0.0
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def _check_steps(n_steps: int) -> int:
    try:
        n = int(n_steps)
    except (TypeError, ValueError):
        raise ExplainerError(f"the number of steps must be an integer, got {n_steps!r}") from None
    if n < 1 or n > 1024:
        raise ExplainerError(f"the number of steps must be between 1 and 1024, got {n}")
    return n


def perturbation_stack(image: Any, cam: Any, kind: str, n_steps: int = DEFAULT_STEPS,
                       baseline: Any = None, blur_sigma: float = DEFAULT_BLUR_SIGMA) -> np.ndarray:
    """The ``n_steps + 1`` raw images of a deletion or insertion curve, float32 (S+1, H, W, C).

    Deletion: step i replaces the ``i/n_steps`` most important pixels by the baseline (default
    ``"zeros"``, black in raw RGB, as Petsiuk et al.). Insertion: step i shows those pixels of
    the image on the baseline (default ``"blur"``: Petsiuk et al. start from a blurred copy,
    because a black canvas is far outside what the model saw in training, so its first
    probabilities say little; the blur removes the detail but keeps colours and brightness).
    """
    if kind not in ("deletion", "insertion"):
        raise ExplainerError(f"kind must be 'deletion' or 'insertion', got {kind!r}")
    n_steps = _check_steps(n_steps)
    raw = _raw_image(image)
    h, w = raw.shape[:2]
    if baseline is None:
        baseline = "zeros" if kind == "deletion" else "blur"
    base = _baseline(baseline, raw, blur_sigma)
    order = pixel_order(cam, (h, w))
    rank = np.empty(h * w, dtype=np.int64)
    rank[order] = np.arange(h * w)
    counts = step_counts(h * w, n_steps)
    changed = (rank[None, :] < counts[:, None]).reshape(n_steps + 1, h, w, 1)
    if kind == "deletion":
        return np.where(changed, base[None], raw[None]).astype(np.float32)
    return np.where(changed, raw[None], base[None]).astype(np.float32)


def perturbation_curve(score_fn: ScoreFn, image: Any, cam: Any, kind: str,
                       n_steps: int = DEFAULT_STEPS, preprocess: Preprocess | None = None,
                       baseline: Any = None, blur_sigma: float = DEFAULT_BLUR_SIGMA) -> Curve:
    """A deletion or insertion curve and its area, with all its points scored in one batched
    ``score_fn`` call (``score_fn(model_inputs) -> (S+1,)`` target probabilities)."""
    stack = perturbation_stack(image, cam, kind, n_steps, baseline, blur_sigma)
    probs = _scores(score_fn, _preprocess(stack, preprocess), len(stack))
    fractions = np.linspace(0.0, 1.0, len(stack))
    return Curve(kind=kind, fractions=fractions, probabilities=probs, auc=auc(fractions, probs))


def deletion(score_fn: ScoreFn, image: Any, cam: Any, n_steps: int = DEFAULT_STEPS,
             preprocess: Preprocess | None = None, baseline: Any = "zeros",
             blur_sigma: float = DEFAULT_BLUR_SIGMA) -> Curve:
    """Deletion (Petsiuk et al. 2018): remove the most important pixels first (replace them
    by ``baseline``, default black); a faithful map makes the probability fall fast, so a
    *lower* area is better."""
    return perturbation_curve(score_fn, image, cam, "deletion", n_steps, preprocess, baseline, blur_sigma)


def insertion(score_fn: ScoreFn, image: Any, cam: Any, n_steps: int = DEFAULT_STEPS,
              preprocess: Preprocess | None = None, baseline: Any = "blur",
              blur_sigma: float = DEFAULT_BLUR_SIGMA) -> Curve:
    """Insertion (Petsiuk et al. 2018): reveal the most important pixels first on a blurred
    copy; a faithful map makes the probability rise fast, so a *higher* area is better."""
    return perturbation_curve(score_fn, image, cam, "insertion", n_steps, preprocess, baseline, blur_sigma)


def _scores(score_fn: ScoreFn, batch: np.ndarray, n: int) -> np.ndarray:
    out = np.asarray(score_fn(batch), dtype=np.float64).ravel()
    if out.size != n:
        raise ExplainerError(f"the score function returned {out.size} values for {n} images")
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


# --- localisation ---------------------------------------------------------------------------


def as_mask(mask: Any, size: Sequence[int] | None = None) -> np.ndarray:
    """A boolean (H, W) mask from any array (non-zero / above half its maximum is inside),
    resized to ``size = (H, W)`` by nearest neighbour when given."""
    arr = np.asarray(mask)
    if arr.ndim == 3:
        arr = arr[..., 0] if arr.shape[-1] in (1, 3, 4) else arr[0]
    if arr.ndim != 2 or arr.size == 0:
        raise ExplainerError(f"a mask must be a 2-D (height, width) array, got shape {arr.shape}")
    if arr.dtype != bool:
        values = np.nan_to_num(arr.astype(np.float64))
        peak = values.max()
        arr = values > (peak / 2.0) if peak > 0 else np.zeros(values.shape, bool)
    if size is not None and tuple(arr.shape) != tuple(int(s) for s in size):
        from PIL import Image

        h, w = (int(s) for s in size)
        im = Image.fromarray(arr.astype(np.uint8) * 255).resize((w, h), Image.Resampling.NEAREST)
        arr = np.asarray(im) > 127
    return arr.astype(bool)


def load_mask(source: Any, size: Sequence[int] | None = None) -> np.ndarray:
    """A binary mask from a PNG (path, bytes or file): white (or any bright value) is inside.

    Read with the same safe loader as images. A file that is not an image, or a picture that
    is clearly not a black-and-white mask (more than 5 % grey pixels: a photo uploaded by
    mistake), is an ``ExplainerError``. Resized to ``size = (H, W)`` by nearest neighbour.
    """
    from .images import load_image

    image = load_image(source).convert("L")
    values = np.asarray(image, dtype=np.uint8)
    grey = np.mean((values > 32) & (values < 223))
    if grey > 0.05:
        raise ExplainerError(
            f"the mask is not black and white ({grey * 100:.0f} % of its pixels are grey); "
            "upload a binary PNG with the lesion in white on black"
        )
    return as_mask(values > 127, size)


def energy_in_mask(cam: Any, mask: Any) -> float:
    """Share of the map's energy (sum of its upsampled, non-negative values) inside the mask,
    divided by the mask's share of the image. 1 = no better than chance, higher = the map
    concentrates on the mask (at most 1 / mask share). 0 for an all-zero map or empty mask."""
    m = np.asarray(mask, dtype=bool)
    cam01 = map_at(cam, m.shape).astype(np.float64)
    total = cam01.sum()
    share = m.mean()
    if total <= 0 or share <= 0:
        return 0.0
    return float((cam01[m].sum() / total) / share)


def pointing_game(cam: Any, mask: Any) -> float:
    """1.0 when the map's maximum (first in raster order on ties) falls inside the mask, else
    0.0; an all-zero map points nowhere and scores 0. Zhang et al. 2016, without tolerance."""
    m = np.asarray(mask, dtype=bool)
    cam01 = map_at(cam, m.shape)
    if cam01.max() <= 0:
        return 0.0
    return float(m.ravel()[int(np.argmax(cam01))])


def iou_at(cam: Any, mask: Any, threshold: float = 0.5) -> float:
    """IoU of the mask with the region where the map reaches ``threshold`` (default 50 %) of
    its maximum. 0 when the union is empty (an all-zero map with an empty mask)."""
    m = np.asarray(mask, dtype=bool)
    cam01 = map_at(cam, m.shape)
    region = cam01 >= threshold if cam01.max() > 0 else np.zeros(m.shape, bool)
    union = np.logical_or(region, m).sum()
    if union == 0:
        return 0.0
    return float(np.logical_and(region, m).sum() / union)


def mask_outline(mask: Any, width: int = 2) -> np.ndarray:
    """The mask's border pixels (inside pixels with an outside 4-neighbour), thickened to
    ``width`` pixels inwards: bool (H, W), for drawing the mask on an overlay."""
    m = np.asarray(mask, dtype=bool)
    inner = m.copy()
    for _ in range(max(1, int(width))):
        p = np.pad(inner, 1, mode="constant", constant_values=False)
        inner = inner & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m & ~inner


def draw_outline(image: Any, mask: Any, color: Sequence[int] = (255, 255, 255), width: int = 2) -> np.ndarray:
    """The image (uint8 RGB) with the mask's outline drawn on it; the mask is resized to it."""
    img = np.array(image, dtype=np.uint8, copy=True)
    if img.ndim != 3:
        raise ExplainerError(f"the image must be (H, W, 3), got shape {img.shape}")
    edge = mask_outline(as_mask(mask, img.shape[:2]), width)
    img[edge] = np.asarray(color, dtype=np.uint8)[: img.shape[-1]]
    return img


# --- one image, every method ------------------------------------------------------------------


@dataclass
class Evaluation:
    """All scores of one image: ``scores[method][key]`` (keys of ``SCORE_LABELS`` and
    ``INFO_LABELS``) and the curves ``curves[method]["deletion" | "insertion"]``."""

    target: int
    probability: float
    scores: dict[str, dict[str, float]]
    curves: dict[str, dict[str, Curve]] = field(default_factory=dict)
    has_mask: bool = False


def _unpack_model(bundle_or_model: Any, preprocess: Preprocess | None,
                  extra_inputs: Any) -> tuple[Any, Preprocess | None, Any]:
    model = getattr(bundle_or_model, "model", bundle_or_model)
    if hasattr(bundle_or_model, "model") and hasattr(bundle_or_model, "preprocess"):
        if preprocess is None:
            preprocess = bundle_or_model.preprocess
        if extra_inputs is None and getattr(bundle_or_model, "metadata_input", False):
            from .zoo import default_extra_inputs

            extra_inputs = default_extra_inputs(bundle_or_model)
    return model, preprocess, extra_inputs


def raw_image_for(bundle: Any, pil_image: Any) -> np.ndarray:
    """A Pillow image (or path / bytes) resized exactly as ``zoo.prepare`` does, but not
    preprocessed: float32 (H, W, 3) in 0..255, the space the metrics perturb."""
    from .zoo import prepare

    raw_bundle = replace(bundle, preprocess=lambda x: np.asarray(x, dtype=np.float32))
    return prepare(raw_bundle, pil_image)[0]


def score_function(model: Any, target: int, extra_inputs: Any = None) -> ScoreFn:
    """``score_fn`` for a Keras model: the target's probability from ``explainers.predict``,
    with the extra inputs (e.g. patient metadata) repeated for every image of the batch."""
    from .core import predict

    def score(batch: np.ndarray) -> np.ndarray:
        single = _single(extra_inputs)
        extra = None if single is None else [np.repeat(x, len(batch), axis=0) for x in single]
        return predict(model, batch, extra).probabilities[:, target]

    return score


def evaluate_details(bundle_or_model: Any, image: Any, maps: Mapping[str, Any], target: int | None = None,
                     *, preprocess: Preprocess | None = None, extra_inputs: Any = None,
                     mask: Any = None, n_steps: int = DEFAULT_STEPS,
                     deletion_baseline: Any = "zeros", insertion_baseline: Any = "blur",
                     blur_sigma: float = DEFAULT_BLUR_SIGMA,
                     score_fn: ScoreFn | None = None) -> Evaluation:
    """Every score of every map for one image, with the curves (see ``evaluate``)."""
    model, preprocess, extra_inputs = _unpack_model(bundle_or_model, preprocess, extra_inputs)
    if not hasattr(image, "shape") and hasattr(bundle_or_model, "input_size"):
        image = raw_image_for(bundle_or_model, image)  # a PIL image, path or bytes
    raw = _raw_image(image)
    if not maps:
        raise ExplainerError("no maps to evaluate")
    maps = {str(k): _one_map(v) for k, v in maps.items()}
    n_steps = _check_steps(n_steps)
    full_input = _preprocess(raw[None], preprocess)
    if target is None:
        if score_fn is not None:
            raise ExplainerError("give the target class when a score function is given")
        from .core import predict

        probs = predict(model, full_input, _single(extra_inputs)).probabilities[0]
        target = int(np.argmax(probs))
    target = int(target)
    if score_fn is None:
        score_fn = score_function(model, target, extra_inputs)
    region = as_mask(mask, raw.shape[:2]) if mask is not None else None

    # One batched call for the full image and the image × map of every method.
    masked = np.concatenate([full_input] + [masked_image(raw, m, preprocess) for m in maps.values()])
    first = _scores(score_fn, masked, len(masked))
    y = float(first[0])
    scores: dict[str, dict[str, float]] = {}
    curves: dict[str, dict[str, Curve]] = {}
    for (name, cam), o in zip(maps.items(), first[1:]):
        dele = deletion(score_fn, raw, cam, n_steps, preprocess, deletion_baseline, blur_sigma)
        ins = insertion(score_fn, raw, cam, n_steps, preprocess, insertion_baseline, blur_sigma)
        row = {
            "average_drop_pct": average_drop([y], [o]),
            "increase_in_confidence_pct": increase_in_confidence([y], [o]),
            "deletion_auc": dele.auc,
            "insertion_auc": ins.auc,
        }
        if region is not None:
            row["energy_in_mask_ratio"] = energy_in_mask(cam, region)
            row["pointing_game_pct"] = pointing_game(cam, region) * 100.0
            row["iou"] = iou_at(cam, region)
        row["probability_full"] = y
        row["probability_masked"] = float(o)
        scores[name] = row
        curves[name] = {"deletion": dele, "insertion": ins}
    return Evaluation(target=target, probability=y, scores=scores, curves=curves,
                      has_mask=region is not None)


def _single(extra_inputs: Any) -> Any:
    if extra_inputs is None:
        return None
    items = [extra_inputs] if isinstance(extra_inputs, np.ndarray) else list(extra_inputs)
    return [np.asarray(x)[:1] if np.ndim(x) > 1 else np.asarray(x)[None] for x in items]


def evaluate(bundle_or_model: Any, image: Any, maps: Mapping[str, Any], target: int | None = None,
             **options: Any) -> dict[str, dict[str, float]]:
    """Every score for one image: ``{method: {score: value}}``, tidy and finite.

    ``bundle_or_model``: a ``ModelBundle`` (its ``preprocess`` and, for the skin-lesion model,
    "unknown" metadata are used unless given) or a Keras model. ``image``: raw RGB 0..255
    ``(H, W, 3)`` at the model's input size (or a Pillow image with a bundle). ``maps``:
    ``{method: (h, w) raw map}`` from ``explain``. ``target``: the class (default: the top
    class of the full image). Options: ``preprocess``, ``extra_inputs``, ``mask`` (binary,
    any size, adds the localisation scores), ``n_steps``, ``deletion_baseline`` ("zeros"),
    ``insertion_baseline`` ("blur"), ``blur_sigma``. Cost: 1 + 2 x len(maps) batched
    forward passes of ``n_steps + 1`` images.
    """
    return evaluate_details(bundle_or_model, image, maps, target, **options).scores


# --- many images ------------------------------------------------------------------------------


def aggregate(rows: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, float]]:
    """Means over images of ``evaluate``'s results: ``{method: {score: mean, "n_images": n}}``.

    Averaging the per-image values gives exactly the papers' figures: the mean of per-image
    drops is Average Drop %, the mean of 0/100 is the share of images with increased
    confidence (and of pointing-game hits). Missing or non-finite values (no mask for that
    image, an image that failed) are left out of that score's mean; ``n_masks`` counts the
    images the localisation scores are averaged over.
    """
    sums: dict[str, dict[str, list[float]]] = {}
    counts: dict[str, int] = {}
    for row in rows:
        for method, values in row.items():
            if not isinstance(values, Mapping):
                continue
            counts[method] = counts.get(method, 0) + 1
            bucket = sums.setdefault(method, {})
            for key, value in values.items():
                try:
                    v = float(value)
                except (TypeError, ValueError):
                    continue
                if math.isfinite(v):
                    bucket.setdefault(key, []).append(v)
    out: dict[str, dict[str, float]] = {}
    for method, bucket in sums.items():
        result: dict[str, float] = {}
        known = list(SCORE_LABELS) + list(INFO_LABELS)
        for key in known + [k for k in bucket if k not in known]:
            if key in bucket:
                result[key] = float(np.mean(bucket[key]))
        result["n_images"] = float(counts[method])
        result["n_masks"] = float(len(bucket.get("iou", [])))
        out[method] = result
    return out


def score_table(scores: Mapping[str, Mapping[str, float]], labels: Mapping[str, str] | None = None,
                digits: int = 3) -> list[dict[str, Any]]:
    """Rows for a table: one per method, columns named with their units (``SCORE_LABELS``);
    localisation columns only when present. ``labels`` renames the methods."""
    present = [k for k in SCORE_LABELS if any(k in s for s in scores.values())]
    rows = []
    for method, values in scores.items():
        row: dict[str, Any] = {"Method": (labels or {}).get(method, method)}
        for key in present:
            value = values.get(key)
            row[SCORE_LABELS[key]] = None if value is None else round(float(value), digits)
        if "n_images" in values:
            row["Images"] = int(values["n_images"])
        rows.append(row)
    return rows


def best_methods(scores: Mapping[str, Mapping[str, float]]) -> dict[str, list[str]]:
    """For each score present, the method(s) with the best value (ties kept)."""
    out = {}
    for key, higher in HIGHER_IS_BETTER.items():
        values = {m: s[key] for m, s in scores.items() if key in s and math.isfinite(s[key])}
        if not values:
            continue
        best = max(values.values()) if higher else min(values.values())
        out[key] = [m for m, v in values.items() if abs(v - best) <= 1e-12]
    return out


# --- explain and score in one call (the dashboard's multi-image mode) ---------------------------


#: The four maps compared everywhere: (key, method, smoothed?).
VARIANTS = (("gradcam", "gradcam", False), ("gradcam++", "gradcam++", False),
            ("smooth-gradcam", "gradcam", True), ("smooth-gradcam++", "gradcam++", True))


def variant_labels(n_samples: int, sigma: float | None) -> dict[str, str]:
    """Human names of the four variants (``"Smooth Grad-CAM++ (16 samples, σ=0.15)"``; without
    σ when ``sigma`` is None)."""
    from .core import method_label

    return {key: method_label(method, n_samples if smooth else 0, sigma if smooth else None)
            for key, method, smooth in VARIANTS}


def explain_and_evaluate(bundle: Any, image: Any, *, extra_inputs: Any = None, layer: Any = None,
                         target: int | None = None, n_samples: int = 16, sigma: float = 0.15,
                         seed: int | None = 0, mask: Any = None, n_steps: int = DEFAULT_STEPS,
                         ) -> tuple[dict[str, np.ndarray], Evaluation]:
    """Grad-CAM, Grad-CAM++ and both smoothed (``n_samples`` copies) for one image, then every
    score: ``(maps {variant: (h, w)}, Evaluation)``. ``image``: a Pillow image (or path /
    bytes), resized as ``zoo.prepare`` does. ``target`` None: the top class."""
    from .core import explain

    if int(n_samples) < 1:
        raise ExplainerError("the smoothed maps need at least 1 noise sample")
    raw = raw_image_for(bundle, image) if not hasattr(image, "shape") else _raw_image(image)
    model, preprocess, extra_inputs = _unpack_model(bundle, None, extra_inputs)
    x = _preprocess(raw[None], preprocess)
    extra = _single(extra_inputs)
    if target is None:
        from .core import predict

        target = int(np.argmax(predict(model, x, extra).logits[0]))
    methods = ("gradcam", "gradcam++")
    plain = explain(model, x, layer=layer, target=target, extra_inputs=extra, methods=methods)
    smooth = explain(model, x, layer=layer, target=target, extra_inputs=extra, methods=methods,
                     n_samples=n_samples, sigma=sigma, seed=seed)
    maps = {key: (smooth if is_smooth else plain)[method][0] for key, method, is_smooth in VARIANTS}
    ev = evaluate_details(model, raw, maps, target, preprocess=preprocess, extra_inputs=extra,
                          mask=mask, n_steps=n_steps)
    return maps, ev


# --- reference maps that know nothing about the model --------------------------------------------


def centre_prior(shape: Sequence[int], width: float = 0.25) -> np.ndarray:
    """A Gaussian blob in the middle of an (h, w) grid (standard deviation ``width`` × size):
    the "map" of someone who only knows that the object is usually centred. A method has to
    beat it for its scores to say anything about the model (dermoscopy lesions are centred)."""
    h, w = (int(s) for s in shape)
    y = (np.arange(h) + 0.5) / h - 0.5
    x = (np.arange(w) + 0.5) / w - 0.5
    g = np.exp(-0.5 * ((y[:, None] / width) ** 2 + (x[None, :] / width) ** 2))
    return g.astype(np.float32)


def random_map(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """Uniform noise on an (h, w) grid: the chance level of every score."""
    rng = np.random.default_rng(int(seed))
    return rng.random(tuple(int(s) for s in shape)).astype(np.float32)
