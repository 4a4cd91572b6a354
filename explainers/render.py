"""Turning raw maps into pictures: upsampling, normalising, colouring, overlaying, colour bars.

Pure NumPy + Pillow + matplotlib (no pyplot, so it is safe in Streamlit's threads and on
headless machines). Maps come from ``explain`` non-negative and not normalised; everything
here works on the raw map so the same map can be shown at any size.

Normalisation divides each map by its own maximum (it does not subtract the minimum): the maps
are non-negative, so 0 keeps meaning "no evidence for the class" and 1 means "the strongest
evidence in this map". Maps normalised this way can be compared by shape, not by magnitude; the
shared and absolute scales (``scale_peaks``) compare magnitudes too, and ``weak_maps`` names a
map whose evidence is tiny beside the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure

from explainers.errors import ExplainerError

#: Tick labels of the colour bar, stating what the normalised scale means.
SCALE_TICKS = ((0.0, "0 (none)"), (0.5, "0.5"), (1.0, "1 (map maximum)"))
#: Perceptually uniform and colour-blind safe; its dark end fades into the photo.
DEFAULT_CMAP = "viridis"
#: What one unit of a raw map means: the class's pre-softmax score per activation unit, times
#: an activation (w_k has units of score per activation unit, A_k of activation).
RAW_UNIT = "class-score units"
#: A map whose maximum is below this share of the strongest comparable map is flagged as weak.
WEAK_RATIO = 0.05
#: The colour scales: each map its own maximum, one maximum shared by the maps, or a fixed value.
Scale = Literal["own", "shared", "absolute"]
SCALES: tuple[Scale, ...] = get_args(Scale)


def _size(size: Sequence[int]) -> tuple[int, int]:
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ExplainerError(f"size must be (height, width), got {size!r}") from None
    if height <= 0 or width <= 0:
        raise ExplainerError(f"size must be positive, got {height}x{width}")
    return height, width


def _axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights for bilinear sampling with pixel centres aligned
    (the convention of PIL, OpenCV and ``tf.image.resize``), clamped at the borders."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (pos - lo).astype(np.float32)
    return lo, hi, frac


def upsample(maps: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Bilinear resize of a map ``(h, w)`` or a stack ``(N, h, w)`` to ``size = (H, W)``.

    Vectorised over the stack (two gathers and two blends). Non-finite values become 0 first
    so one bad cell cannot spread NaN over its neighbours.
    """
    arr = np.asarray(maps, dtype=np.float32)
    if arr.ndim not in (2, 3):
        raise ExplainerError(f"maps must be (h, w) or (N, h, w), got shape {arr.shape}")
    if arr.shape[-1] == 0 or arr.shape[-2] == 0:
        raise ExplainerError(f"cannot upsample an empty map of shape {arr.shape}")
    height, width = _size(size)
    arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    h, w = arr.shape[-2:]
    y0, y1, fy = _axis_weights(h, height)
    x0, x1, fx = _axis_weights(w, width)
    rows = arr[..., y0, :] * (1.0 - fy)[:, None] + arr[..., y1, :] * fy[:, None]
    out = rows[..., x0] * (1.0 - fx) + rows[..., x1] * fx
    return out.astype(np.float32, copy=False)


def normalize(maps: np.ndarray) -> np.ndarray:
    """Each map (the last two axes) divided by its maximum, into [0, 1]; float32.

    Negative values are clipped to 0 (a map's evidence is non-negative), NaN and -inf become 0,
    +inf shows as 1 (the rest is scaled by the finite maximum). An all-zero (or all-negative)
    map stays all zero rather than becoming NaN. The result is always finite.
    """
    arr = np.asarray(maps, dtype=np.float64)
    if arr.ndim < 2:
        raise ExplainerError(f"maps must have at least 2 dimensions, got shape {arr.shape}")
    posinf = np.isposinf(arr)
    arr = np.where(np.isfinite(arr), arr, 0.0)
    arr = np.maximum(arr, 0.0)
    peak = arr.max(axis=(-2, -1), keepdims=True) if arr.size else np.zeros((*arr.shape[:-2], 1, 1))
    safe_peak = np.where(peak > 0, peak, 1.0)
    out = np.where(peak > 0, arr / safe_peak, 0.0)
    out = np.where(posinf, 1.0, out)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _colormap(cmap: str | Colormap) -> Colormap:
    if isinstance(cmap, Colormap):
        return cmap
    try:
        return matplotlib.colormaps[cmap]
    except KeyError:
        raise ExplainerError(
            f"unknown colour map '{cmap}' (try jet, viridis, inferno, turbo)"
        ) from None


def colorize(map01: np.ndarray, cmap: str | Colormap = DEFAULT_CMAP) -> np.ndarray:
    """A [0, 1] map ``(H, W)`` as uint8 RGB ``(H, W, 3)`` through a matplotlib colour map."""
    arr = np.asarray(map01, dtype=np.float64)
    if arr.ndim != 2:
        raise ExplainerError(f"colorize takes one (H, W) map, got shape {arr.shape}")
    arr = np.clip(np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    rgba = _colormap(cmap)(arr, bytes=True)
    return np.ascontiguousarray(rgba[..., :3], dtype=np.uint8)


def _as_rgb_uint8(image: object) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ExplainerError(f"image must be (H, W, 3) RGB, got shape {arr.shape}")
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and np.nanmax(arr) <= 1.0:
            arr = arr * 255.0  # a float image in 0..1
        arr = np.clip(np.nan_to_num(arr.astype(np.float64)), 0, 255).round().astype(np.uint8)
    return arr


def peak_of(cam: np.ndarray) -> float:
    """The largest finite value of a raw map (0 for an empty, all-negative or all-NaN map)."""
    arr = np.asarray(cam, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(max(arr.max(), 0.0)) if arr.size else 0.0


def scale_peaks(
    peaks: Mapping[str, float], scale: Scale = "own", absolute_max: float | None = None
) -> dict[str, float]:
    """The raw value drawn as the top colour of each map, for one of the three scales.

    ``own``: each map's own maximum (shapes comparable, magnitudes not); ``shared``: the largest
    maximum of the maps given (the maps on screen), so a weak map looks weak; ``absolute``: a
    fixed raw value ``absolute_max`` chosen by the user, the same for every image and class.
    A peak of 0 means an all-zero map (drawn as "no evidence").
    """
    clean = {k: (float(v) if np.isfinite(v) and v > 0 else 0.0) for k, v in peaks.items()}
    if scale == "own":
        return clean
    if scale == "shared":
        top = max(clean.values(), default=0.0)
        return dict.fromkeys(clean, top)
    if scale == "absolute":
        try:
            value = float(absolute_max)
        except (TypeError, ValueError):
            raise ExplainerError("the absolute scale needs a maximum in raw map units") from None
        if not np.isfinite(value) or value <= 0:
            raise ExplainerError(
                f"the absolute scale's maximum must be a positive number, got {absolute_max!r}"
            )
        return dict.fromkeys(clean, value)
    raise ExplainerError(f"unknown scale '{scale}' (own, shared or absolute)")


def weak_maps(peaks: Mapping[str, float], ratio: float = WEAK_RATIO) -> list[str]:
    """Keys of the maps whose maximum is below ``ratio`` times the largest maximum among
    ``peaks`` (maps in the same units): evidence too small to read as equal to the others."""
    top = max((float(v) for v in peaks.values() if np.isfinite(v)), default=0.0)
    if top <= 0:
        return []
    return [k for k, v in peaks.items() if not (np.isfinite(v) and float(v) >= ratio * top)]


def nice_ceiling(value: float) -> float:
    """A round number at or above ``value`` (1, 2, 2.5, 5 × a power of ten): a default for the
    absolute scale."""
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        return 1.0
    power = 10.0 ** np.floor(np.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value * (1 - 1e-12):
            return float(step * power)
    return float(10.0 * power)


def overlay(
    image_uint8: np.ndarray,
    cam: np.ndarray,
    cmap: str | Colormap = DEFAULT_CMAP,
    opacity: float = 0.5,
    *,
    peak: float | None = None,
    fade: str = "value",
    threshold: float = 0.0,
) -> np.ndarray:
    """The raw map ``cam (h, w)`` upsampled to the image, scaled, coloured and alpha-blended,
    uint8 ``(H, W, 3)``.

    ``peak`` is the raw value drawn as the top colour (``None``: the map's own maximum; see
    ``scale_peaks``); values above it show as the top colour. With ``fade="value"`` (default)
    each pixel's opacity is ``opacity × v`` for its scaled value ``v`` in [0, 1], so where the
    map is near 0 the photo shows through untinted (a ruler, hair, the vignette stay visible);
    ``fade="none"`` blends uniformly, ``(1 − opacity) · image + opacity · heat``. Pixels whose
    scaled value is below ``threshold`` are not tinted at all. ``image_uint8`` may be a PIL
    image.
    """
    try:
        opacity = float(opacity)
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ExplainerError(f"opacity must be a number between 0 and 1, got {opacity!r}") from None
    if not 0.0 <= opacity <= 1.0:
        raise ExplainerError(f"opacity must be between 0 and 1, got {opacity}")
    if fade not in ("value", "none"):
        raise ExplainerError(f"fade must be 'value' or 'none', got {fade!r}")
    img = _as_rgb_uint8(image_uint8)
    cam = np.asarray(cam)
    if cam.ndim == 3 and cam.shape[0] == 1:
        cam = cam[0]
    if cam.ndim != 2:
        raise ExplainerError(f"overlay takes one (h, w) map, got shape {cam.shape}")
    up = upsample(cam, img.shape[:2])
    if peak is None:
        scaled = normalize(up)
    else:
        scaled = scale_to(up, peak)
    heat = colorize(scaled, cmap).astype(np.float32)
    if fade == "value":
        alpha = opacity * scaled[..., None]
    else:
        alpha = np.full((*scaled.shape, 1), opacity, dtype=np.float32)
    if threshold > 0:
        alpha = np.where(scaled[..., None] < threshold, 0.0, alpha)
    # (1 − α)·image + α·heat, in place (the same float32 operations, fewer temporaries: a
    # display change redraws every overlay, so this runs on each opacity step).
    blended = img.astype(np.float32)
    blended *= 1.0 - alpha
    heat *= alpha
    blended += heat
    np.rint(blended, out=blended)
    np.clip(blended, 0, 255, out=blended)
    return blended.astype(np.uint8)


def scale_to(maps: np.ndarray, peak: float) -> np.ndarray:
    """``maps / peak`` clipped to [0, 1], float32, always finite; all zero when ``peak`` ≤ 0."""
    arr = np.asarray(maps, dtype=np.float64)
    arr = np.nan_to_num(arr, nan=0.0, posinf=np.inf, neginf=0.0)
    peak = float(peak) if np.isfinite(peak) else 0.0
    if peak <= 0:
        return np.zeros(arr.shape, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.where(np.isposinf(arr), 1.0, np.maximum(arr, 0.0) / peak)
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0).astype(np.float32)


def colorbar_figure(
    cmap: str | Colormap = DEFAULT_CMAP,
    label: str = "relative importance",
    *,
    vmax: float | None = None,
    unit: str = RAW_UNIT,
    text_color: str | None = None,
    fontsize: float = 12.0,
) -> Figure:
    """A horizontal colour bar to sit under the overlays, on a transparent background.

    Without ``vmax`` its ticks say what the per-map scale means ("0 (none)" … "1 (map
    maximum)"); with ``vmax`` (shared or absolute scale) the ticks are raw map values from 0 to
    ``vmax`` and the label names their ``unit``. ``text_color`` follows the page's theme;
    ``fontsize`` is large enough to read on a projector.
    """
    fig = Figure(figsize=(6.0, 1.25), dpi=100, layout="constrained")
    fig.patch.set_alpha(0.0)
    ax = fig.add_subplot(1, 1, 1)
    top = None if vmax is None else float(vmax)
    if top is not None and not (np.isfinite(top) and top > 0):
        top = None
    mappable = ScalarMappable(
        norm=Normalize(0.0, 1.0 if top is None else top), cmap=_colormap(cmap)
    )
    bar = fig.colorbar(mappable, cax=ax, orientation="horizontal")
    if top is None:
        bar.set_ticks([t for t, _ in SCALE_TICKS], labels=[s for _, s in SCALE_TICKS])
    else:
        ticks = np.linspace(0.0, top, 5)
        bar.set_ticks(list(ticks), labels=[f"{t:.3g}" for t in ticks])
        if not label:
            label = f"raw map value ({unit})"
    color = text_color or "black"
    bar.ax.tick_params(labelsize=fontsize, colors=color)
    bar.outline.set_edgecolor(color)
    if label:
        bar.set_label(label, fontsize=fontsize, color=color)
    return fig


def side_by_side(
    panels: Sequence[np.ndarray], captions: Sequence[str] | None = None, gap: int = 6
) -> np.ndarray:
    """Images of equal height in one row, each with its caption above, on white: uint8 RGB.

    Used for the CLI's ``input | Grad-CAM | Grad-CAM++`` picture.
    """
    from PIL import Image, ImageDraw, ImageFont

    if not panels:
        raise ExplainerError("no panels to put side by side")
    imgs = [_as_rgb_uint8(p) for p in panels]
    height = max(i.shape[0] for i in imgs)
    caption_h = 22 if captions else 0
    width = sum(i.shape[1] for i in imgs) + gap * (len(imgs) - 1)
    canvas = Image.new("RGB", (width, height + caption_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1 has no sized default font
        font = ImageFont.load_default()
    x = 0
    for i, img in enumerate(imgs):
        canvas.paste(Image.fromarray(img), (x, caption_h))
        if captions and i < len(captions) and captions[i]:
            draw.text((x + 4, 3), str(captions[i]), fill=(0, 0, 0), font=font)
        x += img.shape[1] + gap
    return np.asarray(canvas, dtype=np.uint8).copy()


def two_sided(for_map: np.ndarray, against_map: np.ndarray) -> tuple[np.ndarray, float]:
    """Evidence for the class minus evidence against it (e.g. Grad-CAM and the counterfactual
    map), both non-negative, on ONE shared scale: ``(for - against) / m`` in [-1, 1] with
    ``m`` the larger of the two raw maxima, returned with ``m`` (0 when both maps are zero)."""
    pro = np.maximum(np.nan_to_num(np.asarray(for_map, dtype=np.float64)), 0.0)
    con = np.maximum(np.nan_to_num(np.asarray(against_map, dtype=np.float64)), 0.0)
    if pro.shape != con.shape:
        raise ExplainerError(f"the two maps differ in shape: {pro.shape} and {con.shape}")
    peak = float(max(pro.max(initial=0.0), con.max(initial=0.0)))
    if peak <= 0 or not np.isfinite(peak):
        return np.zeros(pro.shape, np.float32), 0.0
    return np.clip((pro - con) / peak, -1.0, 1.0).astype(np.float32), peak


def diverging_overlay(
    image_uint8: np.ndarray,
    for_map: np.ndarray,
    against_map: np.ndarray,
    cmap: str | Colormap = "RdBu_r",
    opacity: float = 0.55,
) -> np.ndarray:
    """The two-sided map over the image: red = evidence for, blue = against, white = neither
    (0 at the colour map's centre). Uniform blend, as ``overlay``."""
    img = _as_rgb_uint8(image_uint8)
    signed, _ = two_sided(for_map, against_map)
    heat = colorize((upsample(signed, img.shape[:2]) + 1.0) / 2.0, cmap)
    blended = (1.0 - float(opacity)) * img.astype(np.float32) + float(opacity) * heat.astype(
        np.float32
    )
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
