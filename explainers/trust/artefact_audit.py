"""Artefact and shortcut audit for dermoscopy: where the map's energy lies (lesion, a border
band around it, the rest of the skin, the dark vignette corners), and what the model says
when a region is hidden (DeGrave et al. 2021 style counterfactual edits).

Regions are at the image's own size; the map is upsampled to it (``metrics.map_at``). An edit
hides a region by skin-colour fill or by a strong blur, the edited image goes through the
model's usual preparation, and the explained class's probability before and after is kept.

Claims only as strong as the outline: with an automatic outline, the audit is *uncertain*
when the outline is unstable (``segmentation.Outline.uncertain``) or when most of the map's
high area outside the outline lies in a band just outside it (``band_width``: one map cell, as
a coarse map cannot place anything more finely, and at least ``EDGE_FRACTION`` of the image)
— there a lesion rim the outline missed and a shortcut look the same. The "outside" edit is
then worded as a possibility, not a finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from explainers import predict
from explainers.errors import ExplainerError
from explainers.evaluation.scoring import map_at
from explainers.trust.segmentation import (
    STABLE_IOU,
    Outline,
    dark_corners,
    dilate,
    outline,
    skin_colour,
)
from explainers.zoo import prepare

#: Border band: this fraction of the image's shorter side around the lesion.
BAND_FRACTION = 0.06
#: "High" map: at or above this fraction of its maximum.
HIGH_FRACTION = 0.5
#: Probability changes smaller than this are "does not rest on it".
SMALL_CHANGE = 0.05
BLUR_RADIUS = 12
REGIONS = ("lesion", "border", "skin", "corners")
#: The band just outside the outline: at least this fraction of the image's shorter side.
EDGE_FRACTION = 0.03
#: From this share of the high-map area outside the outline lying in that band, the audit
#: cannot tell a missed lesion rim from a shortcut.
EDGE_SHARE = 0.5


@dataclass
class Edit:
    region: str
    description: str
    probability_before: float
    probability_after: float
    pixels: int
    #: The region hangs on an uncertain automatic outline: a change is a possibility only.
    uncertain: bool = False

    def sentence(self, class_name: str) -> str:
        before, after = self.probability_before, self.probability_after
        if self.pixels == 0:
            return f"{self.description}: nothing to hide in this image"
        if abs(after - before) < SMALL_CHANGE:
            verdict = "the prediction does not rest on it"
        elif self.uncertain:
            verdict = "the prediction may lean on the area outside the outline — the outline itself is uncertain here"
        else:
            verdict = "the prediction leans on it"
        return (
            f"hiding {self.description} moves P({class_name}) {before:.2f} → {after:.2f}: {verdict}"
        )


@dataclass
class Audit:
    mask_source: str  # "auto" | "upload"
    lesion: np.ndarray = field(repr=False)
    regions: dict[str, np.ndarray] = field(repr=False)
    energy: dict[str, float]
    edits: list[Edit]
    #: IoU of the automatic outline at a stricter and a looser threshold (None: uploaded mask).
    stability: float | None = None
    #: Share (0..1) of the map's high area outside the outline that lies in the band just
    #: outside it (``band_width``; 0 when there is no such area).
    edge_share: float = 0.0
    #: The band's width in px (``band_width``).
    edge_width: int = 0
    #: The outline-dependent conclusions are possibilities only (never for an uploaded mask).
    uncertain: bool = False


def region_masks(image, lesion: np.ndarray) -> dict[str, np.ndarray]:
    """Disjoint boolean masks at the image's size: lesion, border band, corners, skin."""
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    h, w = rgb.shape[:2]
    lesion = np.asarray(lesion, bool)
    if lesion.shape != (h, w):
        raise ExplainerError(
            f"the lesion mask is {lesion.shape[1]}x{lesion.shape[0]} but the image is {w}x{h}"
        )
    band = dilate(lesion, max(3, round(2 * BAND_FRACTION * min(h, w)) + 1)) & ~lesion
    corners = dark_corners(rgb) & ~lesion & ~band
    skin = ~(lesion | band | corners)
    return {"lesion": lesion, "border": band, "skin": skin, "corners": corners}


def energy_shares(cam: np.ndarray, regions: dict[str, np.ndarray]) -> dict[str, float]:
    """The map's share (0..1) of its total in each region; they sum to 1."""
    some = next(iter(regions.values()))
    up = np.maximum(map_at(np.asarray(cam), some.shape).astype(np.float64), 0.0)
    total = up.sum()
    return {k: (float(up[m].sum() / total) if total > 0 else 0.0) for k, m in regions.items()}


def hide(image: Image.Image, region: np.ndarray, mode: str = "fill") -> Image.Image:
    """The image with ``region`` replaced by the skin colour ("fill") or a strong blur ("blur")."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    if mode == "fill":
        replacement = np.broadcast_to(
            np.round(skin_colour(rgb.astype(np.float64))).astype(np.uint8), rgb.shape
        )
    elif mode == "blur":
        replacement = np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(BLUR_RADIUS)))
    else:
        raise ExplainerError(f"hide a region by 'fill' or 'blur', not '{mode}'")
    out = np.where(np.asarray(region, bool)[..., None], replacement, rgb)
    return Image.fromarray(out.astype(np.uint8))


def box_mask(shape: tuple[int, int], box: Sequence[int]) -> np.ndarray:
    """Boolean mask of a box ``(x0, y0, x1, y1)`` in pixels (clipped to the image)."""
    h, w = shape
    try:
        x0, y0, x1, y1 = (round(float(v)) for v in box)
    except (TypeError, ValueError):
        raise ExplainerError("a box is four numbers: x0, y0, x1, y1 in pixels") from None
    x0, x1 = sorted((max(0, min(w, x0)), max(0, min(w, x1))))
    y0, y1 = sorted((max(0, min(h, y0)), max(0, min(h, y1))))
    if x1 <= x0 or y1 <= y0:
        raise ExplainerError("the box is empty or outside the image")
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def probability_of(
    bundle, images: Sequence[Image.Image], target: int, extra_inputs=None
) -> np.ndarray:
    """The class probability the model gives each image (one batched forward pass)."""
    x = np.concatenate([prepare(bundle, im) for im in images])
    extra = (
        None
        if extra_inputs is None
        else [np.repeat(np.asarray(e)[:1], len(x), axis=0) for e in extra_inputs]
    )
    return np.asarray(
        predict(bundle.model, x, extra_inputs=extra).probabilities[:, int(target)], np.float64
    )


def band_width(shape: tuple[int, int], grid: tuple[int, int]) -> int:
    """Width (px) of the band just outside the outline: one cell of the map's ``grid`` on the
    image (its shorter side), and at least ``EDGE_FRACTION`` of the image's shorter side."""
    h, w = shape
    cell = min(h / max(1, grid[0]), w / max(1, grid[1]))
    return max(1, round(EDGE_FRACTION * min(h, w)), int(np.ceil(cell)))


def edge_share(high_outside: np.ndarray, lesion: np.ndarray, width: int) -> float:
    """Share (0..1) of ``high_outside`` within ``width`` px (a square's reach) just outside
    ``lesion`` (0 when ``high_outside`` is empty)."""
    high_outside = np.asarray(high_outside, bool)
    if not high_outside.any():
        return 0.0
    band = dilate(lesion, 2 * int(width) + 1) & ~lesion
    return float((high_outside & band).sum() / high_outside.sum())


def is_uncertain(source: str, stability: float | None, edge: float) -> bool:
    """The rule: an automatic outline that is unstable, or that the map's high area outside
    it mostly hugs. An uploaded mask is taken as given."""
    if source != "auto":
        return False
    return (stability is not None and stability < STABLE_IOU) or edge >= EDGE_SHARE


def audit(
    bundle,
    image: Image.Image,
    cam: np.ndarray,
    target: int,
    *,
    extra_inputs=None,
    mask: np.ndarray | None = None,
    box: Sequence[int] | None = None,
    mode: str = "fill",
    auto: Outline | None = None,
) -> Audit:
    """Energy shares and the edits (corners, the high-map area outside the lesion, the box).
    ``mask`` is an uploaded mask; else ``auto`` (an ``outline`` already computed) or the
    automatic outline of ``image``."""
    image = image.convert("RGB")
    size = (image.height, image.width)
    source = "upload" if mask is not None else "auto"
    stability = None
    if mask is not None:
        lesion = np.asarray(mask, bool)
    else:
        if auto is None:
            try:
                auto = outline(image)
            except ExplainerError:  # a uniform image: no lesion, every other figure still holds
                auto = Outline(np.zeros(size, bool), 1.0)
        lesion, stability = np.asarray(auto.mask, bool), float(auto.stability)
    if lesion.shape != size:
        lesion = (
            np.asarray(
                Image.fromarray(lesion.astype(np.uint8) * 255).resize(image.size, Image.NEAREST)
            )
            > 127
        )
    regions = region_masks(image, lesion)
    energy = energy_shares(cam, regions)
    up = map_at(np.asarray(cam), size)
    high = (up >= HIGH_FRACTION * up.max()) & ~lesion if up.max() > 0 else np.zeros(size, bool)
    width = band_width(size, np.shape(cam)[:2])
    edge = edge_share(high, lesion, width) if lesion.any() else 0.0
    uncertain = is_uncertain(source, stability, edge)
    words = "the high-map area outside the lesion" + (" outline" if uncertain else "")
    wanted = [("corners", "the dark corners", regions["corners"]), ("outside-high", words, high)]
    if box is not None:
        wanted.append(("box", f"the box {[int(v) for v in box]}", box_mask(size, box)))
    edited = [hide(image, m, mode) for _, _, m in wanted if m.any()]
    probs = probability_of(bundle, [image, *edited], target, extra_inputs)
    edits, j = [], 1
    for name, words, m in wanted:
        after = probs[0]
        if m.any():
            after, j = probs[j], j + 1
        edits.append(
            Edit(
                name,
                words,
                float(probs[0]),
                float(after),
                int(m.sum()),
                uncertain=uncertain and name == "outside-high",
            )
        )
    return Audit(source, lesion, regions, energy, edits, stability, edge, width, uncertain)


def audit_json(result: Audit) -> dict:
    """``{"mask", "outline_stability", "outline_uncertain", "energy": {lesion, border, skin,
    corners}, "edits": [...]}`` for explain --json."""
    return {
        "mask": result.mask_source,
        "outline_stability": None if result.stability is None else round(result.stability, 4),
        "outline_uncertain": result.uncertain,
        "energy": {k: round(result.energy[k], 4) for k in REGIONS},
        "edits": [
            {
                "region": e.region,
                "probability_before": round(e.probability_before, 4),
                "probability_after": round(e.probability_after, 4),
            }
            for e in result.edits
        ],
    }
