"""Classical lesion segmentation for dermoscopy, NumPy and Pillow only (nothing downloaded).

Pipeline, on a copy scaled to at most ``WORK_SIDE`` px:
1. the skin colour: median RGB of a band along the image border, dark pixels (vignette)
   left out;
2. each pixel's colour distance from that skin colour;
3. Otsu's threshold on the distances (lesions differ from the skin around them);
4. opening then closing (Pillow's min/max filters) to drop hair-thin bits and close gaps;
5. the connected component nearest the image centre (flood fill from the foreground pixel
   closest to the centre), then its holes filled (flood fill of the background from outside);
6. the mask scaled back to the image's size (nearest neighbour).

Also ``dark_corners``: the dark vignette of dermoscopes, detected as dark regions connected
to the image corners. Neither is checked against expert masks here (none are available).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from explainers.errors import ExplainerError

WORK_SIDE = 256
BORDER_FRACTION = 0.06
MORPH_SIZE = 5
#: Darker than this fraction of the skin's luminance = vignette.
DARK_FRACTION = 0.35
MIN_CORNER_SHARE = 0.002


def _rgb(image) -> np.ndarray:
    arr = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[-1] < 3 or min(arr.shape[:2]) < 8:
        raise ExplainerError(f"segmentation needs an RGB image of at least 8x8 pixels, got shape {arr.shape}")
    return arr[..., :3]


def _work_copy(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale >= 1.0:
        return rgb
    im = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    return np.asarray(im.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.BILINEAR),
                      dtype=np.float64)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


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


def _morph(mask: np.ndarray, size: int, op: str) -> np.ndarray:
    im = Image.fromarray(mask.astype(np.uint8) * 255)
    f = ImageFilter.MinFilter(size) if op == "erode" else ImageFilter.MaxFilter(size)
    return np.asarray(im.filter(f)) > 127


def open_close(mask: np.ndarray, size: int = MORPH_SIZE) -> np.ndarray:
    opened = _morph(_morph(mask, size, "erode"), size, "dilate")
    return _morph(_morph(opened, size, "dilate"), size, "erode")


def dilate(mask: np.ndarray, size: int) -> np.ndarray:
    return _morph(mask, size | 1, "dilate")


def component_at(mask: np.ndarray, seed: tuple[int, int]) -> np.ndarray:
    """The 4-connected component of ``mask`` containing ``seed`` (row, col)."""
    im = Image.fromarray(mask.astype(np.uint8) * 255).copy()  # fromarray's image is read-only
    ImageDraw.floodfill(im, (int(seed[1]), int(seed[0])), 128, thresh=0)
    return np.asarray(im) == 128


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background not reachable from outside the image becomes foreground."""
    padded = np.pad(mask, 1, constant_values=False)
    outside = component_at(~padded, (0, 0))[1:-1, 1:-1]
    return ~outside


def nearest_component(mask: np.ndarray) -> np.ndarray:
    """The component containing the foreground pixel closest to the centre."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return mask
    h, w = mask.shape
    i = int(np.argmin((rows - (h - 1) / 2) ** 2 + (cols - (w - 1) / 2) ** 2))
    return component_at(mask, (rows[i], cols[i]))


def segment_lesion(image) -> np.ndarray:
    """Boolean lesion mask at the image's size (see the module docstring)."""
    rgb = _rgb(image)
    h, w = rgb.shape[:2]
    small = _smoothed(_work_copy(rgb))
    distance = np.linalg.norm(small - skin_colour(small), axis=-1)
    # Dark vignette pixels are far from the skin too: they must not pull Otsu's threshold.
    usable = ~_corners_small(small)
    threshold = otsu_threshold(distance[usable] if usable.sum() > 16 else distance)
    fg = open_close((distance > threshold) & usable)
    mask = fill_holes(nearest_component(fg))
    if not mask.any():
        raise ExplainerError("no lesion could be found in this image (it looks uniform)")
    if mask.shape != (h, w):
        mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 127
    return mask


def dark_corners(image) -> np.ndarray:
    """The dermoscope's dark vignette: dark pixels connected to an image corner (empty when
    the corners are not dark). Boolean, at the image's size."""
    rgb = _rgb(image)
    h, w = rgb.shape[:2]
    out = _corners_small(_smoothed(_work_copy(rgb)))
    if out.shape != (h, w):
        out = np.asarray(Image.fromarray(out.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 127
    return out


def _smoothed(small: np.ndarray) -> np.ndarray:
    """Gaussian blur (radius 2 px at the working size): hair and texture fade."""
    im = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2))
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
