"""Marks drawn onto pictures (uint8 RGB arrays), pure functions: a method's localisation box,
the lesion outline (dashed when uncertain), and the red border and label of a map that must
not be read as evidence. Apart from ``render`` (which colours maps) so that each file holds
one concept; the same marks go on the page, the downloads and the report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from explainers.errors import ExplainerError
from explainers.render import _as_rgb_uint8, _size


def draw_box(
    image: np.ndarray,
    box: Sequence[int] | None,
    color: Sequence[int] = (255, 255, 255),
    width: int = 2,
) -> np.ndarray:
    """The image (uint8 RGB) with the rectangle ``box = (x0, y0, x1, y1)`` (x1, y1 exclusive,
    in the image's pixels) outlined ``width`` pixels inwards; unchanged when ``box`` is None."""
    img = _as_rgb_uint8(image).copy()
    if box is None:
        return img
    h, w = img.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return img
    t = max(1, int(width))
    c = np.asarray(color, dtype=np.uint8)[:3]
    img[y0 : min(y1, y0 + t), x0:x1] = c
    img[max(y0, y1 - t) : y1, x0:x1] = c
    img[y0:y1, x0 : min(x1, x0 + t)] = c
    img[y0:y1, max(x0, x1 - t) : x1] = c
    return img


#: The lesion outline on audit figures: white shows on the photo and on every viridis colour.
OUTLINE_COLOR = (255, 255, 255)
#: Dash length (px) of an uncertain outline.
DASH = 8


def contour(
    mask: np.ndarray, shape: Sequence[int], width: int = 3, dashed: bool = False
) -> np.ndarray:
    """Boolean (H, W): the border of ``mask`` (resized to ``shape``, nearest neighbour), pixels
    of the mask within ``width`` px of a non-mask 4-neighbour or of the image edge; ``dashed``
    keeps every other ``DASH``-px stretch (along the diagonals, so every side gets dashes)."""
    h, w = _size(shape)
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ExplainerError(f"a lesion mask is 2-D, got shape {m.shape}")
    if m.shape != (h, w):
        m = (
            np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((w, h), Image.NEAREST))
            > 127
        )
    inner = m.copy()
    for _ in range(max(1, int(width))):
        p = np.pad(inner, 1, constant_values=False)
        inner &= p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    edge = m & ~inner
    if dashed:
        yy, xx = np.mgrid[:h, :w]
        edge &= ((yy + xx) // DASH) % 2 == 0
    return edge


def draw_contour(
    image: np.ndarray,
    mask: np.ndarray,
    color: Sequence[int] = OUTLINE_COLOR,
    width: int = 3,
    dashed: bool = False,
) -> np.ndarray:
    """The image (uint8 RGB, e.g. an overlay) with the lesion outline drawn on top: its pixels
    are exactly ``color``, so the outline stays readable whatever the map below it."""
    img = _as_rgb_uint8(image).copy()
    img[contour(mask, img.shape[:2], width, dashed)] = np.asarray(color, dtype=np.uint8)[:3]
    return img


#: The colour of "do not rely on it", the same on the page, on the image and in the report.
ALARM_RGB = (200, 0, 32)


def mark_unreliable(
    image: np.ndarray, label: str = "DO NOT READ AS EVIDENCE", color: Sequence[int] = ALARM_RGB
) -> np.ndarray:
    """The picture (uint8 RGB) with a red border and ``label`` in white on a red band across its
    top: a map that failed its sanity checks stays marked wherever the picture goes (a
    screenshot, a download, the report). A new array; the input is not changed."""
    img = _as_rgb_uint8(image).copy()
    h, w = img.shape[:2]
    t = max(2, round(min(h, w) * 0.025))
    c = np.asarray(color, dtype=np.uint8)[:3]
    img[:t], img[h - t :], img[:, :t], img[:, w - t :] = c, c, c, c
    band = max(12, round(h * 0.085))
    img[: min(h, band)] = c
    pic = Image.fromarray(img)
    draw = ImageDraw.Draw(pic)
    size = max(8, int(band * 0.62))
    font = ImageFont.load_default(size=size)
    while size > 8 and draw.textlength(label, font=font) > w - 2 * t - 4:
        size -= 1
        font = ImageFont.load_default(size=size)
    left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
    draw.text(
        ((w - (right - left)) / 2 - left, (band - (bottom - top)) / 2 - top),
        label,
        fill=(255, 255, 255),
        font=font,
    )
    return np.asarray(pic, dtype=np.uint8)
