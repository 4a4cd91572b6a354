"""The scores themselves: pure functions of a map, an image, a mask and a ``score_fn``.

Faithfulness: Average Drop %, Increase in Confidence % (Chattopadhay et al. 2018), deletion and
insertion curves (Petsiuk et al. 2018). Localisation against a binary mask: energy in mask,
pointing game (Zhang et al. 2016), IoU at 50 % of the maximum. ``metrics`` runs them on a model
(``evaluate``) and aggregates them; see its docstring for the definitions in full.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from explainers.errors import ExplainerError
from explainers.images import load_image
from explainers.render import normalize, upsample

ScoreFn = Callable[[np.ndarray], np.ndarray]
Preprocess = Callable[[np.ndarray], np.ndarray]

#: Default number of deletion / insertion steps: 16 steps = 17 points per curve, one batched
#: forward pass of 17 images. Petsiuk et al. use one step per 224 pixels (far more passes);
#: 16 keeps a 2-core CPU usable and changes the area by well under 0.01 on smooth curves.
DEFAULT_STEPS = 16
#: Standard deviation (pixels) of the Gaussian blur that insertion starts from. RISE used an
#: 11x11 kernel of sigma 5 at 224x224; sigma 5 with a 3-sigma radius is the same idea.
DEFAULT_BLUR_SIGMA = 5.0


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
    radius = max(1, math.ceil(3 * sigma))
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
            return np.broadcast_to(raw.mean(axis=(0, 1), keepdims=True), raw.shape).astype(
                np.float32
            )
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


def perturbation_stack(
    image: Any,
    cam: Any,
    kind: str,
    n_steps: int = DEFAULT_STEPS,
    baseline: Any = None,
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
) -> np.ndarray:
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


def perturbation_curve(
    score_fn: ScoreFn,
    image: Any,
    cam: Any,
    kind: str,
    n_steps: int = DEFAULT_STEPS,
    preprocess: Preprocess | None = None,
    baseline: Any = None,
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
) -> Curve:
    """A deletion or insertion curve and its area, with all its points scored in one batched
    ``score_fn`` call (``score_fn(model_inputs) -> (S+1,)`` target probabilities)."""
    stack = perturbation_stack(image, cam, kind, n_steps, baseline, blur_sigma)
    probs = _scores(score_fn, _preprocess(stack, preprocess), len(stack))
    fractions = np.linspace(0.0, 1.0, len(stack))
    return Curve(kind=kind, fractions=fractions, probabilities=probs, auc=auc(fractions, probs))


def deletion(
    score_fn: ScoreFn,
    image: Any,
    cam: Any,
    n_steps: int = DEFAULT_STEPS,
    preprocess: Preprocess | None = None,
    baseline: Any = "zeros",
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
) -> Curve:
    """Deletion (Petsiuk et al. 2018): remove the most important pixels first (replace them
    by ``baseline``, default black); a faithful map makes the probability fall fast, so a
    *lower* area is better."""
    return perturbation_curve(
        score_fn, image, cam, "deletion", n_steps, preprocess, baseline, blur_sigma
    )


def insertion(
    score_fn: ScoreFn,
    image: Any,
    cam: Any,
    n_steps: int = DEFAULT_STEPS,
    preprocess: Preprocess | None = None,
    baseline: Any = "blur",
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
) -> Curve:
    """Insertion (Petsiuk et al. 2018): reveal the most important pixels first on a blurred
    copy; a faithful map makes the probability rise fast, so a *higher* area is better."""
    return perturbation_curve(
        score_fn, image, cam, "insertion", n_steps, preprocess, baseline, blur_sigma
    )


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
        h, w = (int(s) for s in size)
        im = Image.fromarray(arr.astype(np.uint8) * 255).resize((w, h), Image.Resampling.NEAREST)
        arr = np.asarray(im) > 127
    return arr.astype(bool)


def load_mask(
    source: Any, size: Sequence[int] | None = None, *, image_size: Sequence[int] | None = None
) -> np.ndarray:
    """A binary mask from a PNG (path, bytes or file): white (or any bright value) is inside.

    Read with the same safe loader as images. A file that is not an image, or a picture that
    is clearly not a black-and-white mask (more than 5 % grey pixels: a photo uploaded by
    mistake), is an ``ExplainerError``; so is a mask whose shape is not the image's
    (``image_size = (H, W)``, see ``mask_fit``). Resized to ``size = (H, W)`` by nearest neighbour.
    """
    return load_mask_noted(source, size, image_size=image_size)[0]


def load_mask_noted(
    source: Any, size: Sequence[int] | None = None, *, image_size: Sequence[int] | None = None
) -> tuple[np.ndarray, str | None]:
    """``load_mask`` and the one-line note to show when the mask had to be resized to fit the
    image (None when it is the image's size or no ``image_size`` is given)."""
    image = load_image(source).convert("L")
    values = np.asarray(image, dtype=np.uint8)
    grey = np.mean((values > 32) & (values < 223))
    if grey > 0.05:
        raise ExplainerError(
            f"the mask is not black and white ({grey * 100:.0f} % of its pixels are grey); "
            "upload a binary PNG with the lesion in white on black"
        )
    note = mask_fit(values.shape, image_size) if image_size is not None else None
    return as_mask(values > 127, size), note


#: How far a mask's width/height ratio may differ from the image's (rounding of scaled copies).
MASK_ASPECT_TOLERANCE = 0.02


def mask_fit(mask_shape: Sequence[int], image_size: Sequence[int]) -> str | None:
    """A mask of ``mask_shape = (H, W)`` for an image of ``image_size = (H, W)``: an
    ExplainerError when its proportions differ (a mask of another image: stretching it would
    put the lesion in the wrong place), a one-line note when it is a scaled copy, else None."""
    mh, mw = (int(v) for v in mask_shape[:2])
    ih, iw = (int(v) for v in image_size[:2])
    if (mh, mw) == (ih, iw):
        return None
    if abs((mw / mh) / (iw / ih) - 1.0) > MASK_ASPECT_TOLERANCE:
        raise ExplainerError(
            f"the mask is {mw}×{mh} pixels but the image is {iw}×{ih}: its proportions differ, "
            "so it is not this image's mask; upload the mask made for this image"
        )
    return f"The mask ({mw}×{mh} pixels) was scaled to the image ({iw}×{ih})."


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


def draw_outline(
    image: Any, mask: Any, color: Sequence[int] = (255, 255, 255), width: int = 2
) -> np.ndarray:
    """The image (uint8 RGB) with the mask's outline drawn on it; the mask is resized to it."""
    img = np.array(image, dtype=np.uint8, copy=True)
    if img.ndim != 3:
        raise ExplainerError(f"the image must be (H, W, 3), got shape {img.shape}")
    edge = mask_outline(as_mask(mask, img.shape[:2]), width)
    img[edge] = np.asarray(color, dtype=np.uint8)[: img.shape[-1]]
    return img
