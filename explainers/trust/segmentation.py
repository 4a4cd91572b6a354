"""Classical lesion segmentation for dermoscopy, NumPy and Pillow only (nothing downloaded).

Pipeline, on a copy scaled to at most ``WORK_SIDE`` px:
1. hair: a grey-level closing of each colour channel (``HAIR_SIZE`` px) paints thin dark lines
   with the colour around them, then a light Gaussian blur;
2. the vignette: dark pixels connected to an image corner (``dark_corners``), left out of
   every step below;
3. the skin colour: median CIE Lab of a band along the border (its darkest pixels left out);
4. the seed: each pixel's *lesion score* — how much darker than the skin it is plus how far
   its colour (a*, b*) lies from the skin's — thresholded by Otsu, opened and closed, the
   component nearest the centre, holes filled. Brighter-than-skin pixels score only by
   colour, so a bright middle (uneven lighting) is not taken for a lesion;
5. the refinement: two Gaussian colour models in Lab (lesion from the seed, skin from the
   pixels away from it), re-estimated ``ITERATIONS`` times; a pixel is lesion where the
   blurred log-likelihood ratio is above 0. This takes in the lighter parts of a lesion
   that the seed's threshold misses;
6. the component overlapping the seed most, holes filled, scaled back (nearest neighbour).

``outline`` also returns how stable the outline is: the IoU of the outlines at a stricter and a
looser likelihood ratio (e^±``STABILITY_MARGIN``). Gradual borders give a low IoU. Not checked
against expert masks here (none are available).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from explainers.errors import ExplainerError

WORK_SIDE = 256
BORDER_FRACTION = 0.06
MORPH_SIZE = 5
#: Closing size for hair (px at the working size): dark lines thinner than this vanish.
HAIR_SIZE = 7
#: Darker than this fraction of the skin's luminance = vignette.
DARK_FRACTION = 0.35
MIN_CORNER_SHARE = 0.002
#: Weight of the colour (a*, b*) distance against the darkness (L*) in the seed's score.
CHROMA_WEIGHT = 1.5
ITERATIONS = 3
#: Bluer than this b* = surgical-marker ink (violet); blue-grey lesion areas stay above it.
INK_B = -40.0
#: The skin model learns from pixels farther than this fraction of the shorter side from the
#: lesion, so a lesion's pale fringe does not teach it that pale brown is skin.
AWAY_FRACTION = 0.08
#: Log-likelihood-ratio margin for the stricter and looser outline of ``outline``.
STABILITY_MARGIN = 2.0
#: Below this IoU between the stricter and looser outline, the outline is "uncertain".
STABLE_IOU = 0.8


@dataclass
class Outline:
    """The lesion mask at the image's size and how stable it is (1 = the same at both
    likelihood ratios, lower = a gradual or ambiguous border)."""

    mask: np.ndarray
    stability: float

    @property
    def uncertain(self) -> bool:
        return self.stability < STABLE_IOU


def _rgb(image) -> np.ndarray:
    arr = np.asarray(
        image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float64
    )
    if arr.ndim != 3 or arr.shape[-1] < 3 or min(arr.shape[:2]) < 8:
        raise ExplainerError(
            f"segmentation needs an RGB image of at least 8x8 pixels, got shape {arr.shape}"
        )
    return arr[..., :3]


def _work_copy(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale >= 1.0:
        return rgb
    im = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    return np.asarray(
        im.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.BILINEAR),
        dtype=np.float64,
    )


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0..255) to CIE L*a*b* (D65), the standard formulas."""
    c = np.clip(np.asarray(rgb, np.float64) / 255.0, 0, 1)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = (
        lin
        @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    )
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    )


def border_band(shape: tuple[int, int], fraction: float = BORDER_FRACTION) -> np.ndarray:
    h, w = shape
    b = max(1, round(min(h, w) * fraction))
    band = np.zeros((h, w), bool)
    band[:b], band[-b:], band[:, :b], band[:, -b:] = True, True, True, True
    return band


def skin_colour(rgb: np.ndarray) -> np.ndarray:
    """Median RGB of the border band, without its darkest pixels (the vignette)."""
    band = border_band(rgb.shape[:2])
    pixels = rgb[band]
    lum = luminance(pixels)
    bright = pixels[lum >= np.percentile(lum, 40)]
    return np.median(bright if len(bright) else pixels, axis=0)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu (1979): the threshold maximising the between-class variance of a histogram."""
    v = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return lo
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mean0 = np.divide(m0, w0, out=np.zeros_like(m0), where=w0 > 0)
    mean1 = np.divide(m0[-1] - m0, w1, out=np.zeros_like(m0), where=w1 > 0)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def _shifted(p: np.ndarray, axis: int, i: int, n: int) -> np.ndarray:
    return p[i : i + n] if axis == 0 else p[:, i : i + n]


def _extreme(a: np.ndarray, size: int, pick) -> np.ndarray:
    """Square max/min filter (``pick`` = np.maximum / np.minimum), separable, edges repeated."""
    r = max(0, int(size) // 2)
    out = np.asarray(a)
    for axis in (0, 1):
        n = out.shape[axis]
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="edge")
        acc = _shifted(p, axis, 0, n)
        for i in range(1, 2 * r + 1):
            acc = pick(acc, _shifted(p, axis, i, n))
        out = acc
    return out


def _morph(mask: np.ndarray, size: int, op: str) -> np.ndarray:
    return _extreme(np.asarray(mask, bool), size, np.minimum if op == "erode" else np.maximum)


def open_close(mask: np.ndarray, size: int = MORPH_SIZE) -> np.ndarray:
    opened = _morph(_morph(mask, size, "erode"), size, "dilate")
    return _morph(_morph(opened, size, "dilate"), size, "erode")


def dilate(mask: np.ndarray, size: int) -> np.ndarray:
    return _morph(mask, size | 1, "dilate")


def remove_hair(rgb: np.ndarray, size: int = HAIR_SIZE) -> np.ndarray:
    """Grey-level closing per channel: dark lines thinner than ``size`` px take the colour
    around them; dark areas wider than that (a lesion) keep their outline."""
    return _extreme(_extreme(rgb, size, np.maximum), size, np.minimum)


def _spread_along_rows(mask: np.ndarray, marked: np.ndarray) -> np.ndarray:
    """Every horizontal run of ``mask`` that holds a marked pixel, whole."""
    h, w = mask.shape
    m = np.pad(mask, ((0, 0), (0, 1))).ravel()  # a False column ends each row's runs
    starts = m & ~np.r_[False, m[:-1]]
    run = np.cumsum(starts) * m
    hit = np.zeros(int(run.max()) + 1, bool)
    hit[run[np.pad(marked & mask, ((0, 0), (0, 1))).ravel()]] = True
    hit[0] = False
    return hit[run].reshape(h, w + 1)[:, :w]


def reconstruct(mask: np.ndarray, marker: np.ndarray) -> np.ndarray:
    """The 4-connected components of ``mask`` that touch ``marker``: whole runs along rows,
    then along columns, until nothing changes (a few passes, all vectorised)."""
    mask = np.asarray(mask, bool)
    out = np.asarray(marker, bool) & mask
    while True:
        grown = _spread_along_rows(mask.T, _spread_along_rows(mask, out).T).T
        if (grown == out).all():
            return out
        out = grown


def component_at(mask: np.ndarray, seed: tuple[int, int]) -> np.ndarray:
    """The 4-connected component of ``mask`` containing ``seed`` (row, col)."""
    marker = np.zeros(np.shape(mask), bool)
    marker[int(seed[0]), int(seed[1])] = True
    return reconstruct(mask, marker)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background not reachable from outside the image becomes foreground."""
    mask = np.asarray(mask, bool)
    return ~reconstruct(~mask, border_band(mask.shape, 0))  # 0: a 1-px frame


def nearest_component(mask: np.ndarray) -> np.ndarray:
    """The component containing the foreground pixel closest to the centre."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return mask
    h, w = mask.shape
    i = int(np.argmin((rows - (h - 1) / 2) ** 2 + (cols - (w - 1) / 2) ** 2))
    return component_at(mask, (rows[i], cols[i]))


def overlapping_component(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The components of ``mask`` that overlap the seed's interior (the seed eroded), so the
    refined outline stays on the seed's lesion and skips blobs that only graze its rim."""
    inner = _morph(seed, MORPH_SIZE, "erode")
    return reconstruct(mask, inner if (inner & mask).any() else seed)


def _log_gaussian(x: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Log-density of a Gaussian fitted to ``pixels`` (N, 3) at ``x`` (..., 3)."""
    mean = pixels.mean(0)
    cov = np.cov(pixels, rowvar=False) + np.eye(3) * 4.0  # floor: 2 Lab units of spread
    inv = np.linalg.inv(cov)
    d = x - mean
    return -0.5 * ((d @ inv) * d).sum(-1) - 0.5 * np.log(np.linalg.det(cov))


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a float map (edges repeated)."""
    r = max(1, round(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    out = np.asarray(a, np.float64)
    for axis in (0, 1):
        n = out.shape[axis]
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="edge")
        out = sum(wt * _shifted(p, axis, i, n) for i, wt in enumerate(k))
    return out


def _ratio_map(small: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log-likelihood ratio lesion : skin, the seed, the usable pixels) at the working size."""
    clean = np.asarray(
        Image.fromarray(np.clip(remove_hair(small), 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(1)
        ),
        np.float64,
    )
    usable = ~_corners_small(_smoothed(small))
    lab = to_lab(clean)
    usable &= ~dilate(lab[..., 2] < INK_B, MORPH_SIZE)  # surgical-marker ink is no lesion
    skin = to_lab(skin_colour(clean)[None])[0]
    score = np.maximum(skin[0] - lab[..., 0], 0) + CHROMA_WEIGHT * np.hypot(
        lab[..., 1] - skin[1], lab[..., 2] - skin[2]
    )
    threshold = otsu_threshold(score[usable] if usable.sum() > 16 else score)
    seed = fill_holes(nearest_component(open_close((score > threshold) & usable)))
    lesion = seed
    ratio = np.where(seed, 1.0, -1.0)
    for _ in range(ITERATIONS):
        away = usable & ~dilate(lesion, 2 * round(AWAY_FRACTION * min(lesion.shape)) + 1)
        if away.sum() < 0.05 * usable.sum():  # a lesion filling the view: the nearer skin
            away = usable & ~dilate(lesion, MORPH_SIZE)
        if lesion.sum() < 8 or away.sum() < 8:
            break
        ratio = _log_gaussian(lab, lab[lesion]) - _log_gaussian(lab, lab[away])
        ratio = np.where(usable, _blur(np.clip(ratio, -20, 20), 1.5), -20.0)
        lesion = _pick(ratio > 0, seed)
        if not lesion.any():
            lesion = seed
            break
    return ratio, seed, usable


def _pick(fg: np.ndarray, seed: np.ndarray) -> np.ndarray:
    return fill_holes(overlapping_component(open_close(fg), seed))


def _full_size(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    if mask.shape == (h, w):
        return mask
    return (
        np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 127
    )


def outline(image) -> Outline:
    """The lesion mask at the image's size and its stability (see the module docstring)."""
    rgb = _rgb(image)
    h, w = rgb.shape[:2]
    ratio, seed, _ = _ratio_map(_work_copy(rgb))
    if not seed.any():
        raise ExplainerError("no lesion could be found in this image (it looks uniform)")
    mask = _pick(ratio > 0, seed)
    if not mask.any():
        mask = seed
    strict = _pick(ratio > STABILITY_MARGIN, seed)
    loose = _pick(ratio > -STABILITY_MARGIN, seed)
    return Outline(_full_size(mask, h, w), iou(strict, loose))


def segment_lesion(image) -> np.ndarray:
    """Boolean lesion mask at the image's size (see the module docstring)."""
    return outline(image).mask


def dark_corners(image) -> np.ndarray:
    """The dermoscope's dark vignette: dark pixels connected to an image corner (empty when
    the corners are not dark). Boolean, at the image's size."""
    rgb = _rgb(image)
    h, w = rgb.shape[:2]
    return _full_size(_corners_small(_smoothed(_work_copy(rgb))), h, w)


def _smoothed(small: np.ndarray) -> np.ndarray:
    """Gaussian blur (radius 2 px at the working size): hair and texture fade."""
    im = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(2)
    )
    return np.asarray(im, dtype=np.float64)


def _corners_small(small: np.ndarray) -> np.ndarray:
    dark = luminance(small) < DARK_FRACTION * luminance(skin_colour(small)[None])[0]
    dark = open_close(dark, 3)
    out = np.zeros_like(dark)
    sh, sw = dark.shape
    for r, c in ((0, 0), (0, sw - 1), (sh - 1, 0), (sh - 1, sw - 1)):
        if dark[r, c] and not out[r, c]:
            out |= component_at(dark, (r, c))
    if out.mean() < MIN_CORNER_SHARE:
        out[:] = False
    return out


def mask_png(mask: np.ndarray) -> Image.Image:
    """White lesion on black skin."""
    return Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0
